"""A seeded synthetic catalogue with the real WebShop catalogue's schema and statistics.

Used when the real data is absent (the default catalogue) and for the search benchmark at
WebShop's full scale (1.18M products), which is not redistributable. Figures it follows,
measured on the real 1,000-product catalogue (resources_1k/documents.jsonl):

* categories: beauty 23.8%, electronics 22.9%, garden 21.6%, fashion 20.0%, grocery 11.7%;
* indexed ``contents``: 124 words on average (median 88): title ~18 words, description
  ~79 (30% empty), first bullet ~21 (7% of products have no bullets), option text;
  4.6 bullets of ~24 words per product;
* option groups: 58% none, 25% one, 16% two, 1% three; 5.7 values per group (at least 2);
* prices: 9% ranges, 9% WebShop's missing-price default $100.0, median ~$25;
* ~41% of products carry a synthetic instruction ``Find me <attributes> <query> with
  <attributes>`` and its instruction attributes, so :func:`build_goal_set` yields goals.

Product text is drawn from a category-conditional Zipf vocabulary plus brand-like
pseudo-words and model numbers (so the vocabulary keeps growing with the catalogue, as a
real one does). Generation is vectorised per chunk; 1.18M products take about a minute.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from rl_app.data.files import atomic_write
from rl_app.shop.catalogue import Catalogue, index_contents
from rl_app.shop.types import DEFAULT_PRICE, Product

__all__ = ["generate_catalogue", "write_catalogue_jsonl", "CATEGORY_WEIGHTS", "OPTION_GROUP_COUNT_P"]

CATEGORY_WEIGHTS = {"beauty": 0.238, "electronics": 0.229, "garden": 0.216, "fashion": 0.200,
                    "grocery": 0.117}
# P(number of option groups = 0, 1, 2, 3) in the real catalogue (577/245/165/13 of 1,000).
OPTION_GROUP_COUNT_P = (0.577, 0.245, 0.165, 0.013)
# Values per option group: 2 + geometric, mean 5.7 as in the real catalogue.
MIN_OPTION_VALUES = 2
MEAN_EXTRA_OPTION_VALUES = 3.7
# Word counts: lognormal (mean, sigma); description empty / no bullets with these rates.
TITLE_WORDS = (18.0, 0.45)
DESCRIPTION_WORDS = (108.0, 0.9)
DESCRIPTION_EMPTY_P = 0.30
BULLET_WORDS = (23.0, 0.6)
NO_BULLETS_P = 0.07
BULLET_COUNT_P = {1: 0.12, 2: 0.02, 3: 0.05, 4: 0.09, 5: 0.60, 6: 0.06, 7: 0.04, 8: 0.02}
PRICE_RANGE_P = 0.093
MISSING_PRICE_P = 0.089
PRICE_MEDIAN, PRICE_SIGMA = 22.0, 1.2
# Instruction attributes per instruction (2: 43%, 3: 27%, 4: 17%, 5: 13%).
INSTRUCTION_ATTRIBUTES_P = {2: 0.43, 3: 0.27, 4: 0.17, 5: 0.13}
# Attributes of a product without instruction: 0, 1, 2, ... (real: 18%, 19%, 19%, 13%, ...).
ATTRIBUTE_COUNT_P = (0.185, 0.19, 0.19, 0.135, 0.12, 0.065, 0.05, 0.065)
MODEL_NUMBER_P = 0.3
# Shares of the description vocabulary: general product English, category words, numbers.
WORD_SHARES = (0.70, 0.22, 0.08)
# Titles: fewer function words (the first _FUNCTION_WORDS general words are skipped).
TITLE_WORD_SHARES = (0.30, 0.60, 0.10)
_FUNCTION_WORDS = 44
_CHUNK = 20_000
_BULLET_POOL = 512

_ROOTS = {"beauty": "Beauty & Personal Care", "electronics": "Electronics",
          "garden": "Home & Kitchen", "fashion": "Clothing, Shoes & Jewelry",
          "grocery": "Grocery & Gourmet Food"}
# (query, breadcrumb below the root, title noun) per category.
_TYPES = {
    "beauty": [
        ("hair masks", "Hair Care › Hair Masks", "hair mask"),
        ("face moisturizers", "Skin Care › Face › Moisturizers", "face moisturizer"),
        ("lipstick", "Makeup › Lips › Lipstick", "lipstick"),
        ("nail polish", "Foot, Hand & Nail Care › Nail Art & Polish › Nail Polish", "nail polish"),
        ("shampoo", "Hair Care › Shampoo & Conditioner › Shampoos", "shampoo"),
        ("eyeshadow", "Makeup › Eyes › Eyeshadow", "eyeshadow palette"),
        ("body wash", "Skin Care › Body › Cleansers › Body Washes", "body wash"),
        ("hair dryers", "Hair Care › Styling Tools & Appliances › Hair Dryers", "hair dryer"),
        ("makeup brushes", "Tools & Accessories › Makeup Brushes & Tools › Brush Sets", "makeup brush set"),
        ("perfume", "Fragrance › Women's › Eau de Parfum", "perfume"),
        ("teeth whitening", "Oral Care › Teeth Whitening", "teeth whitening kit"),
        ("wigs", "Hair Care › Hair Extensions, Wigs & Accessories › Wigs", "lace front wig")],
    "electronics": [
        ("hdmi cables", "Accessories & Supplies › Audio & Video Accessories › Cables › HDMI Cables", "hdmi cable"),
        ("earbud headphones", "Headphones, Earbuds & Accessories › Earbud Headphones", "wireless earbuds"),
        ("usb flash drives", "Computers & Accessories › Data Storage › USB Flash Drives", "usb flash drive"),
        ("surveillance cameras", "Camera & Photo › Video Surveillance › Surveillance Cameras", "security camera"),
        ("bluetooth speakers", "Portable Audio & Video › Portable Speakers & Docks", "bluetooth speaker"),
        ("tv mounts", "Television & Video › Accessories › TV Mounts, Stands & Turntables", "tv wall mount"),
        ("power banks", "Computers & Accessories › Power Banks", "portable charger"),
        ("computer mice", "Computers & Accessories › Keyboards, Mice & Accessories › Mice", "wireless mouse"),
        ("tablet cases", "Computers & Accessories › Tablet Accessories › Cases", "tablet case"),
        ("car stereo receivers", "Car & Vehicle Electronics › Car Audio › Car Stereo Receivers", "car stereo"),
        ("projectors", "Television & Video › Projectors", "video projector")],
    "garden": [
        ("throw pillow covers", "Bedding › Decorative Pillows, Inserts & Covers › Throw Pillow Covers", "throw pillow cover"),
        ("area rugs", "Home Décor › Area Rugs, Runners & Pads › Area Rugs", "area rug"),
        ("window curtains", "Home Décor › Window Treatments › Curtains & Drapes › Panels", "blackout curtains"),
        ("wall art", "Wall Art › Posters & Prints", "canvas wall art"),
        ("bar stools", "Furniture › Game & Recreation Room Furniture › Home Bar Furniture › Barstools", "bar stool"),
        ("ceiling lights", "Lighting & Ceiling Fans › Ceiling Lights › Pendant Lights", "pendant light"),
        ("storage baskets", "Storage & Organization › Baskets, Bins & Containers", "storage basket"),
        ("bath towels", "Bath › Towels › Bath Towels", "bath towel set"),
        ("office chairs", "Furniture › Home Office Furniture › Home Office Chairs", "office chair"),
        ("sheet & pillowcase sets", "Bedding › Sheets & Pillowcases › Sheet & Pillowcase Sets", "bed sheet set"),
        ("console tables", "Furniture › Living Room Furniture › Tables › Sofa & Console Tables", "console table")],
    "fashion": [
        ("women's activewear", "Women › Clothing › Active › Active Shorts", "yoga shorts"),
        ("men's t-shirts", "Men › Clothing › Shirts › T-Shirts", "t-shirt"),
        ("women's sandals", "Women › Shoes › Sandals › Flat Sandals", "flat sandals"),
        ("men's loafers & slip-ons", "Men › Shoes › Loafers & Slip-Ons", "loafers"),
        ("women's dresses", "Women › Clothing › Dresses › Casual", "maxi dress"),
        ("men's jeans", "Men › Clothing › Jeans", "slim jeans"),
        ("women's lingerie, sleep & lounge", "Women › Clothing › Lingerie, Sleep & Lounge › Sleepwear", "pajama set"),
        ("men's sneakers", "Men › Shoes › Fashion Sneakers", "running shoes"),
        ("women's sweaters", "Women › Clothing › Sweaters › Cardigans", "cardigan sweater"),
        ("baby girls clothing", "Baby › Baby Girls › Clothing › Clothing Sets", "outfit set")],
    "grocery": [
        ("snack foods", "Snacks & Sweets › Chips & Crisps", "potato chips"),
        ("ground coffee", "Beverages › Coffee, Tea & Cocoa › Coffee › Ground Coffee", "ground coffee"),
        ("herbal tea", "Beverages › Coffee, Tea & Cocoa › Tea › Herbal", "herbal tea bags"),
        ("party mix", "Snacks & Sweets › Snack Mixes", "snack mix"),
        ("protein bars", "Snacks & Sweets › Bars › Protein Bars", "protein bar"),
        ("chocolate candy", "Snacks & Sweets › Chocolate › Candy & Chocolate Bars", "chocolate bar"),
        ("spices & seasonings", "Pantry Staples › Herbs, Spices & Seasonings › Mixed Spices & Seasonings", "seasoning blend"),
        ("jerky", "Meat & Seafood › Jerky & Dried Meats", "beef jerky"),
        ("olive oil", "Pantry Staples › Cooking & Baking › Oils › Olive", "extra virgin olive oil")],
}
_ATTRIBUTES = {
    "beauty": ["long lasting", "cruelty free", "paraben free", "natural ingredients", "dry skin",
               "sensitive skin", "easy apply", "hair growth", "dead skin", "tea tree", "essential oils",
               "hyaluronic acid", "fine lines", "oil free", "alcohol free", "travel size",
               "high quality", "easy use", "anti aging", "argan oil", "coconut oil", "hair loss",
               "damaged hair", "dark circles", "easy carry", "natural hair"],
    "electronics": ["high speed", "easy install", "usb port", "wireless bluetooth", "plug play",
                    "high definition", "noise cancelling", "fast charging", "water resistant",
                    "long battery life", "easy carry", "hands free", "dual band", "stereo sound",
                    "ultra hd", "aluminum alloy", "carrying case", "heavy duty", "light weight",
                    "remote control", "touch screen", "quad core", "gold plated", "motion detection"],
    "garden": ["easy clean", "living room", "dining room", "machine washable", "easy assemble",
               "solid wood", "stainless steel", "super soft", "double sided", "eco friendly",
               "non slip", "space saving", "high density", "mid century", "storage space",
               "wood finish", "pu leather", "metal legs", "memory foam", "queen size",
               "home office", "heavy duty", "assembly required", "ready hang"],
    "fashion": ["machine wash", "hand wash", "long sleeve", "short sleeve", "high waist", "slim fit",
                "loose fit", "button closure", "elastic waistband", "rubber sole", "tummy control",
                "polyester spandex", "quality materials", "daily wear", "classic fit", "relaxed fit",
                "non slip", "arch support", "soft material", "drawstring closure", "lace closure",
                "teen girls", "butt lifting", "regular fit", "cotton spandex"],
    "grocery": ["gluten free", "non gmo", "sugar free", "low carb", "keto friendly",
                "natural ingredients", "high protein", "plant based", "low calorie", "dairy free",
                "real fruit", "certified organic", "individually wrapped", "ready eat",
                "artificial flavors", "dietary fiber", "shelf stable", "zero sugar", "low fat",
                "grass fed", "birthday cake", "baby shower", "great gift"],
}
_CATEGORY_WORDS = {
    "beauty": "skin hair cream oil natural moisturizing gentle formula vitamin organic scalp smooth "
              "shine fragrance serum lotion nourish hydrating collagen makeup brush nail lip matte "
              "waterproof face body cleanser mask shampoo conditioner curl wig lace scent beauty "
              "salon ingredients glow pores acne soothing extract aloe vegan dermatologist tested",
    "electronics": "usb cable charging wireless bluetooth battery device compatible power port speaker "
                   "audio video camera screen hd 4k adapter charger connector laptop phone tablet iphone "
                   "android mode signal sound data transfer speed mount remote led display sensor app "
                   "smart chip storage memory gb volt watt hdmi connection resolution",
    "garden": "home room decor bed pillow cover living kitchen table wall furniture chair curtain "
              "window rug floor storage wood fabric cotton polyester sofa decoration bedroom office "
              "light lamp towel bath frame shelf cushion modern style decorative gift house garden "
              "outdoor indoor washable assembly",
    "fashion": "women men dress shirt top pants shorts shoes sandals jeans sleeve waist fit casual "
               "summer winter cotton fabric soft comfortable stretch wear party fashion workout yoga "
               "sports outfit pocket leggings sneakers socks jacket hoodie sweater pajamas blouse "
               "tee girls boys plus elastic breathable",
    "grocery": "flavor sugar natural snack delicious taste food ingredients organic healthy protein "
               "coffee tea chocolate sweet salt spice fresh gourmet bag pack ounce gluten calories "
               "oil seasoning roasted nuts fruit butter honey vanilla cookies candy drink cup "
               "breakfast recipe serving jar",
}
_GENERAL = (
    "the and a to for of with is your you in it this our are can be on or that as from not will "
    "all any have we so more use up please if by made make easy high quality design perfect "
    "size color product material great fit best set pack include new also one time very help "
    "comfortable durable package just style other when each great it's long which but premium "
    "features small large free gift provide keep only well day about different than into most "
    "like need used 100 service no ideal safe strong suitable much everyday these there their "
    "good years daily they return many perfect without allow get while better friends family "
    "care within feel order unique satisfaction question full professional heavy hours simple "
    "soft multiple plus light special choice perfectly occasions standard inch width length "
    "weight height item note due slight difference measurement manual please allow monitor "
    "actual picture shown customers experience clean wash lightweight convenient portable "
    "warranty guarantee replacement contact us hesitate customer support brand original quick "
    "compact classic elegant stylish beautiful practical reliable effective essential innovative "
    "advanced upgraded secure sturdy solid flexible natural extra super ultra total mini "
    "black white blue red pink grey green brown purple gold silver"
).split()
_NUMBERS = "1 2 3 4 5 6 8 10 12 15 20 24 30 50 x cm mm oz ml lb ft pcs pieces inches".split()
_COLORS = ["black", "white", "blue", "red", "pink", "grey", "navy", "green", "purple", "yellow",
           "brown", "gold", "silver", "gray", "beige", "khaki", "orange", "olive", "teal", "wine",
           "ivory", "charcoal", "burgundy", "taupe", "rose gold", "light blue", "navy blue",
           "royal blue", "heather grey", "dark blue", "light grey", "army green", "multicolor",
           "leopard", "black | white", "a-black", "b-blue", "c-pink", "d-grey"]
_OPTION_VALUES = {
    "color": _COLORS,
    "size:fashion": ["xx-small", "x-small", "small", "medium", "large", "x-large", "xx-large",
                     "3x-large", "4x-large", "5x-large"],
    "size:shoes": ["5", "5.5", "6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12", "13"],
    "size:beauty": ["0.5 fl oz", "1 fl oz", "1.7 fl oz", "3.4 fl oz", "6.8 fl oz", "8 ounce",
                    "16 ounce", "100ml", "2 count", "3 count", "1 pack", "2 pack"],
    "size:grocery": ["2.5 ounce (pack of 6)", "4 ounce (pack of 1)", "8 ounce (pack of 2)",
                     "12 ounce (pack of 1)", "1 pound (pack of 1)", "2 pound (pack of 1)",
                     "12 count (pack of 1)", "24 count (pack of 1)", "6 count (pack of 4)"],
    "size:electronics": ["3 feet", "6 feet", "10 feet", "15 feet", "25 feet", "32gb", "64gb",
                         "128gb", "256gb", "1 pack", "2 pack", "4 pack"],
    "size:garden": ["12 x 20 inch", "18 x 18 inch", "20 x 20 inch", "16 x 24 inch", "24 x 36 inch",
                    "twin", "full", "queen", "king", "california king", "5 x 7 ft", "8 x 10 ft"],
    "scent": ["lavender", "vanilla", "unscented", "rose", "coconut", "citrus", "eucalyptus",
              "sandalwood", "fresh linen", "jasmine", "mint"],
    "flavor name": ["original", "sea salt", "barbecue", "sour cream & onion", "chocolate", "vanilla",
                    "strawberry", "peanut butter", "honey", "spicy", "cinnamon", "mixed berry"],
    "style": ["classic", "modern", "vintage", "standard", "deluxe", "pro", "basic", "premium",
              "with stand", "without stand"],
    "pattern name": ["solid", "striped", "floral", "plaid", "geometric", "polka dot", "marble",
                     "abstract", "tie dye"],
    "fit type": ["regular", "big & tall", "slim", "relaxed", "plus size"],
}
# Option group names in page order, per category: one group, two groups, three groups.
_GROUPS = {
    "beauty": (("color", "size", "scent"), ("color", "size"), ("size", "scent")),
    "electronics": (("color", "size", "style"), ("color", "size"), ("style", "color")),
    "garden": (("color", "size", "pattern name"), ("size", "color"), ("color", "style")),
    "fashion": (("color", "size", "fit type"), ("size", "color"), ("color", "size")),
    "grocery": (("flavor name", "size", "style"), ("flavor name", "size"), ("size", "flavor name")),
}
_MAX_ATTRIBUTE_POOL = max(len(v) for v in _ATTRIBUTES.values())
_MAX_OPTION_VALUES = max(len(v) for v in _OPTION_VALUES.values())
_SYLLABLES = ("ka lo mi ve ra zu ne to pi sa bo lu re ki mo da vi ta no xi fe go ha ju ly "
              "qu wo ze be co di fu ga").split()
_ASIN_ALPHABET = string.digits + string.ascii_uppercase
_ASIN_MULTIPLIER = 2_654_435_761  # coprime with 36, so i -> asin is one-to-one


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic GC while millions of long-lived objects are made (no cycles are)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _lognormal_counts(rng: np.random.Generator, mean: float, sigma: float, n: int, low: int) -> np.ndarray:
    median = mean / np.exp(sigma ** 2 / 2)
    return np.maximum(low, np.rint(rng.lognormal(np.log(median), sigma, n))).astype(np.int64)


def _choice(rng: np.random.Generator, probs: dict[int, float] | tuple[float, ...], n: int) -> np.ndarray:
    values = list(probs) if isinstance(probs, dict) else list(range(len(probs)))
    p = np.array(list(probs.values()) if isinstance(probs, dict) else probs, dtype=np.float64)
    return np.asarray(values)[rng.choice(len(values), size=n, p=p / p.sum())]


@dataclass(frozen=True)
class _Vocabulary:
    """Per-category word lists and cumulative probabilities (Zipf within each share)."""

    words: np.ndarray                 # object array of every word
    cdf: dict[str, np.ndarray]        # "<category>" or "<category>:title" -> cumulative p over ids
    ids: dict[str, np.ndarray]        # the same keys -> word ids it can draw

    @classmethod
    def build(cls) -> "_Vocabulary":
        words: list[str] = list(_GENERAL) + list(_NUMBERS)
        general = np.arange(len(_GENERAL))
        numbers = np.arange(len(_GENERAL), len(words))
        cdf, ids = {}, {}
        for cat, text in _CATEGORY_WORDS.items():
            own = np.arange(len(words), len(words) + len(text.split()))
            words += text.split()
            for key, shares, common in ((cat, WORD_SHARES, general),
                                        (f"{cat}:title", TITLE_WORD_SHARES, general[_FUNCTION_WORDS:])):
                parts = [(common, shares[0]), (own, shares[1]), (numbers, shares[2])]
                p = np.concatenate([share * _zipf(len(part)) for part, share in parts])
                ids[key] = np.concatenate([part for part, _ in parts])
                cdf[key] = np.cumsum(p / p.sum())
        return cls(np.array(words, dtype=object), cdf, ids)

    def draw(self, rng: np.random.Generator, key: str, n: int) -> np.ndarray:
        pos = np.searchsorted(self.cdf[key], rng.random(n), side="right")
        return self.ids[key][np.minimum(pos, len(self.ids[key]) - 1)]

    def draw_runs(self, rng: np.random.Generator, key: str, counts: np.ndarray) -> list[list[str]]:
        """One list of ``counts[i]`` words per entry, from a single vectorised draw."""
        drawn = self.words[self.draw(rng, key, int(counts.sum()))].tolist()
        ends = np.cumsum(counts).tolist()
        return [drawn[end - n:end] for end, n in zip(ends, counts.tolist())]


def _zipf(n: int, exponent: float = 1.0) -> np.ndarray:
    p = 1.0 / np.arange(2, n + 2) ** exponent
    return p / p.sum()


def _brand_names(rng: np.random.Generator, n: int) -> list[str]:
    syllables = np.array(_SYLLABLES, dtype=object)
    counts = rng.integers(2, 4, n)
    picks = rng.integers(0, len(syllables), (n, 3))
    return ["".join(syllables[picks[i, :counts[i]]]) for i in range(n)]


def _asins(start: int, n: int, seed: int) -> list[str]:
    offset = (seed * 7_919 + 12_345) * 1_000_003 % 36 ** 8
    numbers = (np.arange(start, start + n, dtype=np.int64) * _ASIN_MULTIPLIER + offset) % 36 ** 8
    digits = np.empty((n, 8), dtype=np.int64)
    for j in range(7, -1, -1):
        digits[:, j] = numbers % 36
        numbers //= 36
    alphabet = np.array(list(_ASIN_ALPHABET))
    return ["B0" + "".join(row) for row in alphabet[digits]]


def _options(category: str, n_groups: int, shoe: bool, variant: int, first: int,
             extra: list[int], u: list[float], keys: np.ndarray,
             cache: dict) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Option groups from pre-drawn randomness (``keys``: one row of uniforms per group)."""
    if n_groups == 0:
        return ()
    names = _GROUPS[category][0] if n_groups == 3 else _GROUPS[category][variant]
    if n_groups == 1:
        names = names[first:]
    groups = []
    for g, name in enumerate(names[:n_groups]):
        key = f"size:{'shoes' if shoe else category}" if name == "size" else name
        values = _OPTION_VALUES[key]
        count = min(len(values), MIN_OPTION_VALUES + extra[g])
        if name == "size":  # sizes come as a contiguous run
            start = int(u[g] * (len(values) - count + 1))
            chosen = tuple(values[start:start + count])
        else:
            chosen = tuple(values[j] for j in sorted(np.argsort(keys[g, :len(values)])[:count].tolist()))
        groups.append((name, cache.setdefault((name, chosen), chosen)))
    return tuple(groups)


