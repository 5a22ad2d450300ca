"""The DPO update benchmark at a tiny size: its pair file fills the stated shapes; its default rows
(raw / loss-only / RLlib / data path) are positive and consistent with each other and the workload;
``--gradient-step`` compares RLlib's and the fused step (fewer host syncs and operators, the
multi-tensor switch, the JSON); ``--context`` runs every row in order and leaves the process's torch
settings as they were; ``--compile`` and ``--profile-dir``."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow.parquet as pq
import pytest
import torch

from rl_app.bench import dpo_update as bench
from rl_app.bench import dpo_workload as workload
from rl_app.bench import train_profile

SMALL = ["--shapes", "tiny", "--batch", "4", "--k", "4", "--valid", "3", "--state-len", "16", "--action-len", "6",
         "--seconds", "0", "--updates", "2", "--iterations", "2", "--threads", "1"]


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_pair_file_fills_the_stated_token_shapes(tmp_path):
    s = workload.UpdateBenchSettings(batch=3, k=4, valid=3, state_len=16, action_len=6)
    policy = workload.make_policy("tiny", s.state_len, s.action_len)
    policy_dir = policy.save_pretrained(tmp_path / "policy")
    path = workload.write_pair_file(tmp_path / "pairs", policy.tokenizer, s, n_pairs=3)
    table = pq.read_table(path).to_pydict()
    assert [len(c) for c in table["candidate_texts"]] == [3, 3, 3]
    assert all(c != r and 0 <= c < 3 and 0 <= r < 3 for c, r in zip(table["chosen"], table["rejected"]))
    batch = workload.tokenized_batch(path, s, str(tmp_path / "policy" / "tokenizer"))
    assert (tmp_path / "policy" / "tokenizer").is_dir() and policy_dir
    assert batch["state_ids"].shape == (3, 16) and bool((batch["state_ids"] != 0).all())
    assert batch["action_ids"].shape == (3, 4, 6)
    assert batch["action_mask"].tolist() == [[1, 1, 1, 0]] * 3
    assert bool((batch["action_ids"][:, :3] != 0).all()) and bool((batch["action_ids"][:, 3] == 0).all())


@pytest.mark.slow
def test_rows_are_positive_and_consistent(ray_session, capsys, keep_threads):
    rows = bench.main(SMALL)
    out = capsys.readouterr().out
    assert "machine:" in out and "torch" in out and "| shape | path | precision |" in out
    assert [r.path for r in rows] == [bench.RAW, bench.LOSS_ONLY, bench.RLLIB, bench.DATA_PATH]
    raw = rows[0]
    tokens_per_update = 4 * (16 + 3 * 6)
    for r in rows:
        assert r.ms_per_update > 0 and r.process_state == bench.AS_FOUND and r.aten_ops is None
        # RLlib: 2 train() x 2 updates; the data path: as many batches, its start-up batch untimed
        assert r.updates == 2 * 2 if r.path in (bench.RLLIB, bench.DATA_PATH) else r.updates >= 3
        assert r.pairs_per_s == pytest.approx(4 * 1000 / r.ms_per_update)
        assert r.tokens_per_s == pytest.approx(tokens_per_update * 1000 / r.ms_per_update)
        assert r.precision.startswith("fp32")
        if r.path in (bench.RAW, bench.DATA_PATH):
            assert r.overhead is None
        else:
            assert r.overhead == pytest.approx(r.ms_per_update / raw.ms_per_update - 1)
            assert r.overhead > -1
    for r in rows:
        assert f"| tiny | {r.path} |" in out
    # Handing over a batch without updating on it is faster than updating on it.
    assert rows[3].ms_per_update < rows[2].ms_per_update


def test_gradient_step_rows_compare_the_two_steps(tmp_path, capsys, keep_threads):
    rows = bench.main(SMALL + ["--no-rllib", "--gradient-step", "--json", str(tmp_path / "rows.json")])
    out = capsys.readouterr().out
    assert "machine:" in out and "| shape | path | precision |" in out and "host syncs/update" in out
    raw, loss_only, stock, fused = rows
    assert [r.path for r in rows] == [bench.RAW, bench.LOSS_ONLY, bench.RLLIB_STEP, bench.FUSED_STEP]
    assert stock.param_tensors == fused.param_tensors > raw.param_tensors > 20  # the choice model has more layers
    # The DPO update dispatches the encoder's operators and then some; the stock step many more.
    assert raw.aten_ops < fused.aten_ops < stock.aten_ops
    assert f"| {fused.aten_ops / raw.aten_ops - 1:+.0%} |" in out
    assert all(r.ms_per_update > 0 and r.updates >= 3 and r.precision == "fp32" for r in rows)
    # Per gradient tensor RLlib reads two values back and runs ~10 operators; the fused step neither.
    assert fused.host_syncs == 2  # the forward pass's one read and the one finiteness check
    assert stock.host_syncs - fused.host_syncs > 2 * (stock.param_tensors - 6)
    assert stock.aten_ops - fused.aten_ops > 5 * stock.param_tensors
    assert loss_only.host_syncs == 1  # the forward pass's read; torch's clip_grad_norm_ reads nothing
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert [r["host_syncs"] for r in saved["rows"]] == [r.host_syncs for r in rows]
    assert saved["settings"]["foreach"] is False and saved["machine"]
    assert [p.name for p in tmp_path.iterdir()] == ["rows.json"]  # no temp file left


def test_foreach_counts_the_multi_tensor_optimizer(capsys, keep_threads):
    loop = bench.main(SMALL + ["--no-rllib", "--gradient-step"])
    multi = bench.main(SMALL + ["--no-rllib", "--gradient-step", "--foreach"])
    assert "optimizers on the multi-tensor path" in capsys.readouterr().out
    # On CPU torch's Adam runs ~7-10 operators per parameter tensor; on the multi-tensor path a
    # dozen in all. The rest of the update is the same.
    for a, b in zip(loop, multi):
        assert a.path == b.path and a.param_tensors == b.param_tensors
        assert a.aten_ops - b.aten_ops > 5 * a.param_tensors
        assert a.host_syncs == b.host_syncs


@pytest.mark.slow
def test_context_rows_in_order_and_torch_settings_restored(ray_session, keep_threads):
    before = (os.environ.get("CUBLAS_WORKSPACE_CONFIG"), torch.backends.cudnn.deterministic,
              torch.are_deterministic_algorithms_enabled())
    s = workload.UpdateBenchSettings(batch=2, k=3, valid=2, state_len=12, action_len=5, seconds=0, updates=2,
                                     iterations=1, device="cpu", precision="fp32", context=True)
    rows = bench.measure_shape("tiny", s)
    in_algorithm = [bench.RLLIB, bench.ONE_BATCH, bench.DRAWN, bench.TRAIN_NO_PREFETCH]
    assert [(r.process_state, r.path) for r in rows] == (
        [(bench.AS_FOUND, p) for p in [bench.RAW, bench.LOSS_ONLY, *in_algorithm, bench.DATA_PATH]]
        + [(bench.SEEDED, p) for p in [bench.LOSS_ONLY, *in_algorithm]]
        + [(bench.RESTORED, bench.LOSS_ONLY), (bench.RESTORED, bench.RLLIB)])
    assert all(r.shape == "tiny" and r.ms_per_update > 0 for r in rows)
    # train() rows time iterations x updates updates; step rows at least 3 steps.
    assert [r.updates for r in rows if r.path in (bench.RLLIB, bench.TRAIN_NO_PREFETCH)] == [2] * 5
    assert all(r.updates >= 3 for r in rows if r.path in (bench.RAW, bench.LOSS_ONLY, bench.ONE_BATCH, bench.DRAWN))
    after = (os.environ.get("CUBLAS_WORKSPACE_CONFIG"), torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled())
    assert after == before
    table = bench.markdown_table(rows)
    assert table.count("\n") == len(rows) + 1 and f"| tiny | after RLlib's seeding | {bench.RLLIB} |" in table


@pytest.mark.slow
def test_bf16_runs_every_row_under_autocast_on_cpu_and_profiles(ray_session, tmp_path):
    s = workload.UpdateBenchSettings(batch=2, k=3, valid=2, state_len=12, action_len=5, seconds=0, updates=1,
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
    with pytest.raises(SystemExit):
        bench.main(["--shapes", "tiny", "--no-rllib", "--context"])  # the context rows time the algorithm
    with pytest.raises(ValueError, match="unknown shape"):
        workload.bert_config("gpt2")


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
    text = train_profile.profile_summary(raw, averages, 0.02, torch.device("cuda"))
    assert "20.0 ms wall on cuda" in text
    assert "GPU busy (kernels + copies, union): 6.0 ms = 30% of wall; 3 device events" in text
    assert "cudaStreamSynchronize: 3 calls, 7.5 ms CPU" in text and "cudaLaunchKernel: 120 calls, 0.6 ms CPU" in text
    assert "aten::mm" not in text
    # On CPU only the wall time is stated.
    assert train_profile.profile_summary(raw, averages, 0.02, torch.device("cpu")).count("\n") == 1


@pytest.mark.slow
def test_compile_flag_compiles_every_update_row(ray_session, monkeypatch, keep_threads):
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
    rows = bench.main(SMALL + ["--compile", "aot_eager"])
    assert [r.precision for r in rows] == ["fp32+aot_eager"] * 3 + ["fp32"]
    assert built == ["aot_eager", "aot_eager"]  # raw and loss-only rows
    assert learner_modules == ["aot_eager"]  # the RLlib row's (local) learner, through torch_compile_learner
    assert all(r.ms_per_update > 0 for r in rows)
