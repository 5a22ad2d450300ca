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
from typing import Optional, Sequence

from rl_app.algorithms.cli import add_offline_arguments, budget_of, run_args
from rl_app.settings import DPOSettings, ObservationSettings

__all__ = ["main", "build_parser", "build_config"]


def build_config(args: argparse.Namespace):
    """The ``DPOConfig`` the parsed flags describe (:meth:`~rl_app.algorithms.dpo.dpo.DPOConfig.from_settings`)."""
    from rl_app.policy.checkpoint import saved_layout

    # DPO reads the data as its reference does: the layout is the starting policy's.
    try:
        layout = saved_layout(args.init_checkpoint)
    except (OSError, ValueError):
        layout = "text"  # not a readable policy: building the module reports it, with its own message
    from rl_app.algorithms.dpo.dpo import DPOConfig

    return DPOConfig.from_settings(DPOSettings.from_args(args), data=args.data, init_checkpoint=args.init_checkpoint,
                                   observations=ObservationSettings.from_args(args), layout=layout)


def build_parser() -> argparse.ArgumentParser:
    """The trainer's command line (``python -m rl_app.algorithms.dpo.train --help``)."""
    ap = argparse.ArgumentParser(prog="python -m rl_app.algorithms.dpo.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    # the layout is the reference's (build_config), not a flag
    add_offline_arguments(ap, DPOSettings, skip=("observation_layout",))
    ap.add_argument("--init-checkpoint", required=True, help="the reference (IL) policy; DPO starts from it")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    from rl_app.algorithms.dpo.dpo_torch_learner import DPO_LOSS, NLL_LOSS, REWARDS_ACCURACIES, REWARDS_MARGINS

    args = build_parser().parse_args(argv)
    budget = budget_of(args)
    settings = DPOSettings.from_args(args)
    config = build_config(args)
    run_args(config, args, name="dpo", metric_keys=(DPO_LOSS, NLL_LOSS, REWARDS_MARGINS, REWARDS_ACCURACIES),
             settings=settings, budget=budget,
             extra_summary={"init_checkpoint": args.init_checkpoint, "beta": settings.beta,
                            "loss_type": settings.loss_type, "label_smoothing": settings.label_smoothing,
                            "nll_coeff": settings.nll_coeff, "pair_level": config.resolved_pair_level()})
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
