"""Thompson sampling: a pure bandit over Bernoulli arms, then over env agents; reports and plot."""

from __future__ import annotations

import numpy as np
import pytest

from rl_app.eval.thompson import (
    BanditResult,
    beta_interval,
    main,
    markdown_table,
    plot_curves,
    shuffled_goals,
    thompson_evaluate,
    thompson_sampling,
    write_report,
)

from .conftest import SMALL, BackToSearchAgent, OracleAgent

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bernoulli_arms(ps, seed=0):
    """run_arm for arms that succeed with probability p (their own seeded generator)."""
    rng = np.random.default_rng(seed)
    return lambda arm, goal: float(rng.random() < ps[arm])


def test_good_arm_gets_most_pulls():
    result = thompson_sampling(bernoulli_arms([0.9, 0.1]), ["good", "bad"], range(50), rollouts=300, seed=0)
    assert result.rollouts == 300 and result.pulls.sum() == 300
    assert result.pulls[0] / 300 > 0.8
    again = thompson_sampling(bernoulli_arms([0.9, 0.1]), ["good", "bad"], range(50), rollouts=300, seed=0)
    assert again == result  # seeded: identical choices, goals and rewards
    alpha, beta = result.posterior
    assert (alpha == 1 + result.successes).all() and (beta == 1 + result.failures).all()
    assert result.posterior_mean[0] == pytest.approx(0.9, abs=0.05)
    low, high = result.credible_interval()
    assert (low < result.posterior_mean).all() and (result.posterior_mean < high).all()


def test_goals_cycle_in_the_given_order():
    result = thompson_sampling(lambda arm, goal: 0.0, 3, [7, 8, 9], rollouts=7, seed=1)
    assert result.goals == (7, 8, 9, 7, 8, 9, 7) and result.arms == ("arm0", "arm1", "arm2")
    order = shuffled_goals(range(20), seed=3)
    assert sorted(order) == list(range(20)) and order != list(range(20)) and order == shuffled_goals(range(20), 3)


def test_curves_by_hand():
    r = BanditResult(("a", "b"), 0, chosen=(0, 1, 0, 0), goals=(1, 2, 3, 4), rewards=(1.0, 0.5, 0.0, 1.0))
    assert r.cumulative_pulls().tolist() == [[1, 0], [1, 1], [2, 1], [3, 1]]
    rate = r.cumulative_success_rate()
    assert np.isnan(rate[0, 1]) and rate[:, 0].tolist() == [1.0, 1.0, 0.5, pytest.approx(2 / 3)]
    assert r.overall_success_curve().tolist() == [1.0, 0.5, pytest.approx(1 / 3), 0.5]
    assert r.overall_score_curve()[-1] == pytest.approx(62.5)
    assert r.successes.tolist() == [2, 0] and r.failures.tolist() == [1, 1]  # 0.5 is a failure


def test_beta_credible_intervals_by_hand():
    low, high = beta_interval(np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    # Beta(1,1) is uniform; Beta(2,1) has CDF x^2, so its quantiles are sqrt(0.025), sqrt(0.975)
    assert low == pytest.approx([0.025, 0.025 ** 0.5]) and high == pytest.approx([0.975, 0.975 ** 0.5])


def test_rewards_outside_the_unit_interval_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        thompson_sampling(lambda arm, goal: 2.0, 2, [0], rollouts=3)
    with pytest.raises(ValueError, match="rollouts"):
        thompson_sampling(lambda arm, goal: 0.0, 2, [0], rollouts=0)


def test_env_agents_oracle_beats_back_to_search(tmp_path):
    report = thompson_evaluate([BackToSearchAgent(), OracleAgent()], SMALL, rollouts=120, split="test",
                               seed=0, max_steps=5, out_dir=tmp_path)
    bandit = report.bandit
    assert bandit.arms == ("back-to-search", "oracle")
    assert bandit.pulls[1] > 0.8 * 120 and bandit.successes[0] == 0
    assert len(report.episodes) == 120 and [e.goal_index for e in report.episodes] == list(bandit.goals)
    assert set(bandit.goals) <= set(range(500))
    table = (tmp_path / "thompson.md").read_text()
    assert "| oracle |" in table and "| back-to-search |" in table and "95% credible interval" in table
    import pandas as pd

    arms = pd.read_csv(tmp_path / "thompson_arms.csv")
    assert arms["pulls"].tolist() == bandit.pulls.tolist()
    rollouts = pd.read_csv(tmp_path / "thompson_rollouts.csv")
    assert len(rollouts) == 120 and rollouts["success"].sum() == bandit.successes.sum()
    png = tmp_path / "thompson.png"
    if png.exists():  # matplotlib present (test_plot_is_a_png checks it directly)
        assert png.read_bytes()[:8] == PNG_MAGIC


def test_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plots' extra")
    result = thompson_sampling(bernoulli_arms([0.6, 0.4]), ["x", "y"], range(10), rollouts=50, seed=2)
    path = plot_curves(result, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary file left


def test_missing_matplotlib_gives_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = thompson_sampling(bernoulli_arms([0.5]), ["x"], range(3), rollouts=3)
    with pytest.raises(ImportError, match=r"rl_app\[plots\]"):
        plot_curves(result, tmp_path / "x.png")


def test_table_and_cli(tmp_path, capsys):
    result = thompson_sampling(bernoulli_arms([0.9, 0.1]), ["good", "bad"], range(50), rollouts=20, seed=0)
    assert markdown_table(result).count("\n| ") == 3  # header + two arms
    assert main(["--agent", "rule", "--agent", "demonstrator", "--rollouts", "30", "--synthetic-products", "300",
                 "--synthetic-seed", "1", "--out", str(tmp_path), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "| rule |" in out and "| demonstrator |" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "thompson.json", "thompson.md", "thompson_arms.csv", "thompson_rollouts.csv"]
    with pytest.raises(SystemExit):
        main(["--agent", "rule", "--agent", "rule"])  # arm names must be unique
    assert write_report  # exported for callers that build a ThompsonReport themselves
