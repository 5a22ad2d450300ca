"""The cached-encoder mode: the segments model, its frozen-row memo, checkpoints and overfitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rl_app.env.observation import ObservationEncoder, SegmentSizes
from rl_app.policy.choice_policy import ChoicePolicy
from rl_app.policy.encoder import EncoderConfig
from rl_app.policy.segment_model import SegmentChoiceModel, SegmentModelConfig

SIZES = SegmentSizes(instruction_tokens=24, lines=8, line_tokens=12)
INSTRUCTION = "i need a blue cotton shirt in size large, and price lower than 30.00 dollars"


def _page(options_clicked: tuple[str, ...] = ()) -> str:
    clicked = "".join(f"You have clicked {o}.\n" for o in reversed(options_clicked))
    lines = []
    for group, values in (("color", ("blue", "red", "green")), ("size", ("small", "large"))):
        lines.append(group)
        for v in values:
            tag = "clicked button" if v in options_clicked else "button"
            lines.append(f"  [{tag}] {v} [{tag}_]")
    body = "\n".join(lines)
    return (f"{clicked}Instruction:\n{INSTRUCTION}\n[button] Back to Search [button_]\n[button] < Prev [button_]\n"
            f"{body}\nAcme Cotton Shirt\nPrice: $25.00\n[button] Buy Now [button_]\n")


CANDIDATES = ["click[blue] color", "click[red] color", "click[green] color", "click[small] size",
              "click[large] size", "click[buy now]"]


def _encoder(k: int = 6) -> ObservationEncoder:
    return ObservationEncoder("tiny", k_max=k, max_action_tokens=10, layout="segments", segments=SIZES)


def _model(trainable_layers: int = 0, seed: int = 0) -> SegmentChoiceModel:
    torch.manual_seed(seed)
    config = SegmentModelConfig(encoder=EncoderConfig("tiny"), trainable_layers=trainable_layers, head_dim=32,
                                match_heads=4, max_lines=SIZES.lines, instruction_tokens=SIZES.instruction_tokens,
                                line_tokens=SIZES.line_tokens, max_action_tokens=10)
    return SegmentChoiceModel(config)


def _batch(states, choices):
    enc = _encoder()
    obs = enc.encode_batch(states, [CANDIDATES] * len(states))
    return {k: torch.as_tensor(v) for k, v in obs.items()}, torch.as_tensor(choices)


# The demonstrator's next click on each page: the named options in turn, then buy.
STATES = [_page(), _page(("blue",)), _page(("blue", "large"))]
CHOICES = [0, 4, 5]


def _step(model, obs, actions, lr=3e-3, steps=1):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        logp = model.log_probs_obs(obs)
        loss = -logp.gather(1, actions[:, None]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def test_frozen_part_unchanged_and_the_rest_trains():
    model = _model(trainable_layers=1)
    obs, actions = _batch(STATES, CHOICES)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _step(model, obs, actions)
    frozen = {n for n, _ in model.frozen.frozen_parameters()}
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert frozen and not (frozen & changed)
    # the top encoder layer (layer 1 of the tiny 2-layer BERT) and the head train
    assert any(n.startswith("encoder.encoder.layer.1.") for n in changed)
    assert "score.0.weight" in changed and "candidate_proj.0.weight" in changed
    assert not any(n.startswith("encoder.encoder.layer.0.") or n.startswith("encoder.embeddings.") for n in changed)


def test_all_frozen_by_default_and_the_memo_serves_repeats():
    model = _model()
    assert all(not p.requires_grad for p in model.encoder.parameters())
    obs, _ = _batch(STATES, CHOICES)
    model.log_probs_obs(obs)
    first = model.frozen.stats()
    assert first["misses"] == first["rows"] > 0
    model.log_probs_obs(obs)
    second = model.frozen.stats()
    # every row of the second pass comes from the memo: no new misses
    assert second["misses"] == first["misses"] and second["hits"] > first["hits"]
    # the page lines and candidates repeat across the three states: fewer unique rows than rows
    n_rows = int((obs["line_ids"][..., 0] != 0).sum() + obs["action_mask"].sum() + 3)
    assert first["rows"] < n_rows


def test_memoised_rows_equal_fresh_encoding():
    model = _model()
    obs, _ = _batch(STATES, CHOICES)
    with torch.no_grad():
        cached_first = model.log_probs_obs(obs)
        cached_again = model.log_probs_obs(obs)
        model.frozen.weights_changed()
        fresh = model.log_probs_obs(obs)
    torch.testing.assert_close(cached_first, cached_again)
    torch.testing.assert_close(cached_first, fresh, atol=2e-3, rtol=0)


def test_loading_other_frozen_weights_clears_the_memo_and_changes_the_fingerprint():
    model = _model()
    obs, _ = _batch(STATES[:1], CHOICES[:1])
    model.log_probs_obs(obs)
    fingerprint = model.frozen.fingerprint
    state = model.state_dict()
    state["encoder.embeddings.word_embeddings.weight"] = state["encoder.embeddings.word_embeddings.weight"] + 0.5
    model.load_state_dict(state)
    assert model.frozen.stats()["rows"] == 0
    assert model.frozen.fingerprint != fingerprint
    # the layer cut is part of the identity too
    assert _model(trainable_layers=1).frozen.fingerprint != _model(trainable_layers=0).frozen.fingerprint


def test_tiny_model_overfits_the_option_sequence():
    model = _model(seed=1)
    obs, actions = _batch(STATES, CHOICES)
    losses = _step(model, obs, actions, lr=3e-3, steps=60)
    assert losses[0] > 1.5  # about ln 6 at the start
    assert losses[-1] < 0.1
    greedy = model.forward_obs(obs, with_value=False).logits.argmax(dim=-1)
    assert greedy.tolist() == CHOICES


def test_policy_round_trip_is_identical(tmp_path):
    model = _model(seed=2)
    obs, actions = _batch(STATES, CHOICES)
    _step(model, obs, actions, steps=5)
    policy = ChoicePolicy(model, _encoder().tokenizer)
    before = [policy.probs(s, CANDIDATES) for s in STATES]
    policy.save_pretrained(tmp_path / "policy")
    loaded = ChoicePolicy.from_checkpoint(tmp_path / "policy")
    assert loaded.layout == "segments" and loaded.segments == SIZES and loaded.max_action_tokens == 10
    after = [loaded.probs(s, CANDIDATES) for s in STATES]
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_wrong_layout_observation_is_refused():
    model = _model()
    obs = {"state_ids": torch.ones(1, 8, dtype=torch.long), "action_ids": torch.ones(1, 2, 4, dtype=torch.long),
           "action_mask": torch.ones(1, 2)}
    with pytest.raises(ValueError, match="observation_layout='segments'"):
        model.forward_obs(obs)


def test_ppo_config_serves_the_segments_layout_to_a_segments_policy(tmp_path):
    from rl_app.algorithms.ppo import WebShopPPOConfig

    policy = ChoicePolicy(_model(), _encoder().tokenizer)
    policy.save_pretrained(tmp_path / "policy")
    config = WebShopPPOConfig().webshop(
        env_config={"catalogue": "synthetic", "split": "train", "observation_layout": "segments",
                    "max_action_tokens": 10}, model_config={}, init_checkpoint=str(tmp_path / "policy"))
    config._apply_webshop()
    module = config.rl_module_spec.build()
    assert module.layout == "segments" and isinstance(module.model, SegmentChoiceModel)
    assert "line_ids" in config.rl_module_spec.observation_space.spaces


def test_rllib_module_checkpoint_round_trip_is_identical(tmp_path):
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModule

    from rl_app.env.observation import observation_space
    from rl_app.policy.rl_module import module_spec

    import gymnasium as gym

    space = observation_space(6, 64, 10, layout="segments", segments=SIZES)
    module = module_spec(space, gym.spaces.Discrete(6), {"encoder": "tiny", "head_dim": 32}).build()
    assert isinstance(module.model, SegmentChoiceModel)
    obs, actions = _batch(STATES, CHOICES)
    _step(module.model, obs, actions, steps=3)
    batch = {Columns.OBS: obs}
    before = module._forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    module.save_to_path(str(tmp_path / "module"))
    restored = RLModule.from_checkpoint(str(tmp_path / "module"))
    after = restored._forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(before, after, rtol=0, atol=1e-5)
    assert torch.equal(before.argmax(-1), after.argmax(-1))
    # and the saved policy files load without Ray, acting the same
    policy = ChoicePolicy.from_checkpoint(tmp_path / "module")
    np.testing.assert_allclose(policy.probs(STATES[1], CANDIDATES),
                               torch.softmax(after[1], -1).double().numpy(), atol=1e-5)


def test_exact_match_signals_by_hand():
    model = _model()
    d = model.config.head_dim
    instr_ids = torch.tensor([[101, 5, 6, 7, 102, 0]])
    cand_ids = torch.tensor([[101, 5, 6, 102], [101, 9, 102, 0]])
    lines = torch.tensor([[[101, 9, 9, 102, 0, 0], [101, 5, 6, 8, 102, 0], [0, 0, 0, 0, 0, 0]]])
    line_ctx = torch.arange(3 * d, dtype=torch.float32).view(1, 3, d)
    # equal token weight logits: weighted shares equal plain ones
    scalars, own_line = model._signals(cand_ids, torch.zeros(2, 4), instr_ids, torch.zeros(1, 6), lines,
                                       line_ctx, torch.tensor([0, 0]))
    third = 2 / 3
    # [cand in instr, instr in cand, both weighted, own line's share, its share in instr, instr covered by it]
    torch.testing.assert_close(scalars / 10.0, torch.tensor([[1.0, third, 1.0, third, 1.0, third, third],
                                                             [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]]))
    # candidate 0's own line is the row holding its word pieces (line 1), candidate 1's is line 0
    torch.testing.assert_close(own_line, torch.stack([line_ctx[0, 1], line_ctx[0, 0]]))


def test_signals_can_be_switched_off_and_older_configs_load_without_them():
    with_signals = _model()
    assert with_signals.config.match_signals
    old = SegmentModelConfig.from_dict({k: v for k, v in with_signals.config.to_dict().items() if k != "match_signals"})
    assert old.match_signals is False
    without = SegmentChoiceModel(old)
    n_in = {m.score[0].in_features for m in (with_signals, without)}
    assert n_in == {without.score[0].in_features, without.score[0].in_features + 32 + 7}
    obs, actions = _batch(STATES, CHOICES)
    assert torch.isfinite(without.log_probs_obs(obs)[obs["action_mask"] != 0]).all()
