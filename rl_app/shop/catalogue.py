"""Product catalogues: loading WebShop's files, prices, and where the data lives.

Two on-disk layouts are read:

* ``small``: WebShop's post-load ``resources_1k/documents.jsonl`` (one product per line,
  key ``product``) plus ``items_ins_v2_1000.json`` (attributes and synthetic instructions).
* ``raw``: WebShop's release files ``items_shuffle*.json`` + ``items_ins_v2*.json``
  (+ ``items_human_ins*.json``), converted the way ``engine.load_products`` does, so a user
  holding the full 1.18M-product catalogue can point at it.

Nothing here downloads anything; a missing or malformed file is a :class:`CatalogueError`
naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from rl_app.errors import InputError
from rl_app.shop.types import DEFAULT_PRICE, HumanInstruction, Product

__all__ = [
    "Catalogue",
    "CatalogueError",
    "DATA_DIR_ENV_VAR",
    "default_webshop_data_dir",
    "resolve_webshop_data_dir",
    "load_webshop_catalogue",
    "load_documents_jsonl",
    "load_raw_products",
    "product_from_raw",
    "index_contents",
    "sample_prices",
]

DATA_DIR_ENV_VAR = "RL_APP_WEBSHOP_DATA"
# WebShop drops asins that are "nan" or longer than this (engine.load_products).
MAX_ASIN_LEN = 10
DUMMY_ATTRIBUTE = "DUMMY_ATTR"


class CatalogueError(InputError):
    """A catalogue or goal file is missing, malformed, or inconsistent."""


def index_contents(title: str, description: str, bullet_points: Sequence[str],
                   options: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The text WebShop indexes for a product (search_engine/convert_product_file_format.py).

    Lower-cased ``Title Description BulletPoints[0] option text`` where the option text is
    ``"color: black, blue, and size: s, m"``. Checked byte-for-byte against all 1,000
    ``contents`` fields of the small catalogue in the tests.
    """
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in options)
    first_bullet = bullet_points[0] if bullet_points else ""
    return " ".join([title, description, first_bullet, option_text]).lower()


def _price_tag(pricing: Sequence[float]) -> str:
    if len(pricing) == 1:
        return f"${pricing[0]}"
    return f"${pricing[0]} to ${pricing[1]}"


@dataclass(frozen=True)
class Catalogue:
    """An ordered, immutable set of products with an asin index.

    Order matters: WebShop draws prices and builds goals in catalogue order, so the same
    seed gives the same goals only over the same order.
    """

    products: tuple[Product, ...]
    source: str = "memory"

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, p in enumerate(self.products):
            if p.asin in index:
                raise CatalogueError(f"{self.source}: duplicate asin {p.asin!r} (products {index[p.asin]} and {i})")
            index[p.asin] = i
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products)

    def __contains__(self, asin: object) -> bool:
        return isinstance(asin, str) and asin.upper() in self._index  # type: ignore[attr-defined]

    def __getitem__(self, asin: str) -> Product:
        try:
            return self.products[self._index[asin.upper()]]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"unknown asin {asin!r} in catalogue {self.source}") from None

    def position(self, asin: str) -> int:
        """Row of ``asin`` in catalogue order (the search index uses the same rows)."""
        return self._index[asin.upper()]  # type: ignore[attr-defined]


def sample_prices(products: Iterable[Product], rng: random.Random) -> dict[str, float]:
    """Per-asin prices as WebShop's ``generate_product_prices``.

    Single-price products cost that price; a range product draws ``rng.uniform(lo, hi)``,
    in catalogue order. The rng state afterwards feeds goal generation, as in WebShop.
    """
    prices: dict[str, float] = {}
    for p in products:
        if not p.pricing:
            prices[p.asin] = DEFAULT_PRICE
        elif len(p.pricing) == 1:
            prices[p.asin] = p.pricing[0]
        else:
            prices[p.asin] = rng.uniform(p.pricing[0], p.pricing[1])
    return prices


# ----------------------------------------------------------------------------- data dirs

