"""rl_app's workarounds for Ray 2.60.0's RLlib, one module each; every learner and config takes all of them.

* :mod:`.determinism`: RLlib's seeding switches torch to deterministic (slower) kernels for the
  rest of the process; put back unless ``config.debugging(deterministic_kernels=True)``.
* :mod:`.gradient_step`: RLlib's gradient clip and step read every gradient tensor back to the
  host twice per update; one fused check instead.
* :mod:`.compile`: ``torch_compile_learner`` compiles nothing for a ``MultiRLModule``; each module
  compiled after ``build``.
* :mod:`.precision`: RLlib has no autocast setting; ``config.learners(precision=...)``.

Each module's docstring says what it works around and what to check in a newer RLlib to tell
when it can go. The bundles::

    class MyLearner(LRWarmupLearnerMixin, PatchedLearnerMixin, TorchLearner): ...
    class MyConfig(PatchedConfigMixin, LRWarmupConfigMixin, AlgorithmConfig): ...

(The learning-rate warmup, :mod:`rl_app.algorithms.warmup`, is a feature, not a workaround.)
An algorithm's ``setup`` also runs inside
:func:`~rl_app.algorithms.rllib_patches.determinism.kernel_settings_kept` (RLlib seeds the
driver there).
"""

from __future__ import annotations

from rl_app.algorithms.rllib_patches.compile import CompileLearnerMixin
from rl_app.algorithms.rllib_patches.determinism import DeterminismConfigMixin, KernelSettingsLearnerMixin
from rl_app.algorithms.rllib_patches.gradient_step import FusedGradientStepMixin
from rl_app.algorithms.rllib_patches.precision import AutocastLearnerMixin, PrecisionConfigMixin

__all__ = ["PatchedLearnerMixin", "PatchedConfigMixin"]


class PatchedLearnerMixin(KernelSettingsLearnerMixin, CompileLearnerMixin, AutocastLearnerMixin,
                          FusedGradientStepMixin):
    """Every learner-side workaround; put it right before the RLlib learner class in the bases.

    Order matters: kernel settings are kept around the whole ``__init__`` (where RLlib seeds),
    compilation follows ``build``, autocast wraps the update, and the fused step replaces
    RLlib's clip and ``apply_gradients`` underneath.
    """


class PatchedConfigMixin(PrecisionConfigMixin, DeterminismConfigMixin):
    """Every config-side setting the workarounds add: ``learners(precision=...)`` (validated) and
    ``debugging(deterministic_kernels=...)``."""
