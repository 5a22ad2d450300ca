"""The choice model: masking, candidate symmetry, the valid-only/trimmed fast path, learning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rl_app.policy.choice_model import MASKED_LOGIT, ChoiceModel, ChoiceModelConfig, masked_log_softmax
from rl_app.policy.encoder import EncoderConfig

from .conftest import ACTION_LEN, K_MAX, STATE_LEN, as_tensors, make_obs


def _logits(model, obs):
    t = as_tensors(obs)
    with torch.no_grad():
        return model(t["state_ids"], t["action_ids"], t["action_mask"]).logits


def test_masked_probabilities_are_exactly_zero_and_valid_ones_sum_to_one(tiny_model_factory):
    model = tiny_model_factory()
    obs = make_obs(5, n_valid=[1, 2, 3, 6, 4])
    logits = _logits(model, obs)
    assert logits.dtype == torch.float32 and logits.shape == (5, K_MAX)
    mask = torch.as_tensor(obs["action_mask"]).bool()
    assert torch.all(logits[~mask] == MASKED_LOGIT)
    probs = torch.softmax(logits, dim=-1)
    assert torch.all(probs[~mask] == 0.0)
    assert torch.allclose(probs.sum(-1), torch.ones(5), atol=1e-6)
    assert probs[0, 0].item() == pytest.approx(1.0)  # one valid candidate: certain
    assert torch.isfinite(masked_log_softmax(logits, mask)).all()


def test_state_with_no_candidates_gives_finite_numbers(tiny_model_factory):
    # A terminal page or RLlib zero-padding: no valid candidate, all-zero state.
    model = tiny_model_factory()
    obs = make_obs(3, n_valid=[2, 0, 1])
    obs["state_ids"][1] = 0
    t = as_tensors(obs)
    out = model(t["state_ids"], t["action_ids"], t["action_mask"])
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.value).all()
    assert torch.isfinite(model.log_probs(t["state_ids"], t["action_ids"], t["action_mask"])).all()
    none_valid = make_obs(2, n_valid=[0, 0])
    assert torch.all(_logits(model, none_valid) == MASKED_LOGIT)


def test_permuting_candidates_permutes_logits(tiny_model_factory):
    model = tiny_model_factory()
    obs = make_obs(4, n_valid=[6, 3, 5, 2])
    perm = np.array([3, 0, 5, 1, 4, 2])
    permuted = dict(obs, action_ids=obs["action_ids"][:, perm], action_mask=obs["action_mask"][:, perm])
    assert torch.allclose(_logits(model, permuted), _logits(model, obs)[:, perm], atol=1e-5)


def test_valid_only_encoding_matches_encoding_every_row(tiny_model_factory):
    fast = tiny_model_factory(seed=3)
    slow = ChoiceModel(dataclasses.replace(fast.config, encode_valid_only=False), encoder=fast.encoder).eval()
    slow.load_state_dict(fast.state_dict())
    obs = make_obs(4, n_valid=[1, 6, 2, 4], seed=5)
    assert torch.allclose(_logits(fast, obs), _logits(slow, obs), atol=1e-5)


def test_only_valid_rows_reach_the_encoder_and_padding_is_cut(tiny_model_factory):
    model = tiny_model_factory()
    obs = make_obs(4, n_valid=[1, 6, 2, 4], seed=1)
    # Junk in masked rows must neither be encoded nor change anything.
    junk = dict(obs, action_ids=obs["action_ids"].copy())
    junk["action_ids"][0, 1:] = 2000
    shapes = []
    hook = model.encoder.register_forward_hook(lambda m, args, kwargs, out: shapes.append(tuple(kwargs["input_ids"].shape)),
                                               with_kwargs=True)
    try:
        reference, with_junk = _logits(model, obs), _logits(model, junk)
    finally:
        hook.remove()
    longest_state = int((obs["state_ids"] != 0).sum(1).max())
    longest_action = int((obs["action_ids"] != 0).sum(2).max())
    n_valid = int(obs["action_mask"].sum())
    assert shapes[:2] == [(4, longest_state), (n_valid, longest_action)]
    assert longest_state < STATE_LEN and longest_action < ACTION_LEN
    assert torch.equal(reference, with_junk)


def test_extra_padding_columns_do_not_change_logits(tiny_model_factory):
    model = tiny_model_factory()
    obs = make_obs(3, seed=2)
    wider = {
        "state_ids": np.pad(obs["state_ids"], ((0, 0), (0, 30))),
        "action_ids": np.pad(obs["action_ids"], ((0, 0), (0, 0), (0, 7))),
        "action_mask": obs["action_mask"],
    }
    assert torch.allclose(_logits(model, obs), _logits(model, wider), atol=1e-6)


def test_value_and_embedding_shapes_and_log_probs(tiny_model_factory):
    model = tiny_model_factory()
    t = as_tensors(make_obs(3))
    out = model(t["state_ids"], t["action_ids"], t["action_mask"])
    assert out.value.shape == (3,) and out.state_embedding.shape == (3, model.hidden_size)
    log_probs = model.log_probs(t["state_ids"], t["action_ids"], t["action_mask"])
    assert torch.allclose(log_probs, torch.log_softmax(out.logits, -1))


def test_bad_shapes_and_foreign_token_ids_are_clear_errors(tiny_model_factory):
    model = tiny_model_factory()
    t = as_tensors(make_obs(2))
    with pytest.raises(ValueError, match="action_ids"):
        model(t["state_ids"], t["action_ids"][0], t["action_mask"])
    with pytest.raises(ValueError, match="disagree"):
        model(t["state_ids"][:1], t["action_ids"], t["action_mask"])
    with pytest.raises(ValueError, match="no candidate rows"):
        model(t["state_ids"], t["action_ids"][:, :0], t["action_mask"][:, :0])
    with pytest.raises(ValueError, match="empty batch"):
        model(t["state_ids"][:0], t["action_ids"][:0], t["action_mask"][:0])
    foreign = t["state_ids"].clone()
    foreign[0, 1] = 50_000
    with pytest.raises(ValueError, match="tokenizer does not match"):
        model(foreign, t["action_ids"], t["action_mask"])
    foreign_candidate = t["action_ids"].clone()
    foreign_candidate[1, 0, 1] = -3  # a valid row (the first candidate always is)
    with pytest.raises(ValueError, match=r"\[-3, "):
        model(t["state_ids"], foreign_candidate, t["action_mask"])


def test_token_caps_cut_long_inputs(tiny_model_factory):
    model = tiny_model_factory(max_state_tokens=8, max_action_tokens=4)
    t = as_tensors(make_obs(2))
    assert torch.isfinite(model(t["state_ids"], t["action_ids"], t["action_mask"]).logits).all()


def test_config_round_trip_and_validation():
    config = ChoiceModelConfig(encoder=EncoderConfig("tiny", dropout=0.1), pooling="cls", max_state_tokens=64)
    assert ChoiceModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="pooling"):
        ChoiceModelConfig(pooling="max")
    with pytest.raises(ValueError, match="attention_heads"):
        ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"), attention_heads=3))


def test_behaviour_cloning_overfits_a_fixed_batch(tiny_model_factory):
    """Cross-entropy on 8 states falls and the demonstrated action becomes the argmax."""
    model = tiny_model_factory(seed=1).train()
    obs = make_obs(8, n_valid=[2, 3, 4, 5, 6, 3, 2, 4], seed=7)
    labels = torch.tensor([1, 2, 0, 4, 5, 1, 0, 3])
    t = as_tensors(obs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses, accuracy = [], 0.0
    for _ in range(60):
        logits = model(t["state_ids"], t["action_ids"], t["action_mask"]).logits
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        accuracy = (logits.argmax(-1) == labels).float().mean().item()
        if accuracy == 1.0 and loss.item() < 0.1:
            break
    assert accuracy == 1.0, losses
    assert losses[-1] < 0.5 * losses[0]
    # Gradients reached the encoder, not only the heads.
    assert model.encoder.embeddings.word_embeddings.weight.grad is not None


# ---------------------------------------------------------------------- reads to the host
def _filled(obs):
    """``obs`` with every position of the states and of the valid candidates a real token."""
    obs = {key: value.copy() for key, value in obs.items()}
    obs["state_ids"][obs["state_ids"] == 0] = 1000
    valid = obs["action_mask"].astype(bool)
    rows = obs["action_ids"][valid]
    rows[rows == 0] = 1001
    obs["action_ids"][valid] = rows
    return obs


@pytest.mark.parametrize("case", ["padded", "filled", "no candidates"])
def test_forward_and_backward_read_the_device_once(tiny_model_factory, case):
    """Cut lengths, vocabulary check, valid count and packing width come back in one transfer;
    no nonzero, no mask test inside BERT (on a GPU each would stall the host)."""
    from rl_app.op_counter import OpCounter

    model = tiny_model_factory().train()
    obs = make_obs(4, n_valid=[0, 0, 0, 0] if case == "no candidates" else [1, 6, 2, 4], seed=3)
    t = as_tensors(_filled(obs) if case == "filled" else obs)
    counter = OpCounter()
    with counter:
        out = model(t["state_ids"], t["action_ids"], t["action_mask"])
        out.logits.clamp_min(-10).sum().add(out.value.sum()).backward()
    assert counter.syncs == 1
    assert counter.ops > 100  # the counter saw the pass


def test_unpadded_batches_skip_the_attention_masks_and_give_the_same_logits(tiny_model_factory):
    model = tiny_model_factory(seed=2)
    obs = _filled(make_obs(3, n_valid=[2, 5, 3], seed=4))
    masks = []
    hook = model.encoder.register_forward_hook(lambda m, args, kwargs, out: masks.append(kwargs["attention_mask"]),
                                               with_kwargs=True)
    try:
        fast = _logits(model, obs)
        # One padding column on every state and candidate: masks are needed, the real tokens are unchanged.
        padded = {"state_ids": np.pad(obs["state_ids"], ((0, 0), (0, 1))),
                  "action_ids": np.pad(obs["action_ids"], ((0, 0), (0, 0), (0, 1))),
                  "action_mask": obs["action_mask"]}
        padded["state_ids"][0, -2:] = [0, 0]  # row 0 one token shorter: the cut keeps the column
        slow = _logits(model, padded)
    finally:
        hook.remove()
    assert masks[0] is None and masks[1] is None
    assert masks[2].shape == (3, 1, 1, STATE_LEN) and masks[2].dtype == torch.bool  # ready-made for SDPA
    assert masks[3] is None  # candidates: the padding column was cut, nothing left to mask
    assert not torch.allclose(fast, slow, atol=1e-4)  # state 0 lost a token
    fast0 = _logits(model, {k: v[1:] for k, v in obs.items()})
    assert torch.allclose(fast0, slow[1:], atol=1e-5)


def test_eager_attention_gets_the_2d_mask_and_matches_sdpa(tiny_model_factory):
    sdpa = tiny_model_factory(seed=5)
    eager = tiny_model_factory(seed=5)
    eager.encoder.set_attn_implementation("eager")
    assert sdpa.encoder.config._attn_implementation == "sdpa"
    masks = []
    hook = eager.encoder.register_forward_hook(lambda m, args, kwargs, out: masks.append(kwargs["attention_mask"]),
                                               with_kwargs=True)
    obs = make_obs(4, n_valid=[1, 6, 2, 4], seed=6)
    try:
        got = _logits(eager, obs)
    finally:
        hook.remove()
    assert [m.dim() for m in masks] == [2, 2]
    assert torch.allclose(got, _logits(sdpa, obs), atol=1e-5)


def test_value_head_is_skipped_on_request(tiny_model_factory):
    model = tiny_model_factory()
    t = as_tensors(make_obs(3, seed=8))
    with torch.no_grad():
        full = model(t["state_ids"], t["action_ids"], t["action_mask"])
        lean = model(t["state_ids"], t["action_ids"], t["action_mask"], with_value=False)
    assert lean.value is None and full.value.shape == (3,)
    assert torch.equal(lean.logits, full.logits) and torch.equal(lean.state_embedding, full.state_embedding)
