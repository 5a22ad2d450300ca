"""The DPO learner's update with RLlib's stock gradient step vs :mod:`rl_app.algorithms.gradients`,
next to the raw encoder's step.

    python -m rl_app.bench.gradient_step --shapes tiny minilm bert-base-shape \\
        --batch 64 --k 16 --valid 8 --state-len 256 --action-len 32

One update = ``DPOTorchLearner._update`` on a batch already on the device (forward, DPO loss,
backward, global-norm clip, optimizer step; no data path), the learner built with
``DPOConfig.build_learner()`` in this process (Ray is started only to place a GPU learner).
Rows, all on the same token ids:

* ``raw``: a bare ``BertModel`` of the shape, forward + backward + AdamW
  (:func:`rl_app.bench.dpo_throughput.raw_step`, the DPO throughput benchmark's raw row): the
  operators any model built on this encoder must dispatch;
* ``stock``: the DPO learner with RLlib 2.60's ``TorchLearner`` clip function and
  ``apply_gradients`` (a norm and an ``if not torch.isfinite(grad).all()`` per gradient tensor,
  twice);
* ``fused``: the DPO learner with :class:`~rl_app.algorithms.gradients.FusedGradientStepMixin`
  (what the learners use).

Per update it prints the median time, the aten operators dispatched (on a GPU each is about
one kernel launch), how many more than the raw step's, and the host syncs (see
:class:`OpCounter`). On a GPU every host sync makes the CPU wait until all queued kernels have
run, so the kernels after it cannot be queued while the GPU works; when a GPU update is
host-bound (the host takes longer to issue the operators than the GPU to run them), its time
follows the operator count. The counts do not depend on the device except through torch's
defaults: its optimizers take the multi-tensor (``foreach``) path for CUDA tensors and one
operator chain per parameter tensor on CPU. ``--foreach`` makes every row's optimizer take the
multi-tensor path on any device, so a CPU run counts what a CUDA run dispatches.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rl_app.bench.dpo_throughput import DPOBenchSettings, add_pair_workload_arguments, check_pair_workload, \
    dpo_config, pair_workload, raw_step
from rl_app.bench.policy_throughput import median_step_time, run_shapes

__all__ = ["StepSettings", "StepRow", "OpCounter", "optimizer_step_counters", "stock_learner_class", "module_batch",
           "measure_shape", "markdown_table", "main"]

RAW = "raw encoder step"
STOCK = "stock RLlib step"
FUSED = "fused step"
_WARMUP_UPDATES = 2
_MIN_UPDATES = 3


@dataclass(frozen=True)
class StepSettings(DPOBenchSettings):
    """The DPO benchmark's workload settings, plus ``foreach``: every row's optimizer on torch's
    multi-tensor path whatever the device (torch's default takes it for CUDA tensors only)."""

    foreach: bool = False


@dataclass(frozen=True)
class StepRow:
    """One gradient-step variant on one shape; counts and ms are per update."""

    shape: str
    step: str
    precision: str
    param_tensors: int
    ms_per_update: float
    aten_ops: int
    host_syncs: int
    updates: int
    ops_over_raw: float  # aten_ops / the raw encoder step's - 1


class OpCounter(TorchDispatchMode):
    """Counts the aten operators dispatched inside it and the host syncs among them.

    A host sync is a read of a device value on the host, which on a GPU makes the CPU wait
    for every queued kernel: ``aten::_local_scalar_dense`` (``item()``, ``bool()``, ``if t:``),
    a device -> host copy, and operators whose output size depends on the values
    (``nonzero``, ``masked_select``, ``unique``, indexing with a boolean mask: on CUDA they
    read a count back internally). ``Tensor.tolist()`` and ``Tensor.numpy()`` on a CPU tensor
    read memory without dispatching anything, so on a CPU run (where every tensor stands in
    for a device one) the counter counts those calls too; on a GPU run the copy they need is
    the counted one. So the counts of a CPU run are those of the same code on a GPU. (The two
    methods are patched on ``torch.Tensor`` while the counter is active: calls from other
    threads in that time count too, so wrap code that runs alone.)

    ``host_tensors``: tensors that stay on the CPU whatever the learner's device (the
    optimizer's step counters: ``torch.optim`` keeps them there unless ``capturable``), whose
    reads are therefore never a device sync and are not counted.
    """

    def __init__(self, host_tensors: Sequence[torch.Tensor] = ()) -> None:
        super().__init__()
        self.ops = 0
        self.syncs = 0
        self._host = {id(t) for t in host_tensors}
        self._patched: dict[str, Any] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        if func is torch.ops.aten._local_scalar_dense.default:
            self.syncs += id(args[0]) not in self._host
        elif (func.overloadpacket in _SIZE_FROM_VALUES or _is_bool_index(func, args)
              or _is_device_to_host(func, args, kwargs)):
            self.syncs += 1
        return func(*args, **kwargs)

    def __enter__(self):
        counter = self
        for name in ("tolist", "numpy"):
            original = getattr(torch.Tensor, name)
            self._patched[name] = original

            def read(t, *args, _original=original, **kwargs):
                if t.device.type == "cpu" and id(t) not in counter._host:
                    counter.syncs += 1
                return _original(t, *args, **kwargs)

            setattr(torch.Tensor, name, read)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self._patched.items():
            setattr(torch.Tensor, name, original)
        self._patched.clear()
        return super().__exit__(*exc)


# Operators whose output shape depends on tensor values: CUDA reads a count back to allocate it.
_SIZE_FROM_VALUES = {torch.ops.aten.nonzero, torch.ops.aten.masked_select, torch.ops.aten.unique_consecutive,
                     torch.ops.aten._unique2, torch.ops.aten.unique_dim}


def _is_bool_index(func, args) -> bool:
    return func is torch.ops.aten.index.Tensor and any(
        i is not None and i.dtype in (torch.bool, torch.uint8) for i in args[1])


def _is_device_to_host(func, args, kwargs) -> bool:
    if func is torch.ops.aten._to_copy.default:
        target = kwargs.get("device")
        return args[0].device.type != "cpu" and target is not None and torch.device(target).type == "cpu"
    if func is torch.ops.aten.copy_.default:
        return args[0].device.type == "cpu" and args[1].device.type != "cpu"
    return False


def stock_learner_class():
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner

    from rl_app.algorithms.dpo.dpo_torch_learner import DPOTorchLearner

    class StockStepDPOTorchLearner(DPOTorchLearner):
        """DPOTorchLearner with RLlib's own clip function and apply_gradients."""

        _get_clip_function = staticmethod(TorchLearner._get_clip_function)

        def apply_gradients(self, gradients_dict) -> None:
            TorchLearner.apply_gradients(self, gradients_dict)

    return StockStepDPOTorchLearner


def _learner(pair_dir: Path, policy_dir: str, s: DPOBenchSettings, device: torch.device, precision: str,
             learner_class=None):
    if device.type == "cuda":
        import ray

        # RLlib picks a local learner's GPU through Ray's accelerator context.
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
    config = dpo_config(pair_dir, policy_dir, s, device, precision)
    if learner_class is not None:
        config.learners(learner_class=learner_class)
    return config.build_learner()


def module_batch(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, Any]:
    """A :func:`~rl_app.bench.dpo_throughput.tokenized_batch` as the learner's ``_update`` takes it, on ``device``."""
    obs = {key: batch[key].to(device) for key in ("state_ids", "action_ids", "action_mask")}
    rest = {key: batch[key].to(device) for key in ("chosen", "rejected", "ref_chosen_logp", "ref_rejected_logp")}
    return {"default_policy": {"obs": obs, **rest}}


def optimizer_step_counters(optimizers: Sequence[torch.optim.Optimizer]) -> list[torch.Tensor]:
    """The ``step`` tensors in the optimizers' states (empty before the first step)."""
    return [state["step"] for optimizer in optimizers
            for state in optimizer.state.values() if torch.is_tensor(state.get("step"))]


def _use_foreach(optimizers: Sequence[torch.optim.Optimizer]) -> None:
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["foreach"] = True


def _measure(update: Callable[[], Any], optimizers: Sequence[torch.optim.Optimizer], s: DPOBenchSettings,
             device: torch.device) -> tuple[float, int, int, int]:
    """(median seconds per update, aten ops, host syncs, updates timed)."""
    counted: list[OpCounter] = []

    def count_one_update():  # after the warm-up, so the optimizers' step counters exist
        counter = OpCounter(host_tensors=optimizer_step_counters(optimizers))
        with counter:
            update()
        counted.append(counter)

    seconds, n = median_step_time(update, s.seconds, device, warmup_steps=_WARMUP_UPDATES, min_steps=_MIN_UPDATES,
                                  before_timing=count_one_update)
    return seconds, counted[0].ops, counted[0].syncs, n


def measure_shape(shape: str, s: StepSettings, workdir: Optional[Path] = None) -> list[StepRow]:
    """Raw, stock and fused rows for one encoder shape (same batch; the two learners share their weights)."""
    device, precision = s.resolved_device(), s.resolved_precision()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        policy_dir, pair_dir, batch = pair_workload(tmp, shape, s, s.batch)
        step, optimizer = raw_step(shape, batch, device, precision)
        if s.foreach:
            _use_foreach([optimizer])
        seconds, raw_ops, syncs, n = _measure(step, [optimizer], s, device)
        params = sum(p.grad is not None for p in optimizer.param_groups[0]["params"])  # not BERT's unused pooler
        rows = [StepRow(shape, RAW, precision, params, seconds * 1e3, raw_ops, syncs, n, 0.0)]
        del step, optimizer
        batch = module_batch(batch, device)
        for name, learner_class in ((STOCK, stock_learner_class()), (FUSED, None)):
            learner = _learner(pair_dir, policy_dir, s, device, precision, learner_class)
            optimizers = list(learner._named_optimizers.values())
            if s.foreach:
                _use_foreach(optimizers)
            params = sum(1 for p in learner.module["default_policy"].parameters() if p.requires_grad)
            seconds, ops, syncs, n = _measure(partial(learner._update, batch), optimizers, s, device)
            rows.append(StepRow(shape, name, precision, params, seconds * 1e3, ops, syncs, n, ops / raw_ops - 1.0))
            del learner, optimizers
    return rows


def markdown_table(rows: Sequence[StepRow]) -> str:
    head = ["shape", "update", "precision", "param tensors", "ms/update", "aten ops/update", "ops over raw",
            "host syncs/update", "updates timed"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for r in rows:
        over = "-" if r.step == RAW else f"{r.ops_over_raw:+.0%}"
        lines.append("| " + " | ".join([r.shape, r.step, r.precision, str(r.param_tensors), f"{r.ms_per_update:,.1f}",
                                        f"{r.aten_ops:,}", over, str(r.host_syncs), str(r.updates)]) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> list[StepRow]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_pair_workload_arguments(parser)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row (after warm-up)")
    parser.add_argument("--foreach", action="store_true",
                        help="every optimizer on torch's multi-tensor path, as on CUDA (a CPU run then counts the "
                             "operators a GPU run dispatches)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    s = StepSettings(batch=args.batch, k=args.k, valid=args.valid, state_len=args.state_len,
                     action_len=args.action_len, seconds=args.seconds, device=args.device,
                     precision=args.precision, rllib=False, foreach=args.foreach)
    check_pair_workload(parser, s)
    return run_shapes(measure_shape, markdown_table, args.shapes, s, json_path=args.json,
                      workload=f"{s.batch} pairs per update; state {s.state_len} tokens, k {s.k} rows, {s.n_valid} "
                               f"valid x {s.action_len} tokens; {s.seconds:g} s per row"
                               + ("; optimizers on the multi-tensor path" if s.foreach else ""))


if __name__ == "__main__":
    main()
