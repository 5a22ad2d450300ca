"""What makes one DPO learner update slower inside RLlib's ``train()`` than on its own, on one device.

    python -m rl_app.bench.update_context --shapes minilm --batch 64 --k 16 --valid 8 \\
        --state-len 256 --action-len 32 --device cuda --precision bf16

``rl_app.bench.dpo_throughput`` times the same DPO update three ways (loss-only step, RLlib
``train()``, data path alone); on a GPU the ``train()`` row cost far more per update than the
other two add up to. This benchmark runs, in one process and one order, rows that each change
one thing, so the difference has a name:

1. ``loss-only step``: choice model + DPO loss + AdamW on one tokenized batch (no RLlib).
2. ``train()``: the algorithm's own ``time/learner_s`` per update (``dpo_throughput``'s RLlib row).
3. ``_update, one batch``: ``learner._update`` on one batch drawn from the learner's iterator,
   repeated (RLlib's update without the data iterator and ``Learner.update``'s loop).
4. ``_update, drawn batches``: ``learner._update`` over batches drawn from the iterator beforehand
   (different contents each update; no iterator running while timed).
5. ``train(), prefetch 0``: ``train()`` with Ray Data's ``prefetch_batches=0`` (no background
   prefetch thread: the learner's thread formats and copies each batch itself).

Rows 1-5 run first unseeded, then again after ``update_global_seed_if_necessary("torch", 0)``,
what ``config.debugging(seed=...)`` makes RLlib call in the driver and in every learner: on CUDA
it sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, ``torch.backends.cudnn.deterministic = True`` and
``cudnn.benchmark = False`` for the rest of the process (without CUDA,
``torch.use_deterministic_algorithms(True)`` instead). The last rows undo those settings
(``restored``) and time 1 and 2 again. All rows are medians; the device is synchronised after
every timed step or ``train()``.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from rl_app.algorithms.determinism import kernel_settings, restore_kernel_settings
from rl_app.bench.dpo_throughput import DPOBenchSettings, _loss_only_step, _median_step, add_pair_workload_arguments, \
    check_pair_workload, dpo_config, learner_batches, pair_workload, train_seconds_per_update
from rl_app.bench.policy_throughput import _sync, run_shapes

__all__ = ["ContextRow", "measure", "main"]

LOSS_ONLY = "loss-only step"
TRAIN = "train()"
ONE_BATCH = "_update, one batch"
DRAWN = "_update, drawn batches"
TRAIN_NO_PREFETCH = "train(), prefetch 0"
UNSEEDED, SEEDED, RESTORED = "unseeded", "after RLlib's seeding", "seeding's torch settings undone"


@dataclass(frozen=True)
class ContextRow:
    shape: str
    process_state: str
    path: str
    ms_per_update: float
    updates: int


def _drawn_batches(algo, s: DPOBenchSettings, device: torch.device, n: int) -> list:
    """``n`` batches from the learner's own iterator settings, already on ``device``."""
    drawn = [b.policy_batches for b in learner_batches(algo, s, device, n)]
    _sync(device)
    return drawn


def _update_rows(learner, drawn: list, s: DPOBenchSettings, device: torch.device) -> list[tuple[str, float, int]]:
    one = _median_step(lambda: learner._update(drawn[0]), s.seconds, device)
    cursor = iter(range(10**9))
    many = _median_step(lambda: learner._update(drawn[next(cursor) % len(drawn)]), s.seconds, device)
    return [(ONE_BATCH, *one), (DRAWN, *many)]


def _reset_iterator(algo, **iter_batches_kwargs) -> None:
    """Next ``train()`` builds the learner's data iterator anew with these ``iter_batches`` settings."""
    algo.offline_data.iter_batches_kwargs.update(iter_batches_kwargs)
    algo.learner_group._learner.iterator = None


def measure(shape: str, s: DPOBenchSettings, workdir: Optional[Path] = None) -> list[ContextRow]:
    """The rows of the module docstring, in its order."""
    import ray
    from ray.rllib.utils.debug import update_global_seed_if_necessary

    device, precision = s.resolved_device(), s.resolved_precision()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, num_cpus=max(2, torch.get_num_threads()))
    settings = kernel_settings()
    rows: list[ContextRow] = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        # Each data iterator (one per train() row) reads its warm-up and timed train()s within one epoch.
        n_pairs = s.batch * s.updates * (s.iterations + 2)
        policy_dir, pair_dir, batch = pair_workload(Path(tmp), shape, s, n_pairs)
        loss_only = _loss_only_step(policy_dir, batch, device, precision)
        algo = dpo_config(pair_dir, policy_dir, s, device, precision).dataset(updates_per_iteration=s.updates) \
            .build_algo()
        try:
            learner = algo.learner_group._learner
            prefetch = algo.offline_data.iter_batches_kwargs.get("prefetch_batches")
            for state in (UNSEEDED, SEEDED):
                if state == SEEDED:
                    update_global_seed_if_necessary("torch", 0)
                timed = [(LOSS_ONLY, *_median_step(loss_only, s.seconds, device)),
                         (TRAIN, *train_seconds_per_update(algo, s, device))]
                timed += _update_rows(learner, _drawn_batches(algo, s, device, s.updates), s, device)
                _reset_iterator(algo, prefetch_batches=0)
                timed.append((TRAIN_NO_PREFETCH, *train_seconds_per_update(algo, s, device)))
                _reset_iterator(algo, prefetch_batches=prefetch if prefetch is not None else 1)
                rows += [ContextRow(shape, state, path, sec * 1e3, n) for path, sec, n in timed]
            restore_kernel_settings(settings)
            timed = [(LOSS_ONLY, *_median_step(loss_only, s.seconds, device)),
                     (TRAIN, *train_seconds_per_update(algo, s, device))]
            rows += [ContextRow(shape, RESTORED, path, sec * 1e3, n) for path, sec, n in timed]
        finally:
            algo.stop()
            restore_kernel_settings(settings)
    return rows


def markdown_table(rows: Sequence[ContextRow]) -> str:
    lines = ["| shape | process state | path | ms/update | updates timed |", "|---|---|---|---:|---:|"]
    lines += [f"| {r.shape} | {r.process_state} | {r.path} | {r.ms_per_update:,.1f} | {r.updates} |" for r in rows]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> list[ContextRow]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_pair_workload_arguments(parser)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds of each step row (after warm-up)")
    parser.add_argument("--updates", type=int, default=10, help="updates per train()")
    parser.add_argument("--iterations", type=int, default=3, help="timed train() calls per train() row")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    s = DPOBenchSettings(batch=args.batch, k=args.k, valid=args.valid, state_len=args.state_len,
                         action_len=args.action_len, seconds=args.seconds, updates=args.updates,
                         iterations=args.iterations, device=args.device, precision=args.precision)
    check_pair_workload(parser, s)
    return run_shapes(measure, markdown_table, args.shapes, s, json_path=args.json,
                      workload=f"{s.batch} pairs per update; state {s.state_len} tokens, k {s.k} rows, {s.n_valid} "
                               f"valid x {s.action_len} tokens; {s.updates} updates per train()")


if __name__ == "__main__":
    main()
