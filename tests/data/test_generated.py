"""Generated trajectories: loop pruning by hand, the keep filter, attempts cap and resuming."""

from __future__ import annotations

import json

import pytest

from rl_app.data.generated import generate_trajectories, page_key, prune_loops
from rl_app.data.io import read_trajectories

from .helpers import record

SHOP = {"catalogue": "synthetic", "synthetic_products": 1000, "synthetic_seed": 1}
ENV = {"max_steps": 6, "k_max": 16}


def test_page_key_ignores_visited_marks_but_not_selected_options():
    a = "Page 1\n\n[clicked button] B000000001 [clicked button_]\nShoe\n"
    b = "Page 1\n\n[button] B000000001 [button_]\nShoe\n"
    assert page_key(a) == page_key(b)
    opt = "color\n  [clicked button] black [clicked button_]\n"
    assert page_key(opt) == opt


def test_prune_loops_by_hand():
    # search -> results -> item A -> (back) results -> item B -> buy ; the A detour goes
    states = ["search", "results", "item A", "results\n[clicked button] B0000000AA [clicked button_]",
              "item B"]
    rows = [record(step=i, state=s, done=False, reward=0.0, episode_reward=1.0) for i, s in enumerate(states)]
    rows[-1] = record(step=4, state="item B", done=True, reward=1.0, episode_reward=1.0, chosen=1)
    rows[3] = record(step=3, state="results", chosen=1, episode_reward=1.0)  # the revisit picks another item
    pruned = prune_loops(rows)
    assert [r.state for r in pruned] == ["search", "results", "item B"]
    assert [r.step for r in pruned] == [0, 1, 2]
    assert pruned[1].chosen == 1  # the later choice on the repeated page is kept
    assert pruned[-1].done and pruned[-1].reward == 1.0


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    import torch

    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.env.tokenizer import load_tokenizer
    from rl_app.policy.encoder import EncoderConfig

    torch.manual_seed(0)
    policy = ChoicePolicy(ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"))), load_tokenizer("tiny"),
                          max_state_tokens=96, max_action_tokens=16)
    return policy.save_pretrained(tmp_path_factory.mktemp("ref") / "policy")


def test_generation_keeps_by_reward_caps_attempts_and_resumes(tiny_reference, tmp_path):
    out = tmp_path / "gen"
    first = generate_trajectories(tiny_reference, SHOP, out, num_episodes=3, max_attempts=20, min_reward=0.0,
                                  env_config=ENV, chunk_size=4, num_workers=0, progress=False)
    assert first.kept == 3 and first.attempts == 3  # min_reward 0 keeps every episode
    frame = read_trajectories(out)
    assert frame["episode_id"].nunique() == 3 and (frame["source"] == "generated").all()
    assert (frame["goal_index"] >= 1500).all()
    # resume to 6: the first three are untouched, no duplicates
    again = generate_trajectories(tiny_reference, SHOP, out, num_episodes=6, max_attempts=20, min_reward=0.0,
                                  env_config=ENV, chunk_size=4, num_workers=0, progress=False)
    assert again.kept == 6 and again.attempts == 6
    frame2 = read_trajectories(out)
    assert frame2["episode_id"].nunique() == 6 and not frame2.duplicated(["episode_id", "step"]).any()
    assert set(frame["episode_id"]) <= set(frame2["episode_id"])
    # a fresh run to 6 in one go gives the same episodes
    fresh = generate_trajectories(tiny_reference, SHOP, tmp_path / "fresh", num_episodes=6, max_attempts=20,
                                  min_reward=0.0, env_config=ENV, chunk_size=4, num_workers=0, progress=False)
    assert fresh.kept == 6
    assert set(read_trajectories(tmp_path / "fresh")["episode_id"]) == set(frame2["episode_id"])
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["kept"] == 6 and summary["yield"] == 1.0
    assert summary["shop_config"]["catalogue"] == SHOP["catalogue"]  # pairs and evaluation read the shop here


def test_impossible_filter_stops_at_the_attempt_cap(tiny_reference, tmp_path):
    s = generate_trajectories(tiny_reference, SHOP, tmp_path / "none", num_episodes=5, max_attempts=6,
                              min_reward=1.5, env_config=ENV, chunk_size=4, num_workers=0, progress=False)
    assert (s.kept, s.attempts, s.yield_rate) == (0, 6, 0.0)


def test_only_train_goals(tiny_reference, tmp_path):
    with pytest.raises(ValueError, match="train goals only"):
        generate_trajectories(tiny_reference, SHOP, tmp_path / "x", env_config={"split": "test"}, num_workers=0)
    with pytest.raises(ValueError, match="other settings"):
        generate_trajectories(tiny_reference, SHOP, tmp_path / "y", num_episodes=1, max_attempts=2, min_reward=0.0,
                              env_config=ENV, num_workers=0, progress=False)
        generate_trajectories(tiny_reference, SHOP, tmp_path / "y", num_episodes=1, max_attempts=2, min_reward=0.5,
                              env_config=ENV, num_workers=0, progress=False)


def test_given_goals_are_played_in_order_and_must_be_train_goals(tiny_reference, tmp_path):
    from rl_app.data.generated import main

    goals = [1507, 1502, 1504]
    s = generate_trajectories(tiny_reference, SHOP, tmp_path / "g", num_episodes=10, max_attempts=5, min_reward=0.0,
                              env_config=ENV, chunk_size=2, num_workers=0, progress=False, goals=goals)
    assert (s.kept, s.attempts) == (5, 5)
    frame = read_trajectories(tmp_path / "g")
    played = frame.drop_duplicates("episode_id").sort_values("episode_id")["goal_index"].tolist()
    assert sorted(played) == sorted(goals + goals[:2])  # cycled: 1507, 1502, 1504, 1507, 1502
    progress = json.loads((tmp_path / "g" / "_progress.json").read_text())
    assert progress["settings"]["goals"] == goals
    with pytest.raises(ValueError, match="train goals of this shop"):
        generate_trajectories(tiny_reference, SHOP, tmp_path / "t", num_episodes=1, max_attempts=2,
                              env_config=ENV, num_workers=0, progress=False, goals=[1502, 12])
    with pytest.raises(ValueError, match="empty"):
        generate_trajectories(tiny_reference, SHOP, tmp_path / "e", num_episodes=1, max_attempts=2,
                              env_config=ENV, num_workers=0, progress=False, goals=[])
    # the CLI takes the goals of a trajectory set: one episode on each of its three goals
    assert main(["--checkpoint", str(tiny_reference), "--out", str(tmp_path / "cli"), "--synthetic-products", "1000",
                 "--goals-from", str(tmp_path / "g"), "--min-reward", "0", "--num-episodes", "3",
                 "--max-attempts", "3", "--max-steps", "6", "--num-workers", "0"]) == 0
    assert sorted(read_trajectories(tmp_path / "cli").drop_duplicates("episode_id")["goal_index"]) == sorted(goals)
