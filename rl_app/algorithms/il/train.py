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

from rl_app.algorithms.cli import add_common_args, run, shop_of_data, token_lengths

__all__ = ["main", "build_parser", "build_config", "shop_of_data"]

# Learning rates: a randomly initialised tiny encoder, or the segments model's head over a
# frozen encoder, has nothing to forget; pretrained BERTs are fine-tuned at the usual 1e-4.
TINY_LR = 1e-3
PRETRAINED_LR = 1e-4


def build_config(args: argparse.Namespace):
    from rl_app.algorithms.il.il import ILConfig

    from rl_app.experiments.settings import ModelSettings

    model = ModelSettings.from_args(args)
    model_config: dict[str, Any] = model.to_model_config(args.observation_layout)
    if args.init_checkpoint:
        model_config = {"init_checkpoint": str(Path(args.init_checkpoint).absolute())}
        if args.dropout is not None:
            model_config["dropout"] = args.dropout
    lr = args.lr if args.lr is not None else (
        TINY_LR if model.encoder == "tiny" or args.observation_layout == "segments" else PRETRAINED_LR)
    return (ILConfig()
            .dataset(paths=args.data, updates_per_iteration=args.updates_per_iteration)
            .observations(k_max=args.k_max, layout=args.observation_layout,
                          frozen_cache=model.cached(args.observation_layout),
                          **token_lengths(args, args.init_checkpoint))
            .rl_module(model_config=model_config)
            .training(lr=lr, train_batch_size_per_learner=args.batch_size, lr_warmup_updates=args.lr_warmup_updates)
            .learners(num_learners=args.num_learners, num_gpus_per_learner=args.gpus_per_learner,
                      precision=args.precision)
            .debugging(seed=args.seed))


def build_parser() -> argparse.ArgumentParser:
    """The trainer's command line (``python -m rl_app.algorithms.il.train --help``)."""
    ap = argparse.ArgumentParser(prog="python -m rl_app.algorithms.il.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    from rl_app.experiments.settings import ModelSettings

    add_common_args(ap)
    ModelSettings.add_arguments(ap)
    ap.add_argument("--init-checkpoint", default=None, help="start from a saved policy (overrides the model flags)")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    from rl_app.algorithms.il.il_torch_learner import ACCURACY, BC_LOSS, ENTROPY

    ap = build_parser()
    args = ap.parse_args(argv)
    if args.iterations < 1:
        ap.error("--iterations must be >= 1")
    return run(build_config(args), args, name="il", metric_keys=(BC_LOSS, ACCURACY, ENTROPY),
               extra_summary={"encoder": args.encoder or "minilm", "init_checkpoint": args.init_checkpoint,
                              "observation_layout": args.observation_layout})


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
