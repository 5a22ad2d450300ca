"""Goals exactly as WebShop builds them, their seeded order, and the standard splits.

Recipe (reference/README.md, checked against WebShop's own output in the tests):

1. ``rng = random.Random(seed)``; prices: each range-priced product draws
   ``rng.uniform(lo, hi)`` in catalogue order.
2. Synthetic goals: for each product with a synthetic instruction, in catalogue order,
   ``price_range = [x for x in (10, 20, ..., 990) if x > price][:4]``; with two or more
   values the goal's bound is the larger of ``rng.sample(price_range, 2)`` and the text
   gains ``", and price lower than {bound:.2f} dollars"``. One draw per product, shared by
   all its option combinations (itertools.product over sorted option names).
   Human goals: one draw per MTurk record with instruction attributes.
3. ``random.Random(233).shuffle(goals)``; test = 0-499, dev = 500-1499, train = 1500+.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from rl_app.shop.catalogue import Catalogue, CatalogueError, sample_prices
from rl_app.shop.types import NO_PRICE_LIMIT, Goal, GoalOption, Split

__all__ = [
    "GoalSet",
    "build_goal_set",
    "synthetic_goals",
    "human_goals",
    "split_of",
    "SPLIT_RANGES",
    "PRICE_BOUNDS",
    "SHUFFLE_SEED",
]

# WebShop's PRICE_RANGE: 10.0, 20.0, ..., 990.0.
PRICE_BOUNDS = tuple(10.0 * i for i in range(1, 100))
PRICE_BOUNDS_CONSIDERED = 4
SHUFFLE_SEED = 233
# Half-open index ranges of the baseline split (WebShop baseline_models).
TEST_END = 500
DEV_END = 1500
SPLIT_RANGES: dict[str, tuple[int, Optional[int]]] = {
    "test": (0, TEST_END), "dev": (TEST_END, DEV_END), "train": (DEV_END, None)}


def split_of(index: int) -> Split:
    if index < 0:
        raise ValueError(f"goal index must be >= 0, got {index}")
    if index < TEST_END:
        return "test"
    if index < DEV_END:
        return "dev"
    return "train"


def _price_bound(price: float, rng: random.Random) -> tuple[float, str]:
    candidates = [x for x in PRICE_BOUNDS if x > price][:PRICE_BOUNDS_CONSIDERED]
    if len(candidates) >= 2:
        _, upper = sorted(rng.sample(candidates, 2))
        return upper, f", and price lower than {upper:.2f} dollars"
    return NO_PRICE_LIMIT, ""


def synthetic_goals(catalogue: Catalogue, prices: dict[str, float], rng: random.Random) -> list[Goal]:
    """WebShop's ``get_synthetic_goals``: one goal per option combination."""
    drafts = []
    for p in catalogue:
        if p.instruction is None:
            continue
        if not p.instruction_attributes:
            raise CatalogueError(f"{catalogue.source}: product {p.asin} has a synthetic instruction but no "
                                 "'instruction_attributes' (its items_ins_v2*.json record); add them or drop the "
                                 "instruction")
        upper, price_text = _price_bound(prices[p.asin], rng)
        groups = sorted(p.options)  # sorted by option name, as WebShop
        names = [name for name, _ in groups]
        for combo in itertools.product(*(values for _, values in groups)):
            options = tuple(GoalOption(n, v) for n, v in zip(names, combo))
            option_text = ", and ".join(f"{o.name}: {o.value}" for o in options)
            option_text = f" with {option_text}" if option_text else ""
            drafts.append((p, f"{p.instruction}{option_text}{price_text}", options, upper))
    counts: dict[str, int] = defaultdict(int)
    for p, *_ in drafts:
        for att in p.instruction_attributes:
            counts[att] += 1
    goals = []
    for p, text, options, upper in drafts:
        atts = p.instruction_attributes
        weight = sum(1.0 / counts[a] for a in atts) / len(atts)
        goals.append(Goal(
            asin=p.asin, instruction_text=text, attributes=atts, goal_options=options,
            price_upper=upper, query=p.query, category=p.category,
            product_category=p.product_category, name=p.title, weight=weight, kind="synthetic"))
    return goals


def human_goals(catalogue: Catalogue, prices: dict[str, float], rng: random.Random) -> list[Goal]:
    """WebShop's ``get_human_goals``: one goal per MTurk record that names attributes."""
    goals = []
    for p in catalogue:
        for rec in p.human_instructions:
            if not rec.instruction_attributes:
                continue  # WebShop skips (and counts) these
            upper, price_text = _price_bound(prices[p.asin], rng)
            goals.append(Goal(
                asin=p.asin, instruction_text=rec.instruction.strip(".") + price_text,
                attributes=rec.instruction_attributes,
                goal_options=tuple(GoalOption(None, v) for v in rec.instruction_options),
                price_upper=upper, query=p.query, category=p.category,
                product_category=p.product_category, name=p.name, weight=1.0, kind="human"))
    return goals


@dataclass(frozen=True)
class GoalSet:
    """Goals in WebShop's shuffled order, with the prices they were built against."""

    goals: tuple[Goal, ...]
    prices: dict[str, float]
    seed: int
    kind: Literal["synthetic", "human"]

    def __len__(self) -> int:
        return len(self.goals)

    def __getitem__(self, index: int) -> Goal:
        return self.goals[index]

    def indices(self, split: Split | Literal["all"]) -> range:
        """Goal indices of a split; ``all`` is every goal."""
        n = len(self.goals)
        if split == "all":
            return range(n)
        if split not in SPLIT_RANGES:
            raise ValueError(f"unknown split {split!r}; expected one of test, dev, train, all")
        lo, hi = SPLIT_RANGES[split]
        return range(min(lo, n), n if hi is None else min(hi, n))


def build_goal_set(catalogue: Catalogue, *, kind: Literal["synthetic", "human"] = "synthetic",
                   seed: int = 0, shuffle_seed: int = SHUFFLE_SEED) -> GoalSet:
    """Prices and goals from one seeded stream, then WebShop's fixed shuffle."""
    rng = random.Random(seed)
    prices = sample_prices(catalogue, rng)
    if kind == "synthetic":
        goals = synthetic_goals(catalogue, prices, rng)
    elif kind == "human":
        goals = human_goals(catalogue, prices, rng)
    else:
        raise ValueError(f"unknown goal kind {kind!r}; expected 'synthetic' or 'human'")
    if not goals:
        raise CatalogueError(f"catalogue {catalogue.source} yields no {kind} goals")
    random.Random(shuffle_seed).shuffle(goals)
    return GoalSet(tuple(goals), prices, seed, kind)


def goals_for_products(goals: Sequence[Goal], asins: set[str]) -> list[int]:
    """Indices of goals whose target is among ``asins`` (product-disjoint splits)."""
    return [i for i, g in enumerate(goals) if g.asin in asins]
