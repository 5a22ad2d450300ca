"""The throughput benchmark runs end to end on a tiny shape and prints its table and machine."""

from __future__ import annotations

import pytest

from rl_app.bench import policy_throughput as bench


def test_benchmark_prints_raw_and_choice_rows(capsys):
    rows = bench.main(["--shapes", "tiny", "--batch", "2", "--k", "3", "--valid", "2", "--state-len", "16",
                       "--action-len", "6", "--seconds", "0", "--compare-all-rows"])
    out = capsys.readouterr().out
    assert "machine:" in out and "torch" in out and "| shape | model | mode |" in out
    assert {(r.model, r.mode) for r in rows} == {(m, mode) for m in ("raw encoder", "choice model", "choice (all K rows)")
                                                for mode in ("forward", "train")}
    assert all(r.ms_per_step > 0 and r.steps >= 3 for r in rows)
    for r in rows:
        assert r.pairs_per_s == pytest.approx(2 * r.states_per_s)  # 2 valid candidates per state
        assert (r.pct_of_raw is None) == (r.model == "raw encoder")