def default_webshop_data_dir() -> Optional[Path]:
    """``../shared/webshop-data`` next to the working directory or the repository, if present."""
    here = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), here):
        candidate = (base / ".." / "shared" / "webshop-data").resolve()
        if (candidate / "resources_1k" / "documents.jsonl").is_file():
            return candidate
    return None


def resolve_webshop_data_dir(data_dir: Optional[str | os.PathLike] = None) -> Path:
    """Where the real WebShop data is: argument, then $RL_APP_WEBSHOP_DATA, then the default.

    Raises CatalogueError (never falls back to synthetic data) when none is there.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise CatalogueError(f"WebShop data directory {path} is a file; pass the directory that holds "
                                 "resources_1k/ or items_shuffle*.json")
        if not path.is_dir():
            raise CatalogueError(f"WebShop data directory {path} does not exist; pass the directory that holds "
                                 "resources_1k/ or items_shuffle*.json")
        return path
    env = os.environ.get(DATA_DIR_ENV_VAR)
    if env:
        path = Path(env).expanduser().resolve()
        if not path.is_dir():
            raise CatalogueError(f"${DATA_DIR_ENV_VAR}={env} is not a directory")
        return path
    found = default_webshop_data_dir()
    if found is None:
        raise CatalogueError(
            "WebShop data not found: pass --data-dir, set $"
            f"{DATA_DIR_ENV_VAR}, or place it at ../shared/webshop-data "
            "(or use --catalogue synthetic)")
    return found


# ----------------------------------------------------------------------------- parsing

def _require(record: Mapping[str, Any], key: str, where: str, types: type | tuple[type, ...]) -> Any:
    if not isinstance(record, Mapping):
        raise CatalogueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if key not in record:
        raise CatalogueError(f"{where}: missing field {key!r}")
    value = record[key]
    if not isinstance(value, types):
        raise CatalogueError(f"{where}: field {key!r} should be {types}, got {type(value).__name__}")
    return value


def _str_tuple(values: Any, where: str, key: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise CatalogueError(f"{where}: field {key!r} should be a list of strings")
    return tuple(values)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CatalogueError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CatalogueError(f"{path}: not valid JSON ({e})") from e


def _human_records(raw: Any, where: str) -> tuple[HumanInstruction, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CatalogueError(f"{where}: 'instructions' should be a list")
    out = []
    for j, rec in enumerate(raw):
        w = f"{where}.instructions[{j}]"
        out.append(HumanInstruction(
            asin=_require(rec, "asin", w, str),
            instruction=_require(rec, "instruction", w, str),
            attributes=_str_tuple(rec.get("attributes"), w, "attributes"),
            instruction_attributes=_str_tuple(rec.get("instruction_attributes"), w, "instruction_attributes"),
            instruction_options=_str_tuple(rec.get("instruction_options"), w, "instruction_options"),
        ))
    return tuple(out)


def _ins_fields(ins: Mapping[str, Any], asin: str, where: str) -> tuple[tuple[str, ...], Optional[str], tuple[str, ...]]:
    """(Attributes, synthetic instruction, instruction attributes) from items_ins_v2."""
    rec = ins.get(asin)
    if rec is None:
        return (DUMMY_ATTRIBUTE,), None, ()
    w = f"{where}[{asin!r}]"
    if not isinstance(rec, Mapping):
        raise CatalogueError(f"{w}: expected a JSON object (attributes, instruction, instruction_attributes), "
                             f"got {type(rec).__name__}")
    attributes = _str_tuple(rec.get("attributes"), w, "attributes") if "attributes" in rec else (DUMMY_ATTRIBUTE,)
    instruction = rec.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise CatalogueError(f"{w}: field 'instruction' should be a string")
    return attributes, instruction, _str_tuple(rec.get("instruction_attributes"), w, "instruction_attributes")


def load_documents_jsonl(path: str | os.PathLike, ins_path: str | os.PathLike) -> Catalogue:
    """Load WebShop's post-load ``documents.jsonl`` plus ``items_ins_v2*.json``."""
    path, ins_path = Path(path), Path(ins_path)
    if not path.is_file():
        raise CatalogueError(f"{path}: file not found")
    ins = _read_json(ins_path)
    if not isinstance(ins, dict):
        raise CatalogueError(f"{ins_path}: expected an object keyed by asin")
    products = []
    with path.open("rb") as f:
        for line_no, raw_line in enumerate(f, 1):
            where = f"{path}:{line_no}"
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CatalogueError(f"{where}: not UTF-8 text (byte {e.start}: {e.reason}); re-encode the file "
                                     "as UTF-8") from None
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise CatalogueError(f"{where}: not valid JSON ({e})") from e
            p = _require(doc, "product", where, dict)
            asin = _require(p, "asin", where + " product", str)
            options_raw = _require(p, "options", where + " product", dict)
            options = tuple((str(k), _str_tuple(v, where, f"options.{k}")) for k, v in options_raw.items())
            pricing = _prices(_require(p, "pricing", where + " product", list), f"{where} product {asin}")
            attributes, instruction, instruction_attributes = _ins_fields(ins, asin, str(ins_path))
            bullets = _str_tuple(_require(p, "BulletPoints", where, list), where, "BulletPoints")
            title = _require(p, "Title", where, str)
            description = _require(p, "Description", where, str)
            products.append(Product(
                asin=asin.upper(),
                name=_require(p, "name", where, str),
                title=title,
                description=description,
                bullet_points=bullets,
                category=_require(p, "category", where, str),
                query=_require(p, "query", where, str).lower().strip(),
                product_category=_require(p, "product_category", where, str),
                pricing=pricing,
                price_tag=_require(p, "Price", where, str),
                options=options,
                attributes=attributes,
                contents=doc.get("contents") or index_contents(title, description, bullets, options),
                instruction=instruction,
                instruction_attributes=instruction_attributes,
                human_instructions=_human_records(p.get("instructions"), where),
                reviews=tuple(str(r.get("body", r)) if isinstance(r, dict) else str(r) for r in p.get("Reviews") or ()),
                rating=str(p.get("Rating", "N.A.")),
            ))
    if not products:
        raise CatalogueError(f"{path}: no products")
    return Catalogue(tuple(products), source=str(path))


