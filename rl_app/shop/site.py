"""The shop's pages and transitions, as WebShop's text environment (SimServer) has them.

A :class:`Shop` holds what is shared and heavy (catalogue, prices, search index, reward
settings); a :class:`ShopSession` is one shopper's browser state and is cheap. Semantics
follow ``web_agent_text_env.py`` (reference/PAGES.md lists them with captures):

* ``search[kw]`` works on every page except the done page (the original accepts it there
  too, but our episodes end on buy); the argument is lower-cased; results are the BM25
  top 50, ten per page.
* ``click[x]`` works only when ``x`` is one of the page's clickables (and not ``search``);
  anything else is a no-op: same page, reward 0, ``valid=False``.
* results page: ``back to search``, ``< prev`` (page > 1), ``next >`` (always, even past
  the last page), then the page's asins, lower-cased.
* item page: ``back to search``, ``< prev``, ``description``, ``features``, ``reviews``,
  ``buy now``, then every option value (a value listed in two groups appears once and
  selects the last group, as the original's dict of radio buttons does).
* ``< prev`` from an item page returns to the results page and clears the selected
  options; from a sub-page it returns to the item page and keeps them.
* ``back to search`` returns to the search page and forgets visited items.
* ``buy now`` ends the episode with WebShop's reward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

from rl_app.shop import pages
from rl_app.shop.catalogue import Catalogue
from rl_app.shop.reward import RewardBreakdown, compute_reward
from rl_app.shop.search import SearchEngine
from rl_app.shop.types import Goal

__all__ = [
    "Shop",
    "ShopSession",
    "StepOutcome",
    "PageKind",
    "parse_action",
    "SEARCH_RETURN_N",
    "RESULTS_PER_PAGE",
    "BACK_TO_SEARCH",
    "NEXT_PAGE",
    "PREV_PAGE",
    "BUY_NOW",
    "SUB_PAGES",
]

PageKind = Literal["search", "results", "item", "sub", "done"]
ObservationMode = Literal["text", "text_rich"]

SEARCH_RETURN_N = 50
RESULTS_PER_PAGE = 10
BACK_TO_SEARCH = "back to search"
NEXT_PAGE = "next >"
PREV_PAGE = "< prev"
BUY_NOW = "buy now"
SUB_PAGES = ("description", "features", "reviews")
ITEM_BUTTONS = (BACK_TO_SEARCH, PREV_PAGE) + SUB_PAGES + (BUY_NOW,)

# WebShop's parse_action (web_agent_site/envs/web_agent_text_env.py): greedy "name[arg]"
# matched from the start, "." not crossing a newline; "search[]" does not match and is a no-op,
# "search[ ]" is a search (WebShop only refuses an empty argument), and an action with a
# newline inside its brackets does not match.
_ACTION_RE = re.compile(r"(.+)\[(.+)\]")


def parse_action(action: str) -> tuple[str, Optional[str]]:
    """Split ``name[arg]`` as WebShop does; returns (action, None) when it does not parse."""
    m = _ACTION_RE.match(action)
    if m is None:
        return action, None
    return m.group(1), m.group(2)


@dataclass(frozen=True)
class StepOutcome:
    """What one action did.

    Attributes:
        reward: WebShop's reward on buy, else 0.0.
        done: True after ``buy now``.
        valid: False when the action was a no-op (unparsable, not on the page, empty search).
        kind: ``search``, ``click`` or ``invalid``.
        breakdown: the reward's parts on buy.
    """

    reward: float
    done: bool
    valid: bool
    kind: Literal["search", "click", "invalid"]
    breakdown: Optional[RewardBreakdown] = None


class Shop:
    """Shared, read-only shop: catalogue, prices, search index and reward settings."""

    def __init__(self, catalogue: Catalogue, search_engine: SearchEngine, prices: dict[str, float], *,
                 reward_fn: Callable[..., RewardBreakdown] = compute_reward,
                 reward_kwargs: Optional[dict] = None) -> None:
        missing = [p.asin for p in catalogue if p.asin not in prices]
        if missing:
            raise ValueError(f"prices missing for {len(missing)} products, e.g. {missing[:3]}")
        self.catalogue = catalogue
        self.search_engine = search_engine
        self.prices = prices
        self.reward_fn = reward_fn
        self.reward_kwargs = dict(reward_kwargs or {})

    def search(self, keywords: str) -> list[str]:
        return self.search_engine.search(keywords, k=SEARCH_RETURN_N)

    def session(self, goal: Goal) -> "ShopSession":
        return ShopSession(self, goal)


@dataclass
class _State:
    page: PageKind = "search"
    keywords: Optional[str] = None
    results: tuple[str, ...] = ()
    page_num: int = 1
    asin: Optional[str] = None
    options: dict[str, str] = field(default_factory=dict)
    visited: set[str] = field(default_factory=set)
    sub_page: Optional[str] = None
    outcome: Optional[StepOutcome] = None


class ShopSession:
    """One shopper on the site, from the search page to the purchase."""

    def __init__(self, shop: Shop, goal: Goal) -> None:
        self.shop = shop
        self.goal = goal
        self.state = _State()
        self._clickables: Optional[dict[str, Optional[str]]] = None

    # ------------------------------------------------------------------ page facts
    @property
    def page(self) -> PageKind:
        return self.state.page

    @property
    def done(self) -> bool:
        return self.state.page == "done"

    @property
    def has_search_bar(self) -> bool:
        return self.state.page == "search"

    def page_asins(self) -> tuple[str, ...]:
        """Asins listed on the current results page (upper case)."""
        s = self.state
        lo = (s.page_num - 1) * RESULTS_PER_PAGE
        return s.results[lo:lo + RESULTS_PER_PAGE]

    def _clickable_map(self) -> dict[str, Optional[str]]:
        """Lower-cased clickable text -> option group (None for buttons and asins)."""
        if self._clickables is not None:
            return self._clickables
        s = self.state
        clickables: dict[str, Optional[str]] = {}
        if s.page == "search":
            clickables["search"] = None
        elif s.page == "results":
            clickables[BACK_TO_SEARCH] = None
            if s.page_num > 1:
                clickables[PREV_PAGE] = None
            clickables[NEXT_PAGE] = None
            for asin in self.page_asins():
                clickables[asin.lower()] = None
        elif s.page == "item":
            for b in ITEM_BUTTONS:
                clickables[b] = None
            product = self.shop.catalogue[s.asin]
            for group, values in product.options:
                for v in values:
                    clickables[v] = group  # a repeated value keeps its place, takes the last group
        elif s.page == "sub":
            clickables[BACK_TO_SEARCH] = None
            clickables[PREV_PAGE] = None
        self._clickables = clickables
        return clickables

    def clickables(self) -> list[str]:
        """The page's clickables in WebShop's order (``get_available_actions``)."""
        return list(self._clickable_map())

    def available_actions(self) -> dict:
        """WebShop's ``get_available_actions()`` dict."""
        return {"has_search_bar": self.has_search_bar, "clickables": self.clickables()}

    def valid_clicks(self) -> list[str]:
        """``click[...]`` actions that do something on this page."""
        return [f"click[{c}]" for c in self._clickable_map() if c != "search"]

    # ------------------------------------------------------------------ transitions
    def _goto(self, page: PageKind) -> None:
        self.state.page = page
        self._clickables = None

    def _show_results(self, keywords: str, page_num: int) -> None:
        s = self.state
        if keywords != s.keywords:
            s.results = tuple(self.shop.search(keywords))
        s.keywords, s.page_num, s.asin, s.options = keywords, page_num, None, {}
        self._goto("results")

    def step(self, action: str) -> StepOutcome:
        """Apply one text action; invalid actions are documented no-ops."""
        if not isinstance(action, str):
            raise TypeError(f"action must be a str like 'search[...]' or 'click[...]', got {type(action).__name__}")
        if self.done:
            return StepOutcome(0.0, True, False, "invalid")
        name, arg = parse_action(action)
        if arg is not None:
            arg = arg.lower()
        if name == "search" and arg is not None and arg != "":
            self._show_results(arg, 1)
            return StepOutcome(0.0, False, True, "search")
        clickables = self._clickable_map()
        if name == "click" and arg is not None and arg in clickables and arg != "search":
            return self._click(arg, clickables[arg])
        return StepOutcome(0.0, False, False, "invalid")

    def _click(self, target: str, group: Optional[str]) -> StepOutcome:
        s = self.state
        if target == BUY_NOW:
            product = self.shop.catalogue[s.asin]
            breakdown = self.shop.reward_fn(product, self.goal, self.shop.prices[product.asin], dict(s.options),
                                            **self.shop.reward_kwargs)
            outcome = StepOutcome(breakdown.reward, True, True, "click", breakdown)
            s.outcome = outcome
            self._goto("done")
            return outcome
        if target == BACK_TO_SEARCH:
            self.state = _State()
            self._clickables = None
        elif target == NEXT_PAGE and s.page == "results":
            self._show_results(s.keywords, s.page_num + 1)
        elif target == PREV_PAGE and s.page == "results":
            self._show_results(s.keywords, s.page_num - 1)
        elif target == PREV_PAGE and s.page == "sub":
            s.sub_page = None
            self._goto("item")
        elif target == PREV_PAGE and s.page == "item":
            self._show_results(s.keywords, s.page_num)
        elif target in SUB_PAGES and group is None:
            s.sub_page = target
            self._goto("sub")
        elif s.page == "results":  # an asin
            s.asin = target.upper()
            s.visited.add(s.asin)
            self._goto("item")
        elif group is not None:  # an option value on the item page
            s.options[group] = target
            self._goto("item")
        return StepOutcome(0.0, False, True, "click")

    # ------------------------------------------------------------------ rendering
    def observation(self, mode: ObservationMode = "text_rich") -> str:
        """The page as WebShop's ``text`` or ``text_rich`` observation."""
        s = self.state
        instruction = self.goal.instruction_text
        if s.page == "search":
            nodes = pages.search_page(instruction)
        elif s.page == "results":
            products = [self.shop.catalogue[a] for a in self.page_asins()]
            nodes = pages.results_page(instruction, s.page_num, len(s.results), products, s.visited)
        elif s.page == "item":
            nodes = pages.item_page(instruction, self.shop.catalogue[s.asin], s.options)
        elif s.page == "sub":
            nodes = pages.sub_page(instruction, self.shop.catalogue[s.asin], s.sub_page)
        else:
            assert s.outcome is not None
            nodes = pages.done_page(s.asin, s.options, s.outcome.reward)
        return pages.render(nodes, mode)
