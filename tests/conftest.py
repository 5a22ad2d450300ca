"""Shared fixtures: the real WebShop data (skipped when absent), small shops, one Ray session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEBSHOP_DATA = Path(os.environ.get("RL_APP_WEBSHOP_DATA", REPO / ".." / "shared" / "webshop-data")).resolve()
HAS_WEBSHOP_DATA = (WEBSHOP_DATA / "resources_1k" / "documents.jsonl").is_file()
NO_DATA_REASON = f"real WebShop data not found at {WEBSHOP_DATA} (set RL_APP_WEBSHOP_DATA)"


@pytest.fixture(scope="session")
def webshop_data_dir() -> Path:
    if not HAS_WEBSHOP_DATA:
        pytest.skip(NO_DATA_REASON)
    return WEBSHOP_DATA


@pytest.fixture(scope="session")
def webshop_shop(webshop_data_dir):
    """The real small catalogue, its 6,910 goals (seed 0) and the BM25 index, built once."""
    from rl_app.shop.config import ShopConfig, load_shop

    return load_shop(ShopConfig(catalogue="webshop", data_dir=str(webshop_data_dir)))


@pytest.fixture(scope="session")
def synthetic_shop():
    """A small generated shop (no files needed)."""
    from rl_app.shop.config import ShopConfig, load_shop

    return load_shop(ShopConfig(catalogue="synthetic", synthetic_products=300, synthetic_seed=1))


@pytest.fixture(scope="session")
def ray_session():
    """ONE local Ray (2 CPUs, no dashboard) for every test that needs it, shut down at the end.

    Tests that need their own cluster start it in a subprocess instead (a driver holds one Ray).
    A Ray already running (started by another fixture) is reused and left to its owner.
    """
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        # address="local": never attach to a cluster a `ray start` left on this machine
        ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True,
                 log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
