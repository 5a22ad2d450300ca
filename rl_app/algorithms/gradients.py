"""A gradient step without a host sync per parameter tensor, for the learners of IL, DPO and PPO.

RLlib 2.60's ``TorchLearner`` clips by global norm with one ``torch.norm`` per gradient tensor
and then, in ``apply_gradients``, tests every gradient with ``if not torch.isfinite(grad).all()``
twice (once to zero nan/inf, once more before ``optimizer.step()``). Each of those ``if``\\ s is
a device -> host copy: on a GPU the CPU waits for the queue to drain before it may launch the
next kernel, 2 x (gradient tensors) times per update (229 for the MiniLM choice model, 421 for a
BERT-base one), with ~14 more small operators per tensor than a fused step
(``python -m rl_app.bench.gradient_step``). On an H200 the RLlib DPO learner spent 60-68 ms per
update more than the same loss without RLlib; this is at most a small part of that (README, Benchmarks).

:class:`FusedGradientStepMixin` keeps RLlib's results and does the same work with multi-tensor
(``torch._foreach_*``) kernels, as ``torch.nn.utils.clip_grad_norm_`` does:

* :func:`clip_by_global_norm`: RLlib's ``clip_gradients(grad_clip_by="global_norm")`` formula
  (per-tensor norms with nan/inf replaced, the clip coefficient clamped to <= 1, returned norm)
  in a fixed number of kernels and no sync; other ``grad_clip_by`` modes go to RLlib's function.
* ``apply_gradients``: one fused finiteness check (one host sync per update); when every
  gradient is finite the gradients are set and each optimizer steps, which is what RLlib does
  in that case. Otherwise, and whenever RLlib's loss scaling, learning-rate scheduler classes
  or ``torch_skip_nan_gradients`` are in play, RLlib's own ``apply_gradients`` runs unchanged
  (it warns and zeroes nan/inf per tensor).

Linear learning-rate warmup (DECISIONS.md 16), ``config.training(lr_warmup_updates=N)``
(:class:`LRWarmupConfigMixin`): update ``n`` (counted from 0) steps with ``lr * min(1, (n + 1) / N)``,
so the first update uses ``lr / N`` and update ``N - 1`` and later the full ``lr``; 0 (default) =
none. The factor multiplies whatever learning rate the optimizer holds (a constant or RLlib's own
``lr`` schedule) for the duration of the step only, so RLlib's reported learning rate stays the
undamped one. ``n`` is the optimizer's own step count (Adam keeps it in its state, which RLlib
checkpoints), so a restored run continues its warmup where it stopped, and skipped updates
(non-finite gradients with ``torch_skip_nan_gradients``) do not advance it.

Put :class:`FusedGradientStepMixin` after :class:`~rl_app.algorithms.precision.AutocastLearnerMixin`
and before the RLlib learner in the bases.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Hashable, Iterator, Optional, Sequence

import torch
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.utils.torch_utils import clip_gradients

__all__ = ["global_norm", "clip_by_global_norm", "all_finite", "warmup_factor", "optimizer_steps",
           "add_lr_warmup_argument", "LRWarmupConfigMixin", "FusedGradientStepMixin"]

# RLlib's compute_global_norm replaces inf norms by +-10e8 so that one overflowing tensor
# does not make the clip coefficient 0 (ray/rllib/utils/torch_utils.py); kept identical.
_NORM_LIMIT = 10e8
_EPS = 1e-6  # RLlib's: clip_coeff = grad_clip / clamp(norm + 1e-6, min=grad_clip)


def _tensor_norms(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N,) L2 norm of each gradient tensor, in multi-tensor kernels. Under no_grad rather than
    ``g.detach()`` per tensor (one dispatched operator each, on the host)."""
    with torch.no_grad():
        return torch.stack(torch._foreach_norm(list(grads), 2.0))


def global_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """RLlib's ``compute_global_norm(grads)``: L2 norm of the per-tensor L2 norms, each with
    nan -> 0 and +-inf -> +-10e8, and the same replacement on the result. No host sync."""
    if not grads:
        return torch.tensor(0.0)
    norms = _tensor_norms(grads).nan_to_num(neginf=-_NORM_LIMIT, posinf=_NORM_LIMIT)
    return torch.linalg.vector_norm(norms, 2.0).nan_to_num(neginf=-_NORM_LIMIT, posinf=_NORM_LIMIT)


def clip_by_global_norm(gradients_dict: Dict[Hashable, Optional[torch.Tensor]], *,
                        grad_clip: Optional[float] = None, grad_clip_by: str = "value"):
    """``ray.rllib.utils.torch_utils.clip_gradients`` with the ``global_norm`` mode fused.

    Scales the gradients in place by ``min(1, grad_clip / max(norm + 1e-6, grad_clip))`` and
    returns the (pre-clip) global norm, as RLlib does; ``value`` and ``norm`` modes and
    ``grad_clip=None`` are RLlib's function itself.
    """
    if grad_clip is None or grad_clip_by != "global_norm":
        return clip_gradients(gradients_dict, grad_clip=grad_clip, grad_clip_by=grad_clip_by)
    grads = [g for g in gradients_dict.values() if g is not None]
    total = global_norm(grads)
    if grads:
        coeff = torch.clamp(grad_clip / torch.clamp(total + _EPS, min=grad_clip), max=1.0)
        with torch.no_grad():
            torch._foreach_mul_(grads, coeff.to(grads[0].device))
    return total


