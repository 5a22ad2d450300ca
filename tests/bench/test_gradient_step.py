"""The gradient-step benchmark at a tiny size: the raw encoder's step and both learner steps
measured on one shape, the fused step with fewer host syncs and operators, the multi-tensor
optimizer switch, and the table and JSON written."""

from __future__ import annotations

import json

import pytest
import torch

from rl_app.bench import gradient_step as bench

SMALL = ["--shapes", "tiny", "--batch", "4", "--k", "4", "--valid", "3", "--state-len", "16", "--action-len", "6",
         "--seconds", "0", "--threads", "1"]


def test_rows_compare_the_two_steps(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        rows = bench.main(SMALL + ["--json", str(tmp_path / "rows.json")])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "machine:" in out and "| shape | update |" in out
    raw, stock, fused = rows
    assert (raw.step, stock.step, fused.step) == (bench.RAW, bench.STOCK, bench.FUSED)
    assert stock.param_tensors == fused.param_tensors > raw.param_tensors > 20  # the choice model has more layers
    # The DPO update dispatches the encoder's operators and then some; the stock step many more.
    assert raw.aten_ops < fused.aten_ops < stock.aten_ops
    assert fused.ops_over_raw == pytest.approx(fused.aten_ops / raw.aten_ops - 1) and raw.ops_over_raw == 0
    assert f"| {fused.ops_over_raw:+.0%} |" in out
    assert all(r.ms_per_update > 0 and r.updates >= 3 and r.precision == "fp32" for r in rows)
    # Per gradient tensor RLlib reads two values back and runs ~10 operators; the fused step neither.
    assert fused.host_syncs == 2  # the forward pass's one read and the one finiteness check
    assert stock.host_syncs - fused.host_syncs > 2 * (stock.param_tensors - 6)
    assert stock.aten_ops - fused.aten_ops > 5 * stock.param_tensors
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert [r["host_syncs"] for r in saved["rows"]] == [raw.host_syncs, stock.host_syncs, fused.host_syncs]
    assert saved["settings"]["foreach"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["rows.json"]  # no temp file left


def test_foreach_counts_the_multi_tensor_optimizer(capsys):
    threads = torch.get_num_threads()
    try:
        loop = bench.main(SMALL)
        multi = bench.main(SMALL + ["--foreach"])
    finally:
        torch.set_num_threads(threads)
    assert "optimizers on the multi-tensor path" in capsys.readouterr().out
    # On CPU torch's Adam runs ~7-10 operators per parameter tensor; on the multi-tensor path a
    # dozen in all. The rest of the update is the same.
    for a, b in zip(loop, multi):
        assert a.step == b.step and a.param_tensors == b.param_tensors
        assert a.aten_ops - b.aten_ops > 5 * a.param_tensors
        assert a.host_syncs == b.host_syncs


def test_counter_sees_syncs_and_skips_host_tensors():
    step = torch.tensor(3.0)
    x = torch.ones(3)
    counter = bench.OpCounter(host_tensors=[step])
    with counter:
        y = x * 2
        assert bool((y > 1).all())   # a read of a value: one sync
        assert step.item() == 3.0    # a host-side counter: not one
    assert counter.syncs == 1
    assert counter.ops >= 4  # mul, gt, all, the read


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--shapes", "tiny", "--k", "4", "--valid", "1"])


def test_counter_sees_the_reads_a_gpu_would_wait_for():
    x = torch.tensor([0.0, 1.0, 2.0])
    step = torch.tensor(1.0)
    original = torch.Tensor.tolist
    counter = bench.OpCounter(host_tensors=[step])
    with counter:
        assert x.nonzero().shape == (2, 1)         # output size from the values
        assert x[x > 0].shape == (2,)              # boolean indexing
        assert x.tolist() == [0.0, 1.0, 2.0]       # no dispatch on CPU: counted through the patch
        assert x.numpy().shape == (3,)
        assert step.tolist() == 1.0                # a host-side counter: not counted
        y = x.argsort()                            # fixed-size output: no sync
    assert counter.syncs == 4
    assert y.tolist() == [0, 1, 2]                 # outside: not counted, and tolist restored
    assert counter.syncs == 4 and torch.Tensor.tolist is original