def _prices(rng: np.random.Generator, m: int) -> list[tuple[tuple[float, ...], str]]:
    """(pricing, price tag) per product: single, range, or WebShop's missing-price default."""
    kind = rng.random(m).tolist()
    low = np.clip(rng.lognormal(np.log(PRICE_MEDIAN), PRICE_SIGMA, m), 0.99, 5000.0)
    high = (low * rng.uniform(1.2, 2.5, m)).tolist()
    out = []
    for u, lo, hi in zip(kind, low.tolist(), high):
        lo, hi = round(lo, 2), round(hi, 2)
        if u < MISSING_PRICE_P:
            out.append(((DEFAULT_PRICE,), f"${DEFAULT_PRICE}"))
        elif u < MISSING_PRICE_P + PRICE_RANGE_P:
            out.append(((lo, hi), f"${lo} to ${hi}"))
        else:
            out.append(((lo,), f"${lo}"))
    return out


def _instruction(query: str, attributes: tuple[str, ...], u: float) -> str:
    """``Find me [a1, a2] <query> with a3, a4``: WebShop puts some attributes before the query."""
    before = int(u * len(attributes))
    lead = ", ".join(attributes[:before])
    return f"Find me {lead + ' ' if lead else ''}{query} with {', '.join(attributes[before:])}"


