"""Imitation learning (behaviour cloning) of the choice policy: config, algorithm, learner,
loss and the ``python -m rl_app.algorithms.il.train`` CLI (evaluation: :mod:`rl_app.eval`).

Exports resolve lazily so that importing the loss does not import Ray.
"""

from __future__ import annotations

from rl_app._lazy import lazy_getattr

_EXPORTS = {
    "ILConfig": "rl_app.algorithms.il.il",
    "IL": "rl_app.algorithms.il.il",
    "ILTorchLearner": "rl_app.algorithms.il.il_torch_learner",
    "BC_LOSS": "rl_app.algorithms.il.il_torch_learner",
    "ACCURACY": "rl_app.algorithms.il.il_torch_learner",
    "ENTROPY": "rl_app.algorithms.il.il_torch_learner",
    "bc_loss": "rl_app.algorithms.il.loss",
    "BCLossOutput": "rl_app.algorithms.il.loss",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
