"""Typed settings: unknown keys refused in one line naming section and key; flags derived from fields."""

from __future__ import annotations

import argparse

import pytest

from rl_app.settings import ModelSettings, SettingsError


def test_misspelt_key_is_refused_naming_section_and_key():
    with pytest.raises(SettingsError) as e:
        ModelSettings.from_section({"encoder": "tiny", "trainable_layer": 1}, name="model", where="smoke.yaml")
    message = str(e.value)
    assert "\n" not in message
    assert message == ("smoke.yaml: unknown key 'trainable_layer' in section 'model' "
                       "(did you mean 'trainable_layers'?)")


def test_bad_values_are_refused():
    with pytest.raises(SettingsError, match="trainable_layers must be >= 0"):
        ModelSettings.from_section({"trainable_layers": -1}, name="model")
    with pytest.raises(SettingsError, match="divisible by match_heads"):
        ModelSettings(head_dim=100, match_heads=3)


@pytest.mark.parametrize("section, key, value, expected", [
    ("pairs", "only_success", "yes", "true or false"),
    ("pairs", "num_rejected", 2.5, "an integer"),
    ("pairs", "num_rejected", True, "an integer"),
    ("dpo", "beta", "0.1", "a number"),
    ("model", "trainable_layers", "all", "an integer or null"),
])
def test_a_value_of_the_wrong_type_is_refused_in_one_line(section, key, value, expected):
    from rl_app.settings import SECTIONS

    with pytest.raises(SettingsError) as e:
        SECTIONS[section].from_section({key: value}, name=section, where="mine.yaml")
    assert str(e.value) == f"mine.yaml: section {section!r}: {key} must be {expected}; got {value!r}"


def test_values_of_the_right_type_are_kept():
    from rl_app.settings import DPOSettings, ModelSettings, PairsSettings

    assert PairsSettings.from_section({"only_success": True, "num_rejected": 2}).num_rejected == 2
    assert DPOSettings.from_section({"beta": 1}).beta == 1  # an integer is a number
    assert ModelSettings.from_section({"trainable_layers": None}).trainable_layers is None


def test_flags_come_from_the_fields_and_round_trip():
    ap = argparse.ArgumentParser()
    ModelSettings.add_arguments(ap)
    args = ap.parse_args(["--encoder", "tiny", "--trainable-layers", "2", "--no-frozen-cache"])
    settings = ModelSettings.from_args(args)
    assert settings == ModelSettings(encoder="tiny", trainable_layers=2, frozen_cache=False)
    # unset flags keep a section's values
    base = ModelSettings.from_section({"head_dim": 64}, name="model")
    assert ModelSettings.from_args(ap.parse_args([]), base) == base
    assert ModelSettings.from_args(ap.parse_args(settings.argv())) == settings


def test_model_config_per_layout():
    s = ModelSettings(encoder="tiny")
    assert s.to_model_config("text") == {"encoder": "tiny", "dropout": 0.0}
    assert s.to_model_config("segments") == {"encoder": "tiny", "dropout": 0.0, "trainable_layers": 0,
                                             "head_dim": 128, "match_heads": 4, "match_signals": True}
    assert s.cached("segments") and not s.cached("text")
    assert ModelSettings(encoder="tiny", match_signals=False).to_model_config("segments")["match_signals"] is False


def test_a_preset_with_a_misspelt_model_key_is_refused(tmp_path):
    from rl_app.presets import load_preset

    bad = tmp_path / "mine.yaml"
    bad.write_text("model:\n  encoder: tiny\n  trainable_layres: 0\n")
    with pytest.raises(SettingsError, match=r"mine.yaml: unknown key 'trainable_layres' in section 'model' "
                                            r"\(did you mean 'trainable_layers'\?\)"):
        load_preset(bad)
