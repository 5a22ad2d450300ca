"""Trajectory-level (ETO) pairs: the pure builders on 3-row inputs, and the full build."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rl_app.data.trajectory_pairs import (
    TRAJECTORY_PAIR_SCHEMA,
    build_trajectory_pairs,
    chosen_ref_logp,
    episode_table,
    pair_trajectories,
    read_trajectory_pairs,
)

from .helpers import episode, replace

NAN = float("nan")
SHOP = {"catalogue": "synthetic", "synthetic_products": 300, "synthetic_seed": 1}


def _obj(values):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _episodes(rows):
    """(episode_id, goal_index, episode_reward, num_steps) rows -> the columns pairing reads."""
    ids, goals, rewards, steps = zip(*rows)
    return {"episode_id": _obj(ids), "goal_index": np.array(goals), "episode_reward": np.array(rewards, float),
            "num_steps": np.array(steps)}


def test_episode_table_groups_and_orders_steps():
    # ep-b's two steps arrive out of order; ep-a has one step. ref_logp sums per episode.
    steps = {
        "episode_id": _obj(["ep-b", "ep-a", "ep-b"]), "goal_index": np.array([1501, 1500, 1501]),
        "split": _obj(["train"] * 3), "source": _obj(["generated", "demo", "generated"]),
        "step": np.array([1, 0, 0]), "state": _obj(["b page 1", "a page 0", "b page 0"]),
        "candidate_texts": _obj([["x", "y", "z"], ["p", "q"], ["u", "v"]]), "chosen": np.array([2, 1, 0]),
        "episode_reward": np.array([0.5, 1.0, 0.5]),
        "ref_logps": _obj([np.log([0.5, 0.25, 0.25]), np.log([0.5, 0.5]), np.log([0.75, 0.25])]),
    }
    scored = chosen_ref_logp(steps)
    assert "ref_logps" not in scored and "ref_logps" in steps  # the input is not modified
    assert scored["ref_logp"] == pytest.approx([math.log(0.25), math.log(0.5), math.log(0.75)])
    out = episode_table(scored)
    assert list(out["episode_id"]) == ["ep-a", "ep-b"]
    assert list(out["num_steps"]) == [1, 2] and list(out["goal_index"]) == [1500, 1501]
    assert out["states"][1] == ["b page 0", "b page 1"] and out["actions"][1] == [0, 2]
    assert out["candidate_texts"][1] == [["u", "v"], ["x", "y", "z"]]
    assert out["ref_logp"][1] == pytest.approx(math.log(0.75) + math.log(0.25))
    assert out["ref_step_logps"][1] == pytest.approx([math.log(0.75), math.log(0.25)])
    with pytest.raises(ValueError, match="episode_reward differs"):
        episode_table({**steps, "episode_reward": np.array([0.5, 1.0, 0.0])})
    with pytest.raises(ValueError, match="outside"):
        episode_table({**steps, "chosen": np.array([3, 1, 0])})


def test_pairing_by_hand():
    # goal 1500: expert 1.0 vs agent 0.25 -> expert chosen; 1501: 0.5 vs 0.5 -> tie dropped;
    # 1502 has only an expert trajectory, 1503 only an agent one -> skipped.
    expert = _episodes([("e0", 1500, 1.0, 3), ("e1", 1501, 0.5, 2), ("e2", 1502, 0.0, 4)])
    agent = _episodes([("a0", 1500, 0.25, 5), ("a1", 1501, 0.5, 2), ("a2", 1503, 1.0, 3)])
    index, counts = pair_trajectories(expert, agent)
    assert list(index["pair_id"]) == ["1500/e0/a0"]
    assert list(index["chosen_role"]) == ["expert"] and list(index["chosen_episode_id"]) == ["e0"]
    assert list(index["rejected_episode_id"]) == ["a0"] and list(index["rejected_reward"]) == [0.25]
    assert (counts.compared, counts.pairs, counts.dropped_ties) == (2, 1, 1)
    assert (counts.goals_paired, counts.goals_expert_only, counts.goals_agent_only) == (2, 1, 1)
    assert (counts.chosen_expert, counts.chosen_agent) == (1, 0)


def test_pairing_agent_wins_unknown_rewards_and_length():
    # goal 1500: 2 experts x 2 agents = 4 comparisons: (e0 0.0, a0 0.75) agent chosen,
    # (e0, a2 0.0) tie, e1's reward is unknown (NaN) twice. goal 1501: e2 has 9 steps > 5.
    expert = _episodes([("e0", 1500, 0.0, 2), ("e1", 1500, NAN, 2), ("e2", 1501, 0.5, 9)])
    agent = _episodes([("a0", 1500, 0.75, 3), ("a1", 1501, 1.0, 2), ("a2", 1500, 0.0, 2)])
    index, counts = pair_trajectories(expert, agent, max_steps=5)
    assert list(index["pair_id"]) == ["1500/e0/a0"]
    assert list(index["chosen_role"]) == ["agent"] and list(index["chosen_reward"]) == [0.75]
    assert (counts.compared, counts.pairs, counts.chosen_agent) == (5, 1, 1)
    assert (counts.dropped_ties, counts.dropped_unknown_reward, counts.dropped_too_long) == (1, 2, 1)
    # ETO's filter drops the agent's win; without max_steps goal 1501 pairs (agent 1.0 > 0.5)
    eto = pair_trajectories(expert, agent, max_steps=5, expert_wins_only=True).counts
    assert (eto.pairs, eto.dropped_agent_wins) == (0, 1)
    assert pair_trajectories(expert, agent).counts.pairs == 2
    # input order does not matter
    flip = {k: v[::-1] for k, v in agent.items()}
    assert list(pair_trajectories(expert, flip, max_steps=5).index["pair_id"]) == ["1500/e0/a0"]
    with pytest.raises(ValueError, match="max_steps"):
        pair_trajectories(expert, agent, max_steps=0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    import torch

    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.env.tokenizer import load_tokenizer
    from rl_app.policy.encoder import EncoderConfig

    torch.manual_seed(0)
    policy = ChoicePolicy(ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"))), load_tokenizer("tiny"),
                          max_state_tokens=64, max_action_tokens=16)
    return policy, policy.save_pretrained(tmp_path_factory.mktemp("ref") / "policy")


@pytest.fixture(scope="module")
def expert_agent(tmp_path_factory):
    """Expert (demo) and agent (generated) trajectories on goals 1500-1502.

    1500: expert 1.0 (3 steps) vs agent 0.0 (4 steps) -> expert chosen
    1501: expert 0.5 (3 steps) vs agent 1.0 (2 steps) -> agent chosen
    1502: expert 1.0 vs agent 1.0 -> tie, dropped (and not scored by the reference)
    """
    from rl_app.data.io import write_trajectories

    root = tmp_path_factory.mktemp("eto")
    agent = lambda *a, **k: [replace(r, source="generated", agent="il") for r in episode(*a, **k)]  # noqa: E731
    write_trajectories(episode("d0", 1500, 1.0, n_steps=3) + episode("d1", 1501, 0.5, n_steps=3)
                       + episode("d2", 1502, 1.0, n_steps=2), root / "expert", summary={"shop_config": SHOP})
    write_trajectories(agent("g0", 1500, 0.0, n_steps=4) + agent("g1", 1501, 1.0, n_steps=2)
                       + agent("g2", 1502, 1.0, n_steps=3), root / "agent", summary={"shop_config": SHOP})
    return root


def test_build_scores_trajectories_with_the_reference(expert_agent, reference, tmp_path):
    # In-process here; tests/algorithms/test_dpo_trajectory.py builds through Ray Data.
    policy, ref_dir = reference
    summary = build_trajectory_pairs(expert_agent / "expert", expert_agent / "agent", ref_dir, tmp_path / "pairs",
                                     use_ray=False)
    c = summary.counts
    assert (c.pairs, c.chosen_expert, c.chosen_agent, c.dropped_ties, c.compared) == (2, 1, 1, 1, 3)
    assert summary.steps_scored == 3 + 4 + 3 + 2 and summary.longest == 4
    pairs = read_trajectory_pairs(tmp_path / "pairs")
    assert list(pairs.columns) == TRAJECTORY_PAIR_SCHEMA.names
    assert list(pairs["pair_id"]) == ["1500/d0/g0", "1501/d1/g1"]
    assert list(pairs["chosen_episode_id"]) == ["d0", "g1"] and list(pairs["rejected_episode_id"]) == ["g0", "d1"]
    assert list(pairs["chosen_num_steps"]) == [3, 2] and list(pairs["rejected_num_steps"]) == [4, 3]
    assert list(pairs["chosen_source"]) == ["demo", "generated"] and set(pairs["kind"]) == {"trajectory"}
    # stored reference log-probs = sum over steps of log pi_ref(a_t | s_t), computed directly
    for _, row in pairs.iterrows():
        for side in ("chosen", "rejected"):
            direct = [math.log(policy.probs(s, list(t))[a]) for s, t, a in
                      zip(row[f"{side}_states"], row[f"{side}_candidate_texts"], row[f"{side}_actions"])]
            assert list(row[f"{side}_ref_step_logps"]) == pytest.approx(direct, abs=1e-5)
            assert row[f"ref_{side}_logp"] == pytest.approx(sum(direct), abs=1e-5)
    record = json.loads((tmp_path / "pairs" / "_summary.json").read_text())
    assert record["kind"] == "trajectory" and record["pairs"] == 2 and record["dropped_ties"] == 1
    assert record["shop_config"] == SHOP and record["longest"] == 4
    with pytest.raises(FileExistsError):
        build_trajectory_pairs(expert_agent / "expert", expert_agent / "agent", ref_dir, tmp_path / "pairs")


def test_cli_and_bad_input(expert_agent, reference, tmp_path):
    from rl_app.data.io import write_trajectories
    from rl_app.data.trajectory_pairs import _main

    _, ref_dir = reference
    args = ["--expert", str(expert_agent / "expert"), "--agent", str(expert_agent / "agent"),
            "--reference", str(ref_dir), "--out", str(tmp_path / "eto")]
    assert _main(args + ["--expert-wins-only"]) == 0
    assert list(read_trajectory_pairs(tmp_path / "eto")["pair_id"]) == ["1500/d0/g0"]
    # no pair survives: an error with the counts, nothing written
    with pytest.raises(ValueError, match="dropped_ties=3"):
        build_trajectory_pairs(expert_agent / "expert", expert_agent / "expert", ref_dir, tmp_path / "none")
    assert not (tmp_path / "none").exists()
    # trajectories from another shop: goal indices name other goals
    write_trajectories(episode("x", 1500, 0.0), tmp_path / "other", summary={"shop_config": {**SHOP, "synthetic_seed": 2}})
    with pytest.raises(ValueError, match="different shops"):
        build_trajectory_pairs(expert_agent / "expert", tmp_path / "other", ref_dir, tmp_path / "bad")
