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

Pairs come at two levels (``config.dpo(pair_level=...)``; ``"auto"``, the default, reads it
from the pair files' columns):

* ``step`` (Feng & Feng 2024): one state, chosen vs rejected action (:mod:`rl_app.data.pairs`);
* ``trajectory`` (ETO, Song et al. 2024): expert vs agent trajectory on the same goal
  (:mod:`rl_app.data.trajectory_pairs`); log pi(traj) = sum_t log pi(a_t | s_t), trajectories
  padded to ``max_trajectory_steps`` (default: the longest in the data) with a step mask
  (:mod:`rl_app.algorithms.dpo.trajectory`). ``train_batch_size_per_learner`` counts pairs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence

import numpy as np
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.columns import Columns

from rl_app.algorithms.dpo.loss import LOSS_TYPES, DPOLossType
from rl_app.algorithms.dpo.trajectory import encode_trajectory_pairs
from rl_app.algorithms.offline import ChoiceOfflinePreLearner, OfflineChoiceAlgorithm, OfflineChoiceConfig
from rl_app.data.files import read_summary
from rl_app.data.io import parquet_columns
from rl_app.data.pairs import PAIR_LEVELS
from rl_app.data.trajectory_pairs import longest_trajectory
from rl_app.policy.checkpoint import TOKEN_LENGTH_KEYS, saved_token_lengths
from rl_app.settings import DPOSettings, ObservationSettings

__all__ = ["DPOConfig", "DPO", "DPOPreLearner", "PAIR_COLUMNS", "PairLevel", "PAIR_LEVELS", "pair_level_of"]

logger = logging.getLogger(__name__)

# Train-batch columns beside the observation (flat keys "default_policy/<name>").
PAIR_COLUMNS = ("chosen", "rejected", "ref_chosen_logp", "ref_rejected_logp")
PairLevel = Literal["auto", "step", "trajectory"]
# A column only trajectory pair files have (rl_app.data.trajectory_pairs.TRAJECTORY_PAIR_SCHEMA).
_TRAJECTORY_MARKER = "chosen_states"


def pair_level_of(path: str) -> Literal["step", "trajectory"]:
    """``trajectory`` if the parquet data at ``path`` holds trajectory pairs, else ``step``."""
    return "trajectory" if _TRAJECTORY_MARKER in parquet_columns(Path(path), what="pair data") else "step"


class DPOConfig(OfflineChoiceConfig):
    """Offline DPO settings; defaults follow the paper's sigmoid loss with beta 0.1."""

    def __init__(self, algo_class: Optional[type] = None) -> None:
        super().__init__(algo_class=algo_class or DPO)
        defaults = DPOSettings()  # the defaults' one owner (rl_app.settings)
        self.beta = defaults.beta
        self.loss_type: DPOLossType = defaults.loss_type
        self.label_smoothing = defaults.label_smoothing
        self.nll_coeff = defaults.nll_coeff
        self.pair_level: PairLevel = defaults.pair_level
        self.max_trajectory_steps: Optional[int] = defaults.max_trajectory_steps
        self.lr = defaults.lr
        self.grad_clip = 1.0
        self.prelearner_class = DPOPreLearner

    @classmethod
    def from_settings(cls, settings: DPOSettings, *, data: Sequence[str], init_checkpoint: str,
                      observations: ObservationSettings, layout: str) -> "DPOConfig":
        """The config of the ``dpo`` section's settings; ``layout`` is the reference's (DPO reads
        the data as it does)."""
        config = (cls()
                  .dataset(paths=list(data), updates_per_iteration=int(settings.updates_per_iteration))
                  .observations(**observations.to_kwargs(layout=layout, frozen_cache=layout == "segments",
                                                         init_checkpoint=init_checkpoint))
                  .rl_module(model_config={"init_checkpoint": str(Path(init_checkpoint).absolute())})
                  .dpo(beta=float(settings.beta), loss_type=settings.loss_type,
                       label_smoothing=float(settings.label_smoothing), nll_coeff=float(settings.nll_coeff),
                       pair_level=settings.pair_level, max_trajectory_steps=settings.max_trajectory_steps)
                  .training(lr=float(settings.lr), train_batch_size_per_learner=int(settings.batch_size),
                            lr_warmup_updates=int(settings.lr_warmup_updates)))
        return settings.learners_of(config)

    def dpo(self, *, beta: float = NotProvided, loss_type: DPOLossType = NotProvided,
            label_smoothing: float = NotProvided, nll_coeff: float = NotProvided,
            pair_level: PairLevel = NotProvided,
            max_trajectory_steps: Optional[int] = NotProvided) -> "DPOConfig":
        """The preference loss and the kind of pairs it reads.

        Args:
            beta: inverse temperature of the implicit reward ``beta * log(pi / pi_ref)``.
            loss_type: ``sigmoid`` (the paper), ``ipo``, ``hinge`` or ``robust``
                (:func:`~rl_app.algorithms.dpo.loss.dpo_loss` gives the formulas).
            label_smoothing: assumed preference-label noise (cDPO / robust DPO), in [0, 0.5).
            nll_coeff: alpha of an added negative log-likelihood term on the chosen actions,
                ``L = L_DPO + alpha * NLL(chosen)`` (RPO: Pang et al. 2024, "Iterative Reasoning
                Preference Optimization", eq. 2; the NLL is per step). DPO alone may lower the
                chosen log-probs too (it only needs the margin to grow) and move mass to actions
                no pair covers; the NLL term anchors the demonstrated actions. 0 (default) is the
                paper's plain DPO.
            pair_level: ``step`` (rl_app.data.pairs), ``trajectory`` (rl_app.data.trajectory_pairs)
                or ``auto`` (default: from the pair files' columns). An explicit level must
                match the data.
            max_trajectory_steps: T, the steps each trajectory is padded to (trajectory
                pairs only); None (default) = the longest trajectory in the data.
        """
        if beta is not NotProvided:
            self.beta = float(beta)
        if loss_type is not NotProvided:
            self.loss_type = loss_type
        if label_smoothing is not NotProvided:
            self.label_smoothing = float(label_smoothing)
        if nll_coeff is not NotProvided:
            self.nll_coeff = float(nll_coeff)
        if pair_level is not NotProvided:
            self.pair_level = pair_level
        if max_trajectory_steps is not NotProvided:
            self.max_trajectory_steps = None if max_trajectory_steps is None else int(max_trajectory_steps)
        return self

    def data_pair_level(self) -> Literal["step", "trajectory"]:
        """The level of the pair files in ``input_`` (they must all agree)."""
        local = [p for p in self.input_ or [] if "://" not in str(p)]
        if len(local) != len(self.input_ or []):
            if self.pair_level == "auto":
                raise ValueError("pair_level='auto' reads the pair files, which are not local: set "
                                 "config.dpo(pair_level='step' or 'trajectory')")
            return self.pair_level
        levels = {p: pair_level_of(p) for p in local}
        if len(set(levels.values())) > 1:
            raise ValueError(f"the data mixes step and trajectory pairs ({levels}): train on one kind at a time")
        return next(iter(levels.values()))

    def resolved_pair_level(self) -> Literal["step", "trajectory"]:
        """``pair_level``, with ``auto`` read from the data."""
        return self.data_pair_level() if self.pair_level == "auto" else self.pair_level

    def trajectory_steps(self) -> int:
        """T: ``max_trajectory_steps``, or the longest trajectory in the (local) data."""
        if self.max_trajectory_steps is not None:
            return self.max_trajectory_steps
        if any("://" in str(p) for p in self.input_ or []):
            raise ValueError("remote trajectory pairs: set config.dpo(max_trajectory_steps=...) explicitly")
        return longest_trajectory(self.input_ or [])

    def get_default_learner_class(self):
        from rl_app.algorithms.dpo.dpo_torch_learner import DPOTorchLearner

        return DPOTorchLearner

    def validate(self) -> None:
        """The settings' values (the data and the reference policy are read by :meth:`check_data`,
        when the algorithm builds)."""
        super().validate()
        if self.beta <= 0:
            self._value_error(f"beta must be > 0 (got {self.beta}): fix config.dpo(beta=...)")
        if self.loss_type not in LOSS_TYPES:
            self._value_error(f"unknown loss_type {self.loss_type!r}: config.dpo(loss_type=one of {LOSS_TYPES})")
        if self.nll_coeff < 0:
            self._value_error(f"nll_coeff must be >= 0, got {self.nll_coeff}: fix config.dpo(nll_coeff=...)")
        if not 0.0 <= self.label_smoothing < 0.5:
            self._value_error(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not isinstance(self.prelearner_class, type) or not issubclass(self.prelearner_class, DPOPreLearner):
            self._value_error("DPO reads preference pairs: keep config.offline_data(prelearner_class=DPOPreLearner)")
        model_config = self.get_rl_module_spec().model_config or {}
        if not model_config.get("init_checkpoint"):
            self._value_error("DPO starts from the reference (IL) policy: set "
                              "config.rl_module(model_config={..., 'init_checkpoint': <IL policy dir>})")
        if self.pair_level not in PAIR_LEVELS:
            self._value_error(f"unknown pair_level {self.pair_level!r}: config.dpo(pair_level=one of {PAIR_LEVELS})")
        if self.max_trajectory_steps is not None and self.max_trajectory_steps < 1:
            self._value_error(f"max_trajectory_steps must be >= 1 (or None), got {self.max_trajectory_steps}")

    def check_data(self) -> None:
        """What :meth:`validate` cannot see without reading files: the pair files' level and
        trajectory lengths against the settings, and the reference policy's token lengths
        (ValueError naming the fix). :class:`DPO` calls it when it builds."""
        init_checkpoint = (self.get_rl_module_spec().model_config or {}).get("init_checkpoint")
        if init_checkpoint:
            self._validate_reference_lengths(str(init_checkpoint))
            self._warn_on_other_reference(str(init_checkpoint))
        self._validate_pair_level()

    def _validate_pair_level(self) -> None:
        if self.pair_level not in PAIR_LEVELS:
            return  # validate() refuses it
        try:
            data_level = self.data_pair_level()
        except (ValueError, FileNotFoundError) as e:
            self._value_error(str(e))
            return
        if self.pair_level != "auto" and data_level != self.pair_level:
            self._value_error(f"config.dpo(pair_level={self.pair_level!r}) but the data {self.input_} holds "
                              f"{data_level}-level pairs: set pair_level={data_level!r} or 'auto'")
        if data_level == "trajectory" and self.max_trajectory_steps is not None:
            longest = longest_trajectory([p for p in self.input_ if "://" not in str(p)])
            if longest > self.max_trajectory_steps:
                self._value_error(f"the data has a {longest}-step trajectory but max_trajectory_steps="
                                  f"{self.max_trajectory_steps}: set config.dpo(max_trajectory_steps>={longest}) or "
                                  "None, or rebuild the pairs with --max-steps")

    def _validate_reference_lengths(self, init_checkpoint: str) -> None:
        # The pairs' pi_ref log-probs were scored at the reference policy's own lengths
        # (ChoicePolicy tokenizes as the policy was trained). Tokenized otherwise here, the
        # starting policy sees other ids than it was scored on: pi != pi_ref before the first
        # update (the first loss is not ln 2) and every log-ratio carries that offset.
        try:
            saved = saved_token_lengths(init_checkpoint)
        except (OSError, ValueError):
            return  # unreadable: the module's load reports it with its own message
        ours = {key: getattr(self, key) for key in TOKEN_LENGTH_KEYS}
        if any(ours[key] != value for key, value in saved.items()):
            fix = ", ".join(f"{key}={value}" for key, value in saved.items())
            self._value_error(f"the reference policy {init_checkpoint} acts and scored its pairs at {saved}, but "
                              f"this config tokenizes at {ours}: pi and pi_ref would see different inputs. "
                              f"Set config.observations({fix}) (the DPO command line does by default)")

    def _warn_on_other_reference(self, init_checkpoint: str) -> None:
        # The stored pi_ref log-probs are only the reference's if the policy starts from it
        # (then the first sigmoid loss is ln 2); a different start is allowed but unusual.
        for path in self.input_ or []:
            if "://" in str(path):
                continue
            reference = (read_summary(path) or {}).get("reference")
            if reference and Path(reference).expanduser().resolve() != Path(init_checkpoint).expanduser().resolve():
                logger.warning("pairs at %s were scored by reference %s, but the policy starts from %s: "
                               "the DPO log-ratios are then not relative to the starting policy",
                               path, reference, init_checkpoint)


class DPOPreLearner(ChoiceOfflinePreLearner):
    """Pair rows -> the DPO train batch.

    Step pairs (rl_app.data.pairs): observation + chosen/rejected indices + pi_ref log-probs.
    Trajectory pairs (rl_app.data.trajectory_pairs): both trajectories padded to T steps,
    with step actions and a step mask (:func:`~rl_app.algorithms.dpo.trajectory.encode_trajectory_pairs`).
    """

    def __init__(self, *, config: "DPOConfig", **kwargs: Any) -> None:
        super().__init__(config=config, **kwargs)
        self.pair_level = config.resolved_pair_level()
        # T is fixed once per run (not per batch): every batch RLlib stacks must have one shape.
        self.max_steps = config.trajectory_steps() if self.pair_level == "trajectory" else None

    def module_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        if self.pair_level == "trajectory":
            return encode_trajectory_pairs(batch, encoder=self.encoder, max_steps=self.max_steps)
        missing = [c for c in ("state", "candidate_texts") + PAIR_COLUMNS if c not in batch]
        if missing:
            raise ValueError(f"not a preference-pair batch: missing columns {missing} "
                             "(build pairs with python -m rl_app.data.pairs)")
        obs = self.encoder.encode_batch(list(batch["state"]), [list(c) for c in batch["candidate_texts"]])
        return {
            Columns.OBS: {key: obs[key] for key in self.encoder.keys},
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

    def setup(self, config: DPOConfig) -> None:
        config.check_data()  # the pair files and the reference policy, before any worker starts
        super().setup(config)
