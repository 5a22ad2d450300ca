"""Encoder configs and offline loading; the pretrained MiniLM smoke test."""

from __future__ import annotations

import pytest
import torch

from rl_app.env.tokenizer import load_tokenizer
from rl_app.policy.encoder import EncoderConfig, build_encoder, load_encoder, tiny_bert_config


def test_tiny_encoder_is_small_seeded_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    first, second = load_encoder(EncoderConfig("tiny")), load_encoder(EncoderConfig("tiny"))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert first.config.num_hidden_layers == 2 and first.config.hidden_size == 64
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert first.config.vocab_size == load_tokenizer("tiny").vocab_size == load_tokenizer("minilm").vocab_size


def test_dropout_and_checkpointing_are_applied():
    model = load_encoder(EncoderConfig("tiny", dropout=0.2, gradient_checkpointing=True))
    assert model.config.hidden_dropout_prob == 0.2 and model.config.attention_probs_dropout_prob == 0.2
    assert getattr(model, "is_activation_checkpointing", None) or model.is_gradient_checkpointing
    assert load_encoder(EncoderConfig("tiny")).config.hidden_dropout_prob == 0.0


def test_build_encoder_from_an_architecture():
    model = build_encoder(dict(tiny_bert_config(), num_hidden_layers=1), seed=3)
    assert model.config.num_hidden_layers == 1 and getattr(model, "pooler", None) is None


def test_bad_encoder_configs_are_refused():
    with pytest.raises(ValueError, match="dropout"):
        EncoderConfig(dropout=1.5)
    with pytest.raises(ValueError, match="name_or_path"):
        EncoderConfig(name_or_path="")
    assert EncoderConfig.from_dict(EncoderConfig("tiny", 0.1).to_dict()) == EncoderConfig("tiny", 0.1)


@pytest.mark.pretrained
def test_minilm_loads_offline_and_scores_two_states():
    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy

    model = ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("minilm"))).eval()
    assert model.encoder.config.num_hidden_layers == 6 and model.hidden_size == 384
    policy = ChoicePolicy(model, load_tokenizer("minilm"))
    first = policy.encode("i need a red dress under 40 dollars [sep] search", ["search[red dress]", "search[dress]"])
    second = policy.encode("results [sep] b0123 red summer dress [sep] $25.99", ["click[b0123]", "click[next >]",
                                                                                 "click[back to search]"])
    state = torch.stack([torch.as_tensor(first["state_ids"]), torch.as_tensor(second["state_ids"])])
    actions = torch.zeros(2, 3, 32, dtype=torch.long)
    actions[0, :2] = torch.as_tensor(first["action_ids"])
    actions[1] = torch.as_tensor(second["action_ids"])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    with torch.no_grad():
        out = model(state, actions, mask)
    probs = torch.softmax(out.logits, -1)
    assert torch.isfinite(out.logits[mask.bool()]).all() and probs[0, 2] == 0
    assert torch.allclose(probs.sum(-1), torch.ones(2)) and out.value.shape == (2,)
