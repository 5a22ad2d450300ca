"""Imitation learning (behaviour cloning) of the choice policy: config, algorithm, learner,
loss and the ``python -m rl_app.algorithms.il.train`` CLI (evaluation: :mod:`rl_app.eval`).

Exports resolve lazily so that importing the loss does not import Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rl_app.algorithms.il' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
