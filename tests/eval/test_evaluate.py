"""evaluate(): numbers known by construction, determinism, Ray == serial, files, policies."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rl_app.agents.specs import AgentSpec
from rl_app.eval.evaluate import (
    EVAL_SCORE,
    EVAL_SUCCESS_RATE,
    evaluate,
    main,
    read_episodes,
    score_interval,
    wilson_interval,
)

from .conftest import SMALL, back_to_search_factory, oracle_factory, policy_spec

DEMONSTRATOR = AgentSpec("demonstrator", "demonstrator", seed=3)


def exact_option_rewards(loaded, goal_indices) -> np.ndarray:
    """The reward function's value for buying each goal's target with exactly its options."""
    shop = loaded.shop
    out = []
    for g in goal_indices:
        goal = loaded.goals[g]
        product = loaded.catalogue[goal.asin]
        options = {o.name: o.value for o in goal.goal_options}
        out.append(shop.reward_fn(product, goal, shop.prices[goal.asin], options, **shop.reward_kwargs).reward)
    return np.array(out)


def test_oracle_scores_what_the_reward_function_gives_the_target(small_shop, tmp_path):
    goals = small_shop.goals.indices("test")
    expected = exact_option_rewards(small_shop, goals)
    # the reward's quirks keep some exact purchases below 1: the oracle's ceiling is not 100%
    assert 0.5 < (expected == 1.0).mean() < 1.0
    result = evaluate(AgentSpec("oracle", "rule"), SMALL, split="test", agent_factory=oracle_factory,
                      out_dir=tmp_path)
    assert result.kind == "custom" and result.episodes == len(goals) == 500
    assert result.success_rate == (expected == 1.0).mean()
    assert result.score == pytest.approx(expected.mean() * 100, abs=1e-9)
    assert all(r.terminated and r.purchased_asin == small_shop.goals[r.goal_index].asin for r in result.per_goal)
    assert result.score_ci[0] < result.score < result.score_ci[1]
    assert result.success_ci[0] < result.success_rate < result.success_ci[1]


def test_back_to_search_forever_scores_zero(tmp_path):
    result = evaluate(AgentSpec("back", "rule"), SMALL, split="test", goal_indices=range(40), max_steps=7,
                      agent_factory=back_to_search_factory)
    assert result.score == 0.0 and result.success_rate == 0.0 and result.mean_steps == 7.0
    assert result.score_ci == (0.0, 0.0)  # no spread: every reward is 0
    assert result.success_ci[0] == 0.0 and 0 < result.success_ci[1] < 0.1  # Wilson: 0 of 40 is not certainty
    assert all(not r.terminated and r.purchased_asin is None and r.reward == 0.0 for r in result.per_goal)
    assert result.metrics()[EVAL_SCORE] == 0.0 and result.metrics()[EVAL_SUCCESS_RATE] == 0.0


def test_intervals_by_hand():
    # mean 0.5, s = 0.2582, half width 1.96 * 0.2582 / 2 = 0.2530
    low, high = score_interval(np.array([0.2, 0.4, 0.6, 0.8]))
    assert (low, high) == pytest.approx((24.6970, 75.3030), abs=1e-3)
    assert score_interval(np.array([0.0, 1.0])) == (0.0, 100.0)  # clipped to the reward's range
    assert all(math.isnan(x) for x in score_interval(np.array([0.3])))
    # 0 of 10: Wilson upper bound z^2/n / (1 + z^2/n) = 0.38415 / 1.38415
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27754), abs=1e-5)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)


def test_rerun_gives_identical_results():
    a = evaluate(DEMONSTRATOR, SMALL, split="test", goal_indices=range(60))
    b = evaluate(DEMONSTRATOR, SMALL, split="test", goal_indices=range(60))
    assert a == b and a.per_goal == b.per_goal  # wall_s and num_workers do not take part
    assert 0 < a.success_rate < 1  # a stochastic shopper that sometimes fails: a real check


def test_ray_workers_give_the_serial_results(ray_session):
    goals = list(range(0, 120, 2))
    serial = evaluate(DEMONSTRATOR, SMALL, split="test", goal_indices=goals, num_workers=0)
    parallel = evaluate(DEMONSTRATOR, SMALL, split="test", goal_indices=goals, num_workers=2)
    assert parallel.num_workers == 2
    assert parallel.per_goal == serial.per_goal
    assert parallel == serial


def test_files_agree_with_the_summary(tmp_path):
    result = evaluate(DEMONSTRATOR, SMALL, split="test", goal_indices=range(50), out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episodes.csv", "episodes.parquet", "summary.json"]
    frame = read_episodes(tmp_path)
    csv = read_episodes(tmp_path, fmt="csv")
    assert len(frame) == result.episodes == 50
    assert frame["goal_index"].tolist() == list(range(50))
    assert frame["reward"].mean() * 100 == pytest.approx(result.score, abs=1e-9)
    assert frame["success"].mean() == result.success_rate
    assert frame["steps"].mean() == result.mean_steps
    assert frame["actions"].tolist() == [list(r.actions) for r in result.per_goal]
    assert (frame["steps"] == frame["actions"].map(len)).all()
    pd.testing.assert_frame_equal(frame.drop(columns=["purchased_asin"]), csv.drop(columns=["purchased_asin"]),
                                  check_dtype=False)
    assert frame["purchased_asin"].fillna("").tolist() == csv["purchased_asin"].fillna("").tolist()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["metrics"][EVAL_SCORE] == pytest.approx(result.score)
    assert summary["episodes"] == 50 and summary["shop_config"]["synthetic_products"] == 300


def test_goals_must_lie_in_the_split():
    with pytest.raises(ValueError, match="not test goals"):
        evaluate(DEMONSTRATOR, SMALL, split="test", goal_indices=[3, 600])
    with pytest.raises(ValueError, match="num_workers"):
        evaluate(DEMONSTRATOR, SMALL, num_workers=-1)
    assert evaluate(DEMONSTRATOR, SMALL, split="all", goal_indices=[600]).episodes == 1


def test_tiny_random_policy_end_to_end(tiny_policy_dir, tmp_path, one_torch_thread):
    greedy = evaluate(policy_spec(tiny_policy_dir), SMALL, split="test", goal_indices=range(4), max_steps=6,
                      out_dir=tmp_path / "greedy")
    assert greedy.kind == "policy" and greedy.mode == "greedy" and greedy.episodes == 4
    for value in (greedy.score, greedy.success_rate * 100, greedy.mean_steps):
        assert math.isfinite(value) and 0 <= value <= 100
    sampled = [evaluate(policy_spec(tiny_policy_dir, greedy=False, seed=5), SMALL, split="test",
                        goal_indices=range(4), max_steps=6) for _ in range(2)]
    assert sampled[0] == sampled[1] and sampled[0].mode == "sampled"
    assert (tmp_path / "greedy" / "episodes.parquet").is_file()


def test_cli(tmp_path, capsys):
    assert main(["--agent", "rule", "--synthetic-products", "300", "--synthetic-seed", "1", "--limit", "20",
                 "--out", str(tmp_path)]) == 0
    assert "rule (scripted) on test, 20 goals" in capsys.readouterr().out
    assert len(read_episodes(tmp_path)) == 20
    with pytest.raises(SystemExit):
        main(["--agent", "policy"])  # no checkpoint


@pytest.mark.slow
def test_sampled_policy_on_ray_workers_gives_the_serial_results(ray_session, tiny_policy_dir, one_torch_thread):
    """Each worker loads the policy once; per-goal generators make the samples order-free."""
    spec = policy_spec(tiny_policy_dir, greedy=False, seed=1)
    serial = evaluate(spec, SMALL, split="test", goal_indices=range(6), max_steps=4)
    parallel = evaluate(spec, SMALL, split="test", goal_indices=range(6), max_steps=4, num_workers=2)
    assert parallel.per_goal == serial.per_goal
