"""The module inside RLlib PPO: sampling, GAE, the value loss and an Algorithm checkpoint."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from .conftest import TINY, webshop_spaces

K, STATE, ACTION = 4, 16, 6


class _ToyShop(gym.Env):
    """WebShop-shaped observations; reward 1 for choosing candidate 0, 3 steps per episode."""

    def __init__(self, config=None):
        self.observation_space, self.action_space = webshop_spaces(K, STATE, ACTION)

    def _obs(self):
        rng = self.np_random
        state = np.zeros(STATE, np.int32)
        state[:8] = rng.integers(1000, 2000, 8)
        actions = np.zeros((K, ACTION), np.int32)
        count = int(rng.integers(2, K + 1))
        actions[:count, :4] = rng.integers(1000, 2000, (count, 4))
        mask = np.zeros(K, np.int8)
        mask[:count] = 1
        return {"state_ids": state, "action_ids": actions, "action_mask": mask}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), float(action == 0), self.t >= 3, False, {}


@pytest.mark.slow
def test_ppo_trains_with_the_module_and_gae_values_carry_no_graph(ray_session, tmp_path):
    from ray.rllib.algorithms.ppo import PPOConfig

    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.policy.rl_module import module_spec

    env = _ToyShop()
    config = (PPOConfig().environment(_ToyShop).env_runners(num_env_runners=0)
              .rl_module(rl_module_spec=module_spec(env.observation_space, env.action_space, TINY))
              .training(train_batch_size_per_learner=60, minibatch_size=30, num_epochs=1, lr=1e-3))
    algo = config.build_algo()
    try:
        module = algo.learner_group._learner.module["default_policy"]
        calls = []
        original = module.compute_values

        def recording(batch, embeddings=None):
            values = original(batch, embeddings)
            calls.append((embeddings is None, torch.is_grad_enabled(), values.requires_grad))
            return values

        module.compute_values = recording
        result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(learner["vf_loss"]) and np.isfinite(learner["policy_loss"])
        gae_calls = [c for c in calls if c[0]]
        loss_calls = [c for c in calls if not c[0]]
        # GAE calls with grad mode on and gets no graph; the value loss gets one.
        assert gae_calls and all(grad_on and not requires_grad for _, grad_on, requires_grad in gae_calls)
        assert loss_calls and all(requires_grad for _, _, requires_grad in loss_calls)
        path = algo.save_to_path(str(tmp_path / "algo"))
    finally:
        algo.stop()
    policy = ChoicePolicy.from_checkpoint(path)
    index, probs = policy.act("i want a blue shirt", ["click[a]", "click[b]"])
    assert index in (0, 1) and probs.sum() == pytest.approx(1.0)
