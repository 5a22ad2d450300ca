"""The DPO throughput benchmark at a tiny size: its pair file fills the stated shapes, and its
raw / loss-only / RLlib / data-path rows are positive and consistent with each other and the workload."""

from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq
import pytest
import torch

from rl_app.bench import dpo_throughput as bench

pytestmark = pytest.mark.slow
SMALL = ["--shapes", "tiny", "--batch", "4", "--k", "4", "--valid", "3", "--state-len", "16", "--action-len", "6",
         "--seconds", "0", "--updates", "2", "--iterations", "2", "--threads", "1"]


def test_pair_file_fills_the_stated_token_shapes(tmp_path):
    s = bench.DPOBenchSettings(batch=3, k=4, valid=3, state_len=16, action_len=6)
    policy = bench.make_policy("tiny", s.state_len, s.action_len)
    policy_dir = policy.save_pretrained(tmp_path / "policy")
    path = bench.write_pair_file(tmp_path / "pairs", policy.tokenizer, s, n_pairs=3)
    table = pq.read_table(path).to_pydict()
    assert [len(c) for c in table["candidate_texts"]] == [3, 3, 3]
    assert all(c != r and 0 <= c < 3 and 0 <= r < 3 for c, r in zip(table["chosen"], table["rejected"]))
    batch = bench.tokenized_batch(path, s, str(tmp_path / "policy" / "tokenizer"))
    assert (tmp_path / "policy" / "tokenizer").is_dir() and policy_dir
    assert batch["state_ids"].shape == (3, 16) and bool((batch["state_ids"] != 0).all())
    assert batch["action_ids"].shape == (3, 4, 6)
    assert batch["action_mask"].tolist() == [[1, 1, 1, 0]] * 3
    assert bool((batch["action_ids"][:, :3] != 0).all()) and bool((batch["action_ids"][:, 3] == 0).all())


def test_rows_are_positive_and_consistent(ray_session, capsys):
    threads = torch.get_num_threads()
    try:
        rows = bench.main(SMALL)
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "machine:" in out and "torch" in out and "| shape | path | precision |" in out
    assert [r.model for r in rows] == [bench.RAW, bench.LOSS_ONLY, bench.RLLIB, bench.DATA_PATH]
    raw = rows[0]
    tokens_per_update = 4 * (16 + 3 * 6)
    for r in rows:
        assert r.ms_per_update > 0
        # RLlib: 2 train() x 2 updates; the data path: as many batches, its start-up batch untimed
        assert r.updates == 2 * 2 if r.model in (bench.RLLIB, bench.DATA_PATH) else r.updates >= 3
        assert r.pairs_per_s == pytest.approx(4 * 1000 / r.ms_per_update)
        assert r.tokens_per_s == pytest.approx(tokens_per_update * 1000 / r.ms_per_update)
        assert r.precision.startswith("fp32")
        if r.model in (bench.RAW, bench.DATA_PATH):
            assert r.overhead is None
        else:
            assert r.overhead == pytest.approx(r.ms_per_update / raw.ms_per_update - 1)
            assert r.overhead > -1
    for r in rows:
        assert f"| tiny | {r.model} |" in out
    # Handing over a batch without updating on it is faster than updating on it.
    assert rows[3].ms_per_update < rows[2].ms_per_update


