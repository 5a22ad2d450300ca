"""Stored frozen-row caches: built once per fingerprint, hit on the next run, never served stale."""

from __future__ import annotations

import json

import pytest
import torch

from rl_app.data.frozen_cache import MANIFEST_FILE, FrozenCacheError, build_frozen_cache, cache_root, load_into
from rl_app.env.observation import ObservationEncoder, SegmentSizes
from rl_app.policy.encoder import EncoderConfig
from rl_app.policy.segment_model import SegmentChoiceModel, SegmentModelConfig

SIZES = SegmentSizes(instruction_tokens=24, lines=8, line_tokens=12)


@pytest.fixture(scope="module")
def small_demos(tmp_path_factory):
    from rl_app.data.demos import generate_demonstrations

    out = tmp_path_factory.mktemp("fc") / "demos"
    generate_demonstrations({"catalogue": "synthetic", "synthetic_products": 1000}, num_goals=3, seed=0,
                            num_workers=0, out=out, progress=False)
    return out


def _encoder(action_tokens: int = 10) -> ObservationEncoder:
    return ObservationEncoder("tiny", k_max=64, max_action_tokens=action_tokens, layout="segments", segments=SIZES)


def _model(trainable_layers: int = 0) -> SegmentChoiceModel:
    return SegmentChoiceModel(SegmentModelConfig(encoder=EncoderConfig("tiny"), trainable_layers=trainable_layers,
                                                 head_dim=32, max_lines=SIZES.lines))


def test_build_hit_and_invalidation(ray_session, small_demos):
    from rl_app.data.io import read_trajectories

    source = {"encoder": "tiny", "trainable_layers": 0}
    logs = []
    first = build_frozen_cache([small_demos], _encoder(), source, log=logs.append)
    assert first.parent == cache_root(small_demos) and "encoded" in logs[-1]
    manifest = json.loads((first / MANIFEST_FILE).read_text())
    assert manifest["rows"] > 0 and manifest["token_lengths"]["action"] == 10

    again = build_frozen_cache([small_demos], _encoder(), source, log=logs.append)
    assert again == first and logs[-1].endswith("(hit)")

    # another cut is another fingerprint: its own directory, built anew
    other = build_frozen_cache([small_demos], _encoder(), {"encoder": "tiny", "trainable_layers": 1},
                               log=logs.append)
    assert other != first and "encoded" in logs[-1]

    # the stored rows are what the model computes, and a warm memo encodes nothing in training
    model = _model()
    assert load_into(model.frozen, first.parent) == manifest["rows"]
    frame = read_trajectories(small_demos)
    obs = _encoder().encode_batch(list(frame.state[:8]), [list(c) for c in frame.candidate_texts[:8]])
    obs = {k: torch.as_tensor(v) for k, v in obs.items()}
    with torch.no_grad():
        warm = model.log_probs_obs(obs)
    assert model.frozen.misses == 0
    model.frozen.weights_changed()
    with torch.no_grad():
        cold = model.log_probs_obs(obs)
    torch.testing.assert_close(warm, cold, atol=2e-3, rtol=0)

    # other token lengths give other keys: a cache of 10-token candidates leaves 6-token rows unknown
    short = _encoder(action_tokens=6).encode_batch(list(frame.state[:8]), [list(c) for c in frame.candidate_texts[:8]])
    fresh = _model()
    load_into(fresh.frozen, first)
    with torch.no_grad():
        fresh.log_probs_obs({k: torch.as_tensor(v) for k, v in short.items()})
    assert fresh.frozen.misses > 0


def test_a_cache_of_other_weights_is_refused(ray_session, small_demos, tmp_path):
    directory = build_frozen_cache([small_demos], _encoder(), {"encoder": "tiny", "trainable_layers": 0},
                                   root=tmp_path, log=lambda _: None)
    model = _model()
    state = model.state_dict()
    state["encoder.embeddings.word_embeddings.weight"] += 1.0
    model.load_state_dict(state)
    assert load_into(model.frozen, tmp_path) == 0  # its fingerprint has no cache under the root
    with pytest.raises(FrozenCacheError, match="another encoder or layer cut"):
        load_into(model.frozen, directory)  # pointed at the stale directory itself


