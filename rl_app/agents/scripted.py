"""Scripted agents on the text API: WebShop's rule baseline and a human-like demonstrator.

Both choose among ``env.candidates()`` only, so every demonstrated action is one a choice
policy can take. The demonstrator reads what a person reads: the
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

from rl_app.env.candidates import core_phrase, strip_option_clause, strip_price_clause
from rl_app.env.text_env import WebShopTextEnv
from rl_app.shop.site import BACK_TO_SEARCH, BUY_NOW, NEXT_PAGE, PREV_PAGE

__all__ = ["Agent", "RuleAgent", "DemonstratorAgent", "DemonstratorConfig", "EpisodeResult", "run_episode"]

# A shopper gives up on finding a better item after opening this many.
MAX_ITEMS_TRIED = 5
# Steps kept in hand to select options and buy.
RESERVED_STEPS = 5
# Score lost per rank position on a results page.
RANK_PENALTY = 0.1
# Weight of "the title names the product type" in a result's score.
TYPE_WEIGHT = 0.5
_WORD_RE = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an and the for with of to in on me find i am looking need want that is it its my be "
    "are this by from or as at price lower than dollars".split())


def _words(text: str) -> set[str]:
    """Content words, crudely singularised (``pillows`` -> ``pillow``)."""
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in _WORD_RE.findall(text.lower()) if w not in _STOPWORDS}


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
        p_read_subpage: also open the Description before buying.
        p_wrong_item: open a plausible-looking but lower-ranked item first, then go back.
        p_skip_option: forget one goal option.
        max_pages: result pages scanned before settling for the best seen.
        min_match: title-match score under which the next page is tried.
        min_attribute_share: share of asked-for attributes the Features page must show.
    """

    p_core_query: float = 0.05
    p_read_subpage: float = 0.2
    p_wrong_item: float = 0.1
    p_skip_option: float = 0.01
    max_pages: int = 2
    min_match: float = 0.2
    min_attribute_share: float = 0.5


@dataclass
class _Plan:
    queue: list[str] = field(default_factory=list)  # pending actions
    tried: set[str] = field(default_factory=set)
    scores: dict[str, tuple[float, int, int]] = field(default_factory=dict)  # asin -> (title score, rank, page)
    pages_scanned: int = 1
    searched_again: bool = False
    evidence: dict[str, float] = field(default_factory=dict)  # asin -> attribute share seen on Features
    read_subpage: bool = False
    wrong_item_done: bool = False


