"""Env steps per second on one core.

Workload: episodes of the rule baseline and of the demonstrator over the 500 test goals of
the real small catalogue (or a synthetic one), one process, one thread; once on the text
API and once through the gymnasium env with tokenized observations (MiniLM tokenizer).
A step is reset-amortised: (resets + steps) time / steps.

    python -m rl_app.bench.env_speed --catalogue webshop --data-dir ../shared/webshop-data
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS",
             "TOKENIZERS_PARALLELISM"):
    os.environ.setdefault(_var, "1" if _var != "TOKENIZERS_PARALLELISM" else "false")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from rl_app.agents.scripted import DemonstratorAgent, RuleAgent  # noqa: E402
from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv  # noqa: E402
from rl_app.env.webshop_env import WebShopEnv, WebShopEnvConfig  # noqa: E402
from rl_app.machine import machine_line  # noqa: E402
from rl_app.shop.config import add_shop_arguments, load_shop, shop_from_args  # noqa: E402


def _agent(name: str):
    return RuleAgent() if name == "rule" else DemonstratorAgent(seed=0)


def text_steps_per_s(env: WebShopTextEnv, agent_name: str, goals: Sequence[int]) -> tuple[float, int]:
    agent = _agent(agent_name)
    steps = 0
    t0 = time.perf_counter()
    for gi in goals:
        env.reset(goal_index=gi)
        agent.reset(env)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(agent.act(env))
            done = term or trunc
        steps += env.steps
    return steps / (time.perf_counter() - t0), steps


def tokenized_steps_per_s(env: WebShopEnv, agent_name: str, goals: Sequence[int]) -> tuple[float, int]:
    agent = _agent(agent_name)
    text = env.text_env
    steps = 0
    t0 = time.perf_counter()
    for gi in goals:
        env.reset(options={"goal_index": gi})
        agent.reset(text)
        done = False
        while not done:
            index = env.candidates.index(agent.act(text))
            _, _, term, trunc, _ = env.step(index)
            done = term or trunc
        steps += text.steps
    return steps / (time.perf_counter() - t0), steps


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shop_arguments(ap, catalogue="webshop")
    ap.add_argument("--goals", type=int, default=500, help="first N test goals")
    ap.add_argument("--tokenizer", default="minilm")
    args = ap.parse_args(argv)

    shop = shop_from_args(args)
    t0 = time.perf_counter()
    loaded = load_shop(shop)
    build_s = time.perf_counter() - t0
    text_env = WebShopTextEnv(loaded=loaded, config=TextEnvConfig(split="test"))
    goals = list(text_env.split_indices)[: args.goals]
    gym_env = WebShopEnv(WebShopEnvConfig(shop=shop, episode=TextEnvConfig(split="test"), tokenizer=args.tokenizer))
    gym_env.reset(options={"goal_index": goals[0]})  # load the tokenizer outside the timing

    print(machine_line())
    print(f"shop: {args.catalogue}, {len(loaded.catalogue)} products, built in {build_s:.2f} s; "
          f"{len(goals)} test goals, one process")
    print("| agent | observation | steps | steps/s |")
    print("|---|---|---|---|")
    for agent in ("rule", "demonstrator"):
        rate, n = text_steps_per_s(text_env, agent, goals)
        print(f"| {agent} | text | {n} | {rate:,.0f} |")
        rate, n = tokenized_steps_per_s(gym_env, agent, goals)
        print(f"| {agent} | tokenized ({args.tokenizer}) | {n} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
