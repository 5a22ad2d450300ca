"""Experiment arms, tune settings and prepared-data helpers (no Ray)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rl_app.data.pairs import subset_pairs
from rl_app.experiments.prepare import prep_key
from rl_app.experiments.spec import EXPERIMENTS, trial_specs
from rl_app.settings import TuneSettings
from rl_app.presets import PRESETS, load_preset


def test_every_preset_has_valid_tune_settings():
    for name in PRESETS:
        settings = TuneSettings.from_preset(load_preset(name))
        assert settings.budget_s > 0 and settings.seeds >= 1
        assert len(settings.bundles()) == settings.cpus_per_trial
    assert TuneSettings.from_preset(load_preset("ci"), budget_s=3.0, seeds=None).budget_s == 3.0


@pytest.mark.parametrize("bad, match", [({"budget_s": 0}, "budget_s"), ({"seeds": 0}, "seeds"),
                                        ({"cpus_per_trial": 0}, "cpus_per_trial"), ({"budget": 5}, "unknown key .budget. in section .tune.")])
def test_bad_tune_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        TuneSettings.from_preset(load_preset("ci"), **bad)


def test_arms_of_each_experiment():
    s = TuneSettings(data_sizes=(5, 20), betas=(0.1, 0.5), loss_types=("sigmoid", "ipo"))
    sets = ["demos", "generated", "demos_n5", "demos_n20"]
    vs = trial_specs("dpo_vs_ppo", s, pair_sets=sets)
    assert [(a.label, a.algorithm, a.data) for a in vs] == [
        ("dpo_demos", "dpo", "demos"), ("dpo_generated", "dpo", "generated"), ("ppo", "ppo", None)]
    # no generated trajectory passed the filter: that arm is left out, PPO stays
    assert [a.label for a in trial_specs("dpo_vs_ppo", s, pair_sets=["demos"])] == ["dpo_demos", "ppo"]
    assert [a.data for a in trial_specs("data_efficiency", s, pair_sets=sets)] == ["demos_n5", "demos_n20"]
    sweep = trial_specs("beta_sweep", s, pair_sets=sets)
    assert len(sweep) == 4 and {dict(a.overrides)["loss_type"] for a in sweep} == {"sigmoid", "ipo"}
    assert len({a.label for a in sweep}) == 4
    with pytest.raises(ValueError, match="unknown experiment"):
        trial_specs("nope", s, pair_sets=sets)
    assert set(EXPERIMENTS) == {"dpo_vs_ppo", "data_efficiency", "beta_sweep"}


def test_prep_key_follows_the_stage_settings():
    ci = load_preset("ci")
    assert prep_key(ci) == prep_key(load_preset("ci")) != prep_key(load_preset("smoke"))
    assert prep_key(ci) == prep_key(load_preset("ci", data_dir=None))


def test_prep_key_follows_model_defaults_and_the_layout_version(monkeypatch):
    import dataclasses

    import rl_app.env.observation as observation

    smoke = load_preset("smoke")
    key = prep_key(smoke)
    # spelling out a default does not change the key; a changed default or layout version does
    explicit = dataclasses.replace(smoke, sections={**smoke.sections, "model": {**smoke.section("model"),
                                                                              "match_signals": True}})
    assert prep_key(explicit) == key
    monkeypatch.setattr(observation, "SEGMENTS_VERSION", observation.SEGMENTS_VERSION + 1)
    assert prep_key(smoke) != key
    monkeypatch.undo()
    # a model setting the preset leaves at its default is in the key as that default
    changed = dataclasses.replace(smoke, sections={**smoke.sections, "model": {**smoke.section("model"),
                                                                             "match_signals": False}})
    assert prep_key(changed) != key


def test_subset_pairs_keeps_whole_episodes(tmp_path):
    from rl_app.data.pairs import PAIR_SCHEMA, pairs_table

    ids = ["ep_b/0/0", "ep_a/1/0", "ep_c/0/0", "ep_a/0/0", "ep_b/2/0"]  # 3 episodes, unordered
    def blank(field):
        if pa.types.is_list(field.type):
            return []
        if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            return 0
        return ""

    frame = pd.DataFrame({f.name: [blank(f)] * len(ids) for f in PAIR_SCHEMA})
    frame["pair_id"] = ids
    src = tmp_path / "pairs"
    src.mkdir()
    pq.write_table(pairs_table(frame), src / "pairs.parquet")
    (src / "_summary.json").write_text(json.dumps({"pairs": 5, "shop_config": {"catalogue": "synthetic"}}))
    facts = subset_pairs(src, tmp_path / "n2", 2)
    assert facts == {"episodes": 2, "pairs": 4}  # ep_a (2 pairs) and ep_b (2 pairs), sorted ids
    out = pd.read_parquet(tmp_path / "n2" / "pairs.parquet")
    assert sorted(out["pair_id"]) == ["ep_a/0/0", "ep_a/1/0", "ep_b/0/0", "ep_b/2/0"]
    summary = json.loads((tmp_path / "n2" / "_summary.json").read_text())
    assert summary["pairs"] == 4 and summary["shop_config"] == {"catalogue": "synthetic"}
