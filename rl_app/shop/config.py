"""Which shop to build (catalogue, goals, reward options) and a per-process cache of it.

Building a shop (catalogue + prices + goals + search index) costs seconds; every env in a
process (an RLlib env runner with several envs, a test session) shares one through
:func:`load_shop`. Data locations are explicit, never a silent fallback: ``catalogue="webshop"``
reads the real files from ``data_dir`` / $RL_APP_WEBSHOP_DATA / ../shared/webshop-data and
fails when they are absent; ``catalogue="synthetic"`` (the default) needs no files.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Optional, get_args

from rl_app.shop.catalogue import Catalogue, load_webshop_catalogue, resolve_webshop_data_dir
from rl_app.shop.goals import GoalSet, build_goal_set
from rl_app.shop.nouns import default_noun_tagger
from rl_app.shop.reward import compute_reward
from rl_app.shop.search import SearchEngine
from rl_app.shop.site import Shop

__all__ = ["ShopConfig", "LoadedShop", "load_shop", "clear_shop_cache", "add_shop_arguments", "shop_from_args"]

CatalogueKind = Literal["synthetic", "webshop"]


@dataclass(frozen=True)
class ShopConfig:
    """Everything that decides the shop's content; equal configs share one loaded shop.

    Attributes:
        catalogue: ``synthetic`` (embedded default, generated) or ``webshop`` (real files).
        data_dir: directory of the real data (``webshop`` only); None = env var / default.
        synthetic_products: size of the generated catalogue.
        synthetic_seed: seed of the generated catalogue.
        goal_kind: ``synthetic`` (WebShop's 6,910 on the small catalogue) or ``human``.
        goal_seed: seed of prices and price bounds (WebShop's reference uses 0).
        reward_variant: ``webshop`` (exact, quirks included) or ``corrected``.
    """

    catalogue: CatalogueKind = "synthetic"
    data_dir: Optional[str] = None
    synthetic_products: int = 1000
    synthetic_seed: int = 0
    goal_kind: Literal["synthetic", "human"] = "synthetic"
    goal_seed: int = 0
    reward_variant: Literal["webshop", "corrected"] = "webshop"

    def __post_init__(self) -> None:
        if self.catalogue not in ("synthetic", "webshop"):
            raise ValueError(f"catalogue must be 'synthetic' or 'webshop', got {self.catalogue!r}")
        if self.synthetic_products < 10:
            raise ValueError(f"synthetic_products must be >= 10, got {self.synthetic_products}")

    @classmethod
    def from_dict(cls, d: Optional[Mapping[str, Any]]) -> "ShopConfig":
        """Build from a plain dict (RLlib env_config, YAML); unknown keys are an error."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown shop config keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def resolved(self) -> "ShopConfig":
        """Same config with ``data_dir`` made absolute (so workers on other nodes agree)."""
        if self.catalogue == "webshop":
            return dataclasses.replace(self, data_dir=str(resolve_webshop_data_dir(self.data_dir)))
        return self


@dataclass(frozen=True)
class LoadedShop:
    config: ShopConfig
    catalogue: Catalogue
    goals: GoalSet
    shop: Shop


_CACHE: dict[ShopConfig, LoadedShop] = {}
_LOCK = threading.Lock()


def _build(config: ShopConfig) -> LoadedShop:
    if config.catalogue == "webshop":
        catalogue = load_webshop_catalogue(config.data_dir)
        nouns = default_noun_tagger(config.data_dir)
    else:
        from rl_app.shop.synthetic import generate_catalogue

        catalogue = generate_catalogue(config.synthetic_products, seed=config.synthetic_seed)
        nouns = default_noun_tagger(None)
    goals = build_goal_set(catalogue, kind=config.goal_kind, seed=config.goal_seed)
    engine = SearchEngine.build(catalogue)
    shop = Shop(catalogue, engine, goals.prices, reward_fn=compute_reward,
                reward_kwargs={"nouns": nouns, "variant": config.reward_variant})
    return LoadedShop(config, catalogue, goals, shop)


def load_shop(config: ShopConfig | Mapping[str, Any] | None = None) -> LoadedShop:
    """The process-wide shop for ``config`` (built on first use)."""
    if not isinstance(config, ShopConfig):
        config = ShopConfig.from_dict(config)
    config = config.resolved()
    with _LOCK:
        loaded = _CACHE.get(config)
        if loaded is None:
            loaded = _CACHE[config] = _build(config)
        return loaded


def clear_shop_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def add_shop_arguments(ap: argparse.ArgumentParser, *, catalogue: Optional[str] = "synthetic",
                       catalogue_help: str = "which shop") -> None:
    """``--catalogue``, ``--data-dir``, ``--synthetic-products``, ``--synthetic-seed``: the shop of
    a command line (:class:`ShopConfig`'s fields and defaults). ``catalogue``
    None: the command decides when the flag is not given (e.g. the training data's shop)."""
    defaults = ShopConfig()
    ap.add_argument("--catalogue", choices=get_args(CatalogueKind), default=catalogue,
                    help=catalogue_help + (f" (default: {catalogue})" if catalogue else ""))
    ap.add_argument("--data-dir", default=None,
                    help="real WebShop data (default: $RL_APP_WEBSHOP_DATA or ../shared/webshop-data)")
    ap.add_argument("--synthetic-products", type=int, default=defaults.synthetic_products)
    ap.add_argument("--synthetic-seed", type=int, default=defaults.synthetic_seed)


def shop_from_args(args: argparse.Namespace) -> ShopConfig:
    """The shop :func:`add_shop_arguments`' flags name (``--catalogue`` must be set)."""
    return ShopConfig(catalogue=args.catalogue, data_dir=args.data_dir,
                      synthetic_products=args.synthetic_products, synthetic_seed=args.synthetic_seed)
