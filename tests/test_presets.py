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


def test_every_shipped_preset_is_listed_and_loads_into_typed_settings():
    from rl_app.presets import PRESET_DIR
    from rl_app.settings import SECTIONS

    assert sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) == sorted(PRESETS)
    for name in PRESETS:
        preset = load_preset(name)
        for section in SECTIONS:
            assert preset.settings(section) is not None
        # a section's written keys are its settings' values
        for key, value in preset.section("ppo").items():
            assert getattr(preset.settings("ppo"), key) == value


def test_the_old_eval_section_is_refused_naming_the_keys_that_own_evaluation(tmp_path):
    import yaml

    from rl_app.presets import PRESET_DIR, PresetError

    raw = yaml.safe_load((PRESET_DIR / "ci.yaml").read_text())
    assert "eval" not in raw and raw["tune"]["eval_goals"] == 8
    raw["eval"] = {"split": "dev", "goals": 200}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PresetError) as e:
        load_preset(path)
    assert str(e.value) == (f"{path}: section 'eval' is not a preset section; set the main job's evaluation with "
                            "tune.eval_split, tune.eval_goals and tune.eval_greedy")


@pytest.mark.parametrize("section", ["shop", "env", "model", "demos", "il", "generated", "pairs", "dpo", "ppo",
                                     "tune"])
def test_a_misspelt_key_in_any_section_is_refused_in_one_line(tmp_path, section):
    import yaml

    from rl_app.presets import PRESET_DIR
    from rl_app.settings import SECTIONS, SettingsError

    assert section in SECTIONS
    raw = yaml.safe_load((PRESET_DIR / "ci.yaml").read_text())
    key = sorted(raw[section])[0]
    misspelt = key[:-1]  # e.g. "catalogue" -> "catalogu"
    raw[section][misspelt] = raw[section].pop(key)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError) as e:
        load_preset(path)
    assert str(e.value) == f"{path}: unknown key {misspelt!r} in section {section!r} (did you mean {key!r}?)"
