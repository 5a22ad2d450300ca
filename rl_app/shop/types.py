"""Typed, frozen records for the shop: products, goals and human instruction records.

Field names follow WebShop's post-load product dict (``engine.load_products``) so the
mapping to the original is easy to check; each field is documented once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

__all__ = [
    "Product",
    "Goal",
    "GoalOption",
    "HumanInstruction",
    "GoalKind",
    "Split",
    "DEFAULT_PRICE",
    "NO_PRICE_LIMIT",
]

GoalKind = Literal["synthetic", "human"]
Split = Literal["test", "dev", "train"]

# WebShop's engine gives a product without a price this one (engine.load_products).
DEFAULT_PRICE = 100.0
# price_upper when fewer than two price bounds lie above the price (goal.get_*_goals).
NO_PRICE_LIMIT = 1_000_000.0


@dataclass(frozen=True)
class HumanInstruction:
    """One MTurk instruction record (WebShop's items_human_ins.json)."""

    asin: str
    instruction: str
    attributes: tuple[str, ...]
    instruction_attributes: tuple[str, ...]
    instruction_options: tuple[str, ...]


@dataclass(frozen=True)
class Product:
    """A product as WebShop's engine holds it after loading.

    Attributes:
        asin: Amazon id, upper case (``B09QCP4579``); shown lower-cased as a clickable.
        name: raw product name; the reward's title nouns are taken from it.
        title: ``Title`` shown on pages (WebShop sets it to ``name``).
        description: ``Description`` (the raw ``full_description``); Description sub-page.
        bullet_points: ``BulletPoints``; the Features sub-page shows them all.
        category: coarse category (beauty, electronics, garden, fashion, grocery).
        query: the Amazon query the product was scraped with, lower-cased; privileged
            (the reward's query_match uses it), never shown to agents.
        product_category: breadcrumb ``A › B › C``; privileged.
        pricing: one price, or the (low, high) of a price range.
        price_tag: the price as pages show it (``$13.99`` or ``$17.4 to $28.67``).
        options: option groups in page order, ``(("color", ("black", "blue")), ...)``,
            values already lower-cased with ``/`` replaced by `` | `` as WebShop does.
        attributes: ``Attributes`` from items_ins_v2 (the reward's attribute match).
        instruction: synthetic instruction from items_ins_v2 (``Find me ...``), if any.
        instruction_attributes: the attributes that instruction asks for.
        human_instructions: MTurk records for this asin (human goals), if any.
        reviews: review texts (empty on the WebShop catalogues).
        rating: shown as ``Rating: ...`` on the item page (always ``N.A.`` in WebShop).
        contents: the lower-cased text the search index holds for the product.
    """

    asin: str
    name: str
    title: str
    description: str
    bullet_points: tuple[str, ...]
    category: str
    query: str
    product_category: str
    pricing: tuple[float, ...]
    price_tag: str
    options: tuple[tuple[str, tuple[str, ...]], ...]
    attributes: tuple[str, ...]
    contents: str
    instruction: Optional[str] = None
    instruction_attributes: tuple[str, ...] = ()
    human_instructions: tuple[HumanInstruction, ...] = ()
    reviews: tuple[str, ...] = ()
    rating: str = "N.A."

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.options)

    @property
    def option_values(self) -> tuple[str, ...]:
        """Every option value of every group, flattened in page order."""
        return tuple(v for _, values in self.options for v in values)

    def option_group_of(self, value: str) -> Optional[str]:
        """The group a value belongs to (the last group listing it, as WebShop's page does)."""
        found = None
        for name, values in self.options:
            if value in values:
                found = name
        return found


@dataclass(frozen=True)
class GoalOption:
    """One option a goal asks for.

    Synthetic goals name the group (``GoalOption("color", "black")``); human goals carry
    only the value (``name is None``). The difference matters for the reward: WebShop
    compares synthetic options as (name, value) tuples (reference quirk 1).
    """

    name: Optional[str]
    value: str


@dataclass(frozen=True)
class Goal:
    """A shopping goal, as WebShop's get_synthetic_goals / get_human_goals build it.

    Attributes:
        asin: the target product (privileged: agents never see it).
        instruction_text: what the shopper reads, price clause included.
        attributes: attributes the goal asks for (the reward's attribute match).
        goal_options: options the goal asks for.
        price_upper: price bound; ``NO_PRICE_LIMIT`` when the text states none.
        query, category, product_category, name: the target's fields, privileged; the
            reward's type match uses them. ``name`` is the target's Title.
        weight: WebShop's sampling weight (synthetic: mean of 1/count over attributes).
        kind: ``synthetic`` or ``human``.
    """

    asin: str
    instruction_text: str
    attributes: tuple[str, ...]
    goal_options: tuple[GoalOption, ...]
    price_upper: float
    query: str
    category: str
    product_category: str
    name: str
    weight: float = 1.0
    kind: GoalKind = "synthetic"
    # Free-form provenance, e.g. the human record's index; not used by the env.
    extra: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def option_values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.goal_options)

    @property
    def has_price_limit(self) -> bool:
        return self.price_upper < NO_PRICE_LIMIT
