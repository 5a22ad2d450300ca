"""The report of an experiment directory, on hand-made Tune trial directories."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rl_app.experiments.analysis import load_trials, mean_ci, summarize, write_report


def _trial(root, name, label, seed, points, *, done=True, algorithm="dpo"):
    """A Tune trial dir: params.json + result.json with evaluations at (train_s, score, success)."""
    d = root / name
    d.mkdir()
    (d / "params.json").write_text(json.dumps({"arm": label, "arms": {label: {"label": label, "algorithm": algorithm}},
                                               "seed": seed}))
    rows = []
    for i, (train_s, score, success) in enumerate(points):
        rows.append({"iteration": 2 * i + 1, "time/train_s": train_s - 1, "time/learner_s": 0.5 * train_s - 1,
                     "done": False})  # an iteration without evaluation
        rows.append({"iteration": 2 * i + 2, "time/train_s": train_s, "time/learner_s": 0.5 * train_s,
                     "eval/score": score, "eval/success_rate": success, "time/eval_s": 2.0,
                     "done": done and i == len(points) - 1})
    (d / "result.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n{\"cut\": ")  # a torn last line


def test_mean_ci_by_hand():
    mean, low, high = mean_ci([10.0, 20.0, 30.0])
    # t(0.975, 2) = 4.302653; sd = 10; half width = 4.302653 * 10 / sqrt(3) = 24.8414
    assert mean == 20.0 and low == pytest.approx(20 - 24.8414, abs=1e-3) and high == pytest.approx(44.8414, abs=1e-3)
    assert mean_ci([5.0])[0] == 5.0 and math.isnan(mean_ci([5.0])[1])
    assert math.isnan(mean_ci([])[0])


def test_report_tables_and_plots(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "experiment.json").write_text(json.dumps({
        "experiment": "dpo_vs_ppo", "preset": "ci", "machine": "machine: test box",
        "settings": {"budget_s": 20, "cpus_per_trial": 2, "gpus_per_trial": 0, "eval_split": "test", "eval_goals": 8,
                     "eval_greedy": True},
        "prepared": {"il_eval": {"eval/score": 40.0, "eval/success_rate": 0.1},
                     "stages": {"il": {"learner_s": 5.0, "wall_s": 7.0},
                                "generated": {"kept": 3, "attempts": 60, "yield": 0.05, "min_reward": 0.5, "wall_s": 2.0},
                                "pairs_demos": {"pairs": 100, "dropped_ties": 20, "wall_s": 1.0},
                                "pairs_generated": {"pairs": 30, "dropped_ties": 2, "rejected": "top",
                                                    "only_success": True, "states": 32}}}}))
    for seed, final in enumerate((10.0, 20.0, 30.0)):
        _trial(exp, f"dpo_demos_seed{seed}", "dpo_demos", seed, [(10.0, 45.0, 0.1), (20.0, final, 0.2)])
    _trial(exp, "ppo_seed0", "ppo", 0, [(10.0, 50.0, 0.0), (20.0, 60.0, 0.5)], algorithm="ppo")
    _trial(exp, "ppo_seed1", "ppo", 1, [(10.0, 40.0, 0.0)], done=False, algorithm="ppo")  # interrupted

    trials, curves = load_trials(exp)
    assert len(trials) == 5 and len(curves) == 2 * 3 + 2 + 1
    assert trials.set_index("trial").loc["ppo_seed1", "complete"] == False  # noqa: E712
    summary = summarize(trials).set_index("arm")
    assert summary.loc["dpo_demos", "score"] == 20.0 and summary.loc["dpo_demos", "complete"] == 3
    assert summary.loc["dpo_demos", "score_ci_high"] == pytest.approx(44.8414, abs=1e-3)
    assert summary.loc["dpo_demos", "learner_s"] == 10.0 and summary.loc["dpo_demos", "train_s"] == 20.0
    # ppo: seed 0 ends at 60 / 0.5; seed 1 was cut after its first evaluation and is left out
    assert summary.loc["ppo", "score"] == 60.0 and summary.loc["ppo", "success_rate"] == 0.5
    assert summary.loc["ppo", "seeds"] == 2 and summary.loc["ppo", "complete"] == 1
    # the plots draw the seeds the table averages: ppo's interrupted seed 1 is left out there too
    from rl_app.experiments.analysis import _table_seeds

    plotted = _table_seeds(curves, trials)
    assert sorted(set(zip(plotted["arm"], plotted["seed"]))) == [("dpo_demos", 0), ("dpo_demos", 1),
                                                                 ("dpo_demos", 2), ("ppo", 0)]

    report = write_report(exp).read_text()
    assert "| IL start | - | 40.0 | 10.0 |" in report
    assert "| dpo_demos | 3 (3) | 20.0 [-4.8, 44.8] | 20.0 [20.0, 20.0] | 10 | 20 |" in report
    assert "| ppo | 2 (1) | 60.0 | 50.0 | 10 | 20 |" in report
    assert "CPU wall s (no GPU)" in report and "test box" in report and "kept 3 of 60" in report
    assert "demos: 100 pairs (20 ties dropped)" in report
    assert ("generated: 30 pairs from the 32 steps of successful episodes (rejected = pi_ref's top other action; "
            "2 without one)") in report
    for name in ("summary.csv", "trials.csv", "curves.csv"):
        assert len(pd.read_csv(exp / name)) in (2, 5, 9)
    for name in ("success_vs_train_s.png", "score_vs_train_s.png"):
        png = (exp / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_bad_directories(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing")
    with pytest.raises(ValueError, match="no Tune trials"):
        write_report(tmp_path)


def test_analyze_command(tmp_path, capsys):
    from rl_app.tune import main

    exp = tmp_path / "partial"
    exp.mkdir()
    _trial(exp, "ppo_seed0", "ppo", 0, [(5.0, 30.0, 0.0)], done=False, algorithm="ppo")  # mid-run, no metadata
    assert main(["analyze", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "| ppo | 1 (0) | 30.0 | 0.0 |" in out and (exp / "report.md").is_file()
