"""The gymnasium env RLlib runs: numeric observations over a Discrete choice of candidates.

Observation (``gymnasium.spaces.Dict``; numbers only: RLlib batches choke on numpy strings,
so strings stay in the text env and in ``info``):

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
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import gymnasium as gym
import numpy as np

from rl_app.env.observation import DEFAULT_MAX_ACTION_TOKENS, DEFAULT_MAX_STATE_TOKENS, Layout, ObservationEncoder
from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv
from rl_app.shop.config import ShopConfig

__all__ = ["WebShopEnv", "WebShopEnvConfig", "ENV_ID", "RLLIB_ENV_NAME", "register_rllib_env"]

ENV_ID = "rl_app/WebShop-v0"
RLLIB_ENV_NAME = "webshop"


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
        observation_layout: ``text`` (the page as one token row, WebShop's input) or
            ``segments`` (instruction, page lines and candidates as separate short rows, for
            the cached-encoder policy); see :mod:`rl_app.env.observation`.
    """

    shop: ShopConfig = field(default_factory=ShopConfig)
    episode: TextEnvConfig = field(default_factory=TextEnvConfig)
    tokenizer: str = "minilm"
    max_state_tokens: int = DEFAULT_MAX_STATE_TOKENS
    max_action_tokens: int = DEFAULT_MAX_ACTION_TOKENS
    enrich_candidates: bool = True
    info_candidates: bool = False
    observation_layout: Layout = "text"

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



def _action_index(action: Any, n: int) -> int:
    """The candidate index of an action: a Python or numpy integer, or a 0-d/1-element integer
    array (what RLlib's connectors pass). Floats, strings and booleans are refused: ``1.7``
    would silently act as 1."""
    if isinstance(action, np.ndarray) and action.size == 1 and np.issubdtype(action.dtype, np.integer):
        action = action.reshape(()).item()
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise TypeError(f"action must be an integer index in [0, {n}), got {action!r} ({type(action).__name__})")
    return int(action)

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
        self.encoder = ObservationEncoder(config.tokenizer, k_max=config.episode.k_max,
                                          max_state_tokens=config.max_state_tokens,
                                          max_action_tokens=config.max_action_tokens,
                                          layout=config.observation_layout)
        self.observation_space = self.encoder.space
        self.action_space = gym.spaces.Discrete(config.episode.k_max)
        self._candidates: list[str] = []

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        goal_index = (options or {}).get("goal_index")
        _, info = self.text_env.reset(goal_index=goal_index, rng=self.np_random)
        return self._observe(), self._decorate(info)

    def step(self, action):
        index = _action_index(action, self.action_space.n)
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
        return self.text_env.candidate_texts(self._candidates)

    # ------------------------------------------------------------------ tokenization
    @property
    def tokenizer(self):
        return self.encoder.tokenizer

    def _observe(self) -> dict[str, np.ndarray]:
        self._candidates = self.text_env.candidates()
        return self.encoder.encode(self.text_env.observation(), self.candidate_texts())

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
