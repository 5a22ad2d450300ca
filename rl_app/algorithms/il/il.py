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

from typing import Optional

from rl_app.algorithms.offline import OfflineChoiceAlgorithm, OfflineChoiceConfig

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

    def get_default_learner_class(self):
        from rl_app.algorithms.il.il_torch_learner import ILTorchLearner

        return ILTorchLearner


class IL(OfflineChoiceAlgorithm):
    """Behaviour cloning of ``WebShopChoiceModule`` (see the module docstring)."""

    @classmethod
    def get_default_config(cls) -> ILConfig:
        return ILConfig()
