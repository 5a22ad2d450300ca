"""Scripted demonstrations on train goals, played in parallel as Ray tasks, written as parquet.

    python -m rl_app.data.demos --num-goals 200 --out runs/demos                  # synthetic shop
    python -m rl_app.data.demos --catalogue webshop --data-dir ../shared/webshop-data \\
        --num-goals 1000 --out runs/demos

Demonstrations come from train goals only (dev/test goals are for evaluation): asking for
test/dev goals is an error. Each episode's randomness comes from a seed derived from
(seed, goal_index) alone (:func:`episode_seed`), so the rows do not depend on chunking,
worker count or order. Every Ray task builds its own
:class:`~rl_app.env.text_env.WebShopTextEnv` through :func:`~rl_app.shop.config.load_shop` (one shop per worker process, reused across tasks).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from rl_app.agents.scripted import Agent, DemonstratorAgent, RuleAgent
from rl_app.data.io import write_trajectories
from rl_app.data.schema import Source, StepRecord
from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv
from rl_app.shop.config import ShopConfig, add_shop_arguments, load_shop, shop_from_args
from rl_app.shop.goals import SPLIT_RANGES, split_of
from rl_app.shop.site import BACK_TO_SEARCH, NEXT_PAGE, PREV_PAGE, SUB_PAGES

__all__ = [
    "AGENTS",
    "DemoSummary",
    "TrajectoryStats",
    "episode_seed",
    "demo_episode_id",
    "record_episode",
    "summarize_trajectories",
    "generate_demonstrations",
    "main",
]

AGENTS = ("demonstrator", "rule")
# Chunks per worker: enough for load balancing and a moving progress bar, few enough that
# Ray's per-task overhead stays small next to the episodes a chunk plays.
CHUNKS_PER_WORKER = 4
# Stream id that separates the env's generator (candidate reduction) from the agent's.
_ENV_STREAM = 1
TRAIN_START = SPLIT_RANGES["train"][0]
# Action strings whose use the summary reports (share of episodes / total uses).
ACTION_KINDS: dict[str, tuple[str, ...]] = {
    "next": (f"click[{NEXT_PAGE}]",),
    "prev": (f"click[{PREV_PAGE}]",),
    "back to search": (f"click[{BACK_TO_SEARCH}]",),
    "sub-pages": tuple(f"click[{s}]" for s in SUB_PAGES),
}


def episode_seed(seed: int, goal_index: int) -> int:
    """The seed of one episode: a hash of (seed, goal_index), independent of everything else."""
    if seed < 0 or goal_index < 0:
        raise ValueError(f"seed and goal_index must be >= 0, got {seed}, {goal_index}")
    return int(np.random.SeedSequence([seed, goal_index]).generate_state(1)[0])


def demo_episode_id(agent: str, seed: int, goal_index: int) -> str:
    """``demo/<agent>/s<base seed>/g<goal, 6 digits>``: sorts by goal within a run."""
    return f"demo/{agent}/s{seed}/g{goal_index:06d}"


def _make_agent(name: str, seed: int) -> Agent:
    if name == "demonstrator":
        return DemonstratorAgent(seed=seed)
    if name == "rule":
        return RuleAgent()
    raise ValueError(f"unknown agent {name!r}; expected one of {AGENTS}")


def record_episode(env: WebShopTextEnv, agent: Agent, goal_index: int, *, seed: int,
                   source: Source = "demo", episode_id: Optional[str] = None) -> list[StepRecord]:
    """Play one goal to the end and return its rows.

    The env is reset with a generator derived from ``seed`` (it only matters for seeded
    candidate reductions); seed ``agent`` from ``seed`` yourself. The agent must choose among
    ``env.candidates()``: an action outside them cannot be recorded and is an error.
    """
    env.reset(goal_index=goal_index, rng=np.random.default_rng([seed, _ENV_STREAM]))
    agent.reset(env)
    name = getattr(agent, "name", type(agent).__name__)
    episode_id = episode_id or f"{source}/{name}/s{seed}/g{goal_index:06d}"
    steps: list[tuple[str, list[str], list[str], int, float, bool]] = []
    done = False
    while not done:
        state, candidates = env.observation(), env.candidates()
        texts = env.candidate_texts(candidates)
        action = agent.act(env)
        if action not in candidates:
            raise RuntimeError(f"goal {goal_index} step {env.steps}: agent {name!r} chose {action!r}, "
                               f"which is not among the {len(candidates)} candidates")
        _, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        steps.append((state, candidates, texts, candidates.index(action), float(reward), done))
    final = steps[-1][4]
    return [StepRecord(episode_id=episode_id, goal_index=goal_index, split=split_of(goal_index),
                       step=i, state=state, candidates=tuple(cands), candidate_texts=tuple(texts),
                       chosen=chosen, reward=reward, done=d, source=source, episode_reward=final,
                       agent=name, seed=seed)
            for i, (state, cands, texts, chosen, reward, d) in enumerate(steps)]


def _play_chunk(shop_config: Mapping[str, Any], env_config: Mapping[str, Any], goal_indices: Sequence[int],
                agent: str, seed: int) -> list[StepRecord]:
    """One task: play ``goal_indices`` with a fresh agent per goal (runs in a Ray worker or here)."""
    env = WebShopTextEnv(ShopConfig.from_dict(shop_config), TextEnvConfig(**env_config))
    records: list[StepRecord] = []
    for g in goal_indices:
        s = episode_seed(seed, g)
        records.extend(record_episode(env, _make_agent(agent, s), int(g), seed=s,
                                      episode_id=demo_episode_id(agent, seed, g)))
    return records


def _goal_count(shop_config: Mapping[str, Any]) -> int:
    return len(load_shop(ShopConfig.from_dict(shop_config)).goals)


@functools.lru_cache(maxsize=None)
def _remote(fn):
    import ray

    return ray.remote(num_cpus=1)(fn)


# ---------------------------------------------------------------------- summary
@dataclass(frozen=True)
class TrajectoryStats:
    """What a set of episodes shows; computed from rows alone (:func:`summarize_trajectories`).

    Attributes:
        episodes, steps: counts.
        successes: episodes whose final reward is exactly 1 (WebShop's success).
        success_rate: successes / episodes.
        mean_score: mean final reward x 100 (WebShop's score).
        mean_steps: steps / episodes.
        action_use: share of episodes that used next / prev / back to search / sub-pages.
        action_counts: how many times each of those was used in all.
    """

    episodes: int
    steps: int
    successes: int
    success_rate: float
    mean_score: float
    mean_steps: float
    action_use: dict[str, float]
    action_counts: dict[str, int]


def summarize_trajectories(frame: pd.DataFrame | Sequence[StepRecord]) -> TrajectoryStats:
    """Episode statistics of trajectory rows (a DataFrame from read_trajectories, or records)."""
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame([r.to_row() for r in frame], columns=list(StepRecord.__dataclass_fields__))
    n_ep = int(frame["episode_id"].nunique())
    if n_ep == 0:
        return TrajectoryStats(0, 0, 0, 0.0, 0.0, 0.0, {k: 0.0 for k in ACTION_KINDS}, {k: 0 for k in ACTION_KINDS})
    final = frame.groupby("episode_id", sort=False)["episode_reward"].first().to_numpy(dtype=float)
    actions = [c[i] for c, i in zip(frame["candidates"], frame["chosen"])]
    use: dict[str, float] = {}
    counts: dict[str, int] = {}
    for kind, strings in ACTION_KINDS.items():
        hit = np.array([a in strings for a in actions], dtype=bool)
        counts[kind] = int(hit.sum())
        use[kind] = float(frame.loc[hit, "episode_id"].nunique() / n_ep)
    successes = int((final == 1.0).sum())
    return TrajectoryStats(
        episodes=n_ep, steps=len(frame), successes=successes, success_rate=successes / n_ep,
        mean_score=float(final.mean() * 100), mean_steps=len(frame) / n_ep, action_use=use, action_counts=counts)


@dataclass(frozen=True)
class DemoSummary:
    """A demonstration run: what was played (``stats``), what was written, how long it took."""

    agent: str
    catalogue: str
    seed: int
    stats: TrajectoryStats
    episodes_written: int
    rows_written: int
    num_workers: int
    chunks: int
    wall_s: float
    out: Optional[str]

    def line(self) -> str:
        s = self.stats
        uses = ", ".join(f"{k} {v:.0%}" for k, v in s.action_use.items())
        return (f"{self.agent} on {s.episodes} {self.catalogue} train goals: success {s.success_rate:.1%}, "
                f"score {s.mean_score:.2f}, mean steps {s.mean_steps:.2f}; episodes using {uses}; "
                f"wrote {self.episodes_written} episodes / {self.rows_written} steps in {self.wall_s:.1f} s")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- generation
def _select_goals(split: str, num_goals: Optional[int | Sequence[int]], n_goals: int) -> list[int]:
    if split != "train":
        raise ValueError(f"demonstrations come from train goals only; got split={split!r}. "
                         "Dev/test goals are for evaluation: use rl_app.play or rl_app.eval there")
    if num_goals is None or isinstance(num_goals, (int, np.integer)):
        available = max(0, n_goals - TRAIN_START)
        n = available if num_goals is None else int(num_goals)
        if available == 0:
            raise ValueError(f"this shop has {n_goals} goals, so no train goals (train = {TRAIN_START}+); "
                             "use a larger catalogue (e.g. synthetic_products=1000)")
        if not 1 <= n <= available:
            raise ValueError(f"num_goals={n} but the shop has {available} train goals")
        return list(range(TRAIN_START, TRAIN_START + n))
    goals = [int(g) for g in num_goals]
    if not goals:
        raise ValueError("empty goal list")
    not_train = sorted({g for g in goals if g < TRAIN_START})
    if not_train:
        raise ValueError(f"goals {not_train[:10]}{' ...' if len(not_train) > 10 else ''} are test/dev goals "
                         f"(< {TRAIN_START}); demonstrations come from train goals only "
                         "(dev/test goals are for evaluation)")
    too_big = sorted({g for g in goals if g >= n_goals})
    if too_big:
        raise IndexError(f"goals {too_big[:10]} do not exist (the shop has {n_goals} goals)")
    if len(set(goals)) != len(goals):
        raise ValueError("goal list has duplicates; each goal is played once per seed")
    return goals


def generate_demonstrations(shop_config: Mapping[str, Any] | ShopConfig, *, split: str = "train",
                            num_goals: Optional[int | Sequence[int]] = None, agent: str = "demonstrator",
                            seed: int = 0, num_workers: int = 2, out: Optional[str | os.PathLike] = None,
                            only_success: bool = False, env_config: Optional[Mapping[str, Any]] = None,
                            chunk_size: Optional[int] = None, overwrite: bool = False,
                            progress: bool = True) -> DemoSummary:
    """Play a scripted agent once on each selected train goal and write the steps as parquet.

    Args:
        shop_config: a :class:`~rl_app.shop.config.ShopConfig` or its dict; ``data_dir`` is made
            absolute here so every Ray worker reads the same files.
        split: must be ``train`` (dev/test goals are for evaluation); anything else is refused.
        num_goals: None = every train goal; N = the first N train goals (1500 .. 1500+N-1);
            a list = exactly those goal indices (all must be train goals).
        agent: ``demonstrator`` (seeded, human-like) or ``rule`` (WebShop's rule baseline).
        seed: base seed; episode seeds are :func:`episode_seed` (seed, goal_index).
        num_workers: Ray tasks running at once (at most); 0 plays in this process without Ray.
            With Ray, the running session is used, or ``ray.init()`` starts a local one.
        out: data set directory to write (None: play and summarise only).
        only_success: write only episodes with final reward 1 (the summary still covers all).
        env_config: :class:`~rl_app.env.text_env.TextEnvConfig` fields (max_steps, k_max, ...).
        chunk_size: goals per task (default: spread over ``CHUNKS_PER_WORKER`` tasks per worker).
        overwrite: replace an existing data set at ``out``.
        progress: show a tqdm bar over finished chunks.
    """
    t0 = time.perf_counter()
    config = (shop_config if isinstance(shop_config, ShopConfig) else ShopConfig.from_dict(shop_config)).resolved()
    shop_dict = dataclasses.asdict(config)
    env_dict = dict(env_config or {})
    if env_dict.get("split", "train") != "train":
        raise ValueError(f"env_config split must be 'train' for demonstrations, got {env_dict['split']!r}")
    env_dict["split"] = "train"
    dataclasses.replace(TextEnvConfig(), **env_dict)  # unknown or invalid fields fail here, not in a worker
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; expected one of {AGENTS}")
    if seed < 0 or num_workers < 0:
        raise ValueError(f"seed and num_workers must be >= 0, got {seed}, {num_workers}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 (or None for automatic), got {chunk_size}")
    if split != "train":
        _select_goals(split, num_goals, 0)  # raises the train-only error before any work
    if out is not None and Path(out).exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) or choose another path")

    if num_workers == 0:
        goals = _select_goals(split, num_goals, _goal_count(shop_dict))
    else:
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        goals = _select_goals(split, num_goals, ray.get(_remote(_goal_count).remote(shop_dict)))
    size = chunk_size or max(1, math.ceil(len(goals) / (max(num_workers, 1) * CHUNKS_PER_WORKER)))
    chunks = [goals[i:i + size] for i in range(0, len(goals), size)]
    results = _run_chunks(chunks, shop_dict, env_dict, agent, seed, num_workers, progress)
    records = [r for chunk in results for r in chunk]

    stats = summarize_trajectories(records)
    kept = [r for r in records if r.episode_reward == 1.0] if only_success else records
    summary = DemoSummary(
        agent=agent, catalogue=config.catalogue, seed=seed, stats=stats,
        episodes_written=len({r.episode_id for r in kept}) if out is not None else 0,
        rows_written=len(kept) if out is not None else 0, num_workers=num_workers, chunks=len(chunks),
        wall_s=time.perf_counter() - t0, out=str(Path(out).absolute()) if out is not None else None)
    if out is not None:
        # wall_s in the file: until the write starts; the returned summary includes the write
        meta = {**summary.to_dict(), "only_success": only_success, "shop_config": shop_dict, "env_config": env_dict}
        write_trajectories(kept, out, overwrite=overwrite, summary=meta)
    return dataclasses.replace(summary, wall_s=time.perf_counter() - t0)


def _run_chunks(chunks: list[list[int]], shop_dict: dict, env_dict: dict, agent: str, seed: int,
                num_workers: int, progress: bool) -> list[list[StepRecord]]:
    """Results in chunk order; at most ``num_workers`` Ray tasks in flight."""
    from tqdm.auto import tqdm

    results: list[Optional[list[StepRecord]]] = [None] * len(chunks)
    with tqdm(total=len(chunks), unit="chunk", desc="demonstrations", disable=not progress) as bar:
        if num_workers == 0:
            for i, chunk in enumerate(chunks):
                results[i] = _play_chunk(shop_dict, env_dict, chunk, agent, seed)
                bar.update(1)
            return results  # type: ignore[return-value]
        import ray

        play = _remote(_play_chunk)
        pending: dict[Any, int] = {}
        next_chunk = 0
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < num_workers:
                pending[play.remote(shop_dict, env_dict, chunks[next_chunk], agent, seed)] = next_chunk
                next_chunk += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                results[pending.pop(ref)] = ray.get(ref)
                bar.update(1)
    return results  # type: ignore[return-value]


# ---------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rl_app.data.demos", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shop_arguments(ap)
    ap.add_argument("--num-goals", type=int, default=None, help="first N train goals (default: all)")
    ap.add_argument("--goals", default=None, help="comma-separated train goal indices (instead of --num-goals)")
    ap.add_argument("--agent", choices=list(AGENTS), default="demonstrator")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-workers", type=int, default=2, help="parallel Ray tasks; 0 = no Ray")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--only-success", action="store_true", help="write only episodes with reward 1")
    ap.add_argument("--out", default=None, help="parquet data set directory (default: summary only)")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.goals is not None and args.num_goals is not None:
        ap.error("give --num-goals or --goals, not both")

    shop = dataclasses.asdict(shop_from_args(args))
    goals = [int(g) for g in args.goals.split(",")] if args.goals else args.num_goals
    env_config = {"max_steps": args.max_steps} if args.max_steps else None
    t0 = time.perf_counter()
    summary = generate_demonstrations(
        shop, num_goals=goals, agent=args.agent, seed=args.seed, num_workers=args.num_workers, out=args.out,
        only_success=args.only_success, env_config=env_config, overwrite=args.overwrite,
        progress=not args.no_progress)
    print(summary.line())
    print(f"{summary.stats.steps} steps, {summary.chunks} chunks on {args.num_workers} workers; "
          f"wall {time.perf_counter() - t0:.1f} s" + (f"; written to {summary.out}" if summary.out else ""))
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
