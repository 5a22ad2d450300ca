"""Imitation learning (behaviour cloning) of the choice policy from trajectory parquet.

    config = (ILConfig()
              .dataset(paths=["/abs/runs/demos"], updates_per_iteration=20)
              .rl_module(model_config={"encoder": "minilm"})
              .training(lr=1e-4, train_batch_size_per_learner=32))
    algo = config.build_algo()
    for _ in range(10):
        result = algo.train()   # result["learners"]["default_policy"]["losses/bc"], ...

Why a custom offline algorithm and not RLlib's ``BC``: RLlib's BC reads episodes or
samples whose observations are already numbers (its files must hold ``obs``/``new_obs``
columns), while our stored trajectories are text (state, candidate texts, chosen index,
one row per step). Tokenization happens at training time in the
prelearner with the env's own :class:`~rl_app.env.observation.ObservationEncoder`, so one
data set serves any encoder, token length or candidate cap, and offline observations
equal what the env produces. The same path (config, prelearner, ``training_step``,
checkpoints) carries DPO's preference pairs, which are not episodes at all; only the
learner's loss and the prelearner's column mapping differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from rl_app.algorithms.offline import OfflineChoiceAlgorithm, OfflineChoiceConfig
from rl_app.settings import ILSettings, ModelSettings, ObservationSettings

__all__ = ["ILConfig", "IL"]


class ILConfig(OfflineChoiceConfig):
    """:class:`~rl_app.algorithms.offline.OfflineChoiceConfig` with the cross-entropy learner.

    Defaults: ``lr`` 1e-4 (pretrained encoders; a randomly initialised ``tiny`` one learns
    faster at 1e-3), gradient norm clipped at 1.0, batch 32 per learner, 10 updates per
    ``train()``.
    """

    def __init__(self, algo_class: Optional[type] = None) -> None:
        super().__init__(algo_class=algo_class or IL)
        self.grad_clip = 1.0

    @classmethod
    def from_settings(cls, settings: ILSettings, *, data: Sequence[str], model: ModelSettings,
                      observations: ObservationSettings, init_checkpoint: Optional[str] = None,
                      dropout: Optional[float] = None) -> "ILConfig":
        """The config of the ``il`` section's settings: from ``init_checkpoint`` (with ``dropout``
        if given) or a new ``model``, reading ``data`` as ``observations`` say."""
        layout = observations.observation_layout
        model_config: dict[str, Any] = model.to_model_config(layout)
        if init_checkpoint:
            model_config = {"init_checkpoint": str(Path(init_checkpoint).absolute())}
            if dropout is not None:
                model_config["dropout"] = dropout
        config = (cls()
                  .dataset(paths=list(data), updates_per_iteration=int(settings.updates_per_iteration))
                  .observations(**observations.to_kwargs(frozen_cache=model.cached(layout),
                                                         init_checkpoint=init_checkpoint))
                  .rl_module(model_config=model_config)
                  .training(lr=settings.resolved_lr(model, layout), train_batch_size_per_learner=int(settings.batch_size),
                            lr_warmup_updates=int(settings.lr_warmup_updates)))
        return settings.learners_of(config)

    def get_default_learner_class(self):
        from rl_app.algorithms.il.il_torch_learner import ILTorchLearner

        return ILTorchLearner


class IL(OfflineChoiceAlgorithm):
    """Behaviour cloning of ``WebShopChoiceModule`` (see the module docstring)."""

    @classmethod
    def get_default_config(cls) -> ILConfig:
        return ILConfig()
