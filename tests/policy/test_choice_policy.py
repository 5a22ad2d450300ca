"""ChoicePolicy: a trained agent used on strings outside RLlib."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rl_app.policy.choice_policy import ChoicePolicy
from rl_app.env.tokenizer import load_tokenizer

OBSERVATION = ("webshop [sep] instruction: [sep] i need a blue cotton t-shirt in size large, "
               "and price lower than 30.00 dollars [sep] search")
CANDIDATES = ["search[blue cotton t-shirt large]", "search[blue cotton t-shirt]", "search[t-shirt]"]


@pytest.fixture(scope="module")
def policy(tiny_model_factory) -> ChoicePolicy:
    return ChoicePolicy(tiny_model_factory(seed=2), load_tokenizer("tiny"))


def test_act_on_strings(policy):
    index, probs = policy.act(OBSERVATION, CANDIDATES)
    assert probs.shape == (3,) and probs.sum() == pytest.approx(1.0)
    assert index == int(np.argmax(probs))
    sampled, _ = policy.act(OBSERVATION, CANDIDATES, greedy=False, rng=np.random.default_rng(0))
    assert 0 <= sampled < 3
    with pytest.raises(ValueError, match="non-empty"):
        policy.act(OBSERVATION, [])


def test_encode_matches_the_env_tokenization(policy):
    obs = policy.encode(OBSERVATION, CANDIDATES)
    tokenizer = load_tokenizer("tiny")
    expected = tokenizer(CANDIDATES[0], truncation=True, max_length=32)["input_ids"]
    assert obs["state_ids"].shape == (512,) and obs["action_ids"].shape == (3, 32)
    assert obs["action_ids"][0, : len(expected)].tolist() == expected and obs["action_ids"][0, len(expected):].sum() == 0
    assert obs["state_ids"][0] == tokenizer.cls_token_id


def test_encode_matches_the_env_observation_encoder(policy):
    observation = pytest.importorskip("rl_app.env.observation")
    env_obs = observation.ObservationEncoder("tiny", k_max=3).encode(OBSERVATION, CANDIDATES)
    ours = policy.encode(OBSERVATION, CANDIDATES)
    for key in ("state_ids", "action_ids", "action_mask"):
        assert np.array_equal(ours[key], env_obs[key]), key


def test_save_and_load_give_the_same_probabilities(policy, tmp_path):
    expected = policy.probs(OBSERVATION, CANDIDATES)
    path = policy.save_pretrained(tmp_path / "agent")
    policy.save_pretrained(tmp_path / "agent")  # overwriting an existing policy works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]  # no temp dirs left behind
    loaded = ChoicePolicy.from_checkpoint(path)
    assert np.array_equal(loaded.probs(OBSERVATION, CANDIDATES), expected)
    # the architecture is the saved one; the token lengths the policy acted at are recorded
    assert loaded.model.config.to_dict() == {**policy.model.config.to_dict(), "max_state_tokens": 512,
                                             "max_action_tokens": 32}


def test_save_keeps_the_policys_own_token_lengths(tiny_model_factory, tmp_path):
    """Lengths given to ChoicePolicy (not in the model config) survive a save: the loaded policy
    tokenizes, and so scores DPO reference log-probs, as the saved one did."""
    from rl_app.policy.checkpoint import saved_token_lengths

    short = ChoicePolicy(tiny_model_factory(seed=2), load_tokenizer("tiny"), max_state_tokens=24, max_action_tokens=6)
    assert short.model.config.max_state_tokens is None
    path = short.save_pretrained(tmp_path / "short")
    assert saved_token_lengths(path) == {"max_state_tokens": 24, "max_action_tokens": 6}
    loaded = ChoicePolicy.from_checkpoint(path)
    assert (loaded.max_state_tokens, loaded.max_action_tokens) == (24, 6)
    assert loaded.encode(OBSERVATION, CANDIDATES)["state_ids"].shape == (24,)
    assert np.allclose(loaded.probs(OBSERVATION, CANDIDATES), short.probs(OBSERVATION, CANDIDATES), atol=1e-6)


def test_loads_from_an_rlmodule_checkpoint(tmp_path):
    from ray.rllib.core.columns import Columns

    from rl_app.policy.rl_module import module_spec

    from .conftest import TINY, webshop_spaces

    module = module_spec(*webshop_spaces(k=3, state_len=512, action_len=32), TINY).build()
    module.save_to_path(tmp_path / "ckpt")
    policy = ChoicePolicy.from_checkpoint(tmp_path / "ckpt")
    obs = policy.encode(OBSERVATION, CANDIDATES)
    batch = {Columns.OBS: {k: torch.as_tensor(v[None]) for k, v in obs.items()}}
    logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0]
    assert np.allclose(policy.probs(OBSERVATION, CANDIDATES), torch.softmax(logits.double(), -1).numpy(), atol=1e-7)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ChoicePolicy.from_checkpoint(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="choice_config.json"):
        ChoicePolicy.from_checkpoint(tmp_path / "empty")
