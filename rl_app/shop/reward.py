"""WebShop's purchase reward (Yao et al. 2022, Sec. 3.2; ``web_agent_site/engine/goal.py``).

The reward of buying ``product`` with ``options`` at ``price`` for ``goal`` is

    reward = r_type * (num_attr_matches + num_option_matches + r_price)
                    / (len(goal.attributes) + len(goal.goal_options) + 1)

with four sub-rewards, each a small pure function below:

* :func:`type_reward`: is it the right kind of product (query, category path, title nouns)?
* :func:`attribute_reward`: how many goal attributes the product has (fuzzy, or in its text).
* :func:`option_reward`: how many goal options the selected options match (fuzzy).
* :func:`price_reward`: is the price within the goal's bound?

``variant="webshop"`` (the default) reproduces the original exactly, quirks included, so
scores compare with published ones; ``variant="corrected"`` fixes the
two reward quirks listed in reference/README.md:

* Quirk 1 (options): WebShop passes a synthetic goal's options as ``(name, value)``
  tuples (``dict.items()``). The colour normaliser then matches colours on the goal side
  only as exact tuple elements, while on the purchased side it maps any value containing a
  colour name as a substring to that colour (``'rectangular'`` -> ``'tan'``,
  ``'fashion black woman'`` -> ``'ash'``), and fuzzy matching sees the tuple's ``str()``.
  So buying exactly the goal options does not always give r_option = 1 (458 of 6,725
  goals with options in the 1k catalogue). Also, thefuzz drops code points 128-255
  before matching. Corrected: goal option values are compared as plain strings through
  the same normaliser, and identical strings always match.
* Quirk 2 (title): title_score divides the number of *distinct* shared nouns by the goal
  title's noun count *with duplicates*, so the target itself can score < 1 (and a
  title_score of 0 zeroes the whole reward through r_type). Corrected: divide by the
  number of distinct goal nouns.

Fuzzy matching is thefuzz 0.22's ``fuzz.token_set_ratio``, emulated on rapidfuzz (see
:func:`token_set_ratio`); the reference README found thefuzz 0.19 and 0.22 equal on all
cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Mapping, NamedTuple, Optional, Sequence, Union

from rapidfuzz import fuzz as _rf_fuzz
from rapidfuzz.utils import default_process as _default_process

from rl_app.shop.nouns import NounTagger, default_noun_tagger
from rl_app.shop.types import Goal, GoalOption, Product

__all__ = [
    "RewardBreakdown",
    "RewardVariant",
    "TypeReward",
    "MatchCount",
    "compute_reward",
    "type_reward",
    "attribute_reward",
    "option_reward",
    "price_reward",
    "title_score",
    "category_match",
    "normalize_color",
    "token_set_ratio",
    "COLOR_SET",
    "FUZZY_MATCH_THRESHOLD",
    "REWARD_VARIANTS",
]

RewardVariant = Literal["webshop", "corrected"]
REWARD_VARIANTS: tuple[str, ...] = ("webshop", "corrected")

# A fuzzy score strictly above this is a match (attributes and options, goal.py).
FUZZY_MATCH_THRESHOLD = 85
# Category paths match when at least this many distinct breadcrumb parts are shared.
CATEGORY_MATCH_MIN_SHARED = 2
CATEGORY_SEPARATOR = "›"
# title_score given when the goal title has no nouns at all.
TITLE_SCORE_NO_GOAL_NOUNS = 0.2
# title_score above this counts as a type match on its own.
TITLE_SCORE_MATCH = 0.2
# title_score below this caps r_type at R_TYPE_LOW_TITLE (and 0.0 gives r_type 0).
TITLE_SCORE_LOW = 0.1
R_TYPE_MATCH = 1.0
R_TYPE_NO_MATCH = 0.5
R_TYPE_LOW_TITLE = 0.1
R_TYPE_NO_TITLE = 0.0

# WebShop web_agent_site/engine/normalize.py COLOR_SET, in its order: the first colour
# contained in a value wins, so the order is part of the reward.
COLOR_SET: tuple[str, ...] = tuple("""
alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze
brown burgundy camel camo caramel champagne charcoal cheetah chestnut chocolate christmas
coffee cognac copper coral cranberry cream crystal dark denim eggplant elephant espresso
fuchsia gold granite grape graphite grass gray green grey heather indigo ivory ivy khaki
lavender lemon leopard light lilac lime magenta maroon mauve merlot midnight mint mocha
multicolor mushroom mustard natural navy nude olive orange peach pewter pink plum purple
rainbow red rose royal rust sand sapphire seashell silver skull slate steel stone
stonewash sunflower tan taupe teal tiger turquoise violet walnut wheat white wine yellow
""".split())

# thefuzz's ascii_only: delete (not replace) code points 128..255.
_LATIN1_DELETE = {i: None for i in range(128, 256)}

OptionKey = Union[str, tuple[str, str]]


# ----------------------------------------------------------------------------- matching

def normalize_color(value: OptionKey) -> OptionKey:
    """WebShop's ``normalize_color``: the first COLOR_SET entry ``in`` value, else value.

    For a string ``in`` is a substring test (``'rectangular'`` -> ``'tan'``); for a
    ``(name, value)`` tuple it is exact element membership (quirk 1).
    """
    for color in COLOR_SET:
        if color in value:
            return color
    return value


@lru_cache(maxsize=1 << 16)
def _fuzz_process(s: Any) -> str:
    # thefuzz.utils.full_process(s, force_ascii=True): str(), drop 128..255, default_process.
    return _default_process(str(s).translate(_LATIN1_DELETE))


def token_set_ratio(s1: Any, s2: Any) -> int:
    """thefuzz 0.22 ``fuzz.token_set_ratio(s1, s2)``: an int in 0..100.

    Both arguments go through ``str()`` (a tuple scores as ``"('color', 'black')"``),
    lose code points 128-255, then rapidfuzz's ``default_process``; the rapidfuzz score is
    rounded with Python's ``round``. ``None`` scores 0.
    """
    if s1 is None or s2 is None:
        return 0
    return int(round(_rf_fuzz.token_set_ratio(_fuzz_process(s1), _fuzz_process(s2))))


def _fuzzy_match(a: Any, b: Any) -> bool:
    return token_set_ratio(a, b) > FUZZY_MATCH_THRESHOLD


def _check_variant(variant: str) -> None:
    if variant not in REWARD_VARIANTS:
        raise ValueError(f"unknown reward variant {variant!r}; expected one of {REWARD_VARIANTS}")


# ----------------------------------------------------------------------------- type

class TypeReward(NamedTuple):
    """Output of :func:`type_reward`."""

    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


def category_match(purchased_category: str, goal_category: str) -> bool:
    """At least two distinct breadcrumb parts (split on ``›``, stripped) in common."""
    a = {part.strip() for part in purchased_category.split(CATEGORY_SEPARATOR)}
    b = {part.strip() for part in goal_category.split(CATEGORY_SEPARATOR)}
    return len(a & b) >= CATEGORY_MATCH_MIN_SHARED


def title_score(purchased_nouns: Sequence[str], goal_nouns: Sequence[str], *,
                variant: RewardVariant = "webshop") -> float:
    """Share of the goal title's nouns found in the purchased title.

    ``webshop``: ``|set(purchased) & set(goal)| / len(goal)`` with duplicates in the
    denominator (quirk 2: a goal title "Light ... Light" can never score 1). ``corrected``:
    divided by the number of distinct goal nouns. 0.2 when the goal title has no nouns.
    """
    _check_variant(variant)
    if not goal_nouns:
        return TITLE_SCORE_NO_GOAL_NOUNS
    goal_set = set(goal_nouns)
    shared = len(set(purchased_nouns) & goal_set)
    return shared / (len(goal_nouns) if variant == "webshop" else len(goal_set))


def type_reward(product: Product, goal: Goal, nouns: NounTagger, *,
                variant: RewardVariant = "webshop") -> TypeReward:
    """WebShop ``get_type_reward``: 1.0, 0.5, 0.1 or 0.0.

    r_type is 1 when the query, the category path or the title (title_score > 0.2)
    matches, else 0.5; then title_score < 0.1 forces 0.1 and title_score == 0 forces 0
    (these override a query/category match). Titles are ``product.name`` and ``goal.name``.
    """
    q_match = product.query == goal.query
    c_match = category_match(product.product_category, goal.product_category)
    t_score = title_score(nouns.nouns(product.name), nouns.nouns(goal.name), variant=variant)
    r_type = R_TYPE_MATCH
    if not (q_match or c_match or t_score > TITLE_SCORE_MATCH):
        r_type = R_TYPE_NO_MATCH
    if t_score < TITLE_SCORE_LOW:
        r_type = R_TYPE_LOW_TITLE
    if t_score == 0.0:
        r_type = R_TYPE_NO_TITLE
    return TypeReward(r_type, q_match, c_match, t_score)


# ----------------------------------------------------------------------------- attributes

class MatchCount(NamedTuple):
    """A fraction of goal items matched (``score``; None when there are none) and the count."""

    score: Optional[float]
    matches: int


class _ProductTextCache:
    """Lower-cased (title, joined bullet points, description) per asin, bounded FIFO.

    The attribute fallback searches these on every buy; lowering a long description each
    time would dominate the reward's cost. An entry is reused only for the same (or an
    equal) Product, so two catalogues sharing an asin cannot mix.
    """

    def __init__(self, maxsize: int = 8192) -> None:
        self.maxsize = maxsize
        self._entries: dict[str, tuple[Product, tuple[str, str, str]]] = {}

    def get(self, product: Product) -> tuple[str, str, str]:
        hit = self._entries.get(product.asin)
        if hit is not None and (hit[0] is product or hit[0] == product):
            return hit[1]
        texts = (product.title.lower(), " ".join(product.bullet_points).lower(),
                 product.description.lower())
        if len(self._entries) >= self.maxsize:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[product.asin] = (product, texts)
        return texts


_PRODUCT_TEXTS = _ProductTextCache()


def attribute_reward(product: Product, goal: Goal) -> MatchCount:
    """WebShop ``get_attribute_reward``: share of goal attributes the product has.

    A goal attribute matches if some product attribute scores > 85 with it
    (:func:`token_set_ratio`), else if it is a substring of the lower-cased title, the
    space-joined bullet points or the description. Same in both variants.
    """
    if not goal.attributes:
        raise ValueError(f"goal for {goal.asin} has no attributes; WebShop goals always have some")
    title, bullets, description = _PRODUCT_TEXTS.get(product)
    matches = 0
    for g_attr in goal.attributes:
        if any(_fuzzy_match(p_attr, g_attr) for p_attr in product.attributes):
            matches += 1
        elif g_attr in title or g_attr in bullets or g_attr in description:
            matches += 1
    return MatchCount(matches / len(goal.attributes), matches)


# ----------------------------------------------------------------------------- options

def _goal_option_key(option: GoalOption, variant: RewardVariant) -> OptionKey:
    # WebShop: synthetic goal_options is a dict whose .items() gives (name, value) tuples;
    # human goal_options is a list of value strings. GoalOption.name is None for the latter.
    if variant == "webshop" and option.name is not None:
        return (option.name, option.value)
    return option.value


def option_reward(purchased: Sequence[str], goal_options: Sequence[GoalOption], *,
                  variant: RewardVariant = "webshop") -> MatchCount:
    """WebShop ``get_option_reward``: share of goal options matched by a selected option.

    Every selected value and goal option goes through :func:`normalize_color`; a goal
    option counts once if any selected value scores > 85 with it. ``webshop`` compares a
    synthetic goal option as its ``(name, value)`` tuple (quirk 1); ``corrected`` compares
    the value string and also counts identical normalised strings as a match (so text
    made only of code points 128-255 cannot fail). ``score`` is None without goal options.
    """
    _check_variant(variant)
    selected = [normalize_color(p) for p in purchased]
    wanted = [normalize_color(_goal_option_key(g, variant)) for g in goal_options]
    matches = 0
    for g in wanted:
        for p in selected:
            if (variant == "corrected" and p == g) or _fuzzy_match(p, g):
                matches += 1
                break
    score = matches / len(wanted) if wanted else None
    return MatchCount(score, matches)


# ----------------------------------------------------------------------------- price

def price_reward(price: float, price_upper: float) -> Optional[bool]:
    """``price <= price_upper``; None when the goal has no bound (``price_upper <= 0``)."""
    return price <= price_upper if price_upper > 0 else None


# ----------------------------------------------------------------------------- total

@dataclass(frozen=True)
class RewardBreakdown:
    """The reward and its parts, as WebShop's ``get_reward(..., verbose=True)`` reports.

    Attributes:
        reward: the total in [0, 1].
        r_type: type reward (1.0, 0.5, 0.1 or 0.0), a multiplier on the rest.
        r_att: share of goal attributes matched; w_att its weight in the total.
        query_match, category_match, title_score: the parts of r_type.
        r_option: share of goal options matched, None when the goal has none;
            w_option its weight (None likewise).
        r_price: price within bound; None when the goal has no bound (then the price
            term is left out of the total and w_price is 0).
        w_price: weight of the price term.
        num_attr_matches, num_option_matches: the counts behind r_att and r_option.
    """

    reward: float
    r_type: float
    r_att: float
    w_att: float
    query_match: bool
    category_match: bool
    title_score: float
    r_option: Optional[float]
    w_option: Optional[float]
    r_price: Optional[bool]
    w_price: float
    num_attr_matches: int
    num_option_matches: int

    def to_info(self) -> dict[str, Any]:
        """WebShop's verbose info dict: option and price keys only when defined."""
        info: dict[str, Any] = {
            "r_type": self.r_type, "r_att": self.r_att, "w_att": self.w_att,
            "query_match": self.query_match, "category_match": self.category_match,
            "title_score": self.title_score,
        }
        if self.r_option is not None:
            info["r_option"] = self.r_option
            info["w_option"] = self.w_option
        if self.r_price is not None:
            info["r_price"] = self.r_price
            info["w_price"] = self.w_price
        return info


