"""Offline DPO: step pairs (Feng & Feng 2024) or trajectory pairs (ETO, Song et al. 2024);
config + algorithm, learner, pure losses, trajectory batch helpers."""

from rl_app.algorithms.dpo.dpo import DPO, PAIR_LEVELS, DPOConfig, DPOPreLearner, pair_level_of
from rl_app.algorithms.dpo.loss import DPOLossOutput, dpo_loss

__all__ = ["DPO", "DPOConfig", "DPOPreLearner", "DPOLossOutput", "dpo_loss", "PAIR_LEVELS", "pair_level_of"]
