"""Play a scripted agent over a goal split and print its score and success rate.

    python -m rl_app.play --agent rule --split test                       # embedded synthetic shop
    python -m rl_app.play --agent demonstrator --catalogue webshop --split test
    python -m rl_app.play --agent demonstrator --goal 3 --trace           # one episode, page by page

Score = mean reward x 100; success = share of episodes with reward == 1 (WebShop's metrics).
Episodes are played by :mod:`rl_app.eval` (each seeded from (seed, goal_index), so numbers do
not depend on the order of the goals); ``python -m rl_app.eval.evaluate`` adds intervals,
per-goal files, policies and Ray workers, ``python -m rl_app.eval.trace`` richer traces.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from rl_app.agents.scripted import EpisodeResult
from rl_app.agents.specs import AgentSpec, make_agent
from rl_app.env.text_env import DEFAULT_MAX_STEPS, TextEnvConfig, WebShopTextEnv
from rl_app.eval.evaluate import play_goals
from rl_app.eval.trace import render_trace, trace_episode
from rl_app.shop.config import add_shop_arguments, shop_from_args

__all__ = ["AgentReport", "evaluate_scripted", "main"]


@dataclass(frozen=True)
class AgentReport:
    agent: str
    split: str
    episodes: int
    score: float
    success_rate: float
    mean_steps: float
    action_use: dict[str, float]  # share of episodes using next/prev/back/sub-pages

    def line(self) -> str:
        uses = ", ".join(f"{k} {v:.0%}" for k, v in sorted(self.action_use.items()))
        return (f"{self.agent:>12} on {self.split} ({self.episodes} goals): score {self.score:.2f}, "
                f"success {self.success_rate:.1%}, mean steps {self.mean_steps:.2f}; episodes using {uses}")


def _action_use(results: Sequence[EpisodeResult]) -> dict[str, float]:
    kinds = {"next": "click[next >]", "prev": "click[< prev]", "back to search": "click[back to search]"}
    counts: Counter[str] = Counter()
    for r in results:
        acts = set(r.actions)
        for name, a in kinds.items():
            counts[name] += a in acts
        counts["sub-pages"] += any(a in acts for a in ("click[description]", "click[features]", "click[reviews]"))
    return {k: counts[k] / max(len(results), 1) for k in list(kinds) + ["sub-pages"]}


def evaluate_scripted(env: WebShopTextEnv, agent_name: str, goal_indices: Sequence[int], *,
                      seed: int = 0) -> tuple[AgentReport, list[EpisodeResult]]:
    """Run a scripted agent once per goal; each episode seeded from (seed, goal), so a rerun
    (in any order) gives identical numbers."""
    if agent_name not in ("rule", "demonstrator"):
        raise ValueError(f"scripted agents are 'rule' and 'demonstrator', got {agent_name!r}")
    spec = AgentSpec(name=agent_name, kind=agent_name, seed=seed)  # type: ignore[arg-type]
    records = play_goals(env, make_agent(spec), goal_indices, seed=seed)
    results = [EpisodeResult(r.goal_index, r.reward, r.steps, r.actions, r.terminated) for r in records]
    rewards = np.array([r.reward for r in results])
    report = AgentReport(
        agent=agent_name, split=env.config.split, episodes=len(results),
        score=float(rewards.mean() * 100), success_rate=float((rewards == 1.0).mean()),
        mean_steps=float(np.mean([r.steps for r in results])), action_use=_action_use(results))
    return report, results


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rl_app.play", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", choices=["rule", "demonstrator"], default="rule")
    add_shop_arguments(ap)
    ap.add_argument("--split", choices=["test", "dev", "train"], default="test")
    ap.add_argument("--limit", type=int, default=None, help="first N goals of the split")
    ap.add_argument("--goal", type=int, default=None, help="trace one goal index, page by page")
    ap.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    shop = shop_from_args(args)
    env = WebShopTextEnv(shop, TextEnvConfig(split=args.split, max_steps=args.max_steps))
    print(f"shop: {args.catalogue} catalogue, {len(env.loaded.catalogue)} products, "
          f"{len(env.loaded.goals)} goals (built in {time.perf_counter() - t0:.1f} s)")
    if args.goal is not None:
        spec = AgentSpec(name=args.agent, kind=args.agent, seed=args.seed)
        print(render_trace(trace_episode(env, make_agent(spec), args.goal, seed=args.seed)))
        return 0
    indices = list(env.split_indices)[: args.limit]
    t1 = time.perf_counter()
    report, results = evaluate_scripted(env, args.agent, indices, seed=args.seed)
    dt = time.perf_counter() - t1
    print(report.line())
    print(f"{sum(r.steps for r in results)} steps in {dt:.2f} s")
    return 0


def cli() -> int:
    """The ``rl-app-play`` console script (user errors as one line, exit 2)."""
    from rl_app.errors import run_command

    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
