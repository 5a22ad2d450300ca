"""Rollout throughput vs number of RLlib env runners (how PPO sampling scales out).

Each env runner holds its own WebShop env and a CPU copy of the policy (inference only) and
samples with exploration; the figure is env steps per second summed over runners, timed
around ``EnvRunnerGroup.sample`` after a warm-up, with scaling efficiency relative to
``n x`` the one-runner rate.

    python -m rl_app.bench.rollout_scaling --runners 1 2 --encoder tiny minilm --steps 400
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Optional, Sequence

from rl_app.machine import machine_line
from rl_app.shop.config import add_shop_arguments, shop_from_args

__all__ = ["measure", "main"]


def measure(n_runners: int, encoder: str, steps_per_runner: int, env_config: dict) -> float:
    """Env steps/s summed over ``n_runners`` env runners (after one warm-up sample)."""
    from rl_app.algorithms.ppo import WebShopPPOConfig

    config = (WebShopPPOConfig().webshop(env_config=env_config, model_config={"encoder": encoder})
              .env_runners(num_env_runners=n_runners, num_envs_per_env_runner=1, num_cpus_per_env_runner=1,
                           rollout_fragment_length=steps_per_runner)
              .training(train_batch_size_per_learner=steps_per_runner * n_runners)
              .learners(num_learners=0))
    algo = config.build_algo()
    try:
        group = algo.env_runner_group

        def sample(runner):
            import torch

            torch.set_num_threads(1)
            episodes = runner.sample(num_timesteps=steps_per_runner, random_actions=False)
            return sum(len(e) for e in episodes)

        group.foreach_env_runner(sample, local_env_runner=False)  # warm-up: tokenizer, caches
        t0 = time.perf_counter()
        counts = group.foreach_env_runner(sample, local_env_runner=False)
        elapsed = time.perf_counter() - t0
        return sum(counts) / elapsed
    finally:
        algo.stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runners", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--encoder", nargs="+", default=["tiny", "minilm"])
    ap.add_argument("--steps", type=int, default=400, help="env steps per runner per measurement")
    add_shop_arguments(ap)
    args = ap.parse_args(argv)

    import ray

    ray.init(num_cpus=max(args.runners) + 1, include_dashboard=False, log_to_driver=False)
    env_config = {**dataclasses.asdict(shop_from_args(args)), "split": "train", "max_steps": 15}
    print(machine_line())
    print("| encoder | env runners | env steps/s | per runner | efficiency vs linear |")
    print("|---|---:|---:|---:|---:|")
    for encoder in args.encoder:
        base = None
        for n in args.runners:
            rate = measure(n, encoder, args.steps, env_config)
            base = base or rate / n
            print(f"| {encoder} | {n} | {rate:,.1f} | {rate / n:,.1f} | {rate / (n * base):.2f} |")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
