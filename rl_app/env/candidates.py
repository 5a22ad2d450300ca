"""The finite action set a choice policy scores: search queries on the search page, clicks elsewhere.

Search candidates come from the instruction text alone, never the goal's privileged
``query``/``name``/``asin`` (the reward's query match reads ``query``); WebShop's privileged
list exists only as the named option ``"webshop_privileged"``, for comparison. Every valid
action is kept up to ``k_max``; WebShop's reduction (the first 6 plus 10 sampled when more
than 20), which drops goal options on most item pages, is the option ``"webshop"``.
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

import numpy as np

from rl_app.shop.types import Goal

__all__ = [
    "SearchCandidates",
    "CandidateReduction",
    "search_candidates",
    "strip_price_clause",
    "strip_option_clause",
    "core_phrase",
    "reduce_candidates",
    "DEFAULT_K_MAX",
]

SearchCandidates = Literal["instruction", "webshop_privileged"]
CandidateReduction = Literal["none", "webshop"]

DEFAULT_K_MAX = 64
# WebShop's baseline keeps the first 6 and samples 10 more when a page has over 20 actions.
WEBSHOP_REDUCE_ABOVE = 20
WEBSHOP_KEEP_FIRST = 6
WEBSHOP_SAMPLE = 10

_PRICE_RE = re.compile(r",?\s*(?:and\s+)?price\s+(?:lower|less)\s+than\s+[\d.,]+\s+dollars\s*$", re.IGNORECASE)
_OPTION_RE = re.compile(r"\s+with\s+[a-z][a-z ]*:\s.*$", re.IGNORECASE)
_LEAD_RE = re.compile(
    r"^(?:instruction:\s*)?(?:find me|i am looking for|i'm looking for|im looking for|looking for|"
    r"i want to buy|i want|i would like|i need|search for|get me|buy)\s+(?:an?\s+|some\s+|the\s+)?",
    re.IGNORECASE)


def strip_price_clause(text: str) -> str:
    """``"... shorts, and price lower than 50.00 dollars"`` -> ``"... shorts"``."""
    return _PRICE_RE.sub("", text).strip()


def strip_option_clause(text: str) -> str:
    """Drop a trailing ``" with color: black, and size: m"`` clause (synthetic goals)."""
    return _OPTION_RE.sub("", text).strip()


def core_phrase(text: str) -> str:
    """The thing asked for: leading request words and everything from `` with `` dropped."""
    base = _LEAD_RE.sub("", strip_option_clause(strip_price_clause(text)))
    return re.split(r"\s+with\s+", base, maxsplit=1)[0].strip(" ,.")


def search_candidates(goal: Goal, mode: SearchCandidates = "instruction") -> list[str]:
    """``search[...]`` actions offered on the search page, deduplicated, in a fixed order."""
    if mode == "instruction":
        text = goal.instruction_text.strip()
        if text.lower().startswith("instruction:"):
            text = text[len("instruction:"):].strip()
        no_price = strip_price_clause(text)
        queries = [text, no_price, strip_option_clause(no_price), core_phrase(text)]
    elif mode == "webshop_privileged":
        # WebShop baseline's list: it reads the goal's query and attributes (privileged).
        queries = [goal.query] + [f"{att} {goal.query}" for att in goal.attributes] + [goal.instruction_text]
    else:
        raise ValueError(f"unknown search candidate mode {mode!r}; expected 'instruction' or 'webshop_privileged'")
    seen: set[str] = set()
    out = []
    for q in queries:
        q = " ".join(q.lower().split())
        if q and q not in seen:
            seen.add(q)
            out.append(f"search[{q}]")
    return out


def reduce_candidates(actions: Sequence[str], *, k_max: int, mode: CandidateReduction,
                      rng: np.random.Generator) -> list[str]:
    """Cap the candidate list: keep all up to ``k_max`` (default), or WebShop's reduction."""
    if k_max < 1:
        raise ValueError(f"k_max must be >= 1, got {k_max}")
    actions = list(actions)
    if mode == "webshop" and len(actions) > WEBSHOP_REDUCE_ABOVE:
        rest = actions[WEBSHOP_KEEP_FIRST:]
        picked = rng.choice(len(rest), size=WEBSHOP_SAMPLE, replace=False)
        actions = actions[:WEBSHOP_KEEP_FIRST] + [rest[i] for i in sorted(picked)]
    elif mode not in ("none", "webshop"):
        raise ValueError(f"unknown candidate reduction {mode!r}; expected 'none' or 'webshop'")
    return actions[:k_max]
