"""Scripted agents on the text API: WebShop's rule baseline and a human-like demonstrator.

Both choose among ``env.candidates()`` only, so every demonstrated action is one a choice
policy can take. The demonstrator reads what a person reads (DECISIONS.md 6): the
instruction text, and from the goal only ``attributes``, ``goal_options`` and
``price_upper`` (the parts of the instruction a person picks out); on pages it sees titles,
prices, option buttons and, after opening them, the Description/Features sub-pages. It
never sees the target asin, the goal's query/category or the reward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Protocol

import numpy as np

from rl_app.env.candidates import core_phrase
from rl_app.env.site import BUY_NOW, NEXT_PAGE, PREV_PAGE
from rl_app.env.text_env import WebShopTextEnv

__all__ = ["Agent", "RuleAgent", "DemonstratorAgent", "DemonstratorConfig", "EpisodeResult", "run_episode"]

# A shopper gives up on finding a better item after opening this many.
MAX_ITEMS_TRIED = 4
# Steps kept in hand to select options and buy.
RESERVED_STEPS = 5
_WORD_RE = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an and the for with of to in on me find i am looking need want that is it its my be "
    "are this by from or as at price lower than dollars".split())


def _words(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall(text.lower()) if w not in _STOPWORDS}


def _price_low(tag: str) -> float:
    """Lowest price in a tag like ``$13.99`` or ``$17.4 to $28.67``."""
    values = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", tag)]
    return min(values) if values else float("inf")


class Agent(Protocol):
    def reset(self, env: WebShopTextEnv) -> None: ...

    def act(self, env: WebShopTextEnv) -> str: ...


class RuleAgent:
    """WebShop's rule baseline: search the instruction, click the first result, buy."""

    name = "rule"

    def reset(self, env: WebShopTextEnv) -> None:
        pass

    def act(self, env: WebShopTextEnv) -> str:
        session = env.session
        if session.page == "search":
            return env.candidates()[0]  # the instruction text itself
        if session.page == "results":
            asins = session.page_asins()
            return f"click[{asins[0].lower()}]" if asins else f"click[{NEXT_PAGE}]"
        if session.page == "item":
            return f"click[{BUY_NOW}]"
        return f"click[{PREV_PAGE}]"


@dataclass(frozen=True)
class DemonstratorConfig:
    """How human-like (noisy) the demonstrator is; probabilities per decision.

    Attributes:
        p_core_query: search with the short core phrase instead of the instruction.
        p_read_subpage: open Description or Features before buying.
        p_wrong_item: open a plausible-looking but lower-ranked item first, then go back.
        p_skip_option: forget one goal option.
        max_pages: result pages scanned before settling for the best seen.
        min_match: title-match score under which the next page is tried.
    """

    p_core_query: float = 0.15
    p_read_subpage: float = 0.2
    p_wrong_item: float = 0.1
    p_skip_option: float = 0.03
    max_pages: int = 3
    min_match: float = 0.5


@dataclass
class _Plan:
    queue: list[str] = field(default_factory=list)  # pending actions
    tried: set[str] = field(default_factory=set)
    pages_seen: int = 0
    best: Optional[tuple[float, str, int]] = None  # (score, asin, page)
    read_subpage: bool = False
    wrong_item_done: bool = False


