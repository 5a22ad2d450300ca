"""The WebShop shop simulator: catalogue, goals, search, pages, reward, and the shop they make.

* :mod:`rl_app.shop.types`: products, goals and human instruction records;
* :mod:`rl_app.shop.catalogue`, :mod:`rl_app.shop.synthetic`: the real catalogue's files and
  a seeded synthetic one with the same schema;
* :mod:`rl_app.shop.goals`: goals as WebShop builds them, and the standard splits;
* :mod:`rl_app.shop.lucene_analyzer`, :mod:`rl_app.shop.search`: Lucene's English analyzer
  and BM25 search ranked as WebShop's pyserini index ranks it;
* :mod:`rl_app.shop.nouns`, :mod:`rl_app.shop.reward`: title noun taggers and the purchase reward;
* :mod:`rl_app.shop.pages`, :mod:`rl_app.shop.site`: page text and the shop's transitions;
* :mod:`rl_app.shop.config`: ``ShopConfig`` and ``load_shop`` (one shop per process).

Nothing here imports the environments (:mod:`rl_app.env`) or the agents; exports resolve
lazily, so ``import rl_app.shop`` builds nothing.
"""

from __future__ import annotations

from rl_app._lazy import lazy_getattr

_EXPORTS = {
    "Product": "rl_app.shop.types",
    "Goal": "rl_app.shop.types",
    "GoalOption": "rl_app.shop.types",
    "Catalogue": "rl_app.shop.catalogue",
    "GoalSet": "rl_app.shop.goals",
    "SearchEngine": "rl_app.shop.search",
    "compute_reward": "rl_app.shop.reward",
    "Shop": "rl_app.shop.site",
    "ShopSession": "rl_app.shop.site",
    "ShopConfig": "rl_app.shop.config",
    "LoadedShop": "rl_app.shop.config",
    "load_shop": "rl_app.shop.config",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
