"""Offline DPO (Feng & Feng 2024): config + algorithm, learner, pure losses."""

from rl_app.algorithms.dpo.dpo import DPO, DPOConfig, DPOPreLearner
from rl_app.algorithms.dpo.loss import DPOLossOutput, dpo_loss

__all__ = ["DPO", "DPOConfig", "DPOPreLearner", "DPOLossOutput", "dpo_loss"]