class DemonstratorAgent:
    """A seeded, stochastic shopper that plays from the instruction like a person."""

    name = "demonstrator"

    def __init__(self, config: DemonstratorConfig | None = None, seed: Optional[int] = None) -> None:
        self.config = config or DemonstratorConfig()
        self.rng = np.random.default_rng(seed)
        self.plan = _Plan()

    def reset(self, env: WebShopTextEnv) -> None:
        self.plan = _Plan()

    # ------------------------------------------------------------------ scoring
    def _wanted_words(self, env: WebShopTextEnv) -> tuple[set[str], list[set[str]]]:
        goal = env.goal
        return _words(core_phrase(goal.instruction_text)), [_words(a) for a in goal.attributes]

    def _title_score(self, env: WebShopTextEnv, title: str, price_tag: str) -> float:
        """Share of the asked-for words a title shows; 0 when over budget."""
        goal = env.goal
        if _price_low(price_tag) > goal.price_upper:
            return 0.0
        core, attrs = self._wanted_words(env)
        t = _words(title)
        core_hit = len(core & t) / max(len(core), 1)
        att_hit = sum(1 for a in attrs if a and a <= t) / max(len(attrs), 1)
        opt_hit = sum(1 for o in goal.goal_options if _words(o.value) <= t and _words(o.value))
        return 0.6 * core_hit + 0.4 * att_hit + 0.05 * opt_hit

    # ------------------------------------------------------------------ acting
    def act(self, env: WebShopTextEnv) -> str:
        action = self._decide(env)
        candidates = env.candidates()
        if action not in candidates:  # e.g. capped away; fall back to something sensible
            action = candidates[0]
        return action

    def _decide(self, env: WebShopTextEnv) -> str:
        cfg, plan, session = self.config, self.plan, env.session
        page = session.page
        if page == "search":
            cands = env.candidates()
            # cands: [instruction, without price, without options, core phrase, ...]
            if len(cands) > 1 and self.rng.random() < cfg.p_core_query:
                return cands[-1]
            return cands[1] if len(cands) > 1 else cands[0]
        if page == "results":
            return self._on_results(env)
        if page == "item":
            return self._on_item(env)
        if page == "sub":
            return f"click[{PREV_PAGE}]"
        raise RuntimeError("the episode is over")

    def _on_results(self, env: WebShopTextEnv) -> str:
        cfg, plan, session = self.config, self.plan, env.session
        catalogue = env.loaded.catalogue
        page_num = session.state.page_num
        plan.pages_seen = max(plan.pages_seen, page_num)
        scored = []
        for rank, asin in enumerate(session.page_asins()):
            p = catalogue[asin]
            scored.append((self._title_score(env, p.title, p.price_tag) - 0.01 * rank, asin))
        scored.sort(reverse=True)
        for score, asin in scored:
            if plan.best is None or score > plan.best[0]:
                plan.best = (score, asin, page_num)
        untried = [(s, a) for s, a in scored if a not in plan.tried]
        if untried and not plan.wrong_item_done and len(untried) > 2 and self.rng.random() < cfg.p_wrong_item:
            plan.wrong_item_done = True
            _, asin = untried[1 + int(self.rng.integers(min(3, len(untried) - 1)))]
            plan.tried.add(asin)
            return f"click[{asin.lower()}]"
        if untried and untried[0][0] >= cfg.min_match:
            plan.tried.add(untried[0][1])
            return f"click[{untried[0][1].lower()}]"
        if page_num < cfg.max_pages and session.page_asins():
            return f"click[{NEXT_PAGE}]"
        if plan.best is not None and plan.best[2] == page_num and plan.best[1] not in plan.tried:
            plan.tried.add(plan.best[1])
            return f"click[{plan.best[1].lower()}]"
        if plan.best is not None and plan.best[2] < page_num:
            return f"click[{PREV_PAGE}]"
        if untried:
            plan.tried.add(untried[0][1])
            return f"click[{untried[0][1].lower()}]"
        return f"click[{PREV_PAGE}]" if page_num > 1 else f"click[{NEXT_PAGE}]"

    def _on_item(self, env: WebShopTextEnv) -> str:
        cfg, plan, session = self.config, self.plan, env.session
        goal = env.goal
        product = env.loaded.catalogue[session.state.asin]
        values = set(product.option_values)
        wanted = [o for o in goal.goal_options]
        has_options = all(o.value in values for o in wanted)
        steps_left = env.config.max_steps - env.steps
        if wanted and not has_options and len(plan.tried) < MAX_ITEMS_TRIED and steps_left > RESERVED_STEPS:
            return f"click[{PREV_PAGE}]"  # its options do not match what was asked: not this one
        for o in wanted:
            selected = session.state.options.get(o.name) if o.name else None
            if o.value in values and selected != o.value and o.value not in session.state.options.values():
                if self.rng.random() < cfg.p_skip_option:
                    continue
                return f"click[{o.value}]"
        if not plan.read_subpage and self.rng.random() < cfg.p_read_subpage:
            plan.read_subpage = True
            return f"click[{'features' if self.rng.random() < 0.5 else 'description'}]"
        return f"click[{BUY_NOW}]"


@dataclass(frozen=True)
class EpisodeResult:
    goal_index: int
    reward: float
    steps: int
    actions: tuple[str, ...]
    terminated: bool

    @property
    def success(self) -> bool:
        return self.reward == 1.0


def run_episode(env: WebShopTextEnv, agent: Agent, goal_index: int) -> EpisodeResult:
    """Play one goal to the end (buy or step limit)."""
    env.reset(goal_index=goal_index)
    agent.reset(env)
    actions = []
    reward, terminated, truncated = 0.0, False, False
    while not (terminated or truncated):
        action = agent.act(env)
        actions.append(action)
        _, reward, terminated, truncated, _ = env.step(action)
    return EpisodeResult(goal_index, reward, env.steps, tuple(actions), terminated)
