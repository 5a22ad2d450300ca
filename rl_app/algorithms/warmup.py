"""Linear learning-rate warmup for the IL, DPO and PPO learners, ``config.training(lr_warmup_updates=N)``.

Update ``n`` (counted from 0) steps with ``lr * min(1, (n + 1) / N)``, so the first update uses
``lr / N`` and update ``N - 1`` and later the full ``lr``; 0 (default) = none. The factor
multiplies whatever learning rate the optimizer holds (a constant or RLlib's own ``lr``
schedule) for the duration of the step only, so RLlib's reported learning rate stays the
undamped one. ``n`` is the optimizer's own step count (Adam keeps it in its state, which RLlib
checkpoints), so a restored run continues its warmup where it stopped, and skipped updates
(non-finite gradients with ``torch_skip_nan_gradients``) do not advance it.

:class:`LRWarmupConfigMixin` adds the setting to a config, :class:`LRWarmupLearnerMixin` applies
it around the learner's ``apply_gradients``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import torch
from ray.rllib.algorithms.algorithm_config import NotProvided

__all__ = ["warmup_factor", "optimizer_steps", "LRWarmupConfigMixin",
           "LRWarmupLearnerMixin"]


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


class LRWarmupConfigMixin:
    """Adds ``lr_warmup_updates`` to an ``AlgorithmConfig``'s ``training(...)`` builder and checks
    it in ``validate()``."""

    lr_warmup_updates: int = 0

    def training(self, *, lr_warmup_updates: int = NotProvided, **kwargs: Any):
        """RLlib's ``training(...)`` plus ``lr_warmup_updates``: linear warmup over that many
        updates, 0 = none (see :mod:`rl_app.algorithms.warmup`)."""
        super().training(**kwargs)
        if lr_warmup_updates is not NotProvided:
            self.lr_warmup_updates = lr_warmup_updates
        return self

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.lr_warmup_updates, int) or self.lr_warmup_updates < 0:
            self._value_error(f"config.training(lr_warmup_updates={self.lr_warmup_updates!r}): use an int >= 0 "
                              "(0 = no warmup)")


class LRWarmupLearnerMixin:
    """A ``TorchLearner`` whose optimizer steps run with the config's warmup factor.

    Put it first in the bases, before :class:`~rl_app.algorithms.rllib_patches.PatchedLearnerMixin`,
    so that it wraps whichever ``apply_gradients`` steps the optimizers (the fused one or RLlib's).
    """

    def apply_gradients(self, gradients_dict) -> None:
        with self._lr_warmup():
            return super().apply_gradients(gradients_dict)

    @contextlib.contextmanager
    def _lr_warmup(self) -> Iterator[None]:
        """Scales every optimizer's learning rate by its warmup factor for one step, then restores it."""
        warmup = int(getattr(self.config, "lr_warmup_updates", 0) or 0)
        if warmup <= 0:
            yield
            return
        scaled = []
        for module_id in self.module.keys():
            for name, optimizer in self.get_optimizers_for_module(module_id):
                steps = optimizer_steps(optimizer)
                if steps is None:
                    raise ValueError(f"lr_warmup_updates={warmup} needs an optimizer that counts its steps (Adam, "
                                     f"AdamW, RMSprop, ...); optimizer {name!r} of module {module_id!r} is a "
                                     f"{type(optimizer).__name__}: set config.training(lr_warmup_updates=0) or use "
                                     "such an optimizer")
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
