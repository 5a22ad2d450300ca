"""The update-context benchmark at a tiny size: every row, in order, positive, and the process's
torch settings as they were before it ran (it seeds like RLlib and must undo that)."""

from __future__ import annotations

import os

import pytest
import torch

from rl_app.bench import update_context as bench
from rl_app.bench.dpo_throughput import DPOBenchSettings

pytestmark = pytest.mark.slow


def test_rows_in_order_and_torch_settings_restored(ray_session):
    before = (os.environ.get("CUBLAS_WORKSPACE_CONFIG"), torch.backends.cudnn.deterministic,
              torch.are_deterministic_algorithms_enabled())
    s = DPOBenchSettings(batch=2, k=3, valid=2, state_len=12, action_len=5, seconds=0, updates=2, iterations=1,
                         device="cpu", precision="fp32")
    rows = bench.measure("tiny", s)
    paths = [bench.LOSS_ONLY, bench.TRAIN, bench.ONE_BATCH, bench.DRAWN, bench.TRAIN_NO_PREFETCH]
    assert [(r.process_state, r.path) for r in rows] == (
        [(bench.UNSEEDED, p) for p in paths] + [(bench.SEEDED, p) for p in paths]
        + [(bench.RESTORED, bench.LOSS_ONLY), (bench.RESTORED, bench.TRAIN)])
    assert all(r.shape == "tiny" and r.ms_per_update > 0 for r in rows)
    # train() rows time iterations x updates updates; step rows at least 3 steps.
    assert [r.updates for r in rows if r.path.startswith("train()")] == [2] * 5
    assert all(r.updates >= 3 for r in rows if not r.path.startswith("train()"))
    after = (os.environ.get("CUBLAS_WORKSPACE_CONFIG"), torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled())
    assert after == before
    table = bench.markdown_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| tiny | after RLlib's seeding | train() |" in table
