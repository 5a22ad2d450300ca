"""The gymnasium env RLlib runs: numeric observations over a Discrete choice of candidates.

Observation (``gymnasium.spaces.Dict``; numbers only, ARCHITECTURE "Decisions"):

* ``state_ids``: int32 ``(max_state_tokens,)``, the page text tokenized ([CLS] ... [SEP], 0-padded);
* ``action_ids``: int32 ``(k_max, max_action_tokens)``, one row per candidate action;
* ``action_mask``: int8 ``(k_max,)``, 1 for real candidates.

Action: ``Discrete(k_max)``, the index of a candidate. Choosing a masked index is a no-op
step with reward 0 and ``info["valid"] = False``. The strings live in ``env.text_env`` and
in ``info`` (``info["candidates"]`` when ``info_candidates=True``). The tokenizer loads on
first reset, not at construction or import.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import gymnasium as gym
import numpy as np

from rl_app.env.config import ShopConfig
from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv

__all__ = ["WebShopEnv", "WebShopEnvConfig", "ENV_ID", "RLLIB_ENV_NAME", "register_rllib_env"]

ENV_ID = "rl_app/WebShop-v0"
RLLIB_ENV_NAME = "webshop"
_TOKEN_CACHE_SIZE = 50_000
# Enriched candidate texts show what the page shows for the clickable (DECISIONS none; issue 3).
_ASIN_TITLE_WORDS = 24


@dataclass(frozen=True)
class WebShopEnvConfig:
    """Shop + episode + tokenization settings; ``from_dict`` takes them flat (RLlib env_config).

    Attributes:
        tokenizer: ``minilm`` (packaged) or a Hugging Face BERT name/path.
        max_state_tokens: state length after tokenization (WebShop's model used 512).
        max_action_tokens: candidate length after tokenization.
        enrich_candidates: append a result's title to ``click[asin]`` and the option group
            to ``click[value]`` in the text the policy reads.
        info_candidates: put the candidate strings in ``info`` (costs a list copy per step).
    """

    shop: ShopConfig = field(default_factory=ShopConfig)
    episode: TextEnvConfig = field(default_factory=TextEnvConfig)
    tokenizer: str = "minilm"
    max_state_tokens: int = 512
    max_action_tokens: int = 32
    enrich_candidates: bool = True
    info_candidates: bool = False

    @classmethod
    def from_dict(cls, d: Optional[Mapping[str, Any]]) -> "WebShopEnvConfig":
        d = dict(d or {})
        shop_keys = {f.name for f in dataclasses.fields(ShopConfig)}
        episode_keys = {f.name for f in dataclasses.fields(TextEnvConfig)}
        own_keys = {f.name for f in dataclasses.fields(cls)} - {"shop", "episode"}
        unknown = set(d) - shop_keys - episode_keys - own_keys
        if unknown:
            raise ValueError(
                f"unknown WebShop env config keys {sorted(unknown)}; "
                f"known: {sorted(shop_keys | episode_keys | own_keys)}")
        return cls(
            shop=ShopConfig(**{k: d[k] for k in shop_keys & d.keys()}),
            episode=TextEnvConfig(**{k: d[k] for k in episode_keys & d.keys()}),
            **{k: d[k] for k in own_keys & d.keys()},
        )


class WebShopEnv(gym.Env):
    """WebShop as a gymnasium env with a masked Discrete choice over candidate actions."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, config: WebShopEnvConfig | Mapping[str, Any] | None = None,
                 render_mode: Optional[str] = None) -> None:
        super().__init__()
        if not isinstance(config, WebShopEnvConfig):
            config = WebShopEnvConfig.from_dict(config)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.config = config
        self.render_mode = render_mode
        self.text_env = WebShopTextEnv(config.shop, config.episode)
        k, ls, la = config.episode.k_max, config.max_state_tokens, config.max_action_tokens
        if ls < 8 or la < 4:
            raise ValueError(f"max_state_tokens >= 8 and max_action_tokens >= 4 required, got {ls}, {la}")
        vocab_high = np.iinfo(np.int32).max
        self.observation_space = gym.spaces.Dict({
            "state_ids": gym.spaces.Box(0, vocab_high, (ls,), np.int32),
            "action_ids": gym.spaces.Box(0, vocab_high, (k, la), np.int32),
            "action_mask": gym.spaces.Box(0, 1, (k,), np.int8),
        })
        self.action_space = gym.spaces.Discrete(k)
        self._tokenizer = None
        self._token_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._candidates: list[str] = []

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        goal_index = (options or {}).get("goal_index")
        _, info = self.text_env.reset(goal_index=goal_index, rng=self.np_random)
        return self._observe(), self._decorate(info)

    def step(self, action):
        try:
            index = int(action)
        except (TypeError, ValueError):
            raise TypeError(f"action must be an int in [0, {self.action_space.n}), got {action!r}") from None
        text_action = self._candidates[index] if 0 <= index < len(self._candidates) else ""
        _, reward, terminated, truncated, info = self.text_env.step(text_action)
        if text_action == "":
            info["valid"] = False
        obs = self._observe()
        return obs, reward, terminated, truncated, self._decorate(info)

    def render(self) -> Optional[str]:
        if self.render_mode == "ansi":
            lines = [self.text_env.observation(), "candidates:"]
            lines += [f"  [{i}] {c}" for i, c in enumerate(self._candidates)]
            return "\n".join(lines)
        return None

    # ------------------------------------------------------------------ text side
    @property
    def candidates(self) -> list[str]:
        """Candidate action strings, index-aligned with ``action_mask``."""
        return list(self._candidates)

    def candidate_texts(self) -> list[str]:
        """What the policy reads for each candidate (enriched when configured)."""
        if not self.config.enrich_candidates:
            return list(self._candidates)
        session = self.text_env.session
        page = session.page
        out = []
        catalogue = self.text_env.loaded.catalogue
        product = catalogue[session.state.asin] if page == "item" else None
        for c in self._candidates:
            arg = c[len("click["):-1] if c.startswith("click[") else None
            if page == "results" and arg is not None and arg in catalogue and arg not in ("next >", "< prev"):
                title = " ".join(catalogue[arg].title.split()[:_ASIN_TITLE_WORDS])
                out.append(f"{c} {title}")
            elif product is not None and arg is not None:
                group = product.option_group_of(arg)
                out.append(f"{c} {group}" if group else c)
            else:
                out.append(c)
        return out

    # ------------------------------------------------------------------ tokenization
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from rl_app.policy.encoder import load_tokenizer

            self._tokenizer = load_tokenizer(self.config.tokenizer)
        return self._tokenizer

    def _encode(self, text: str, max_len: int) -> np.ndarray:
        ids = self.tokenizer(text, truncation=True, max_length=max_len, add_special_tokens=True)["input_ids"]
        row = np.zeros(max_len, dtype=np.int32)
        row[: len(ids)] = ids
        return row

    def _encode_cached(self, text: str) -> np.ndarray:
        row = self._token_cache.get(text)
        if row is None:
            row = self._encode(text, self.config.max_action_tokens)
            self._token_cache[text] = row
            if len(self._token_cache) > _TOKEN_CACHE_SIZE:
                self._token_cache.popitem(last=False)
        return row

    def _observe(self) -> dict[str, np.ndarray]:
        self._candidates = self.text_env.candidates()
        k = self.config.episode.k_max
        action_ids = np.zeros((k, self.config.max_action_tokens), dtype=np.int32)
        mask = np.zeros(k, dtype=np.int8)
        for i, text in enumerate(self.candidate_texts()):
            action_ids[i] = self._encode_cached(text)
            mask[i] = 1
        return {
            "state_ids": self._encode(self.text_env.observation(), self.config.max_state_tokens),
            "action_ids": action_ids,
            "action_mask": mask,
        }

    def _decorate(self, info: dict) -> dict:
        info["n_candidates"] = len(self._candidates)
        if self.config.info_candidates:
            info["candidates"] = list(self._candidates)
        return info


def register_rllib_env(name: str = RLLIB_ENV_NAME) -> str:
    """Register the env with Ray Tune's registry so env runners can build it by name."""
    from ray.tune.registry import register_env

    register_env(name, lambda env_config: WebShopEnv(dict(env_config)))
    return name


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="rl_app.env.webshop_env:WebShopEnv")
