"""Train an IL (behaviour-cloning) choice policy from trajectory parquet, save it, evaluate it.

    python -m rl_app.data.demos --num-goals 200 --out runs/demos            # synthetic shop
    python -m rl_app.algorithms.il.train --data runs/demos --encoder tiny --iterations 20 --out runs/il

Outputs and evaluation: :mod:`rl_app.algorithms.cli`. The shop used for evaluation is the
one the data was generated on (read from the data set's ``_summary.json``) unless
``--catalogue`` is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from rl_app.algorithms.budgeted_training import Budget
from rl_app.algorithms.cli import add_offline_arguments, budget_of, run, shop_of_data
from rl_app.settings import EvalSettings, ILSettings, ModelSettings, ObservationSettings

__all__ = ["main", "build_parser", "build_config", "train", "shop_of_data"]


def build_config(args: argparse.Namespace):
    """The ``ILConfig`` the parsed flags describe (:meth:`~rl_app.algorithms.il.il.ILConfig.from_settings`)."""
    from rl_app.algorithms.il.il import ILConfig

    return ILConfig.from_settings(ILSettings.from_args(args), data=args.data, model=ModelSettings.from_args(args),
                                  observations=ObservationSettings.from_args(args),
                                  init_checkpoint=args.init_checkpoint, dropout=args.dropout)


def build_parser() -> argparse.ArgumentParser:
    """The trainer's command line (``python -m rl_app.algorithms.il.train --help``)."""
    ap = argparse.ArgumentParser(prog="python -m rl_app.algorithms.il.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_offline_arguments(ap, ILSettings)
    ModelSettings.add_arguments(ap)
    ap.add_argument("--init-checkpoint", default=None, help="start from a saved policy (overrides the model flags)")
    return ap


def train(data: Sequence[str], out: str | Path, *, settings: ILSettings, model: ModelSettings,
          observations: ObservationSettings, budget: Optional[Budget] = None, init_checkpoint: Optional[str] = None,
          dropout: Optional[float] = None, **run_kwargs: Any) -> dict[str, Any]:
    """Train, save and evaluate an IL policy (the command line, and the experiments' IL stage);
    ``budget`` defaults to ``settings.iterations``; ``run_kwargs``: :func:`rl_app.algorithms.cli.run`'s
    shop, evaluation, heldout, num_cpus. Returns what ``OUT/eval.json`` holds."""
    from rl_app.algorithms.il.il import ILConfig
    from rl_app.algorithms.il.il_torch_learner import ACCURACY, BC_LOSS, ENTROPY

    config = ILConfig.from_settings(settings, data=data, model=model, observations=observations,
                                    init_checkpoint=init_checkpoint, dropout=dropout)
    return run(config, name="il", metric_keys=(BC_LOSS, ACCURACY, ENTROPY), settings=settings,
               budget=budget or Budget(iterations=settings.iterations), data=data, out=out,
               extra_summary={"encoder": model.encoder, "init_checkpoint": init_checkpoint,
                              "observation_layout": observations.observation_layout}, **run_kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from rl_app.algorithms.cli import command_shop

    args = build_parser().parse_args(argv)
    settings = ILSettings.from_args(args)
    budget = budget_of(args, settings.iterations)
    train(args.data, args.out, settings=settings, model=ModelSettings.from_args(args),
          observations=ObservationSettings.from_args(args), budget=budget, init_checkpoint=args.init_checkpoint,
          dropout=args.dropout, shop=command_shop(args, args.data), evaluation=EvalSettings.from_args(args, prefix="eval"),
          heldout=args.heldout, num_cpus=args.num_cpus)
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
