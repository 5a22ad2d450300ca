"""Counting the aten operators a piece of torch code dispatches and the host syncs among them.

On a GPU each dispatched operator is about one kernel launch, and each host sync (a device value
read on the host) makes the CPU wait until every queued kernel has run, so a host-bound update's
time follows these counts. :class:`OpCounter` counts both, and counts on CPU what the same code
would do on a GPU; tests use it to pin how often the choice model and the learners read the
device, and ``python -m rl_app.bench.dpo_update --gradient-step`` reports it per update.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["OpCounter", "optimizer_step_counters"]


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


def optimizer_step_counters(optimizers: Sequence[torch.optim.Optimizer]) -> list[torch.Tensor]:
    """The ``step`` tensors in the optimizers' states (empty before the first step)."""
    return [state["step"] for optimizer in optimizers
            for state in optimizer.state.values() if torch.is_tensor(state.get("step"))]
