"""bf16 autocast for the learners: one setting shared by IL, DPO and PPO.

Works around (Ray 2.60.0): RLlib's ``TorchLearner`` has no mixed-precision setting. Its only
hook is ``config.experimental(_torch_grad_scaler_class=...)`` (loss scaling), and nothing in
RLlib enters ``torch.autocast``, so a learner's update always runs in the weights' dtype.
:class:`AutocastLearnerMixin` wraps ``TorchLearner._uncompiled_update`` (a private method: the
forward pass, the loss, the backward pass and the optimizer step of one update) in autocast.

When it can go: when a newer RLlib's ``AlgorithmConfig.learners(...)`` or ``framework(...)``
takes an autocast / mixed-precision option for torch learners (search ``torch_learner.py`` for
``autocast``). If ``_uncompiled_update`` is renamed or split, the mixin stops taking effect:
``tests/algorithms/test_precision.py`` then fails (it checks autocast is on inside the loss).

``config.learners(precision=...)``:

* ``"auto"`` (default): bf16 autocast on a CUDA learner whose GPU computes bf16 natively
  (Ampere and newer), fp32 everywhere else (CPU learners, a T4).
* ``"bf16"``: bf16 autocast on any device (on CPU too: slower there, but it lets the
  behaviour be tested without a GPU).
* ``"fp32"``: no autocast.

The learner's whole update (forward pass, loss, backward pass) runs under
``torch.autocast(dtype=torch.bfloat16)``: matrix products and attention run in bf16, weights,
gradients and optimizer state stay fp32 (bf16 has fp32's exponent range, so no loss scaling
is needed). Losses upcast logits to fp32 before their log-softmax. Evaluation and rollouts
keep fp32.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Optional, Union

import torch
from ray.rllib.algorithms.algorithm_config import NotProvided

__all__ = ["PRECISIONS", "resolve_precision", "PrecisionConfigMixin",
           "AutocastLearnerMixin"]

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: Union[str, torch.device]) -> str:
    """``"fp32"`` or ``"bf16"``: what ``precision`` means for a learner on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
        return "bf16"
    return "fp32"


class PrecisionConfigMixin:
    """Adds ``precision`` to an ``AlgorithmConfig``'s ``learners(...)`` builder and checks it in
    ``validate()``."""

    precision: str = "auto"

    def learners(self, *, precision: Optional[str] = NotProvided, **kwargs: Any):
        """RLlib's ``learners(...)`` plus ``precision``: ``"auto"`` | ``"fp32"`` | ``"bf16"``
        (see :mod:`rl_app.algorithms.rllib_patches.precision`)."""
        super().learners(**kwargs)
        if precision is not NotProvided:
            self.precision = precision
        return self

    def validate(self) -> None:
        super().validate()
        if self.precision not in PRECISIONS:
            self._value_error(f"config.learners(precision={self.precision!r}): use one of {PRECISIONS}")


class AutocastLearnerMixin:
    """Runs a ``TorchLearner``'s update under bf16 autocast when the config's precision says so.

    Bundled in :class:`~rl_app.algorithms.rllib_patches.PatchedLearnerMixin`, before the RLlib learner.
    """

    @cached_property
    def autocast_dtype(self) -> Optional[torch.dtype]:
        """``torch.bfloat16`` when this learner's updates run under autocast, else None (resolved
        once, at the first update: the config and the learner's device do not change)."""
        precision = resolve_precision(getattr(self.config, "precision", "auto"), self._device)
        return torch.bfloat16 if precision == "bf16" else None

    def _uncompiled_update(self, batch, **kwargs):
        dtype = self.autocast_dtype
        if dtype is None:
            return super()._uncompiled_update(batch, **kwargs)
        with torch.autocast(device_type=torch.device(self._device).type, dtype=dtype):
            return super()._uncompiled_update(batch, **kwargs)
