"""``WebShopPPOConfig``: RLlib's PPOConfig with WebShop's env, module and the paper's extras.

Feng & Feng 2024 compare DPO against PPO (clipped objective, advantage R - V(o), entropy
bonus) started from the same IL checkpoint; WebShop's own RL baseline adds an IL term on
demonstrations and discounts with gamma = 0.9. All of these are options here:

    config = (WebShopPPOConfig()
              .webshop(env_config={"catalogue": "webshop", "split": "train"},
                       model_config={"encoder": "minilm"}, init_checkpoint="runs/il/policy")
              .il_auxiliary(coeff=0.1, data="runs/demos")
              .env_runners(num_env_runners=4, num_envs_per_env_runner=4))
    algo = config.build_algo()

Env runners restart after a crash (``fault_tolerance``) and training goes on; the learner
uses a GPU when one is present.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import gymnasium as gym
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo import PPOConfig

from rl_app.algorithms.notices import silence_harmless_notices
from rl_app.algorithms.rllib_patches import PatchedConfigMixin
from rl_app.algorithms.warmup import LRWarmupConfigMixin
from rl_app.env.observation import observation_space
from rl_app.env.webshop_env import WebShopEnv, WebShopEnvConfig
from rl_app.policy.rl_module import module_spec
from rl_app.settings import PPOSettings

__all__ = ["WebShopPPOConfig", "WEBSHOP_GAMMA"]

# WebShop's RL baseline discount (baseline_models/train_rl.py, gamma 0.9).
WEBSHOP_GAMMA = 0.9


class WebShopPPOConfig(PatchedConfigMixin, LRWarmupConfigMixin, PPOConfig):
    """PPOConfig preset for WebShop; every RLlib PPO option still applies."""

    def __init__(self, algo_class=None) -> None:
        from rl_app.algorithms.ppo.algorithm import WebShopPPO
        from rl_app.algorithms.ppo.learner import WebShopPPOTorchLearner

        super().__init__(algo_class=algo_class or WebShopPPO)

        self.webshop_env_config: dict[str, Any] = {}
        self.webshop_model_config: dict[str, Any] = {}
        defaults = PPOSettings()  # the defaults' one owner (rl_app.settings)
        self.il_coeff = defaults.il_coeff
        self.il_data: Optional[str] = defaults.il_data
        self.il_batch_size = 32
        # PPO as the paper used it, WebShop's discount; small batches suit the long BERT inputs.
        self.gamma = WEBSHOP_GAMMA
        self.lambda_ = 0.95
        self.entropy_coeff = defaults.entropy
        self.lr = defaults.lr
        self.train_batch_size_per_learner = defaults.train_batch
        self.minibatch_size = defaults.minibatch
        self.num_epochs = defaults.epochs
        self._learner_class = WebShopPPOTorchLearner
        self.restart_failed_env_runners = True
        self.max_num_env_runner_restarts = 100
        self.delay_between_env_runner_restarts_s = 1.0
        self.env_runner_health_probe_timeout_s = 60.0
        self.num_gpus_per_learner = 1 if _cuda_available() else 0
        self.precision = defaults.precision  # bf16 autocast on a bf16-capable GPU learner (rllib_patches.precision)
        self.lr_warmup_updates = defaults.lr_warmup_updates  # linear warmup over N updates (rl_app.algorithms.warmup)
        self._apply_webshop()  # the embedded synthetic shop until .webshop() says otherwise

    @classmethod
    def from_settings(cls, settings: PPOSettings, *, env_config: Mapping[str, Any], model_config: Mapping[str, Any],
                      init_checkpoint: Optional[str], num_env_runners: int,
                      num_gpus_per_learner: Optional[float] = None) -> "WebShopPPOConfig":
        """The config of the ``ppo`` section's settings (``num_gpus_per_learner`` None: the
        config's own choice)."""
        config = (cls()
                  .webshop(env_config=dict(env_config), model_config=dict(model_config), init_checkpoint=init_checkpoint)
                  .env_runners(num_env_runners=int(num_env_runners), num_envs_per_env_runner=int(settings.envs_per_runner))
                  .training(train_batch_size_per_learner=int(settings.train_batch), minibatch_size=int(settings.minibatch),
                            num_epochs=int(settings.epochs), lr=float(settings.lr), entropy_coeff=float(settings.entropy),
                            lr_warmup_updates=int(settings.lr_warmup_updates))
                  .learners(precision=settings.precision)
                  .debugging(seed=int(settings.seed)))
        if num_gpus_per_learner is not None:
            config.learners(num_learners=0, num_gpus_per_learner=float(num_gpus_per_learner))
        if settings.il_coeff > 0:
            config.il_auxiliary(coeff=float(settings.il_coeff), data=settings.il_data)
        return config

    def webshop(self, *, env_config: Optional[Mapping[str, Any]] = NotProvided,
                model_config: Optional[Mapping[str, Any]] = NotProvided,
                init_checkpoint: Optional[str] = NotProvided) -> "WebShopPPOConfig":
        """Set the env and the module.

        Args:
            env_config: WebShopEnv settings (flat: catalogue, data_dir, split, max_steps, k_max,
                tokenizer, max_state_tokens, ...); validated now, not on the env runners.
            model_config: WebShopChoiceModule settings (encoder, dropout, ...); its
                tokenizer and lengths are made to match the env's.
            init_checkpoint: a saved policy (``ChoicePolicy.save_pretrained`` dir or a module
                checkpoint) to start from, e.g. the IL agent; absolute path.
        """
        if env_config is not NotProvided:
            cfg = dict(env_config or {})
            WebShopEnvConfig.from_dict(cfg)  # fail here, with the key named, not on a remote runner
            if cfg.get("catalogue") == "webshop":
                from rl_app.shop.catalogue import resolve_webshop_data_dir

                cfg["data_dir"] = str(resolve_webshop_data_dir(cfg.get("data_dir")))
            self.webshop_env_config = cfg
        if model_config is not NotProvided:
            self.webshop_model_config = dict(model_config or {})
        if init_checkpoint is not NotProvided:
            if init_checkpoint is not None and not os.path.exists(init_checkpoint):
                raise FileNotFoundError(f"init_checkpoint {init_checkpoint} does not exist")
            self.webshop_model_config["init_checkpoint"] = (
                os.path.abspath(init_checkpoint) if init_checkpoint else None)
        self._apply_webshop()
        return self

    def il_auxiliary(self, *, coeff: float = NotProvided, data: Optional[str] = NotProvided,
                     batch_size: int = NotProvided) -> "WebShopPPOConfig":
        """Add ``coeff * L_IL`` on demonstration steps to PPO's loss (WebShop's IL+RL).

        Args:
            coeff: weight of the behaviour-cloning term (0 turns it off).
            data: trajectory parquet (``rl_app.data``) whose steps are cloned.
            batch_size: demonstration steps per PPO minibatch.
        """
        if coeff is not NotProvided:
            self.il_coeff = float(coeff)
        if data is not NotProvided:
            self.il_data = os.path.abspath(data) if data else None
        if batch_size is not NotProvided:
            self.il_batch_size = int(batch_size)
        return self

    def _apply_webshop(self) -> None:
        env = WebShopEnvConfig.from_dict(self.webshop_env_config)
        obs_space = observation_space(env.episode.k_max, env.max_state_tokens, env.max_action_tokens,
                                      layout=env.observation_layout)
        model = {"max_state_tokens": env.max_state_tokens, "max_action_tokens": env.max_action_tokens,
                 **self.webshop_model_config}
        self.environment(env=WebShopEnv, env_config=self.webshop_env_config)
        self.rl_module(rl_module_spec=module_spec(obs_space, gym.spaces.Discrete(env.episode.k_max), model))

    def validate(self) -> None:
        silence_harmless_notices()  # RLlib's validate() logs its new-API-stack notice
        super().validate()
        if self.il_coeff < 0:
            raise ValueError(f"il_coeff must be >= 0, got {self.il_coeff}")
        if self.il_coeff > 0 and not self.il_data:
            raise ValueError("il_coeff > 0 needs demonstrations: call .il_auxiliary(data='runs/demos')")
        if self.il_data and not os.path.exists(self.il_data):
            raise ValueError(f"il_data {self.il_data} does not exist (make it with python -m rl_app.data.demos)")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False
