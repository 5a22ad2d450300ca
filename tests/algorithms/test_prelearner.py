"""The prelearner: text rows -> flat module columns, on a 3-row batch; config validation."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from .conftest import ACTION_TOKENS, K_MAX, STATE_TOKENS, as_numpy_batch, step_row, tiny_il_config

ROWS = [
    step_row("ep-a", 0, "WebShop [SEP] Instruction: [SEP] blue shoes under 30 dollars",
             ["search[blue shoes]", "search[shoes]"], 1),
    step_row("ep-a", 1, "results page [SEP] B000000001 [SEP] Blue Shoe",
             ["click[back to search]", "click[b000000001] Blue Shoe", "click[next >]"], 2),
    step_row("ep-a", 2, "item page [SEP] Blue Shoe", ["click[buy now]"], 0, done=True, reward=1.0),
]


@pytest.fixture()
def prelearner(tmp_path):
    from rl_app.algorithms.offline import ChoiceOfflinePreLearner

    # The path only has to exist for validate(); the prelearner reads rows it is given.
    config = tiny_il_config([str(tmp_path)])
    return ChoiceOfflinePreLearner(config=config)


def test_three_rows_give_flat_module_columns(prelearner):
    batch = as_numpy_batch(ROWS)
    before = copy.deepcopy(batch)
    out = prelearner(batch)
    assert sorted(out) == ["default_policy/actions", "default_policy/obs/action_ids",
                           "default_policy/obs/action_mask", "default_policy/obs/state_ids"]
    assert out["default_policy/obs/state_ids"].shape == (3, STATE_TOKENS)
    assert out["default_policy/obs/action_ids"].shape == (3, K_MAX, ACTION_TOKENS)
    assert out["default_policy/obs/action_mask"].shape == (3, K_MAX)
    assert out["default_policy/obs/action_mask"].sum(axis=1).tolist() == [2, 3, 1]
    assert out["default_policy/actions"].tolist() == [1, 2, 0]
    assert out["default_policy/actions"].dtype == np.int64
    # Exactly what the env's encoder produces for the same text.
    env_obs = prelearner.config.observation_encoder().encode(ROWS[1]["state"], ROWS[1]["candidate_texts"])
    for key, value in env_obs.items():
        np.testing.assert_array_equal(out[f"default_policy/obs/{key}"][1], value)
    # Pure: the input batch is untouched.
    assert before.keys() == batch.keys()
    for key in batch:
        assert [np.asarray(v).tolist() for v in batch[key]] == [np.asarray(v).tolist() for v in before[key]]


def test_chosen_out_of_range_is_an_error(prelearner):
    bad = [dict(ROWS[0], chosen=2)]
    with pytest.raises(ValueError, match="out of range"):
        prelearner(as_numpy_batch(bad))


def test_validate_names_the_fix(tmp_path):
    from rl_app.algorithms.il import ILConfig

    with pytest.raises(ValueError, match=r"config.dataset\(paths="):
        ILConfig().rl_module(model_config={"encoder": "tiny"}).validate()
    with pytest.raises(ValueError, match="does not exist"):
        tiny_il_config([str(tmp_path / "missing.parquet")]).validate()
    config = tiny_il_config([str(tmp_path)])
    config.validate()
    assert config.input_ == [str(tmp_path)] and config.observation_space == config.observation_encoder().space
    with pytest.raises(ValueError, match=r"config.observations\("):
        tiny_il_config([str(tmp_path)]).environment(observation_space=config.observation_space["action_mask"],
                                                    action_space=config.action_space).validate()
    with pytest.raises(ValueError, match="find_unused_parameters"):
        tiny_il_config([str(tmp_path)]).learners(num_learners=2).framework(torch_ddp_kwargs={}).validate()
    with pytest.raises(ValueError, match="updates_per_iteration"):
        tiny_il_config([str(tmp_path)], updates_per_iteration=0).validate()


def test_relative_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demos").mkdir()
    config = tiny_il_config(["demos"])
    assert config.input_ == [str(tmp_path / "demos")]
    config.validate()


def test_tokenizer_follows_the_encoder_or_init_checkpoint(tmp_path):
    from rl_app.algorithms.il import ILConfig
    from rl_app.policy.checkpoint import save_choice_model
    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.encoder import EncoderConfig

    assert tiny_il_config([str(tmp_path)]).resolved_tokenizer() == "tiny"
    saved = save_choice_model(ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"))), tmp_path / "policy")
    config = ILConfig().rl_module(model_config={"init_checkpoint": saved})
    assert config.resolved_tokenizer() == str(tmp_path / "policy" / "tokenizer")
    ids = config.observation_encoder().encode("blue shoes", ["click[buy now]"])["state_ids"]
    assert ids[0] == 101 and ids[3] == 102  # [CLS] blue shoes [SEP] with the saved tokenizer
    assert ILConfig().observations(tokenizer="minilm").resolved_tokenizer() == "minilm"
