"""Every preset in tune_configs/ parses into valid shop and env configs."""

from __future__ import annotations

import pytest

from rl_app.env.webshop_env import WebShopEnvConfig
from rl_app.presets import PRESETS, load_preset


@pytest.mark.parametrize("name", PRESETS)
def test_presets_are_valid(name):
    preset = load_preset(name)
    cfg = WebShopEnvConfig.from_dict(preset.env_config())
    assert cfg.episode.k_max >= 16 and cfg.max_state_tokens >= 96
    assert preset.section("model")["encoder"] in ("tiny", "minilm")


def test_ci_preset_is_small_and_paper_is_real():
    assert load_preset("ci").shop_config()["catalogue"] == "synthetic"
    assert load_preset("paper").shop_config()["catalogue"] == "webshop"


def test_bad_presets(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("shop: {catalogue: synthetic}\nenv: {k_maxx: 3}\n")
    with pytest.raises(ValueError, match="k_maxx"):
        load_preset(bad)
    bad.write_text("shopp: {}\n")
    with pytest.raises(ValueError, match="unknown sections"):
        load_preset(bad)
    with pytest.raises(FileNotFoundError, match="known: ci"):
        load_preset("nope")
