"""``config.framework(torch_compile_learner=True)`` for rl_app's learners.

Works around (Ray 2.60.0): ``TorchLearner.build`` is meant to call ``compile(cfg)`` on every
TorchRLModule of the learner when ``torch_compile_learner`` is set with the default
``torch_compile_learner_what_to_compile="forward_train"``. For a ``MultiRLModule`` (the
module of every new-API-stack learner) its loop tests the container,
``isinstance(self._module, TorchRLModule)``, instead of each module, so nothing is compiled and
nothing says so. :class:`CompileLearnerMixin` does what was meant after ``build``. Modules
added later go through RLlib's ``add_module``, which compiles them itself.
:meth:`rl_app.policy.rl_module.WebShopChoiceModule.compile` says what gets compiled.
``torch_compile_learner_what_to_compile="complete_update"`` is RLlib's own path, left as it is.

It reads two private ``TorchLearner`` attributes, ``_torch_compile_forward_train`` and
``_torch_compile_cfg`` (set in ``TorchLearner.__init__`` from the config).

When it can go: when a newer RLlib's ``TorchLearner.build`` tests each module of the
``MultiRLModule`` (``isinstance(module, TorchRLModule)`` inside the loop). To check, build a
learner of a class without this mixin with ``torch_compile_learner=True`` and see whether its
module's encoder has ``_compiled_call_impl`` set (as
``tests/algorithms/test_dpo_training.py::test_torch_compile_learner_compiles_the_encoder_with_the_same_updates``
does with the mixin).
"""

from __future__ import annotations

from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
from ray.rllib.core.rl_module.torch import TorchRLModule

__all__ = ["CompileLearnerMixin"]


class CompileLearnerMixin:
    """A ``TorchLearner`` whose ``build`` compiles each module of its ``MultiRLModule`` when the
    config asks for ``torch_compile_learner`` on ``forward_train``."""

    def build(self) -> None:
        super().build()
        if not getattr(self, "_torch_compile_forward_train", False) or not isinstance(self._module, MultiRLModule):
            return
        for module_id in self._module.keys():
            module = self._module[module_id].unwrapped()  # under DDP: the inner module
            if isinstance(module, TorchRLModule):
                module.compile(self._torch_compile_cfg)