def _prices(values: list, where: str) -> tuple[float, ...]:
    """The first two prices of a ``pricing`` list: finite numbers >= 0 (numbers or numeric strings)."""
    out = []
    for x in values[:2]:
        try:
            if isinstance(x, bool):
                raise ValueError
            value = float(x)
        except (TypeError, ValueError):
            raise CatalogueError(f"{where}: field 'pricing' holds {x!r}, not a number") from None
        if not math.isfinite(value) or value < 0:
            raise CatalogueError(f"{where}: field 'pricing' holds {x!r}; prices must be finite and >= 0")
        out.append(value)
    if not out:
        raise CatalogueError(f"{where}: field 'pricing' should be a non-empty list of numbers")
    return tuple(out)


def _parse_pricing(raw: Any, where: str) -> tuple[float, ...]:
    if raw is None or raw == "" or raw == []:
        return (DEFAULT_PRICE,)
    if isinstance(raw, list):
        return _prices(raw, where)
    if not isinstance(raw, str):
        raise CatalogueError(f"{where}: field 'pricing' should be a string like '$12.99'")
    try:
        values = [float(Decimal(re.sub(r"[^\d.]", "", part))) for part in raw.split("$")[1:]]
    except InvalidOperation as e:
        raise CatalogueError(f"{where}: cannot parse pricing {raw!r}") from e
    if not values:
        return (DEFAULT_PRICE,)
    return tuple(values[:2])


