"""A gradient step without a host sync per parameter tensor, for the learners of IL, DPO and PPO.

Works around (Ray 2.60.0): ``TorchLearner`` clips by global norm with one ``torch.norm`` per
gradient tensor and then, in ``apply_gradients``, tests every gradient with
``if not torch.isfinite(grad).all()`` twice (once to zero nan/inf, once more before
``optimizer.step()``). Each of those ``if``\\ s is a device -> host copy: on a GPU the CPU waits
for the queue to drain before it may launch the next kernel, twice per gradient tensor per
update, and the per-tensor loop dispatches many more small operators than a fused step
(``python -m rl_app.bench.dpo_update --gradient-step`` counts both; README, Benchmarks).

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

It relies on RLlib internals of ``Learner`` / ``TorchLearner``: the static ``_get_clip_function``
it overrides, and the attributes ``_params`` (param ref -> parameter), ``_module_optimizers``
(module id -> optimizer names), ``_grad_scalers`` and ``_lr_scheduler_classes``.

When it can go: when a newer RLlib's ``TorchLearner.apply_gradients`` checks finiteness once for
all gradients (or not per tensor) and its ``clip_gradients(grad_clip_by="global_norm")`` uses
``torch._foreach_norm`` or ``clip_grad_norm_``. :func:`with_rllib_gradient_step` gives a learner
class with RLlib's own step back, to compare: ``tests/algorithms/test_gradients.py`` checks the
stock step still reads every gradient twice (it fails once RLlib stops doing so), and the
benchmark above shows what the patch saves.
"""

from __future__ import annotations

from typing import Dict, Hashable, Optional, Sequence

import torch
from ray.rllib.utils.torch_utils import clip_gradients

__all__ = ["global_norm", "clip_by_global_norm", "all_finite", "FusedGradientStepMixin", "with_rllib_gradient_step"]

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


class FusedGradientStepMixin:
    """RLlib's ``TorchLearner`` gradient clipping and step with O(1) host syncs per update."""

    # False: RLlib's own apply_gradients (see with_rllib_gradient_step).
    fused_gradient_step = True

    @staticmethod
    def _get_clip_function():
        return clip_by_global_norm

    def apply_gradients(self, gradients_dict) -> None:
        if (not self.fused_gradient_step or self.config.torch_skip_nan_gradients or self._grad_scalers is not None
                or self._lr_scheduler_classes is not None):
            return super().apply_gradients(gradients_dict)
        if not all_finite([g for g in gradients_dict.values() if g is not None]):
            return super().apply_gradients(gradients_dict)  # RLlib: warn, zero nan/inf per tensor, step
        for pid, grad in gradients_dict.items():
            self._params[pid].grad = grad
        for module_id, optimizer_names in self._module_optimizers.items():
            for optimizer_name in optimizer_names:
                self.get_optimizer(module_id, optimizer_name).step()


def with_rllib_gradient_step(learner_class: type) -> type:
    """A subclass of ``learner_class`` (a learner with :class:`FusedGradientStepMixin`) that clips
    and steps with RLlib's own ``TorchLearner`` code, everything else unchanged: the stock step, to
    compare against. For learners built in this process (the class is not importable by name)."""
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner

    return type(f"RLlibStep{learner_class.__name__}", (learner_class,), {
        "__doc__": f"{learner_class.__name__} with RLlib's own clip function and apply_gradients.",
        "_get_clip_function": staticmethod(TorchLearner._get_clip_function),
        "fused_gradient_step": False,
    })
