"""The text API of the shop: string observations, string actions, a candidate list.

This is what scripted agents, demonstrations and traces use; :mod:`rl_app.env.webshop_env`
wraps it into the numeric gymnasium env RLlib sees. Episodes end on ``buy now``
(terminated) or after ``max_steps`` actions (truncated, reward 0). An action that does
nothing (not parsable, not on the page) costs a step, returns reward 0 and sets
``info["valid"] = False``, as in WebShop's text env.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

import numpy as np

from rl_app.env.candidates import (
    DEFAULT_K_MAX,
    CandidateReduction,
    SearchCandidates,
    reduce_candidates,
    search_candidates,
)
from rl_app.shop.config import LoadedShop, ShopConfig, load_shop
from rl_app.shop.goals import split_of
from rl_app.shop.site import ShopSession
from rl_app.shop.types import Goal, Split

__all__ = ["TextEnvConfig", "WebShopTextEnv", "DEFAULT_MAX_STEPS"]

DEFAULT_MAX_STEPS = 20
# Words of a result's title appended to its click[asin] candidate.
TITLE_WORDS_IN_CANDIDATE = 24


@dataclass(frozen=True)
class TextEnvConfig:
    """Episode settings.

    Attributes:
        split: goals drawn on reset when no goal index is given (test/dev/train/all).
        max_steps: actions per episode before truncation.
        observation_mode: ``text_rich`` (default) or ``text``.
        k_max: most candidates offered per state.
        reduction: ``none`` (keep every valid action up to k_max) or ``webshop``.
        search_candidates: ``instruction`` (default) or ``webshop_privileged``.
        num_prev_actions: the last N actions, put in front of the page text as WebShop's
            ``num_prev_actions`` does (``"a1 [SEP] a2 [SEP] <page>"``). WebShop's default is 0;
            ours is 3 because a policy that sees only the page cannot tell whether it already
            read an item's Features or came back from it, and greedy policies then loop
            (item -> < prev -> item). 0 gives WebShop's observation exactly.
    """

    split: Split | Literal["all"] = "train"
    max_steps: int = DEFAULT_MAX_STEPS
    observation_mode: Literal["text", "text_rich"] = "text_rich"
    k_max: int = DEFAULT_K_MAX
    reduction: CandidateReduction = "none"
    search_candidates: SearchCandidates = "instruction"
    num_prev_actions: int = 3

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.k_max < 1:
            raise ValueError(f"k_max must be >= 1, got {self.k_max}")
        if self.num_prev_actions < 0:
            raise ValueError(f"num_prev_actions must be >= 0, got {self.num_prev_actions}")
        if self.observation_mode not in ("text", "text_rich"):
            raise ValueError(f"observation_mode must be 'text' or 'text_rich', got {self.observation_mode!r}")


class WebShopTextEnv:
    """One shopper at a time over a shared shop; string in, string out."""

    def __init__(self, shop: ShopConfig | dict | None = None, config: TextEnvConfig | None = None, *,
                 loaded: Optional[LoadedShop] = None) -> None:
        self.loaded = loaded if loaded is not None else load_shop(shop)
        self.config = config or TextEnvConfig()
        self.split_indices = self.loaded.goals.indices(self.config.split)
        if len(self.split_indices) == 0:
            raise ValueError(f"split {self.config.split!r} has no goals ({len(self.loaded.goals)} goals in all)")
        self.session: Optional[ShopSession] = None
        self.goal_index: Optional[int] = None
        self.steps = 0
        self.prev_actions: list[str] = []
        self.rng = np.random.default_rng()
        self._candidates: Optional[list[str]] = None

    # ------------------------------------------------------------------ episode
    @property
    def goal(self) -> Goal:
        self._require_session()
        return self.session.goal

    def reset(self, *, goal_index: Optional[int] = None, seed: Optional[int] = None,
              rng: Optional[np.random.Generator] = None) -> tuple[str, dict[str, Any]]:
        """Start an episode on ``goal_index`` (any split) or a goal drawn from the split."""
        if rng is not None:
            self.rng = rng
        elif seed is not None:
            self.rng = np.random.default_rng(seed)
        goals = self.loaded.goals
        if goal_index is None:
            goal_index = int(self.split_indices[int(self.rng.integers(len(self.split_indices)))])
        elif not 0 <= goal_index < len(goals):
            raise IndexError(f"goal_index {goal_index} out of range [0, {len(goals)})")
        self.goal_index = int(goal_index)
        self.session = self.loaded.shop.session(goals[goal_index])
        self.steps = 0
        self.prev_actions = []
        self._candidates = None
        return self.observation(), self._info(valid=True)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Apply a text action; returns (observation, reward, terminated, truncated, info)."""
        self._require_session()
        if self.session.done or self.steps >= self.config.max_steps:
            raise RuntimeError("episode is over: call reset() before step()")
        if isinstance(action, str):
            # Text that UTF-8 cannot encode (a lone surrogate such as "\ud800") would reach the
            # search engine and the tokenizer; it is replaced ("?") here, at the env's boundary.
            action = action.encode("utf-8", "replace").decode("utf-8")
        outcome = self.session.step(action)
        if action:  # "" is the gym env's masked choice: a no-op with nothing to remember
            self.prev_actions.append(action)
        self.steps += 1
        self._candidates = None
        terminated = outcome.done
        truncated = not terminated and self.steps >= self.config.max_steps
        info = self._info(valid=outcome.valid, action=action)
        if outcome.breakdown is not None:
            info["reward_info"] = outcome.breakdown.to_info()
            info["purchased_asin"] = self.session.state.asin
            info["purchased_options"] = dict(self.session.state.options)
        return self.observation(), float(outcome.reward), terminated, truncated, info

    # ------------------------------------------------------------------ views
    def observation(self) -> str:
        """The page in the configured mode, after the last ``num_prev_actions`` actions."""
        self._require_session()
        page = self.session.observation(self.config.observation_mode)
        k = self.config.num_prev_actions
        if k and self.prev_actions:
            return " [SEP] ".join(self.prev_actions[-k:] + [page])
        return page

    def page_text(self) -> str:
        """The page alone, exactly as WebShop renders it."""
        self._require_session()
        return self.session.observation(self.config.observation_mode)

    def candidates(self) -> list[str]:
        """Actions offered to a choice policy in this state (at most ``k_max``)."""
        self._require_session()
        if self._candidates is None:
            if self.session.done:
                actions: list[str] = []
            elif self.session.has_search_bar:
                actions = search_candidates(self.session.goal, self.config.search_candidates)
            else:
                actions = self.session.valid_clicks()
            self._candidates = reduce_candidates(actions, k_max=self.config.k_max,
                                                 mode=self.config.reduction, rng=self.rng)
        return list(self._candidates)

    def candidate_texts(self, candidates: Optional[list[str]] = None) -> list[str]:
        """Candidates as a choice policy reads them: what the page shows next to each clickable.

        ``click[asin]`` gains the result's title (first words), ``click[value]`` on an item page
        its option group (``click[black] color``); other actions are unchanged.
        """
        self._require_session()
        candidates = self.candidates() if candidates is None else candidates
        session = self.session
        catalogue = self.loaded.catalogue
        product = catalogue[session.state.asin] if session.page == "item" else None
        page_asins = {a.lower() for a in session.page_asins()} if session.page == "results" else set()
        out = []
        for c in candidates:
            arg = c[len("click["):-1] if c.startswith("click[") and c.endswith("]") else None
            if arg is not None and arg in page_asins:
                out.append(f"{c} {' '.join(catalogue[arg].title.split()[:TITLE_WORDS_IN_CANDIDATE])}")
            elif product is not None and arg is not None and (group := product.option_group_of(arg)):
                out.append(f"{c} {group}")
            else:
                out.append(c)
        return out

    def available_actions(self) -> dict:
        """WebShop's ``get_available_actions()``: has_search_bar + clickables."""
        self._require_session()
        return self.session.available_actions()

    def _info(self, *, valid: bool, action: Optional[str] = None) -> dict[str, Any]:
        s = self.session
        info: dict[str, Any] = {
            "goal_index": self.goal_index,
            "split": split_of(self.goal_index),
            "instruction": s.goal.instruction_text,
            "page": s.page,
            "valid": valid,
            "step": self.steps,
        }
        if action is not None:
            info["action"] = action
        return info

    def _require_session(self) -> None:
        if self.session is None:
            raise RuntimeError("call reset() first")
