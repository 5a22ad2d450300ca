"""The prepare stage's IL command line: a trial's GPUs go to one remote IL learner."""

from __future__ import annotations

from pathlib import Path

from rl_app.algorithms.il.train import build_config, build_parser
from rl_app.experiments.prepare import il_argv

TOKENS = ["--k-max", "16", "--max-state-tokens", "128", "--max-action-tokens", "24"]


def test_il_argv_without_and_with_gpus():
    model, il_cfg = {"encoder": "tiny", "dropout": 0.0}, {"iterations": 3, "batch_size": 8, "lr": 3e-4}
    cpu = il_argv(Path("/d"), Path("/o"), model, il_cfg, TOKENS)
    assert "--num-learners" not in cpu and "--gpus-per-learner" not in cpu
    gpu = il_argv(Path("/d"), Path("/o"), model, il_cfg, TOKENS, num_gpus=0.5)
    assert gpu[:len(cpu)] == cpu and gpu[len(cpu):] == ["--num-learners", "1", "--gpus-per-learner", "0.5"]
    args = build_parser().parse_args(gpu)  # the IL trainer accepts every flag
    assert (args.num_learners, args.gpus_per_learner, args.encoder, args.iterations, args.lr, args.k_max) == \
        (1, 0.5, "tiny", 3, 3e-4, 16)
    config = build_config(args)
    assert (config.num_learners, config.num_gpus_per_learner) == (1, 0.5)
    local = build_config(build_parser().parse_args(cpu))
    assert (local.num_learners, local.num_gpus_per_learner) == (0, 0)