class DemonstratorAgent:
    """A seeded, stochastic shopper that plays from the instruction like a person."""

    name = "demonstrator"

    def __init__(self, config: DemonstratorConfig | None = None, seed: Optional[int] = None) -> None:
        self.config = config or DemonstratorConfig()
        self.rng = np.random.default_rng(seed)
        self.plan = _Plan()
        self._wanted: Optional[set[str]] = None

    def reset(self, env: WebShopTextEnv) -> None:
        self.plan = _Plan()
        self._wanted: Optional[set[str]] = None

    # ------------------------------------------------------------------ scoring
    def _title_score(self, env: WebShopTextEnv, title: str, price_tag: str) -> float:
        """Share of the instruction's content words a result's title shows; 0 when over budget."""
        goal = env.goal
        if _price_low(price_tag) > goal.price_upper:
            return 0.0
        if self._wanted is None:
            self._wanted = _words(strip_option_clause(strip_price_clause(goal.instruction_text)))
            # the product type is the last word of the thing asked for ("... women's blazers")
            self._type_words = _words(core_phrase(goal.instruction_text).split()[-1]) if core_phrase(
                goal.instruction_text) else set()
        words = _words(title)
        share = len(self._wanted & words) / max(len(self._wanted), 1)
        type_hit = 1.0 if self._type_words and self._type_words <= words else 0.0
        return TYPE_WEIGHT * type_hit + (1 - TYPE_WEIGHT) * share

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
            if plan.scores:
                plan.searched_again = True
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
            return self._on_sub_page(env)
        raise RuntimeError("the episode is over")

    def _on_results(self, env: WebShopTextEnv) -> str:
        """Scan up to ``max_pages`` pages, open the best plausible result, else the best seen."""
        cfg, plan, session = self.config, self.plan, env.session
        catalogue = env.loaded.catalogue
        page_num = session.state.page_num
        for rank, asin in enumerate(session.page_asins()):
            p = catalogue[asin]
            plan.scores[asin] = (self._title_score(env, p.title, p.price_tag), rank, page_num)
        # plausible titles (raw score >= min_match) in order of score, favouring higher ranks
        here = sorted(((raw - RANK_PENALTY * rank, a) for a, (raw, rank, pg) in plan.scores.items()
                       if pg == page_num and a not in plan.tried and raw >= cfg.min_match), reverse=True)
        if here and not plan.wrong_item_done and len(here) > 2 and self.rng.random() < cfg.p_wrong_item:
            plan.wrong_item_done = True
            _, asin = here[1 + int(self.rng.integers(min(3, len(here) - 1)))]
            return self._open(asin)
        if here:
            return self._open(here[0][1])
        if page_num >= plan.pages_scanned and page_num < cfg.max_pages and session.page_asins():
            plan.pages_scanned = page_num + 1
            return f"click[{NEXT_PAGE}]"
        rest = sorted(((raw - RANK_PENALTY * rank, pg, a) for a, (raw, rank, pg) in plan.scores.items()
                       if a not in plan.tried and raw > 0), reverse=True)
        if not rest:
            return f"click[{BACK_TO_SEARCH}]" if not plan.searched_again else f"click[{NEXT_PAGE}]"
        _, best_page, asin = rest[0]
        if best_page == page_num:
            return self._open(asin)
        return f"click[{PREV_PAGE}]" if best_page < page_num else f"click[{NEXT_PAGE}]"

    def _open(self, asin: str) -> str:
        self.plan.tried.add(asin)
        return f"click[{asin.lower()}]"

    def _on_item(self, env: WebShopTextEnv) -> str:
        """Check the options and (via Features) the attributes asked for; go back if they do not fit."""
        cfg, plan, session = self.config, self.plan, env.session
        goal = env.goal
        asin = session.state.asin
        product = env.loaded.catalogue[asin]
        values = set(product.option_values)
        wanted = list(goal.goal_options)
        steps_left = env.config.max_steps - env.steps
        can_look_further = len(plan.tried) < MAX_ITEMS_TRIED and steps_left > RESERVED_STEPS
        if wanted and not all(o.value in values for o in wanted) and can_look_further:
            return f"click[{PREV_PAGE}]"  # its options do not match what was asked: not this one
        if _attribute_share(goal.attributes, product.title) < 1.0 and asin not in plan.evidence \
                and steps_left > RESERVED_STEPS + 2:
            return "click[features]"  # read what it says about the asked-for attributes
        if plan.evidence.get(asin, 1.0) < cfg.min_attribute_share and can_look_further:
            return f"click[{PREV_PAGE}]"
        for o in wanted:
            selected = session.state.options.get(o.name) if o.name else None
            if o.value in values and selected != o.value and o.value not in session.state.options.values():
                if self.rng.random() < cfg.p_skip_option:
                    continue
                return f"click[{o.value}]"
        if not plan.read_subpage and self.rng.random() < cfg.p_read_subpage and steps_left > 3:
            plan.read_subpage = True
            return "click[description]"
        return f"click[{BUY_NOW}]"

    def _on_sub_page(self, env: WebShopTextEnv) -> str:
        session = env.session
        if session.state.sub_page == "features":
            product = env.loaded.catalogue[session.state.asin]
            shown = " ".join((product.title,) + product.bullet_points)
            self.plan.evidence[product.asin] = _attribute_share(env.goal.attributes, shown)
        return f"click[{PREV_PAGE}]"


def _attribute_share(attributes: tuple[str, ...], text: str) -> float:
    """Share of attributes whose content words all appear in ``text``."""
    if not attributes:
        return 1.0
    words = _words(text)
    return sum(1 for a in attributes if _words(a) <= words) / len(attributes)


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
