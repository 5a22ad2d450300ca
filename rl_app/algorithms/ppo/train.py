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
from pathlib import Path
from typing import Any, Optional, Sequence

from rl_app.algorithms.cli import budget_of, command_shop, evaluate_policy_dir, init_ray, train_and_save
from rl_app.env.text_env import DEFAULT_MAX_STEPS
from rl_app.shop.config import add_shop_arguments
from rl_app.settings import (DEFAULT_ENV_RUNNERS, BudgetSettings, EvalSettings, ModelSettings, ObservationSettings,
                             PPOSettings)

__all__ = ["main", "build_parser", "build_config"]

_LEARNER_KEYS = ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "losses/il")


def build_config(args: argparse.Namespace):
    """The ``WebShopPPOConfig`` the parsed flags describe, and its env config."""
    from rl_app.policy.checkpoint import saved_layout

    env = {**command_shop(args), "split": "train", "max_steps": args.max_steps,
           **ObservationSettings.from_args(args).token_lengths(args.init_checkpoint)}
    # the env serves the observation layout the starting policy reads
    env["observation_layout"] = saved_layout(args.init_checkpoint) if args.init_checkpoint else "text"
    ppo = PPOSettings.from_args(args)
    # a saved policy brings its own architecture; --encoder only applies without one
    model = {} if args.init_checkpoint else {"encoder": ModelSettings.from_args(args).encoder}
    from rl_app.algorithms.ppo.config import WebShopPPOConfig

    config = WebShopPPOConfig.from_settings(ppo, env_config=env, model_config=model,
                                            init_checkpoint=args.init_checkpoint, num_env_runners=DEFAULT_ENV_RUNNERS if ppo.num_env_runners is None else ppo.num_env_runners)
    return config, env


def build_parser() -> argparse.ArgumentParser:
    """The trainer's command line (``python -m rl_app.algorithms.ppo.train --help``)."""
    ap = argparse.ArgumentParser(prog="python -m rl_app.algorithms.ppo.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    add_shop_arguments(ap)
    ap.add_argument("--init-checkpoint", default=None, help="saved policy to start from (the IL agent)")
    ModelSettings.add_arguments(ap, only=("encoder",))
    BudgetSettings.add_arguments(ap)
    PPOSettings.add_arguments(ap, skip=("max_iterations",))
    ap.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, help="actions per episode")
    ObservationSettings.add_arguments(ap, only=("max_state_tokens", "max_action_tokens"))
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray started here")
    EvalSettings.add_arguments(ap, prefix="eval")
    return ap


def _row(i: int, result) -> dict[str, Any]:
    runners, learner = result.get("env_runners", {}), result["learners"]["default_policy"]
    return {"iteration": i, "episode_return_mean": runners.get("episode_return_mean"),
            "episode_len_mean": runners.get("episode_len_mean"),
            "env_steps": runners.get("num_env_steps_sampled_lifetime"),
            **{k: float(learner[k]) for k in _LEARNER_KEYS if k in learner}, "time_total_s": result["time_total_s"]}


def _line(row: dict[str, Any]) -> str:
    return (f"iter {row['iteration']:3d}  return {row['episode_return_mean']}  len {row['episode_len_mean']}  "
            f"steps {row['env_steps']}  wall {row['time_total_s']:.0f} s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    from rl_app.policy.choice_policy import ChoicePolicy

    args = build_parser().parse_args(argv)
    budget = budget_of(args)
    ppo, evaluation = PPOSettings.from_args(args), EvalSettings.from_args(args, prefix="eval")
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    init_ray(args.num_cpus)
    config, env = build_config(args)
    trained = train_and_save(config, budget, out, row=_row, line=_line, flush=True,
                             save_policy=lambda _algo, checkpoint: ChoicePolicy.from_checkpoint(checkpoint)
                             .save_pretrained(out / "policy"))
    rows = trained.rows
    shop = command_shop(args)
    summary: dict[str, Any] = {"algorithm": "ppo", "iterations": len(rows), "env_steps": rows[-1]["env_steps"],
                               "train_wall_s": trained.train_s, "init_checkpoint": args.init_checkpoint,
                               "num_env_runners": config.num_env_runners, "train_batch": ppo.train_batch,
                               "lr": ppo.lr, "entropy": ppo.entropy, "seed": ppo.seed, "shop": shop,
                               "first": rows[0], "final": rows[-1], "checkpoint": trained.checkpoint}
    if evaluation.goals > 0:
        summary.update(evaluate_policy_dir(out / "policy", shop, name="ppo", split=evaluation.split,
                                           n_goals=evaluation.goals, seed=evaluation.seed,
                                           num_workers=evaluation.workers, out=out))
    (out / "eval.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
