"""Evaluate any agent on a goal split: one episode per goal, serial or as Ray tasks.

    python -m rl_app.eval.evaluate --agent rule --split test                     # synthetic shop
    python -m rl_app.eval.evaluate --agent demonstrator --catalogue webshop --split test --out runs/eval/demo
    python -m rl_app.eval.evaluate --agent policy --checkpoint runs/dpo/ckpt --split test \\
        --catalogue webshop --num-workers 2 --out runs/eval/dpo            # add --sampled or --both

Metrics are WebShop's: score = mean final reward x 100, success rate = share of episodes
with reward == 1 (a truncated episode scores 0). Intervals (95%):

* score: normal approximation for a mean, ``mean +- 1.96 * s / sqrt(n)`` with the sample
  standard deviation ``s`` (rewards are bounded, so the CLT holds well at n = 500), clipped
  to [0, 100];
* success rate: Wilson's score interval for a binomial proportion (the normal
  approximation collapses to a point at 0 or 1 successes, e.g. the rule baseline's 2.2%).

Both describe the spread over goals for this one seed; comparisons of training runs
add >= 3 training seeds on top. Each episode is seeded from (seed, goal_index) alone
(:func:`~rl_app.agents.specs.episode_seed`), so a rerun, another order or another
``num_workers`` give identical per-goal results. Per-goal results go to
``episodes.parquet`` and ``episodes.csv`` (same rows; ``actions`` and ``purchased_options``
are JSON strings in the CSV) plus ``summary.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional, Sequence

import numpy as np

from rl_app.agents.specs import AGENT_KINDS, AgentSpec, EvalAgent, env_rng, make_agent
from rl_app.data.files import atomic_write, atomic_write_text
from rl_app.env.text_env import DEFAULT_MAX_STEPS, TextEnvConfig, WebShopTextEnv
from rl_app.errors import InputError
from rl_app.shop.config import ShopConfig, add_shop_arguments, load_shop, shop_from_args
from rl_app.shop.goals import split_of

__all__ = [
    "EVAL_SCORE",
    "EVAL_SUCCESS_RATE",
    "EVAL_MEAN_STEPS",
    "Z_95",
    "INTERVAL_METHOD",
    "EpisodeRecord",
    "EvalResult",
    "evaluate",
    "play_episode",
    "play_goals",
    "score_interval",
    "wilson_interval",
    "Summary",
    "summarize",
    "write_episodes",
    "read_episodes",
    "evaluate_checkpoint",
    "main",
]

EVAL_SCORE = "eval/score"
EVAL_SUCCESS_RATE = "eval/success_rate"
EVAL_MEAN_STEPS = "eval/mean_steps"
# Two-sided 95% quantile of the standard normal (scipy.stats.norm.ppf(0.975)).
Z_95 = 1.959963984540054
INTERVAL_METHOD = "score: normal approximation (mean +- 1.96 s/sqrt(n)); success: Wilson score interval"
EPISODES_PARQUET = "episodes.parquet"
EPISODES_CSV = "episodes.csv"
SUMMARY_JSON = "summary.json"
EvalSplit = Literal["test", "dev", "train", "all"]
AgentFactory = Callable[[AgentSpec], EvalAgent]


@dataclass(frozen=True)
class EpisodeRecord:
    """One played goal.

    Attributes:
        goal_index: the goal (index into the shop's goal list).
        reward: final reward in [0, 1]; 0 when the step limit ended the episode.
        success: ``reward == 1`` (WebShop's success).
        steps: actions taken.
        terminated: True when the agent bought something, False when truncated.
        purchased_asin: what was bought (None when truncated).
        purchased_options: the options selected when buying (group -> value).
        actions: every action, in order.
    """

    goal_index: int
    reward: float
    success: bool
    steps: int
    terminated: bool
    purchased_asin: Optional[str]
    purchased_options: tuple[tuple[str, str], ...]
    actions: tuple[str, ...]


def play_episode(env: WebShopTextEnv, agent: EvalAgent, goal_index: int, *, seed: int,
                 visit: int = 0) -> EpisodeRecord:
    """Play one goal to the end (buy or step limit), env and agent seeded from (seed, goal, visit)."""
    env.reset(goal_index=int(goal_index), rng=env_rng(seed, int(goal_index), visit))
    agent.reset(env, visit=visit)
    actions: list[str] = []
    reward, terminated, truncated, info = 0.0, False, False, {}
    while not (terminated or truncated):
        action = agent.act(env)
        actions.append(action)
        _, reward, terminated, truncated, info = env.step(action)
    options = tuple(info.get("purchased_options", {}).items()) if terminated else ()
    return EpisodeRecord(int(goal_index), float(reward), reward == 1.0, env.steps, bool(terminated),
                         info.get("purchased_asin") if terminated else None, options, tuple(actions))


def play_goals(env: WebShopTextEnv, agent: EvalAgent, goal_indices: Sequence[int], *,
               seed: int) -> list[EpisodeRecord]:
    return [play_episode(env, agent, int(g), seed=seed) for g in goal_indices]


# ---------------------------------------------------------------------- statistics
def score_interval(rewards: np.ndarray) -> tuple[float, float]:
    """95% normal-approximation interval of mean(rewards) x 100, clipped to [0, 100]; NaNs for n < 2."""
    rewards = np.asarray(rewards, dtype=float)
    n = len(rewards)
    if n < 2:
        return (math.nan, math.nan)
    half = Z_95 * rewards.std(ddof=1) / math.sqrt(n)
    mean = rewards.mean()
    return (float(max(0.0, mean - half) * 100), float(min(1.0, mean + half) * 100))


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (Wilson 1927); NaNs for n = 0."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Summary:
    episodes: int
    score: float
    score_ci: tuple[float, float]
    success_rate: float
    success_ci: tuple[float, float]
    mean_steps: float


def summarize(rewards: Sequence[float], steps: Sequence[int]) -> Summary:
    """Score, success rate, mean steps and their 95% intervals (module docstring)."""
    r = np.asarray(rewards, dtype=float)
    if len(r) == 0:
        raise ValueError("no episodes to summarize")
    successes = int((r == 1.0).sum())
    return Summary(len(r), float(r.mean() * 100), score_interval(r), successes / len(r),
                   wilson_interval(successes, len(r)), float(np.mean(steps)))


@dataclass(frozen=True)
class EvalResult:
    """An agent's numbers on a split, and the per-goal results they come from.

    Attributes:
        agent, kind, mode, checkpoint, seed: what was played (``AgentSpec``).
        split, catalogue, max_steps: where.
        episodes: number of goals played (one episode each).
        score: mean reward x 100; score_ci its 95% interval (normal approximation).
        success_rate: share of episodes with reward == 1; success_ci its Wilson interval.
        mean_steps: mean actions per episode.
        per_goal: one record per goal, in the order of the goals asked for.
        num_workers, wall_s: how it ran (not part of the result's equality).
        out_dir: where the files went, if anywhere.
    """

    agent: str
    kind: str
    mode: str
    checkpoint: Optional[str]
    seed: int
    split: str
    catalogue: str
    max_steps: int
    episodes: int
    score: float
    score_ci: tuple[float, float]
    success_rate: float
    success_ci: tuple[float, float]
    mean_steps: float
    per_goal: tuple[EpisodeRecord, ...] = field(repr=False)
    failures: Mapping[str, int] = field(default_factory=dict)
    interval_method: str = INTERVAL_METHOD
    num_workers: int = field(default=0, compare=False)
    wall_s: float = field(default=0.0, compare=False)
    out_dir: Optional[str] = field(default=None, compare=False)

    def metrics(self) -> dict[str, float]:
        """Namespaced metrics for Tune reports and logs."""
        return {EVAL_SCORE: self.score, EVAL_SUCCESS_RATE: self.success_rate, EVAL_MEAN_STEPS: self.mean_steps,
                f"{EVAL_SCORE}_ci_low": self.score_ci[0], f"{EVAL_SCORE}_ci_high": self.score_ci[1],
                f"{EVAL_SUCCESS_RATE}_ci_low": self.success_ci[0],
                f"{EVAL_SUCCESS_RATE}_ci_high": self.success_ci[1],
                **{f"eval/failures/{kind}": float(n) for kind, n in self.failures.items() if kind != "success"}}

    def line(self) -> str:
        return (f"{self.agent} ({self.mode}) on {self.split}, {self.episodes} goals: "
                f"score {self.score:.2f} [{self.score_ci[0]:.2f}, {self.score_ci[1]:.2f}], "
                f"success {self.success_rate:.1%} [{self.success_ci[0]:.1%}, {self.success_ci[1]:.1%}], "
                f"mean steps {self.mean_steps:.2f}  (95% intervals; {self.wall_s:.1f} s)"
                + ("; failures: " + ", ".join(f"{k} {n}" for k, n in self.failures.items() if n and k != "success")
                   if any(n for k, n in self.failures.items() if k != "success") else ""))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("per_goal")
        return d


# ---------------------------------------------------------------------- running
def _play_chunk(spec: AgentSpec, shop: Mapping[str, Any], env_config: Mapping[str, Any],
                goal_indices: Sequence[int], agent_factory: Optional[AgentFactory] = None,
                policy=None) -> list[EpisodeRecord]:
    """One task: build the env (shared shop per process) and the agent once, play the goals."""
    env = WebShopTextEnv(ShopConfig.from_dict(shop), TextEnvConfig(**env_config))
    agent = make_agent(spec, policy=policy) if agent_factory is None else agent_factory(spec)
    return play_goals(env, agent, goal_indices, seed=spec.seed)


@functools.lru_cache(maxsize=None)
def _remote_play_chunk():
    import ray

    return ray.remote(num_cpus=1)(_play_chunk)


def _select_goals(shop: ShopConfig, split: str, goal_indices: Optional[Sequence[int]]) -> list[int]:
    goals = load_shop(shop).goals
    in_split = goals.indices(split)  # validates the split name
    if goal_indices is None:
        return list(in_split)
    chosen = [int(g) for g in goal_indices]
    if not chosen:
        raise ValueError("goal_indices is empty")
    bad = [g for g in chosen if not 0 <= g < len(goals) or (split != "all" and split_of(g) != split)]
    if bad:
        raise InputError(f"goal indices {bad[:5]} are not {split} goals (split {split!r} is "
                         f"{in_split.start}..{in_split.stop - 1}); pass split='all' to evaluate any goal")
    return chosen


def evaluate(spec: AgentSpec, shop_config: ShopConfig | Mapping[str, Any] | None = None, *,
             split: EvalSplit = "test", goal_indices: Optional[Sequence[int]] = None,
             max_steps: int = DEFAULT_MAX_STEPS, num_workers: int = 0,
             env_config: Optional[TextEnvConfig] = None, out_dir: Optional[str | Path] = None,
             agent_factory: Optional[AgentFactory] = None, policy=None) -> EvalResult:
    """One episode per goal of ``split`` (or of ``goal_indices``, which must lie in it).

    Args:
        spec: the agent (scripted or a policy checkpoint; greedy or sampled; its seed).
        shop_config: the shop (default: the embedded synthetic one).
        split: ``test`` (WebShop goals 0-499), ``dev``, ``train`` or ``all``.
        goal_indices: a subset of the split's goals, played in this order.
        max_steps: actions per episode before truncation (reward 0).
        num_workers: 0 plays here; N > 0 plays N Ray tasks over contiguous goal chunks (one
            policy load per task), on the running Ray session or a local one it starts.
        env_config: other episode settings (observation mode, candidate cap); its split and
            max_steps are replaced by the arguments.
        out_dir: write ``episodes.parquet``, ``episodes.csv`` and ``summary.json`` there.
        agent_factory: builds the agent from ``spec`` instead of :func:`make_agent`, for
            agents outside the three kinds (e.g. a test oracle); the result's kind is then
            ``custom``. With Ray it must be picklable and importable on the workers.
        policy: an already-loaded :class:`~rl_app.policy.choice_policy.ChoicePolicy` for a
            ``policy`` spec, played here (``num_workers`` 0), so the caller can read what it
            computed (its frozen-row memo) afterwards.
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if policy is not None and (num_workers or spec.kind != "policy"):
        raise ValueError("policy= is for a policy spec played in this process (num_workers=0)")
    t0 = time.perf_counter()
    shop = (shop_config if isinstance(shop_config, ShopConfig) else ShopConfig.from_dict(shop_config)).resolved()
    goals = _select_goals(shop, split, goal_indices)
    env_cfg = dataclasses.replace(env_config or TextEnvConfig(), split="all", max_steps=max_steps)
    if spec.checkpoint is not None:  # workers may run elsewhere: ship an absolute path
        spec = dataclasses.replace(spec, checkpoint=str(Path(spec.checkpoint).expanduser().absolute()))
    shop_dict, env_dict = dataclasses.asdict(shop), dataclasses.asdict(env_cfg)

    if num_workers == 0:
        records = _play_chunk(spec, shop_dict, env_dict, goals, agent_factory, policy)
    else:
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        chunks = [list(c) for c in np.array_split(np.asarray(goals), min(num_workers, len(goals))) if len(c)]
        refs = [_remote_play_chunk().remote(spec, shop_dict, env_dict, [int(g) for g in c], agent_factory)
                for c in chunks]
        records = [r for chunk in ray.get(refs) for r in chunk]

    s = summarize([r.reward for r in records], [r.steps for r in records])
    from rl_app.eval.diagnostics import failure_counts

    loaded = load_shop(shop)
    failures = failure_counts(records, loaded.goals, loaded.catalogue, loaded.goals.prices)
    result = EvalResult(
        agent=spec.name, kind=spec.kind if agent_factory is None else "custom", mode=spec.mode, checkpoint=spec.checkpoint, seed=spec.seed,
        split=split, catalogue=shop.catalogue, max_steps=max_steps, episodes=s.episodes, score=s.score,
        score_ci=s.score_ci, success_rate=s.success_rate, success_ci=s.success_ci, mean_steps=s.mean_steps,
        per_goal=tuple(records), failures=failures, num_workers=num_workers, wall_s=time.perf_counter() - t0,
        out_dir=str(Path(out_dir).absolute()) if out_dir is not None else None)
    if out_dir is not None:
        write_episodes(result, out_dir, extra={"shop_config": shop_dict, "env_config": env_dict})
    return result


# ---------------------------------------------------------------------- files
def episodes_frame(result: EvalResult):
    """Per-goal rows (a pandas DataFrame; ``actions`` a list column)."""
    import pandas as pd

    rows = [{"agent": result.agent, "mode": result.mode, "seed": result.seed, "goal_index": r.goal_index,
             "split": split_of(r.goal_index), "reward": r.reward, "success": r.success, "steps": r.steps,
             "terminated": r.terminated, "purchased_asin": r.purchased_asin,
             "purchased_options": json.dumps(dict(r.purchased_options), sort_keys=False),
             "actions": list(r.actions)} for r in result.per_goal]
    return pd.DataFrame(rows)


def write_episodes(result: EvalResult, out_dir: str | Path, *, extra: Optional[Mapping[str, Any]] = None) -> Path:
    """``episodes.parquet`` + ``episodes.csv`` + ``summary.json`` in ``out_dir`` (each written
    to a temporary file, then renamed)."""
    out = Path(out_dir)
    frame = episodes_frame(result)
    atomic_write(out / EPISODES_PARQUET, lambda tmp: frame.to_parquet(tmp, index=False))
    csv = frame.assign(actions=[json.dumps(a) for a in frame["actions"]])
    atomic_write(out / EPISODES_CSV, lambda tmp: csv.to_csv(tmp, index=False))
    summary = {**result.to_dict(), "metrics": result.metrics(), **(extra or {})}
    atomic_write_text(out / SUMMARY_JSON, json.dumps(summary, indent=2, default=str) + "\n")
    return out


def read_episodes(out_dir: str | Path, *, fmt: Literal["parquet", "csv"] = "parquet"):
    """The per-goal rows :func:`write_episodes` wrote (``actions`` as lists in both formats)."""
    import pandas as pd

    out = Path(out_dir)
    if fmt == "parquet":
        frame = pd.read_parquet(out / EPISODES_PARQUET)
        return frame.assign(actions=[list(a) for a in frame["actions"]])
    frame = pd.read_csv(out / EPISODES_CSV, keep_default_na=False, na_values={"purchased_asin": [""]})
    return frame.assign(actions=[json.loads(a) for a in frame["actions"]])


# ---------------------------------------------------------------------- CLI
def evaluate_checkpoint(checkpoint: str | Path, *, shop: Mapping[str, Any], env: Mapping[str, Any], split: str,
                        n_goals: int, greedy: bool, seed: int, label: str, out: Path,
                        frozen_cache: Optional[str] = None, keep_rows: Optional[str] = None) -> dict[str, float]:
    """Play the first ``n_goals`` goals of ``split`` with a saved policy, in this process, with
    an experiment's episode settings (``env``: a flat WebShopEnv config; the policy picks its own
    observation layout).

    ``frozen_cache``: stored frozen rows a cached-encoder policy starts from. ``keep_rows``: a
    cache root where the rows this evaluation had to encode are stored (as one more cache,
    named after the split and goals), so later evaluations on these goals read them."""
    from rl_app.data.frozen_cache import load_into_policy, save_memo_rows
    from rl_app.env.webshop_env import WebShopEnvConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.policy.frozen_rows import FrozenRows

    episode = WebShopEnvConfig.from_dict(env).episode
    goals = list(load_shop(ShopConfig.from_dict(dict(shop))).goals.indices(split))[:n_goals]
    spec = AgentSpec(name=label, kind="policy", checkpoint=str(checkpoint), greedy=greedy, seed=seed,
                     frozen_cache=frozen_cache)
    policy = ChoicePolicy.from_checkpoint(str(checkpoint))
    load_into_policy(policy, frozen_cache)
    frozen = getattr(policy.model, "frozen", None)
    known = set(frozen.memo) if isinstance(frozen, FrozenRows) else set()
    result = evaluate(spec, dict(shop), split=split, goal_indices=goals, max_steps=episode.max_steps,
                      env_config=episode, out_dir=out, policy=policy)
    if keep_rows is not None and isinstance(frozen, FrozenRows):
        save_memo_rows(frozen, keep_rows, policy.observation_encoder(episode.k_max), {"checkpoint": str(checkpoint)},
                       name=f"{split}_{len(goals)}", skip=known)
    return {**result.metrics(), "goals": len(goals)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rl_app.eval.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", choices=AGENT_KINDS, default="rule")
    ap.add_argument("--checkpoint", default=None, help="policy directory (save_pretrained / RLModule / Algorithm)")
    ap.add_argument("--name", default=None, help="label in files and tables")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--sampled", action="store_true", help="sample from the policy instead of argmax")
    mode.add_argument("--both", action="store_true", help="evaluate greedy and sampled (out/greedy, out/sampled)")
    ap.add_argument("--split", choices=["test", "dev", "train", "all"], default="test")
    ap.add_argument("--limit", type=int, default=None, help="only the first N goals of the split")
    ap.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-workers", type=int, default=0, help="Ray tasks (0 = play in this process)")
    ap.add_argument("--out", default=None, help="directory for episodes.parquet/.csv and summary.json")
    add_shop_arguments(ap)
    args = ap.parse_args(argv)

    if (args.agent == "policy") != (args.checkpoint is not None):
        ap.error("--checkpoint is required with --agent policy and only allowed with it")
    if args.agent != "policy" and (args.sampled or args.both):
        ap.error("--sampled/--both apply to --agent policy only")
    shop = shop_from_args(args)
    goals = None
    if args.limit is not None:
        goals = list(load_shop(shop).goals.indices(args.split))[: args.limit]
    modes = [True, False] if args.both else [not args.sampled]
    for greedy in modes:
        text = args.agent if args.checkpoint is None else f"policy:{args.checkpoint}"
        spec = AgentSpec.parse(text, greedy=greedy, seed=args.seed, name=args.name)
        out = args.out
        if out is not None and args.both:
            out = str(Path(out) / spec.mode)
        result = evaluate(spec, shop, split=args.split, goal_indices=goals, max_steps=args.max_steps,
                          num_workers=args.num_workers, out_dir=out)
        print(result.line())
        if out is not None:
            print(f"per-goal results: {Path(out) / EPISODES_PARQUET} (+ .csv, {SUMMARY_JSON})")
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