_DEFAULT_TAGGER: Optional[NounTagger] = None


def _default_tagger() -> NounTagger:
    global _DEFAULT_TAGGER
    if _DEFAULT_TAGGER is None:
        _DEFAULT_TAGGER = default_noun_tagger()
    return _DEFAULT_TAGGER


def compute_reward(product: Product, goal: Goal, price: float, options: Mapping[str, str], *,
                   nouns: Optional[NounTagger] = None,
                   variant: RewardVariant = "webshop") -> RewardBreakdown:
    """WebShop ``get_reward`` for buying ``product`` with ``options`` at ``price``.

    Args:
        product: the purchased product.
        goal: the episode's goal.
        price: the price the shop charged (the seeded ``GoalSet.prices[asin]``, not the
            price tag, which is a range for some products).
        options: the selected options, group name -> value; values are used in insertion
            order (as WebShop's session dict). Unselected groups are simply absent.
        nouns: title noun tagger; default :func:`default_noun_tagger` without a data dir
            (spaCy if installed, else the heuristic). Pass the table tagger for the real
            catalogue when spaCy is absent.
        variant: ``webshop`` (exact, quirks included) or ``corrected`` (module docstring).

    Departure: WebShop raises TypeError when ``price_upper <= 0`` (it adds None); here the
    price term is then left out of numerator and denominator. WebShop goals always have a
    positive bound, so this never changes a WebShop score.
    """
    _check_variant(variant)
    if not all(isinstance(v, str) for v in options.values()):
        raise TypeError(f"option values must be strings, got {dict(options)!r}")
    tagger = nouns if nouns is not None else _default_tagger()

    t = type_reward(product, goal, tagger, variant=variant)
    att = attribute_reward(product, goal)
    opt = option_reward(list(options.values()), goal.goal_options, variant=variant)
    r_price = price_reward(price, goal.price_upper)

    n_att, n_opt = len(goal.attributes), len(goal.goal_options)
    denominator = n_att + n_opt + (1 if r_price is not None else 0)
    numerator = att.matches + opt.matches + (int(r_price) if r_price is not None else 0)
    reward = numerator / denominator * t.r_type
    return RewardBreakdown(
        reward=reward,
        r_type=t.r_type,
        r_att=att.score,  # type: ignore[arg-type]  # never None: attributes are required
        w_att=n_att / denominator,
        query_match=t.query_match,
        category_match=t.category_match,
        title_score=t.title_score,
        r_option=opt.score,
        w_option=n_opt / denominator if n_opt else None,
        r_price=r_price,
        w_price=1 / denominator if r_price is not None else 0.0,
        num_attr_matches=att.matches,
        num_option_matches=opt.matches,
    )
