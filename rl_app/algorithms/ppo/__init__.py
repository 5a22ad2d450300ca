"""PPO on WebShop: RLlib's PPO with the shared choice RLModule, from the IL checkpoint."""

from rl_app.algorithms.ppo.algorithm import WebShopPPO
from rl_app.algorithms.ppo.config import WebShopPPOConfig
from rl_app.algorithms.ppo.learner import WebShopPPOTorchLearner

__all__ = ["WebShopPPO", "WebShopPPOConfig", "WebShopPPOTorchLearner"]
