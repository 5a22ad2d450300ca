"""Text -> the numeric observation RLlib sees; shared by the env and the offline data path.

Keeping one encoder for both guarantees that IL/DPO train on exactly the observations the
env produces at rollout time (same tokenizer, lengths, padding and candidate layout).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import gymnasium as gym
import numpy as np

__all__ = ["ObservationEncoder", "observation_space"]

_TOKEN_CACHE_SIZE = 50_000


def observation_space(k_max: int, max_state_tokens: int, max_action_tokens: int) -> gym.spaces.Dict:
    """The Dict space of :class:`~rl_app.env.webshop_env.WebShopEnv` observations."""
    high = np.iinfo(np.int32).max
    return gym.spaces.Dict({
        "state_ids": gym.spaces.Box(0, high, (max_state_tokens,), np.int32),
        "action_ids": gym.spaces.Box(0, high, (k_max, max_action_tokens), np.int32),
        "action_mask": gym.spaces.Box(0, 1, (k_max,), np.int8),
    })


class ObservationEncoder:
    """Tokenizes a state and its candidates into fixed-shape, 0-padded int arrays.

    The tokenizer loads lazily (first encode), so building one costs nothing; candidate
    rows are cached (results and option buttons repeat across steps and episodes).
    """

    def __init__(self, tokenizer: str = "minilm", *, k_max: int = 64, max_state_tokens: int = 512,
                 max_action_tokens: int = 32) -> None:
        if k_max < 1 or max_state_tokens < 8 or max_action_tokens < 4:
            raise ValueError(f"need k_max >= 1, max_state_tokens >= 8, max_action_tokens >= 4; got "
                             f"{k_max}, {max_state_tokens}, {max_action_tokens}")
        self.tokenizer_name = tokenizer
        self.k_max = k_max
        self.max_state_tokens = max_state_tokens
        self.max_action_tokens = max_action_tokens
        self._tokenizer = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from rl_app.policy.encoder import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    @property
    def space(self) -> gym.spaces.Dict:
        return observation_space(self.k_max, self.max_state_tokens, self.max_action_tokens)

    def _row(self, text: str, max_len: int) -> np.ndarray:
        ids = self.tokenizer(text, truncation=True, max_length=max_len)["input_ids"]
        row = np.zeros(max_len, dtype=np.int32)
        row[: len(ids)] = ids
        return row

    def _action_row(self, text: str) -> np.ndarray:
        row = self._cache.get(text)
        if row is None:
            row = self._cache[text] = self._row(text, self.max_action_tokens)
            if len(self._cache) > _TOKEN_CACHE_SIZE:
                self._cache.popitem(last=False)
        return row

    def encode(self, state: str, candidate_texts: Sequence[str]) -> dict[str, np.ndarray]:
        """One observation; candidates beyond ``k_max`` are an error (cap them in the env)."""
        if len(candidate_texts) > self.k_max:
            raise ValueError(f"{len(candidate_texts)} candidates exceed k_max={self.k_max}")
        action_ids = np.zeros((self.k_max, self.max_action_tokens), dtype=np.int32)
        mask = np.zeros(self.k_max, dtype=np.int8)
        for i, text in enumerate(candidate_texts):
            action_ids[i] = self._action_row(text)
            mask[i] = 1
        return {"state_ids": self._row(state, self.max_state_tokens), "action_ids": action_ids,
                "action_mask": mask}

    def encode_batch(self, states: Sequence[str], candidate_texts: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        """Stacked observations (B, ...), e.g. for a Ray Data batch."""
        if len(states) != len(candidate_texts):
            raise ValueError(f"{len(states)} states but {len(candidate_texts)} candidate lists")
        rows = [self.encode(s, c) for s, c in zip(states, candidate_texts)]
        return {k: np.stack([r[k] for r in rows]) for k in ("state_ids", "action_ids", "action_mask")}
