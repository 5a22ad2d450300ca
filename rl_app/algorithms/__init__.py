"""RLlib algorithms over the one choice RLModule: the offline base (:mod:`.offline`), il/
(behaviour cloning), dpo/, ppo/.

Exports resolve lazily so that ``import rl_app.algorithms`` imports neither Ray nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OfflineChoiceConfig": "rl_app.algorithms.offline",
    "OfflineChoiceAlgorithm": "rl_app.algorithms.offline",
    "ChoiceOfflinePreLearner": "rl_app.algorithms.offline",
    "LEARNER_SECONDS": "rl_app.algorithms.offline",
    "LEARNER_SECONDS_ITER": "rl_app.algorithms.offline",
    "IL": "rl_app.algorithms.il",
    "ILConfig": "rl_app.algorithms.il",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rl_app.algorithms' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