def product_from_raw(p: Mapping[str, Any], ins: Mapping[str, Any],
                     human: Mapping[str, Any], where: str, ins_where: str = "items_ins") -> Product:
    """Convert one raw ``items_shuffle`` record the way ``engine.load_products`` does."""
    asin = _require(p, "asin", where, str)
    name = _require(p, "name", where, str)
    description = p.get("full_description") or ""
    small = p.get("small_description")
    bullets = tuple(small) if isinstance(small, list) else ((small,) if small else ("",))
    options = []
    custom = p.get("customization_options")
    if isinstance(custom, dict):
        for opt_name, contents in custom.items():
            if contents is None:
                continue
            values = []
            for c in contents:
                value = _require(c, "value", f"{where} customization_options.{opt_name}", str)
                values.append(value.strip().replace("/", " | ").lower())
            options.append((opt_name.lower(), tuple(values)))
    options_t = tuple(options)
    pricing = _parse_pricing(p.get("pricing"), where)
    attributes, instruction, instruction_attributes = _ins_fields(ins, asin, ins_where)
    return Product(
        asin=asin.upper(),
        name=name,
        title=name,
        description=description,
        bullet_points=bullets,
        category=str(p.get("category", "")),
        query=str(p.get("query", "")).lower().strip(),
        product_category=str(p.get("product_category", "")),
        pricing=pricing,
        price_tag=_price_tag(pricing) if p.get("pricing") else "$100.0",
        options=options_t,
        attributes=attributes,
        contents=index_contents(name, description, bullets, options_t),
        instruction=instruction,
        instruction_attributes=instruction_attributes,
        human_instructions=_human_records(human.get(asin.upper()) or human.get(asin), where),
    )


def load_raw_products(items_path: str | os.PathLike, ins_path: str | os.PathLike,
                      human_path: Optional[str | os.PathLike] = None,
                      num_products: Optional[int] = None) -> Catalogue:
    """Load WebShop's raw release files (items_shuffle*.json layout)."""
    items_path = Path(items_path)
    raw = _read_json(items_path)
    if not isinstance(raw, list):
        raise CatalogueError(f"{items_path}: expected a list of products")
    ins = _read_json(Path(ins_path))
    if not isinstance(ins, dict):
        raise CatalogueError(f"{ins_path}: expected an object keyed by asin")
    human = _read_json(Path(human_path)) if human_path else {}
    if num_products is not None:
        raw = raw[:num_products]
    seen: set[str] = set()
    products = []
    for i, p in enumerate(raw):
        asin = p.get("asin") if isinstance(p, dict) else None
        if not isinstance(asin, str) or asin == "nan" or len(asin) > MAX_ASIN_LEN or asin in seen:
            continue
        seen.add(asin)
        products.append(product_from_raw(p, ins, human, f"{items_path}[{i}]", str(ins_path)))
    if not products:
        raise CatalogueError(f"{items_path}: no usable products")
    return Catalogue(tuple(products), source=str(items_path))


def load_webshop_catalogue(data_dir: Optional[str | os.PathLike] = None) -> Catalogue:
    """Load the real catalogue from ``data_dir`` (resolved as :func:`resolve_webshop_data_dir`).

    Prefers the small post-load layout (resources_1k/documents.jsonl); otherwise reads the
    raw layout (the largest items_shuffle*.json with its items_ins_v2*.json).
    """
    root = resolve_webshop_data_dir(data_dir)
    docs = root / "resources_1k" / "documents.jsonl"
    if docs.is_file():
        ins = sorted(root.glob("items_ins_v2*.json")) or sorted(docs.parent.glob("items_ins_v2*.json"))
        if not ins:
            raise CatalogueError(f"{root}: items_ins_v2*.json not found in {root} or next to {docs}")
        return load_documents_jsonl(docs, ins[0])
    shuffles = sorted(root.glob("items_shuffle*.json"))
    ins = sorted(root.glob("items_ins_v2*.json"))
    if not shuffles or not ins:
        raise CatalogueError(
            f"{root}: neither resources_1k/documents.jsonl nor items_shuffle*.json + items_ins_v2*.json found")
    human = sorted(root.glob("items_human_ins*.json"))
    return load_raw_products(shuffles[-1], ins[-1], human[-1] if human else None)
