"""Demonstrations: train goals only, identical rows for any worker count, honest summaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rl_app.agents.scripted import DemonstratorAgent
from rl_app.data.demos import (
    TRAIN_START,
    demo_episode_id,
    episode_seed,
    generate_demonstrations,
    main,
    record_episode,
    summarize_trajectories,
)
from rl_app.data.files import SUMMARY_FILE
from rl_app.data.io import read_trajectories, write_trajectories
from rl_app.data.schema import records_from_frame, validate_episodes
from rl_app.env.text_env import WebShopTextEnv
from rl_app.shop.config import ShopConfig, load_shop

# 300 synthetic products give ~1,200 goals: no train split (1500+). 1,000 give ~3,300 (built in ~0.3 s).
SHOP = {"catalogue": "synthetic", "synthetic_products": 1000, "synthetic_seed": 1}
N_GOALS = 40


@pytest.fixture(scope="module")
def shop():
    loaded = load_shop(ShopConfig.from_dict(SHOP))
    assert len(loaded.goals) > TRAIN_START + N_GOALS, (
        f"the synthetic shop has only {len(loaded.goals)} goals; raise synthetic_products so a train split exists")
    return loaded


@pytest.fixture(scope="module")
def serial_demos(shop, tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "serial"
    summary = generate_demonstrations(SHOP, num_goals=N_GOALS, seed=3, num_workers=0, out=out, progress=False)
    return summary, read_trajectories(out)


def test_episode_seed_depends_on_seed_and_goal_only():
    assert episode_seed(3, 1500) == episode_seed(3, 1500)
    assert len({episode_seed(s, g) for s in range(3) for g in range(1500, 1510)}) == 30
    with pytest.raises(ValueError):
        episode_seed(-1, 1500)


def test_record_episode_rows_replay_in_a_fresh_env(shop):
    env = WebShopTextEnv(loaded=shop)
    seed = episode_seed(0, 1503)
    rows = record_episode(env, DemonstratorAgent(seed=seed), 1503, seed=seed)
    validate_episodes(rows)
    assert [r.step for r in rows] == list(range(len(rows)))
    assert [r.done for r in rows] == [False] * (len(rows) - 1) + [True]
    assert rows[0].candidates[rows[0].chosen].startswith("search[")
    # replaying the recorded actions reproduces every state, candidate list and reward
    replay = WebShopTextEnv(loaded=shop)
    obs, _ = replay.reset(goal_index=1503)
    for r in rows:
        assert obs == r.state
        assert tuple(replay.candidates()) == r.candidates
        assert tuple(replay.candidate_texts()) == r.candidate_texts
        obs, reward, *_ = replay.step(r.action)
        assert reward == r.reward
    assert rows[-1].reward == rows[0].episode_reward


def test_train_goals_only(serial_demos):
    summary, frame = serial_demos
    assert set(frame["split"]) == {"train"}
    assert sorted(frame["goal_index"].unique()) == list(range(TRAIN_START, TRAIN_START + N_GOALS))
    assert frame["goal_index"].min() >= TRAIN_START
    assert set(frame["source"]) == {"demo"} and set(frame["agent"]) == {"demonstrator"}
    validate_episodes(records_from_frame(frame))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(split="test"), ValueError, r"train goals only; got split='test'"),
    (dict(split="dev"), ValueError, r"train goals only"),
    (dict(num_goals=[1500, 12, 700]), ValueError, r"goals \[12, 700\] are test/dev goals"),
    (dict(num_goals=[1500, 1500]), ValueError, r"duplicates"),
    (dict(num_goals=[10 ** 6]), IndexError, r"do not exist"),
    (dict(num_goals=10 ** 6), ValueError, r"train goals"),
    (dict(agent="oracle"), ValueError, r"unknown agent"),
    (dict(chunk_size=0), ValueError, r"chunk_size must be >= 1"),
    (dict(env_config={"split": "test"}), ValueError, r"split must be 'train'"),
    (dict(env_config={"max_step": 5}), TypeError, r"max_step"),
])
def test_refused_requests(kwargs, error, message):
    with pytest.raises(error, match=message):
        generate_demonstrations(SHOP, **{"num_workers": 0, "progress": False, **kwargs})


def test_a_shop_without_train_goals_is_refused():
    with pytest.raises(ValueError, match="no train goals"):
        generate_demonstrations({**SHOP, "synthetic_products": 300}, num_workers=0, progress=False)


def test_parallel_ray_tasks_give_the_serial_rows(serial_demos, tmp_path, ray_session):
    summary, serial = serial_demos
    parallel = generate_demonstrations(SHOP, num_goals=N_GOALS, seed=3, num_workers=2, chunk_size=7,
                                       out=tmp_path / "parallel", progress=False)
    assert parallel.chunks == 6 and summary.chunks == 4
    pd.testing.assert_frame_equal(read_trajectories(tmp_path / "parallel"), serial)
    assert parallel.stats == summary.stats
    # a goal list in another order, one goal per task, still gives the same rows
    goals = list(range(TRAIN_START, TRAIN_START + N_GOALS))[::-1]
    shuffled = generate_demonstrations(SHOP, num_goals=goals, seed=3, num_workers=2, chunk_size=1,
                                       out=tmp_path / "one_per_task", progress=False)
    assert shuffled.chunks == N_GOALS
    pd.testing.assert_frame_equal(read_trajectories(tmp_path / "one_per_task"), serial)


def test_another_seed_gives_other_demonstrations(serial_demos, tmp_path):
    _, frame = serial_demos
    other = generate_demonstrations(SHOP, num_goals=N_GOALS, seed=4, num_workers=0, out=tmp_path / "s4",
                                    progress=False)
    other_frame = read_trajectories(tmp_path / "s4")

    def actions(f):
        return f.groupby("goal_index").apply(lambda e: tuple(c[i] for c, i in zip(e["candidates"], e["chosen"])))

    differ = (actions(frame) != actions(other_frame)).sum()
    assert 0 < differ < N_GOALS  # the demonstrator is stochastic, but mostly does the same thing
    assert set(other_frame["seed"]).isdisjoint(set(frame["seed"]))
    assert other.rows_written == len(other_frame)


def test_summary_matches_the_rows(serial_demos, tmp_path):
    summary, frame = serial_demos
    s = summary.stats
    # worked out from the rows with plain pandas, independently of summarize_trajectories
    finals = frame[frame["done"]].set_index("episode_id")["reward"]
    actions = pd.Series([c[i] for c, i in zip(frame["candidates"], frame["chosen"])])
    assert s.episodes == frame["episode_id"].nunique() == len(finals) == N_GOALS
    assert s.steps == len(frame)
    assert s.successes == int((finals == 1.0).sum())
    assert s.success_rate == pytest.approx((finals == 1.0).mean())
    assert s.mean_score == pytest.approx(finals.mean() * 100)
    assert s.mean_steps == pytest.approx(frame.groupby("episode_id").size().mean())
    next_episodes = frame.loc[actions == "click[next >]", "episode_id"].nunique()
    assert s.action_use["next"] == pytest.approx(next_episodes / N_GOALS)
    assert s.action_counts["next"] == int((actions == "click[next >]").sum())
    subpage = actions.isin(["click[description]", "click[features]", "click[reviews]"])
    assert s.action_counts["sub-pages"] == int(subpage.sum())
    assert s.action_use["sub-pages"] == pytest.approx(frame.loc[subpage, "episode_id"].nunique() / N_GOALS)
    assert summarize_trajectories(frame) == s == summarize_trajectories(records_from_frame(frame))
    assert summary.episodes_written == N_GOALS and summary.rows_written == len(frame)
    # the demonstrator is scripted to be good but not perfect, like a person
    assert 0 < s.successes < N_GOALS
    on_disk = json.loads((Path(summary.out) / SUMMARY_FILE).read_text())
    assert on_disk["stats"]["successes"] == s.successes and on_disk["shop_config"]["synthetic_products"] == 1000


def test_only_success_writes_successful_episodes(serial_demos, tmp_path):
    summary_all, _ = serial_demos
    summary = generate_demonstrations(SHOP, num_goals=N_GOALS, seed=3, num_workers=0, only_success=True,
                                      out=tmp_path / "ok", progress=False)
    kept = read_trajectories(tmp_path / "ok")
    assert summary.stats == summary_all.stats  # the summary still covers every played episode
    assert summary.episodes_written == summary.stats.successes == kept["episode_id"].nunique()
    assert set(kept["episode_reward"]) == {1.0}
    assert summarize_trajectories(kept).success_rate == 1.0


def test_rule_agent_and_existing_output(tmp_path):
    out = tmp_path / "rule"
    s = generate_demonstrations(SHOP, num_goals=5, agent="rule", num_workers=0, out=out, progress=False)
    frame = read_trajectories(out)
    assert set(frame["agent"]) == {"rule"}
    assert frame["episode_id"].iloc[0] == demo_episode_id("rule", 0, TRAIN_START)
    assert s.stats.mean_steps == pytest.approx(3.0)  # search, first result, buy now
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_demonstrations(SHOP, num_goals=5, agent="rule", num_workers=0, out=out, progress=False)


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--synthetic-products", "1000", "--synthetic-seed", "1", "--num-goals", "6", "--num-workers", "0",
                 "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "demonstrator on 6 synthetic train goals: success" in printed and str(out) in printed
    assert read_trajectories(out)["episode_id"].nunique() == 6


def test_written_demos_are_a_valid_data_set_to_rewrite(serial_demos, tmp_path):
    _, frame = serial_demos
    write_trajectories(frame, tmp_path / "copy")
    pd.testing.assert_frame_equal(read_trajectories(tmp_path / "copy"), frame)
    assert np.all(frame.groupby("episode_id")["done"].sum() == 1)