def all_finite(grads: Sequence[torch.Tensor]) -> bool:
    """True if no element of ``grads`` is nan or inf; one host sync for the whole list.

    A tensor's L2 norm is finite exactly when its elements are, except that finite elements
    above ~1e19 can overflow the norm: such a list is reported non-finite, which only sends
    the caller to RLlib's exact per-tensor path.
    """
    if not grads:
        return True
    return bool(torch.isfinite(_tensor_norms(grads)).all())


def warmup_factor(steps_done: int, warmup_updates: int) -> float:
    """The learning-rate multiplier of the next update: ``min(1, (steps_done + 1) / warmup_updates)``
    (1 without warmup)."""
    if warmup_updates <= 0:
        return 1.0
    return min(1.0, (steps_done + 1) / warmup_updates)


def optimizer_steps(optimizer: torch.optim.Optimizer) -> Optional[int]:
    """Steps the optimizer has taken, from its per-parameter ``step`` state (every ``torch.optim``
    optimizer but SGD and LBFGS keeps one: Adam, AdamW, RMSprop, ...); 0 before the first step;
    None if it keeps no step count."""
    if isinstance(optimizer, (torch.optim.SGD, torch.optim.LBFGS)):
        return None
    if not optimizer.state:
        return 0
    for state in optimizer.state.values():
        if "step" in state:
            return int(state["step"])  # a CPU tensor unless the optimizer is capturable/fused
    return None


def add_lr_warmup_argument(parser) -> None:
    """``--lr-warmup-updates`` for a trainer's command line (goes to ``config.training(lr_warmup_updates=...)``)."""
    parser.add_argument("--lr-warmup-updates", type=int, default=0,
                        help="linear learning-rate warmup over this many updates (0 = none)")


class LRWarmupConfigMixin:
    """Adds ``lr_warmup_updates`` to an ``AlgorithmConfig``'s ``training(...)`` builder."""

    lr_warmup_updates: int = 0

    def training(self, *, lr_warmup_updates: int = NotProvided, **kwargs: Any):
        """RLlib's ``training(...)`` plus ``lr_warmup_updates``: linear warmup over that many
        updates, 0 = none (see :mod:`rl_app.algorithms.gradients`)."""
        super().training(**kwargs)
        if lr_warmup_updates is not NotProvided:
            self.lr_warmup_updates = lr_warmup_updates
        return self

    def _validate_lr_warmup(self) -> None:
        if not isinstance(self.lr_warmup_updates, int) or self.lr_warmup_updates < 0:
            self._value_error(f"config.training(lr_warmup_updates={self.lr_warmup_updates!r}): use an int >= 0 "
                              "(0 = no warmup)")


class FusedGradientStepMixin:
    """RLlib's ``TorchLearner`` gradient clipping and step with O(1) host syncs per update, and
    the config's learning-rate warmup."""

    @staticmethod
    def _get_clip_function():
        return clip_by_global_norm

    def apply_gradients(self, gradients_dict) -> None:
        with self._lr_warmup():
            if (self.config.torch_skip_nan_gradients or self._grad_scalers is not None
                    or self._lr_scheduler_classes is not None):
                return super().apply_gradients(gradients_dict)
            if not all_finite([g for g in gradients_dict.values() if g is not None]):
                return super().apply_gradients(gradients_dict)  # RLlib: warn, zero nan/inf per tensor, step
            for pid, grad in gradients_dict.items():
                self._params[pid].grad = grad
            for module_id, optimizer_names in self._module_optimizers.items():
                for optimizer_name in optimizer_names:
                    self.get_optimizer(module_id, optimizer_name).step()

    @contextlib.contextmanager
    def _lr_warmup(self) -> Iterator[None]:
        """Scales every optimizer's learning rate by its warmup factor for one step, then restores it."""
        warmup = int(getattr(self.config, "lr_warmup_updates", 0) or 0)
        if warmup <= 0:
            yield
            return
        scaled = []
        for name, optimizer in self._named_optimizers.items():
            steps = optimizer_steps(optimizer)
            if steps is None:
                raise ValueError(f"lr_warmup_updates={warmup} needs an optimizer that counts its steps (Adam, "
                                 f"AdamW, RMSprop, ...); optimizer {name!r} is a {type(optimizer).__name__}: "
                                 "set config.training(lr_warmup_updates=0) or use such an optimizer")
            factor = warmup_factor(steps, warmup)
            if factor < 1.0:
                for group in optimizer.param_groups:
                    scaled.append((group, group["lr"]))
                    group["lr"] = group["lr"] * factor
        try:
            yield
        finally:
            for group, lr in scaled:
                group["lr"] = lr
