"""PPO's torch learner plus an optional behaviour-cloning term on demonstrations.

WebShop's RL baseline (Yao et al. 2022, "IL+RL") keeps the imitation loss while it trains
with policy gradients so the policy does not drift from sensible shopping; with
``il_coeff > 0`` the loss is ``L_PPO + il_coeff * L_IL`` where ``L_IL`` is
:func:`~rl_app.algorithms.il.loss.bc_loss` on a random minibatch of demonstration steps.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns

from rl_app.algorithms.il.loss import bc_loss
from rl_app.algorithms.rllib_patches import PatchedLearnerMixin
from rl_app.algorithms.warmup import LRWarmupLearnerMixin

__all__ = ["WebShopPPOTorchLearner", "load_demo_arrays"]

# Demonstration steps tokenized into learner memory at most (about 10 KB each).
MAX_DEMO_STEPS = 20_000


def load_demo_arrays(path: str, env_config: dict, *, max_steps: int = MAX_DEMO_STEPS, seed: int = 0
                     ) -> dict[str, np.ndarray]:
    """Tokenized demonstration steps (obs arrays + ``actions``) with the env's encoder settings."""
    from rl_app.data.io import read_trajectories
    from rl_app.env.observation import ObservationEncoder
    from rl_app.env.webshop_env import WebShopEnvConfig

    env = WebShopEnvConfig.from_dict(env_config)
    frame = read_trajectories(path)
    frame = frame[frame["candidate_texts"].map(len) <= env.episode.k_max]
    if len(frame) == 0:
        raise ValueError(f"{path}: no demonstration step fits k_max={env.episode.k_max}")
    if len(frame) > max_steps:
        frame = frame.sample(n=max_steps, random_state=seed)
    encoder = ObservationEncoder(env.tokenizer, k_max=env.episode.k_max, max_state_tokens=env.max_state_tokens,
                                 max_action_tokens=env.max_action_tokens, layout=env.observation_layout)
    arrays = encoder.encode_batch(list(frame["state"]), [list(c) for c in frame["candidate_texts"]])
    arrays["actions"] = frame["chosen"].to_numpy(dtype=np.int64)
    return arrays


class WebShopPPOTorchLearner(LRWarmupLearnerMixin, PatchedLearnerMixin, PPOTorchLearner):
    """PPOTorchLearner; adds ``il_coeff * L_IL`` when the config asks for it."""

    def build(self) -> None:
        super().build()
        self._demo = None
        if getattr(self.config, "il_coeff", 0.0) > 0:
            self._demo = load_demo_arrays(self.config.il_data, self.config.webshop_env_config)
            self._demo_rng = np.random.default_rng(0)

    def compute_loss_for_module(self, *, module_id: str, config: Any, batch: Dict[str, Any],
                                fwd_out: Dict[str, Any]) -> torch.Tensor:
        loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        if self._demo is None:
            return loss
        n = len(self._demo["actions"])
        idx = self._demo_rng.choice(n, size=min(config.il_batch_size, n), replace=False)
        module = self.module[module_id].unwrapped()
        device = next(module.parameters()).device
        obs = {k: torch.as_tensor(self._demo[k][idx], device=device) for k in self._demo if k != "actions"}
        out = module.forward_train({Columns.OBS: obs})
        il = bc_loss(out[Columns.ACTION_DIST_INPUTS], torch.as_tensor(self._demo["actions"][idx], device=device))
        self.metrics.log_dict({"losses/il": il.loss.detach(), "metrics/il_accuracy": il.accuracy},
                              key=module_id, window=1)
        return loss + config.il_coeff * il.loss