def test_bf16_runs_every_row_under_autocast_on_cpu_and_profiles(ray_session, tmp_path):
    s = bench.DPOBenchSettings(batch=2, k=3, valid=2, state_len=12, action_len=5, seconds=0, updates=1,
                               iterations=1, device="cpu", precision="bf16", profile_dir=str(tmp_path / "prof"))
    rows = bench.measure_shape("tiny", s)
    assert [r.precision for r in rows] == ["bf16"] * 4
    assert all(r.ms_per_update > 0 for r in rows)
    # The profiled train() went through the DPO learner, autocast included, and both tables were written.
    text = (tmp_path / "prof" / "tiny-rllib-profile.txt").read_text()
    assert "== cProfile of one train(), by cumulative ==" in text and "dpo_torch_learner.py" in text
    assert "precision.py" in text  # AutocastLearnerMixin._uncompiled_update
    assert "== torch.profiler, by cpu_time_total ==" in text and "aten::" in text
    wall_ms = float(text.split("== summary: one train(), ")[1].split(" ms wall on cpu")[0])
    assert 0 < wall_ms < 60_000
    # The Chrome trace of the same train() holds the learner's operators; no temp file is left.
    assert sorted(p.name for p in (tmp_path / "prof").iterdir()) == ["tiny-rllib-profile-trace.json.gz",
                                                                      "tiny-rllib-profile.txt"]
    trace = json.loads(gzip.decompress((tmp_path / "prof" / "tiny-rllib-profile-trace.json.gz").read_bytes()))
    names = {e.get("name") for e in trace["traceEvents"]}
    assert "aten::addmm" in names or "aten::mm" in names


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--shapes", "tiny", "--k", "4", "--valid", "1", "--no-rllib"])
    with pytest.raises(ValueError, match="unknown shape"):
        bench._bert_config("gpt2")


def test_profile_summary_takes_the_union_of_device_intervals_and_counts_waiting_calls():
    from types import SimpleNamespace as NS

    from torch.autograd import DeviceType

    def device_event(lo, hi):
        return NS(device_type=DeviceType.CUDA, time_range=NS(start=lo, end=hi))

    # Device busy: [0, 4000) u [3000, 5000) u [9000, 10000) us = 6 ms; the CPU event does not count.
    raw = [device_event(0, 4000), device_event(3000, 5000), device_event(9000, 10000),
           NS(device_type=DeviceType.CPU, time_range=NS(start=0, end=20000))]
    averages = [NS(key="cudaStreamSynchronize", count=3, self_cpu_time_total=7500),
                NS(key="cudaLaunchKernel", count=120, self_cpu_time_total=600),
                NS(key="aten::mm", count=50, self_cpu_time_total=9000)]
    text = bench._profile_summary(raw, averages, 0.02, torch.device("cuda"))
    assert "20.0 ms wall on cuda" in text
    assert "GPU busy (kernels + copies, union): 6.0 ms = 30% of wall; 3 device events" in text
    assert "cudaStreamSynchronize: 3 calls, 7.5 ms CPU" in text and "cudaLaunchKernel: 120 calls, 0.6 ms CPU" in text
    assert "aten::mm" not in text
    # On CPU only the wall time is stated.
    assert bench._profile_summary(raw, averages, 0.02, torch.device("cpu")).count("\n") == 1


def test_compile_flag_compiles_every_update_row(ray_session, monkeypatch):
    """``--compile BACKEND``: the raw, loss-only and RLlib rows run with the encoder compiled (labelled so);
    the data-path row has no update to compile."""
    from rl_app.policy.rl_module import WebShopChoiceModule

    built, learner_modules = [], []
    original, module_compile = bench._compiled, WebShopChoiceModule.compile

    def spy(encoder, backend):
        built.append(backend)
        return original(encoder, backend)

    def module_spy(self, compile_config):
        learner_modules.append(compile_config.torch_dynamo_backend)
        return module_compile(self, compile_config)

    monkeypatch.setattr(bench, "_compiled", spy)
    monkeypatch.setattr(WebShopChoiceModule, "compile", module_spy)
    threads = torch.get_num_threads()
    try:
        rows = bench.main(SMALL + ["--compile", "aot_eager"])
    finally:
        torch.set_num_threads(threads)
    assert [r.precision for r in rows] == ["fp32+aot_eager"] * 3 + ["fp32"]
    assert built == ["aot_eager", "aot_eager"]  # raw and loss-only rows
    assert learner_modules == ["aot_eager"]  # the RLlib row's (local) learner, through torch_compile_learner
    assert all(r.ms_per_update > 0 for r in rows)