def generate_catalogue(n_products: int, *, seed: int = 0, instruction_fraction: float = 0.4,
                       source: Optional[str] = None) -> Catalogue:
    """``n_products`` synthetic products, identical for the same ``seed``.

    Args:
        n_products: catalogue size (WebShop's full catalogue has 1,181,436).
        seed: seeds every draw (numpy ``default_rng``); nothing global is touched.
        instruction_fraction: share of products with a synthetic instruction (real: 0.415).
        source: the catalogue's name in messages (default ``synthetic-n<N>-seed<S>``).
    """
    if isinstance(n_products, bool) or not isinstance(n_products, (int, np.integer)) or n_products <= 0:
        raise ValueError(f"n_products must be a positive int, got {n_products!r}")
    if not 0.0 <= instruction_fraction <= 1.0:
        raise ValueError(f"instruction_fraction must be in [0, 1], got {instruction_fraction}")
    rng = np.random.default_rng(seed)
    vocab = _Vocabulary.build()
    categories = list(CATEGORY_WEIGHTS)
    brands = _brand_names(rng, max(50, n_products // 25))
    bullet_pool = {cat: [" ".join(words).capitalize() for words in vocab.draw_runs(
                       rng, cat, _lognormal_counts(rng, *BULLET_WORDS, _BULLET_POOL, 3))]
                   for cat in categories}
    option_cache: dict = {}
    products: list[Product] = []
    with _gc_paused():
        for start in range(0, n_products, _CHUNK):
            m = min(_CHUNK, n_products - start)
            products.extend(_chunk(rng, vocab, brands, bullet_pool, option_cache, start, m, seed,
                                   instruction_fraction))
        return Catalogue(tuple(products), source=source or f"synthetic-n{n_products}-seed{seed}")


def _chunk(rng: np.random.Generator, vocab: _Vocabulary, brands: list[str],
           bullet_pool: dict[str, list[str]], option_cache: dict, start: int, m: int, seed: int,
           instruction_fraction: float) -> list[Product]:
    categories = list(CATEGORY_WEIGHTS)
    cat_idx = rng.choice(len(categories), m, p=np.array(list(CATEGORY_WEIGHTS.values())) / sum(CATEGORY_WEIGHTS.values()))
    title_n = _lognormal_counts(rng, *TITLE_WORDS, m, 3)
    desc_n = np.where(rng.random(m) < DESCRIPTION_EMPTY_P, 0, _lognormal_counts(rng, *DESCRIPTION_WORDS, m, 5))
    has_bullets = rng.random(m) >= NO_BULLETS_P
    bullet_n = _lognormal_counts(rng, *BULLET_WORDS, m, 3)
    n_bullets = _choice(rng, BULLET_COUNT_P, m)
    n_groups = _choice(rng, OPTION_GROUP_COUNT_P, m)
    with_instruction = rng.random(m) < instruction_fraction
    n_instruction = _choice(rng, INSTRUCTION_ATTRIBUTES_P, m)
    n_attributes = np.where(with_instruction, n_instruction, _choice(rng, ATTRIBUTE_COUNT_P, m))
    extra_attributes = np.where(with_instruction, rng.geometric(0.6, m) - 1, 0)
    brand_idx = (len(brands) * rng.random(m) ** 2).astype(np.int64)  # a few big brands
    model = rng.random(m) < MODEL_NUMBER_P
    model_codes = rng.integers(100, 10_000, m)
    asins = _asins(start, m, seed)

    # Vectorised draws per category: filler title words, then description + first bullet.
    title_fill = np.maximum(0, title_n - 6)
    body_n = desc_n + np.where(has_bullets, bullet_n, 0)
    title_words: list[list[str]] = [[] for _ in range(m)]
    body_words: list[list[str]] = [[] for _ in range(m)]
    for c, cat in enumerate(categories):
        rows = np.flatnonzero(cat_idx == c)
        for row, words in zip(rows.tolist(), vocab.draw_runs(rng, f"{cat}:title", title_fill[rows])):
            title_words[row] = words
        for row, words in zip(rows.tolist(), vocab.draw_runs(rng, cat, body_n[rows])):
            body_words[row] = words

    # Everything else per product, drawn as arrays first (numpy scalar calls are slow).
    type_u, split_u = rng.random(m).tolist(), rng.random(m).tolist()
    attr_order = np.argsort(rng.random((m, _MAX_ATTRIBUTE_POOL)), axis=1).tolist()
    pool_picks = rng.integers(0, _BULLET_POOL, (m, max(BULLET_COUNT_P))).tolist()
    variant, first_group = rng.integers(1, 3, m).tolist(), rng.integers(0, 2, m).tolist()
    extra_values = (rng.geometric(1 / (1 + MEAN_EXTRA_OPTION_VALUES), (m, 3)) - 1).tolist()
    start_u = rng.random((m, 3)).tolist()
    subset_keys = rng.random((m, 3, _MAX_OPTION_VALUES))
    prices = _prices(rng, m)
    cat_idx, n_attributes = cat_idx.tolist(), (n_attributes + extra_attributes).tolist()
    n_instruction = n_instruction.tolist()
    brand_idx, model, model_codes = brand_idx.tolist(), model.tolist(), model_codes.tolist()
    has_bullets, n_bullets, n_groups = has_bullets.tolist(), n_bullets.tolist(), n_groups.tolist()
    desc_n, with_instruction = desc_n.tolist(), with_instruction.tolist()

    out = []
    for i in range(m):
        cat = categories[cat_idx[i]]
        types = _TYPES[cat]
        query, crumb, noun = types[int(type_u[i] * len(types))]
        pool = _ATTRIBUTES[cat]
        attributes = tuple(pool[j] for j in attr_order[i] if j < len(pool))[:n_attributes[i]]
        fill, words, d = title_words[i], body_words[i], desc_n[i]
        brand = brands[brand_idx[i]]
        half = len(fill) // 2
        parts = [brand, *attributes[:1], *fill[:half], noun, *fill[half:]]
        if model[i]:
            parts.append(f"{brand[:2].upper()}-{model_codes[i]}")
        title = string.capwords(" ".join(parts))
        description = ""
        if d:
            half = d // 2
            description = " ".join([*words[:half], noun, *attributes[1:3], *words[half:d]]).capitalize()
        bullets: tuple[str, ...] = ()
        if has_bullets[i]:
            others = bullet_pool[cat]
            first = " ".join([*attributes[3:], *words[d:]]).capitalize()
            bullets = (first, *(others[j] for j in pool_picks[i][:n_bullets[i] - 1]))
        shoe = cat == "fashion" and "Shoes" in crumb
        options = _options(cat, n_groups[i], shoe, variant[i], first_group[i], extra_values[i],
                           start_u[i], subset_keys[i], option_cache)
        pricing, price_tag = prices[i]
        instruction, ins_atts = None, ()
        if with_instruction[i]:
            ins_atts = attributes[:n_instruction[i]]
            instruction = _instruction(query, ins_atts, split_u[i])
        out.append(Product(
            asin=asins[i], name=title, title=title, description=description, bullet_points=bullets,
            category=cat, query=query, product_category=f"{_ROOTS[cat]} › {crumb}", pricing=pricing,
            price_tag=price_tag, options=options, attributes=attributes,
            contents=index_contents(title, description, bullets, options),
            instruction=instruction, instruction_attributes=ins_atts))
    return out


# ----------------------------------------------------------------------------- writing

def _document(p: Product) -> dict:
    """One documents.jsonl record: the post-load product dict WebShop's engine writes."""
    options = {name: list(values) for name, values in p.options}
    product = {
        "name": p.name, "full_description": p.description, "pricing": list(p.pricing),
        "images": [], "product_category": p.product_category, "average_rating": "",
        "small_description": list(p.bullet_points),
        "customization_options": {
            name: [{"is_selected": False, "url": "", "value": v, "price_string": "", "price": 0,
                    "image": ""} for v in values] for name, values in p.options},
        "asin": p.asin, "category": p.category, "query": p.query, "page": 1,
        "Title": p.title, "Description": p.description, "Reviews": list(p.reviews),
        "Rating": p.rating, "BulletPoints": list(p.bullet_points), "Price": p.price_tag,
        "options": options, "option_to_image": {}, "Attributes": list(p.attributes),
        "MainImage": "",
    }
    return {"id": p.asin, "contents": p.contents, "product": product}


def _ins_record(p: Product) -> dict:
    rec: dict = {"attributes": list(p.attributes)}
    if p.instruction is not None:
        rec["instruction"] = p.instruction
        rec["instruction_attributes"] = list(p.instruction_attributes)
    return rec


def _write_atomic(path: Path, write) -> None:
    def write_file(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as f:
            write(f)

    atomic_write(path, write_file)


def write_catalogue_jsonl(catalogue: Catalogue, path: str | os.PathLike,
                          ins_path: Optional[str | os.PathLike] = None) -> tuple[Path, Path]:
    """Write WebShop's ``documents.jsonl`` layout plus its ``items_ins_v2`` JSON.

    ``ins_path`` defaults to ``items_ins_v2.json`` next to ``path``. Read back with
    ``load_documents_jsonl(path, ins_path)``; for ``load_webshop_catalogue(root)`` put the
    documents at ``root/resources_1k/documents.jsonl`` and the ins file in ``root``.
    Each file is written to a temporary name and renamed, so readers never see half a file.
    Human instruction records are not written (documents.jsonl embeds them only for the
    13 products of the real small catalogue).
    """
    path = Path(path)
    ins = Path(ins_path) if ins_path is not None else path.with_name("items_ins_v2.json")

    def write_docs(f) -> None:
        for p in catalogue:
            f.write(json.dumps(_document(p)) + "\n")

    def write_ins(f) -> None:
        json.dump({p.asin: _ins_record(p) for p in catalogue}, f)

    _write_atomic(path, write_docs)
    _write_atomic(ins, write_ins)
    return path, ins
