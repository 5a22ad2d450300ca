"""Train PPO on WebShop from a saved policy (the IL agent), save it, evaluate it.

    python -m rl_app.algorithms.ppo.train --catalogue webshop --init-checkpoint runs/il/policy \\
        --num-env-runners 2 --iterations 30 --out runs/ppo

Writes ``OUT/checkpoint`` (RLlib Algorithm), ``OUT/policy`` (``ChoicePolicy``, loadable without
Ray), ``OUT/metrics.jsonl`` (training return, losses, sampled steps per iteration) and
``OUT/eval.json`` with greedy and sampled evaluation on ``--eval-split``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from rl_app.algorithms.cli import add_token_length_args, token_lengths
from rl_app.algorithms.rllib_patches.precision import add_precision_argument
from rl_app.algorithms.warmup import add_lr_warmup_argument

__all__ = ["main", "build_config"]

_LEARNER_KEYS = ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "losses/il")


def build_config(args: argparse.Namespace):
    from rl_app.algorithms.ppo import WebShopPPOConfig

    from rl_app.policy.checkpoint import saved_layout

    env = {"catalogue": args.catalogue, "split": "train", "max_steps": args.max_steps,
           **token_lengths(args, args.init_checkpoint)}
    # the env serves the observation layout the starting policy reads
    env["observation_layout"] = saved_layout(args.init_checkpoint) if args.init_checkpoint else "text"
    if args.catalogue == "webshop":
        env["data_dir"] = args.data_dir
    else:
        env["synthetic_products"] = args.synthetic_products
    config = (WebShopPPOConfig()
              # a saved policy brings its own architecture; --encoder only applies without one
              .webshop(env_config=env, model_config={} if args.init_checkpoint else {"encoder": args.encoder},
                       init_checkpoint=args.init_checkpoint)
              .env_runners(num_env_runners=args.num_env_runners, num_envs_per_env_runner=args.envs_per_runner)
              .training(train_batch_size_per_learner=args.train_batch, minibatch_size=args.minibatch,
                        num_epochs=args.epochs, lr=args.lr, entropy_coeff=args.entropy,
                        lr_warmup_updates=args.lr_warmup_updates)
              .learners(precision=args.precision)
              .debugging(seed=args.seed))
    if args.il_coeff > 0:
        config.il_auxiliary(coeff=args.il_coeff, data=args.il_data)
    return config, env


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rl_app.algorithms.ppo.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--catalogue", choices=["synthetic", "webshop"], default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--synthetic-products", type=int, default=1000)
    ap.add_argument("--init-checkpoint", default=None, help="saved policy to start from (the IL agent)")
    ap.add_argument("--encoder", default="minilm", help="encoder when no --init-checkpoint is given")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--time-budget-s", type=float, default=None)
    ap.add_argument("--num-env-runners", type=int, default=2)
    ap.add_argument("--envs-per-runner", type=int, default=1)
    ap.add_argument("--train-batch", type=int, default=512)
    ap.add_argument("--minibatch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5)
    add_precision_argument(ap)
    add_lr_warmup_argument(ap)
    ap.add_argument("--entropy", type=float, default=0.01)
    ap.add_argument("--il-coeff", type=float, default=0.0)
    ap.add_argument("--il-data", default=None)
    ap.add_argument("--max-steps", type=int, default=20)
    add_token_length_args(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-cpus", type=int, default=None)
    ap.add_argument("--eval-split", choices=["test", "dev"], default="test")
    ap.add_argument("--eval-goals", type=int, default=200)
    ap.add_argument("--eval-seed", type=int, default=0)
    ap.add_argument("--eval-workers", type=int, default=0)
    args = ap.parse_args(argv)

    import ray

    from rl_app.policy.choice_policy import ChoicePolicy

    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    if not ray.is_initialized():
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    config, env = build_config(args)
    algo = config.build_algo()
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        with (out / "metrics.jsonl").open("w") as log:
            for i in range(1, args.iterations + 1):
                result = algo.train()
                runners, learner = result.get("env_runners", {}), result["learners"]["default_policy"]
                row = {"iteration": i, "episode_return_mean": runners.get("episode_return_mean"),
                       "episode_len_mean": runners.get("episode_len_mean"),
                       "env_steps": runners.get("num_env_steps_sampled_lifetime"),
                       **{k: float(learner[k]) for k in _LEARNER_KEYS if k in learner},
                       "time_total_s": result["time_total_s"]}
                log.write(json.dumps(row) + "\n")
                log.flush()
                rows.append(row)
                print(f"iter {i:3d}  return {row['episode_return_mean']}  len {row['episode_len_mean']}  "
                      f"steps {row['env_steps']}  wall {row['time_total_s']:.0f} s", flush=True)
                if args.time_budget_s is not None and time.perf_counter() - t0 >= args.time_budget_s:
                    print(f"time budget {args.time_budget_s:.0f} s reached after {i} iterations")
                    break
        checkpoint = algo.save_to_path(str(out / "checkpoint"))
    finally:
        algo.stop()
    ChoicePolicy.from_checkpoint(checkpoint).save_pretrained(out / "policy")
    shop = {k: env[k] for k in ("catalogue", "data_dir", "synthetic_products") if k in env}
    summary: dict[str, Any] = {"algorithm": "ppo", "iterations": len(rows), "env_steps": rows[-1]["env_steps"],
                               "train_wall_s": time.perf_counter() - t0, "init_checkpoint": args.init_checkpoint,
                               "num_env_runners": args.num_env_runners, "train_batch": args.train_batch,
                               "lr": args.lr, "entropy": args.entropy, "seed": args.seed, "shop": shop,
                               "first": rows[0], "final": rows[-1], "checkpoint": checkpoint}
    if args.eval_goals > 0:
        from rl_app.algorithms.cli import evaluate_policy_dir

        summary.update(evaluate_policy_dir(out / "policy", shop, name="ppo", split=args.eval_split,
                                           n_goals=args.eval_goals, seed=args.eval_seed,
                                           num_workers=args.eval_workers, out=out))
    (out / "eval.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