def test_rows_of_another_cache_are_reused_not_encoded(ray_session, small_demos, tmp_path):
    import pyarrow.parquet as pq

    from rl_app.data.frozen_cache import ROWS_FILE

    source = {"encoder": "tiny", "trainable_layers": 0}
    base = build_frozen_cache([small_demos], _encoder(), source, root=tmp_path / "a", log=lambda _: None)
    logs = []
    copy = build_frozen_cache([small_demos], _encoder(), source, root=tmp_path / "b", reuse=[tmp_path / "a"],
                              log=logs.append)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    assert manifest["reused_rows"] == manifest["rows"] > 0 and f"{manifest['rows']} reused, 0 encoded" in logs[-1]
    a, b = (pq.read_table(d / ROWS_FILE).to_pydict() for d in (base, copy))
    assert dict(zip(a["key"], a["h"])) == dict(zip(b["key"], b["h"]))


def test_a_policy_reads_stored_rows_and_plays_the_same(ray_session, small_demos, tmp_path):
    from rl_app.data.frozen_cache import load_into_policy
    from rl_app.policy.choice_policy import ChoicePolicy

    torch.manual_seed(0)
    policy = ChoicePolicy(_model(), _encoder().tokenizer)
    policy.save_pretrained(tmp_path / "policy")
    # the cache is cut into rows as the policy tokenizes (its own token lengths)
    root = build_frozen_cache([small_demos], policy.observation_encoder(64), {"checkpoint": str(tmp_path / "policy")},
                              root=tmp_path / "cache", log=lambda _: None).parent
    from rl_app.data.io import read_trajectories

    frame = read_trajectories(small_demos)
    states, texts = list(frame.state[:6]), [list(c) for c in frame.candidate_texts[:6]]
    cold = ChoicePolicy.from_checkpoint(tmp_path / "policy")
    warm = ChoicePolicy.from_checkpoint(tmp_path / "policy")
    assert load_into_policy(warm, root, None, tmp_path / "missing") > 0
    for s, c in zip(states, texts):
        np_cold, np_warm = cold.probs(s, c), warm.probs(s, c)
        assert abs(np_cold - np_warm).max() < 2e-3 and np_cold.argmax() == np_warm.argmax()
    assert warm.model.frozen.misses == 0 < cold.model.frozen.misses


def test_rows_met_in_play_are_stored_and_a_second_play_encodes_nothing(ray_session, small_demos, tmp_path):
    from rl_app.data.frozen_cache import load_into_policy, save_memo_rows
    from rl_app.env.text_env import TextEnvConfig
    from rl_app.agents.specs import AgentSpec
    from rl_app.eval.evaluate import evaluate
    from rl_app.policy.choice_policy import ChoicePolicy

    torch.manual_seed(0)
    ChoicePolicy(_model(), _encoder().tokenizer).save_pretrained(tmp_path / "policy")
    shop = {"catalogue": "synthetic", "synthetic_products": 1000}
    root = build_frozen_cache([small_demos], ChoicePolicy.from_checkpoint(tmp_path / "policy").observation_encoder(64),
                              {"checkpoint": str(tmp_path / "policy")}, root=tmp_path / "cache",
                              log=lambda _: None).parent
    spec = AgentSpec(name="p", kind="policy", checkpoint=str(tmp_path / "policy"))

    def play():
        policy = ChoicePolicy.from_checkpoint(tmp_path / "policy")
        loaded = load_into_policy(policy, root)
        known = set(policy.model.frozen.memo)
        result = evaluate(spec, shop, split="test", goal_indices=range(4), max_steps=4,
                          env_config=TextEnvConfig(k_max=64), policy=policy)
        return policy, loaded, known, result

    first, loaded, known, result = play()
    assert first.model.frozen.misses > 0  # test pages the demonstrations never showed
    stored = save_memo_rows(first.model.frozen, root, first.observation_encoder(64), {"checkpoint": "p"},
                            name="test_4", skip=known)
    manifest = json.loads((stored / MANIFEST_FILE).read_text())
    assert stored.parent == root and stored.name.endswith("-test_4")
    assert manifest["rows"] == len(first.model.frozen.memo) - len(known) > 0  # only the new rows
    second, loaded_again, _, again = play()
    assert loaded_again == loaded + manifest["rows"]
    assert second.model.frozen.misses == 0  # every row of the same play is stored now
    assert [r.reward for r in again.per_goal] == [r.reward for r in result.per_goal]
    assert save_memo_rows(second.model.frozen, root, second.observation_encoder(64), {}, name="x",
                          skip=second.model.frozen.memo) is None  # nothing new: nothing written
    with pytest.raises(ValueError, match="num_workers=0"):
        evaluate(spec, shop, split="test", goal_indices=[0], num_workers=1, policy=second)
