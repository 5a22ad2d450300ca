"""RLlib algorithms over the one choice RLModule: the offline base (:mod:`.offline`), il/
(behaviour cloning), dpo/, ppo/.

Exports resolve lazily so that ``import rl_app.algorithms`` imports neither Ray nor torch.
"""

from __future__ import annotations

from rl_app._lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
