"""Hand-built WebShop-style observations and a tiny encoder, so policy tests need no env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

K_MAX, STATE_LEN, ACTION_LEN = 6, 40, 10
CLS, SEP = 101, 102
TINY = {"encoder": "tiny"}


def webshop_spaces(k: int = K_MAX, state_len: int = STATE_LEN, action_len: int = ACTION_LEN):
    """The observation/action spaces WebShopEnv declares, at test sizes."""
    high = np.iinfo(np.int32).max
    obs = gym.spaces.Dict({
        "state_ids": gym.spaces.Box(0, high, (state_len,), np.int32),
        "action_ids": gym.spaces.Box(0, high, (k, action_len), np.int32),
        "action_mask": gym.spaces.Box(0, 1, (k,), np.int8),
    })
    return obs, gym.spaces.Discrete(k)


def _sequence(rng: np.random.Generator, length: int, width: int) -> np.ndarray:
    row = np.zeros(width, dtype=np.int32)
    row[0] = CLS
    row[1:length - 1] = rng.integers(1000, 29000, length - 2)
    row[length - 1] = SEP
    return row


def make_obs(batch: int = 4, *, k: int = K_MAX, state_len: int = STATE_LEN, action_len: int = ACTION_LEN,
             seed: int = 0, n_valid=None) -> dict[str, np.ndarray]:
    """A batch of observations: random [CLS] ... [SEP] ids, 0-padded, the first n candidates valid.

    ``n_valid`` is a list of valid counts per state (default: random in [1, k]); the longest
    state and candidate stay shorter than the padded width so trimming has work to do.
    """
    rng = np.random.default_rng(seed)
    counts = list(n_valid) if n_valid is not None else list(rng.integers(1, k + 1, batch))
    state = np.stack([_sequence(rng, int(rng.integers(4, state_len - 4)), state_len) for _ in range(batch)])
    actions = np.zeros((batch, k, action_len), dtype=np.int32)
    mask = np.zeros((batch, k), dtype=np.int8)
    for b, count in enumerate(counts):
        for i in range(count):
            actions[b, i] = _sequence(rng, int(rng.integers(3, action_len - 1)), action_len)
        mask[b, :count] = 1
    return {"state_ids": state, "action_ids": actions, "action_mask": mask}


def as_tensors(obs: dict[str, np.ndarray]):
    import torch

    return {key: torch.as_tensor(value) for key, value in obs.items()}


@pytest.fixture(scope="session")
def tiny_model_factory():
    """Builds tiny choice models (seeded encoder; heads seeded per call)."""
    import torch

    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.encoder import EncoderConfig

    def build(seed: int = 0, **kwargs) -> ChoiceModel:
        torch.manual_seed(seed)
        return ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"), **kwargs)).eval()

    return build


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine an OpenMP
    team waiting for a descheduled thread makes each op ~100x slower; restore afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
