"""Step-level preference pairs: the pure builder on 3-row batches, and the full build."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rl_app.data.files import read_summary
from rl_app.data.pairs import PAIR_SCHEMA, build_step_pairs, read_pairs, step_pairs


def _batch(ref_logps, chosen):
    n = len(chosen)
    obj = lambda values: np.array(values + [None], dtype=object)[:-1]  # noqa: E731 - 1-D object arrays
    return {
        "episode_id": obj([f"ep-{i}" for i in range(n)]), "goal_index": np.arange(1500, 1500 + n),
        "split": obj(["train"] * n), "step": np.zeros(n, dtype=np.int64), "source": obj(["demo"] * n),
        "state": obj([f"state {i}" for i in range(n)]),
        "candidates": obj([[f"click[{j}]" for j in range(len(lp))] for lp in ref_logps]),
        "candidate_texts": obj([[f"click[{j}]" for j in range(len(lp))] for lp in ref_logps]),
        "chosen": np.asarray(chosen), "ref_logps": obj([np.log(np.asarray(p)) for p in ref_logps]),
    }


def test_three_row_batch_by_hand():
    # row 0: pi_ref puts all mass on candidate 1 -> rejected is 1, chosen 0 -> a pair
    # row 1: pi_ref puts all mass on the chosen candidate -> every draw ties -> dropped
    # row 2: two candidates, mass on 0, chosen 1 -> pair (chosen 1, rejected 0)
    eps = 1e-300
    batch = _batch([[eps, 1.0, eps], [1.0, eps], [1.0, eps]], chosen=[0, 0, 1])
    out = step_pairs(batch, num_rejected=2, seed=0)
    assert list(out["pair_id"]) == ["ep-0/0/0", "ep-0/0/1", "ep-2/0/0", "ep-2/0/1"]
    assert list(out["chosen"]) == [0, 0, 1, 1] and list(out["rejected"]) == [1, 1, 0, 0]
    assert out["ref_chosen_logp"][0] == pytest.approx(math.log(eps))
    assert out["ref_rejected_logp"][0] == pytest.approx(0.0)
    assert list(out["candidate_texts"][2]) == ["click[0]", "click[1]"]
    assert set(out) == set(PAIR_SCHEMA.names)


def test_sampling_follows_pi_ref_and_is_deterministic():
    probs = [0.1, 0.2, 0.7]
    batch = _batch([probs] * 300, chosen=[0] * 300)
    a = step_pairs(batch, num_rejected=1, seed=3)
    b = step_pairs(batch, num_rejected=1, seed=3)
    assert np.array_equal(a["rejected"], b["rejected"])
    # 300 draws: ties (index 0, p=0.1) dropped; among kept, index 2 should be ~7/9
    share = np.mean(a["rejected"] == 2)
    assert 0.68 < share < 0.86 and len(a["rejected"]) < 300
    # the same rows in another batch order give the same pairs
    order = np.arange(300)[::-1]
    rev = step_pairs({k: v[order] for k, v in batch.items()}, num_rejected=1, seed=3)
    assert sorted(zip(rev["pair_id"], rev["rejected"])) == sorted(zip(a["pair_id"], a["rejected"]))


def test_top_rejected_by_hand():
    # row 0: pi_ref 0.2 / 0.5 / 0.3, chosen 1 (its argmax) -> rejected 2, then 0
    # row 1: chosen 0, pi_ref's argmax 1 -> rejected 1 (the greedy mistake), then 2
    # row 2: one other candidate only -> one pair even with num_rejected=2
    batch = _batch([[0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.9, 0.1]], chosen=[1, 0, 1])
    out = step_pairs(batch, num_rejected=2, rejected="top")
    assert list(out["pair_id"]) == ["ep-0/0/0", "ep-0/0/1", "ep-1/0/0", "ep-1/0/1", "ep-2/0/0"]
    assert list(out["chosen"]) == [1, 1, 0, 0, 1] and list(out["rejected"]) == [2, 0, 1, 2, 0]
    assert out["ref_rejected_logp"][2] == pytest.approx(math.log(0.6))
    assert out["ref_chosen_logp"][4] == pytest.approx(math.log(0.1))
    one = step_pairs(batch, num_rejected=1, rejected="top", seed=5)
    assert list(one["rejected"]) == [2, 1, 0]
    # equal log-probs: the lower candidate index first
    tie = step_pairs(_batch([[0.25, 0.25, 0.25, 0.25]], [2]), num_rejected=3, rejected="top")
    assert list(tie["rejected"]) == [0, 1, 3]


def test_bad_input():
    with pytest.raises(ValueError, match="num_rejected"):
        step_pairs(_batch([[0.5, 0.5]], [0]), num_rejected=0)
    with pytest.raises(ValueError, match="outside"):
        step_pairs(_batch([[0.5, 0.5]], [2]))
    with pytest.raises(ValueError, match="rejected must be"):
        step_pairs(_batch([[0.5, 0.5]], [0]), rejected="argmax")


@pytest.mark.parametrize("use_ray", [False, True])
def test_build_from_trajectories_with_a_reference_checkpoint(tmp_path, use_ray, request):
    import torch

    from rl_app.data.io import write_trajectories
    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.env.tokenizer import load_tokenizer
    from rl_app.policy.encoder import EncoderConfig
    from .helpers import episode

    if use_ray:
        request.getfixturevalue("ray_session")
    torch.manual_seed(0)
    policy = ChoicePolicy(ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"))), load_tokenizer("tiny"),
                          max_state_tokens=64, max_action_tokens=16)
    ref = policy.save_pretrained(tmp_path / "ref")
    write_trajectories(episode("ep-a") + episode("ep-b", goal_index=1501, final_reward=0.5), tmp_path / "traj")
    summary = build_step_pairs(tmp_path / "traj", ref, tmp_path / "pairs", num_rejected=3, seed=1, use_ray=use_ray)
    pairs = read_pairs(tmp_path / "pairs")
    assert summary.states == 6 and summary.pairs == len(pairs) and summary.pairs + summary.dropped_ties == 18
    assert (pairs["chosen"] != pairs["rejected"]).all()
    # stored reference log-probs equal a fresh reference pass
    row = pairs.iloc[0]
    logp = np.log(policy.probs(row["state"], list(row["candidate_texts"])))
    assert row["ref_chosen_logp"] == pytest.approx(logp[row["chosen"]], abs=1e-5)
    assert row["ref_rejected_logp"] == pytest.approx(logp[row["rejected"]], abs=1e-5)
    top = build_step_pairs(tmp_path / "traj", ref, tmp_path / "pairs_top", num_rejected=2, rejected="top",
                           use_ray=use_ray)
    top_pairs = read_pairs(tmp_path / "pairs_top")
    # per episode: one results page of 3 candidates (2 pairs) and two item pages of 2 (1 pair each)
    assert top.rejected == "top" and top.pairs == 8 and top.dropped_ties == 4 and "top" in top.line()
    for _, row in top_pairs.iterrows():  # rejected = pi_ref's most probable other candidates, in order
        logp = np.log(policy.probs(row["state"], list(row["candidate_texts"])))
        others = [j for j in np.argsort(-logp, kind="stable") if j != row["chosen"]]
        assert row["rejected"] == others[int(row["pair_id"].rsplit("/", 1)[1])]
    only = build_step_pairs(tmp_path / "traj", ref, tmp_path / "pairs_ok", only_success=True, use_ray=use_ray)
    assert only.states == 3 and only.only_success and "3 states of successful episodes" in only.line()
    assert read_summary(tmp_path / "pairs_ok")["only_success"] is True
    assert read_summary(tmp_path / "pairs")["only_success"] is False
    with pytest.raises(FileExistsError):
        build_step_pairs(tmp_path / "traj", ref, tmp_path / "pairs", use_ray=use_ray)


def test_gpus_for_the_reference_pass_are_checked_before_anything_is_written(tmp_path, ray_session):
    import ray

    from rl_app.data.io import write_trajectories
    from .helpers import episode

    write_trajectories(episode("ep-a"), tmp_path / "traj")
    with pytest.raises(ValueError, match="num_gpus must be >= 0"):
        build_step_pairs(tmp_path / "traj", tmp_path / "no-ref", tmp_path / "pairs", num_gpus=-1)
    assert ray.cluster_resources().get("GPU", 0) == 0  # CI: no GPU, so asking for one is refused
    with pytest.raises(ValueError, match="num_gpus=1 for the reference pass, but the Ray cluster has 0 GPUs"):
        build_step_pairs(tmp_path / "traj", tmp_path / "no-ref", tmp_path / "pairs", use_ray=True, num_gpus=1)
    assert not (tmp_path / "pairs").exists()
