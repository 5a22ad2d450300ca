"""Generated trajectories: a policy's own successful episodes, loops pruned (Feng & Feng 2024).

The paper rolls out the IL agent with sampling, keeps the episodes with reward 1, prunes
loops, and trains DPO on 100 of them as if they were demonstrations. Here:

* rollouts run as Ray tasks over chunks of train goals (each task loads the policy once and
  plays the text env; RLlib's env runners are not used because their episodes hold only the
  numeric observations, and the stored trajectories need the page and candidate texts);
* the keep filter is ``min_reward`` (1.0 = the paper's "reward == 1");
* loops are pruned on a page key that ignores "visited" marks on result pages, so a
  results -> item -> back detour collapses and the action kept for a page is the last one
  taken there;
* attempts are capped (``max_attempts``) and the yield is reported, so a low yield shows;
* goals are a seeded permutation of every train goal, or the given ``goals`` (``--goals-from``
  a trajectory set: the agent side of trajectory-level pairs needs rollouts on the expert's goals);
* output parts are written chunk by chunk with a progress file, so an interrupted run
  resumes where it stopped without duplicates (a chunk is recomputed identically if its part
  was written but not recorded).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rl_app.agents.policy import PolicyAgent
from rl_app.data.files import SUMMARY_FILE, atomic_write, atomic_write_json
from rl_app.data.schema import StepRecord

__all__ = ["page_key", "prune_loops", "GenerationSummary", "generate_trajectories"]

PROGRESS_FILE = "_progress.json"
_ASIN_MARK = re.compile(r"\[clicked button\] ([A-Z0-9]{10}) \[clicked button_\]")


def page_key(state: str) -> str:
    """The page with result-page "visited" marks removed (they change on every revisit)."""
    return _ASIN_MARK.sub(r"[button] \1 [button_]", state)


def prune_loops(steps: Sequence[StepRecord]) -> list[StepRecord]:
    """Drop detours: when a page recurs, cut back to its first visit and keep the later action.

    Steps are renumbered from 0; rewards stay attached to their steps (only the last one,
    the purchase, is non-zero in WebShop).
    """
    kept: list[StepRecord] = []
    where: dict[str, int] = {}
    for s in steps:
        key = page_key(s.state)
        if key in where:
            kept = kept[: where[key]]
            where = {page_key(k.state): i for i, k in enumerate(kept)}
        where[key] = len(kept)
        kept.append(s)
    return [replace(s, step=i) for i, s in enumerate(kept)]


@dataclass(frozen=True)
class GenerationSummary:
    attempts: int
    kept: int
    steps_before_pruning: int
    steps_after_pruning: int
    min_reward: float
    checkpoint: str
    seed: int

    @property
    def yield_rate(self) -> float:
        return self.kept / self.attempts if self.attempts else 0.0

    def line(self) -> str:
        return (f"kept {self.kept} of {self.attempts} attempts (yield {self.yield_rate:.1%}, reward >= "
                f"{self.min_reward}); {self.steps_before_pruning} steps -> {self.steps_after_pruning} after "
                "loop pruning")


def _play_chunk(checkpoint: str, shop: Mapping[str, Any], env_config: Mapping[str, Any],
                goals: Sequence[int], seed: int, chunk: int, min_reward: float,
                frozen_cache: Optional[str] = None) -> dict[str, Any]:
    """One task: a sampled episode per goal; per goal, its pruned rows if kept, and its length."""
    import torch

    from rl_app.data.demos import record_episode
    from rl_app.data.frozen_cache import load_into_policy
    from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.shop.config import ShopConfig

    torch.set_num_threads(1)
    policy = ChoicePolicy.from_checkpoint(checkpoint)
    load_into_policy(policy, frozen_cache)
    env = WebShopTextEnv(ShopConfig.from_dict(shop), TextEnvConfig(**env_config))
    outcomes: list[dict] = []
    for g in goals:
        ep_seed = int(np.random.SeedSequence([seed, chunk, int(g)]).generate_state(1)[0])
        agent = PolicyAgent(policy, rng=np.random.default_rng(ep_seed))
        rows = record_episode(env, agent, int(g), seed=ep_seed, source="generated",
                              episode_id=f"generated/s{seed}/c{chunk:05d}/g{int(g):06d}")
        keep = rows[-1].episode_reward >= min_reward
        outcomes.append({"kept": prune_loops(rows) if keep else None, "steps": len(rows)})
    return {"chunk": chunk, "outcomes": outcomes}


def _write_part(rows: Sequence[StepRecord], path: Path) -> None:
    import pyarrow.parquet as pq

    from rl_app.data.schema import records_to_table, validate_episodes

    validate_episodes(rows)
    table = records_to_table(rows)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def generate_trajectories(checkpoint: str | os.PathLike, shop: Mapping[str, Any], out: str | os.PathLike, *,
                          num_episodes: int = 100, max_attempts: int = 5000, min_reward: float = 1.0,
                          env_config: Optional[Mapping[str, Any]] = None, seed: int = 0, chunk_size: int = 50,
                          num_workers: int = 2, progress: bool = True,
                          goals: Optional[Sequence[int]] = None,
                          frozen_cache: Optional[str | os.PathLike] = None) -> GenerationSummary:
    """Roll out ``checkpoint`` on train goals until ``num_episodes`` are kept (or attempts run out).

    Attempts cycle over a seeded permutation of the shop's train goals, or over ``goals`` in
    the given order (train goals only; e.g. the goals of a demonstration set, so that every
    demonstration gets an agent trajectory to be paired with).
    Resumes from ``out`` when it holds a progress file of the same settings; chunks are
    played in a fixed order, so the kept set does not depend on interruptions or workers.
    ``frozen_cache``: stored frozen-row caches (e.g. the demonstrations') read into a
    cached-encoder policy's memo in every worker, so rows seen there are not encoded again.
    """
    from rl_app.shop.config import load_shop

    if num_episodes < 1 or max_attempts < 1 or chunk_size < 1:
        raise ValueError("num_episodes, max_attempts and chunk_size must be >= 1")
    checkpoint = str(Path(checkpoint).resolve())
    env_config = dict(env_config or {})
    env_config.setdefault("split", "train")
    if env_config["split"] != "train":
        raise ValueError("generated trajectories come from train goals only "
                         "(dev/test goals are for evaluation); "
                         f"got split={env_config['split']!r}")
    loaded = load_shop(dict(shop))
    train = list(loaded.goals.indices("train"))
    if not train:
        raise ValueError("this shop has no train goals (goal indices >= 1500)")
    if goals is None:
        order = np.random.default_rng(seed).permutation(train)
    else:
        order = [int(g) for g in goals]
        if not order:
            raise ValueError("goals is empty")
        outside = sorted(set(order) - set(train))
        if outside:
            raise ValueError("goals must be train goals of this shop (dev/test goals are for evaluation); "
                             f"{len(outside)} are not, e.g. {outside[:5]}")
    attempt_goals = [int(order[i % len(order)]) for i in range(max_attempts)]
    chunks = [attempt_goals[i:i + chunk_size] for i in range(0, max_attempts, chunk_size)]

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"checkpoint": checkpoint, "shop": dict(shop), "env_config": env_config, "seed": seed,
                "chunk_size": chunk_size, "min_reward": min_reward, "max_attempts": max_attempts}
    if goals is not None:  # only when given, so progress files of runs without it still resume
        settings["goals"] = list(order)
    progress_path = out / PROGRESS_FILE
    state = {"settings": settings, "done": {}}
    if progress_path.exists():
        state = json.loads(progress_path.read_text())
        if state.get("settings") != settings:
            raise ValueError(f"{out} holds a run with other settings; use another --out or delete it")

    def kept_so_far() -> int:
        return sum(v["kept"] for v in state["done"].values())

    # a chunk cut short by the quota stays pending: a resumed run replays it (identically) and
    # takes more of its episodes, so resuming gives what one uninterrupted run would have
    pending = [i for i in range(len(chunks)) if not state["done"].get(str(i), {}).get("complete")]
    use_ray = num_workers > 0
    if use_ray:
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=num_workers, include_dashboard=False, log_to_driver=False)
        play = ray.remote(num_cpus=1)(_play_chunk)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=num_episodes, initial=min(kept_so_far(), num_episodes), desc="kept episodes")
    cache = str(frozen_cache) if frozen_cache is not None else None
    while pending and kept_so_far() < num_episodes:
        wave, pending = pending[: max(num_workers, 1)], pending[max(num_workers, 1):]
        args = [(checkpoint, dict(shop), env_config, chunks[i], seed, i, min_reward, cache) for i in wave]
        results = ray.get([play.remote(*a) for a in args]) if use_ray else [_play_chunk(*a) for a in args]
        for res in sorted(results, key=lambda r: r["chunk"]):  # record in chunk order: deterministic
            previous = state["done"].pop(str(res["chunk"]), None)
            room = num_episodes - kept_so_far()
            if room <= 0:
                if previous is not None:
                    state["done"][str(res["chunk"])] = previous
                break
            attempts = before = 0
            rows: list[StepRecord] = []
            kept = 0
            for outcome in res["outcomes"]:  # stop at the episode that fills the quota
                if kept == room:
                    break
                attempts += 1
                if outcome["kept"] is not None:
                    kept += 1
                    before += outcome["steps"]
                    rows += outcome["kept"]
            if rows:
                _write_part(rows, out / f"part-{res['chunk']:05d}.parquet")
            state["done"][str(res["chunk"])] = {"attempts": attempts, "kept": kept, "before": before,
                                                "after": len(rows),
                                                "complete": attempts == len(res["outcomes"])}
            atomic_write_json(progress_path, state)
            if bar is not None:
                bar.update(kept)
    if bar is not None:
        bar.close()
    done = state["done"].values()
    summary = GenerationSummary(
        attempts=sum(v["attempts"] for v in done), kept=kept_so_far(),
        steps_before_pruning=sum(v["before"] for v in done), steps_after_pruning=sum(v["after"] for v in done),
        min_reward=min_reward, checkpoint=checkpoint, seed=seed)
    # the shop the episodes were played in, as demonstrations record it (pairs and evaluation read it)
    shop_config = asdict(loaded.config)
    atomic_write_json(out / SUMMARY_FILE, asdict(summary) | {"yield": summary.yield_rate, "shop_config": shop_config,
                                                       "env_config": env_config})
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m rl_app.data.generated --checkpoint runs/il/policy --num-episodes 100 --out runs/generated``."""
    import argparse

    from rl_app.shop.config import add_shop_arguments, shop_from_args

    ap = argparse.ArgumentParser(prog="python -m rl_app.data.generated", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="policy to roll out (the IL agent)")
    ap.add_argument("--out", required=True)
    add_shop_arguments(ap)
    ap.add_argument("--num-episodes", type=int, default=100)
    ap.add_argument("--max-attempts", type=int, default=5000)
    ap.add_argument("--min-reward", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-workers", type=int, default=2)
    ap.add_argument("--goals-from", default=None,
                    help="trajectory set (e.g. demos) whose goals to roll out on, in goal order, instead of "
                         "a seeded permutation of all train goals (the agent side of trajectory-level pairs)")
    args = ap.parse_args(argv)
    goals = None
    if args.goals_from is not None:
        from rl_app.data.io import read_trajectories

        goals = sorted(int(g) for g in read_trajectories(args.goals_from)["goal_index"].unique())
    shop = asdict(shop_from_args(args))
    summary = generate_trajectories(args.checkpoint, shop, args.out, num_episodes=args.num_episodes,
                                    max_attempts=args.max_attempts, min_reward=args.min_reward,
                                    env_config={"max_steps": args.max_steps}, seed=args.seed,
                                    num_workers=args.num_workers, goals=goals)
    print(summary.line())
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    raise SystemExit(run_command(main))
