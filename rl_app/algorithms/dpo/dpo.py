"""Offline Direct Preference Optimization of the choice policy (Feng & Feng 2024).

    config = (DPOConfig()
              .dataset(paths=["/abs/runs/pairs"], updates_per_iteration=50)
              .rl_module(model_config={"encoder": "minilm", "init_checkpoint": "/abs/runs/il/policy"})
              .dpo(beta=0.1, loss_type="sigmoid")
              .training(lr=1e-5, train_batch_size_per_learner=32))
    algo = config.build_algo()
    result = algo.train()   # result["learners"]["default_policy"]["rewards/margins"], ...

The policy starts from the IL checkpoint (``init_checkpoint``) and the reference pi_ref is
that same frozen IL agent. Its log-probabilities of each pair's chosen and rejected action
are precomputed in the pair file (:mod:`rl_app.data.pairs`), so the learner holds one BERT
and runs one forward pass per batch; with the policy equal to the reference, the first
sigmoid loss is exactly ln 2 (tested).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.columns import Columns

from rl_app.algorithms.dpo.loss import LOSS_TYPES, DPOLossType
from rl_app.algorithms.offline import ChoiceOfflinePreLearner, OfflineChoiceAlgorithm, OfflineChoiceConfig
from rl_app.policy.rl_module import OBS_KEYS

__all__ = ["DPOConfig", "DPO", "DPOPreLearner", "PAIR_COLUMNS"]

# Train-batch columns beside the observation (flat keys "default_policy/<name>").
PAIR_COLUMNS = ("chosen", "rejected", "ref_chosen_logp", "ref_rejected_logp")


class DPOConfig(OfflineChoiceConfig):
    """Offline DPO settings; defaults follow the paper's sigmoid loss with beta 0.1."""

    def __init__(self, algo_class: Optional[type] = None) -> None:
        super().__init__(algo_class=algo_class or DPO)
        self.beta = 0.1
        self.loss_type: DPOLossType = "sigmoid"
        self.label_smoothing = 0.0
        self.lr = 1e-5
        self.grad_clip = 1.0
        self.prelearner_class = DPOPreLearner

    def dpo(self, *, beta: float = NotProvided, loss_type: DPOLossType = NotProvided,
            label_smoothing: float = NotProvided) -> "DPOConfig":
        """The preference loss.

        Args:
            beta: inverse temperature of the implicit reward ``beta * log(pi / pi_ref)``.
            loss_type: ``sigmoid`` (the paper), ``ipo``, ``hinge`` or ``robust``
                (:func:`~rl_app.algorithms.dpo.loss.dpo_loss` gives the formulas).
            label_smoothing: assumed preference-label noise (cDPO / robust DPO), in [0, 0.5).
        """
        if beta is not NotProvided:
            self.beta = float(beta)
        if loss_type is not NotProvided:
            self.loss_type = loss_type
        if label_smoothing is not NotProvided:
            self.label_smoothing = float(label_smoothing)
        return self

    def get_default_learner_class(self):
        from rl_app.algorithms.dpo.dpo_torch_learner import DPOTorchLearner

        return DPOTorchLearner

    def validate(self) -> None:
        super().validate()
        if self.beta <= 0:
            self._value_error(f"beta must be > 0 (got {self.beta}): fix config.dpo(beta=...)")
        if self.loss_type not in LOSS_TYPES:
            self._value_error(f"unknown loss_type {self.loss_type!r}: config.dpo(loss_type=one of {LOSS_TYPES})")
        if not 0.0 <= self.label_smoothing < 0.5:
            self._value_error(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not isinstance(self.prelearner_class, type) or not issubclass(self.prelearner_class, DPOPreLearner):
            self._value_error("DPO reads preference pairs: keep config.offline_data(prelearner_class=DPOPreLearner)")
        model_config = self.get_rl_module_spec().model_config or {}
        if not model_config.get("init_checkpoint"):
            self._value_error("DPO starts from the reference (IL) policy: set "
                              "config.rl_module(model_config={..., 'init_checkpoint': <IL policy dir>})")


class DPOPreLearner(ChoiceOfflinePreLearner):
    """Pair rows (rl_app.data.pairs) -> observation + chosen/rejected indices + pi_ref log-probs."""

    def module_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        missing = [c for c in ("state", "candidate_texts") + PAIR_COLUMNS if c not in batch]
        if missing:
            raise ValueError(f"not a preference-pair batch: missing columns {missing} "
                             "(build pairs with python -m rl_app.data.pairs)")
        obs = self.encoder.encode_batch(list(batch["state"]), [list(c) for c in batch["candidate_texts"]])
        return {
            Columns.OBS: {key: obs[key] for key in OBS_KEYS},
            "chosen": np.asarray(batch["chosen"], dtype=np.int64),
            "rejected": np.asarray(batch["rejected"], dtype=np.int64),
            "ref_chosen_logp": np.asarray(batch["ref_chosen_logp"], dtype=np.float32),
            "ref_rejected_logp": np.asarray(batch["ref_rejected_logp"], dtype=np.float32),
        }


class DPO(OfflineChoiceAlgorithm):
    """Offline DPO of ``WebShopChoiceModule`` from preference pairs (see the module docstring)."""

    @classmethod
    def get_default_config(cls) -> DPOConfig:
        return DPOConfig()
