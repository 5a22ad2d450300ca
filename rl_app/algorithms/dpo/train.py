"""Train a DPO policy from preference pairs, starting from the reference (IL) policy.

    python -m rl_app.data.pairs --trajectories runs/demos --reference runs/il/policy --out runs/pairs_demo
    python -m rl_app.algorithms.dpo.train --data runs/pairs_demo --init-checkpoint runs/il/policy \\
        --iterations 30 --out runs/dpo_demo

Trajectory-level pairs (ETO: expert vs agent trajectory on a goal) train the same way; the
level is read from the pair files (``--pair-level auto``) and ``--batch-size`` counts pairs:

    python -m rl_app.data.trajectory_pairs --expert runs/demos --agent runs/rollouts \\
        --reference runs/il/policy --out runs/pairs_eto
    python -m rl_app.algorithms.dpo.train --data runs/pairs_eto --init-checkpoint runs/il/policy \\
        --iterations 30 --out runs/dpo_eto

Outputs and evaluation: :mod:`rl_app.algorithms.cli`. "3,000 steps" in the paper are 3,000
gradient updates (``--iterations x --updates-per-iteration``); the batch size is stated
in ``eval.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from rl_app.algorithms.cli import add_common_args, run, token_lengths

__all__ = ["main", "build_config"]


def build_config(args: argparse.Namespace):
    from rl_app.algorithms.dpo import DPOConfig
    from rl_app.policy.checkpoint import saved_layout

    # DPO reads the data as its reference does: the layout is the starting policy's.
    try:
        layout = saved_layout(args.init_checkpoint)
    except (OSError, ValueError):
        layout = "text"  # not a readable policy: building the module reports it, with its own message
    config = (DPOConfig()
              .dataset(paths=args.data, updates_per_iteration=args.updates_per_iteration)
              .observations(k_max=args.k_max, layout=layout, frozen_cache=layout == "segments",
                            **token_lengths(args, args.init_checkpoint))
              .rl_module(model_config={"init_checkpoint": str(Path(args.init_checkpoint).absolute())})
              .dpo(beta=args.beta, loss_type=args.loss_type, label_smoothing=args.label_smoothing,
                   nll_coeff=args.nll_coeff,
                   pair_level=args.pair_level, max_trajectory_steps=args.max_trajectory_steps)
              .learners(num_learners=args.num_learners, num_gpus_per_learner=args.gpus_per_learner,
                        precision=args.precision)
              .debugging(seed=args.seed))
    config.training(train_batch_size_per_learner=args.batch_size, lr_warmup_updates=args.lr_warmup_updates)
    if args.lr is not None:
        config.training(lr=args.lr)
    return config


def main(argv: Optional[Sequence[str]] = None) -> int:
    from rl_app.algorithms.dpo.dpo_torch_learner import DPO_LOSS, NLL_LOSS, REWARDS_ACCURACIES, REWARDS_MARGINS

    ap = argparse.ArgumentParser(prog="python -m rl_app.algorithms.dpo.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    ap.add_argument("--init-checkpoint", required=True, help="the reference (IL) policy; DPO starts from it")
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--loss-type", choices=["sigmoid", "ipo", "hinge", "robust"], default="sigmoid")
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--nll-coeff", type=float, default=0.0,
                    help="alpha of an NLL term on the chosen actions (RPO; 0 = plain DPO as in the paper)")
    ap.add_argument("--pair-level", choices=["auto", "step", "trajectory"], default="auto",
                    help="step pairs (rl_app.data.pairs) or trajectory pairs (rl_app.data.trajectory_pairs); "
                         "auto: from the data's columns")
    ap.add_argument("--max-trajectory-steps", type=int, default=None,
                    help="trajectory pairs: steps each trajectory is padded to (default: the data's longest)")
    args = ap.parse_args(argv)
    if args.iterations < 1:
        ap.error("--iterations must be >= 1")
    config = build_config(args)
    return run(config, args, name="dpo", metric_keys=(DPO_LOSS, NLL_LOSS, REWARDS_MARGINS, REWARDS_ACCURACIES),
               extra_summary={"init_checkpoint": args.init_checkpoint, "beta": args.beta,
                              "loss_type": args.loss_type, "label_smoothing": args.label_smoothing,
                              "nll_coeff": args.nll_coeff,
                              "pair_level": config.resolved_pair_level()})


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
