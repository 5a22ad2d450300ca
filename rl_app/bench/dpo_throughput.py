"""DPO learner throughput (pairs/s) next to the raw encoder's, on the same shapes, in one run.

    python -m rl_app.bench.dpo_throughput --shapes tiny minilm bert-base-shape \\
        --batch 32 --k 16 --valid 8 --state-len 256 --action-len 32

Workload: ``batch`` preference pairs per update; each pair is one state of ``state-len``
tokens with ``k`` candidate rows of which ``valid`` are real ``action-len``-token candidates
(every text fills its length: no padding, the worst case). A DPO update scores all valid
candidates of each state once (chosen and rejected come out of the same log-softmax), so
the encoder work per update is ``batch`` states plus ``batch * valid`` candidates. Rows:

* ``raw encoder``: a bare Hugging Face ``BertModel`` of the shape (random weights) on
  exactly those token ids: forward + backward + AdamW. The ceiling.
* ``DPO loss (no RLlib)``: the choice model + masked log-softmax + ``dpo_loss`` + grad clip
  + AdamW on pre-tokenized tensors: what the model and the loss cost over the encoder.
* ``DPO learner (RLlib)``: ``DPOConfig -> build_algo -> train()`` reading a pair parquet
  through Ray Data (tokenizing prelearner, shuffle buffer, batch to device), timed by the
  algorithm's own ``time/learner_s`` (its increase per ``train()``) after warm-up
  iterations (the first ``train()`` starts the data actors and materializes the data set).
  Everything inside ``LearnerGroup.update`` is in it: batches from the Ray Data iterator,
  the copy to the device, forward, loss, backward, optimizer step, metrics.
* ``RLlib data path (no update)``: the same algorithm's materialized pair data set through
  the learner's own iterator (RLlib's ``MiniBatchRayDataIterator``: shuffle buffer, collate,
  copy to the device) into a consumer that does nothing: how fast the data path alone can
  hand over batches. If it is slower than a row's update, the learner waits for data.

``overhead = row_time / raw_time - 1``: what a row's update costs beyond the raw encoder's step,
as a share of that raw step time (the issue's target for the DPO learner: < 30% on GPU, i.e. the
whole DPO update, data path included, in < 1.3x the raw step's time).

``--compile [BACKEND]`` (default backend ``inductor``): ``torch.compile`` the BERT encoder with
dynamic shapes in the raw and loss-only rows, and set ``config.framework(torch_compile_learner=True)``
in the RLlib row (rl_app.algorithms.compile); the precision column then reads e.g. ``bf16+inductor``.
Compilation happens in the warm-up steps and iteration, outside the timed figures.

Precision: ``auto`` = bf16 autocast on CUDA, fp32 on CPU. The RLlib row sets the learner's own
``config.learners(precision=...)`` (rl_app.algorithms.precision) to the same value, so all rows
compare at one precision, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from rl_app.bench.policy_throughput import BERT_BASE_ARCH, BERT_BASE_SHAPE, ShapeSettingsMixin, median_step_time, \
    run_shapes
from rl_app.data.files import atomic_write, atomic_write_text

__all__ = ["DPOBenchSettings", "Row", "make_policy", "write_pair_file", "tokenized_batch", "pair_workload",
           "dpo_config", "raw_step", "train_seconds_per_update", "learner_batches", "measure_shape", "markdown_table",
           "add_pair_workload_arguments", "check_pair_workload", "main"]

RAW = "raw encoder"
LOSS_ONLY = "DPO loss (no RLlib)"
RLLIB = "DPO learner (RLlib)"
DATA_PATH = "RLlib data path (no update)"
_WARMUP_STEPS = 2
_MIN_STEPS = 3
_LR = 1e-5
_BETA = 0.1
_GRAD_CLIP = 1.0  # DPOConfig's default, so the loss-only row clips like the learner


@dataclass(frozen=True)
class DPOBenchSettings(ShapeSettingsMixin):
    """Shapes, timing and precision of one run.

    Attributes:
        batch: preference pairs per update.
        k: candidate rows per state (the observation's ``k_max``).
        valid: real candidates per state (None = k).
        state_len, action_len: tokens per state / per candidate (texts fill them).
        seconds: timed seconds of the raw and loss-only rows (median step; after warm-up).
        updates: DPO updates per ``train()`` call of the RLlib row.
        iterations: timed ``train()`` calls (after ``warmup_iterations``).
        warmup_iterations: untimed ``train()`` calls (data actors start, data set materializes).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        precision: ``auto`` | ``fp32`` | ``bf16``.
        rllib: also run the RLlib row and the data-path row (need Ray; the others do not).
        compile: ``torch.compile`` backend for the encoder in every update row (None = eager).
        profile_dir: if set, one more ``train()`` of the RLlib row runs under cProfile and
            ``torch.profiler`` and their tables go to ``<profile_dir>/<shape>-rllib-profile.txt``
            (where the learner's time goes; not part of the timed figures).
    """

    batch: int = 32
    k: int = 16
    valid: Optional[int] = None
    state_len: int = 256
    action_len: int = 32
    seconds: float = 3.0
    updates: int = 10
    iterations: int = 3
    warmup_iterations: int = 1
    device: str = "auto"
    precision: str = "auto"
    rllib: bool = True
    compile: Optional[str] = None
    profile_dir: Optional[str] = None


@dataclass(frozen=True)
class Row:
    """One measured row. ``ms_per_update`` is the median time of one update of ``batch`` pairs.

    ``overhead`` = this row's ms / raw ms - 1 (None on the raw and data-path rows); ``updates`` =
    updates (data-path row: batches) timed.
    """

    shape: str
    model: str
    precision: str
    ms_per_update: float
    pairs_per_s: float
    tokens_per_s: float
    overhead: Optional[float]
    updates: int


# ---------------------------------------------------------------------- the model and the data
def _bert_config(shape: str) -> dict[str, Any]:
    """Architecture of a shape (weights are random for every shape: no download)."""
    from rl_app.env.tokenizer import MINILM, TINY, packaged_minilm_dir
    from rl_app.policy.encoder import tiny_bert_config

    if shape == TINY:
        return tiny_bert_config()
    if shape == BERT_BASE_SHAPE:
        return dict(BERT_BASE_ARCH)
    if shape == MINILM:
        return json.loads((packaged_minilm_dir() / "config.json").read_text())
    raise ValueError(f"unknown shape {shape!r}: use tiny, minilm or {BERT_BASE_SHAPE}")


def make_policy(shape: str, state_len: int, action_len: int):
    """A randomly initialised choice policy of ``shape`` with the MiniLM (uncased) tokenizer."""
    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.env.tokenizer import load_tokenizer
    from rl_app.policy.encoder import EncoderConfig, build_encoder

    label = EncoderConfig(name_or_path=f"{shape}-random" if shape != BERT_BASE_SHAPE else shape)
    encoder = build_encoder(_bert_config(shape), label, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ChoiceModel(ChoiceModelConfig(encoder=label), encoder=encoder)
    return ChoicePolicy(model, load_tokenizer("minilm"), max_state_tokens=state_len, max_action_tokens=action_len)


def _word_pool(tokenizer) -> list[str]:
    # Whole lowercase words of the vocabulary: each one tokenizes to exactly one id, so a
    # text of n words fills n token positions.
    return sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and len(w) >= 3)


def write_pair_file(directory: Path, tokenizer, s: DPOBenchSettings, n_pairs: int, *, seed: int = 0) -> Path:
    """``n_pairs`` random preference pairs in ``rl_app.data.pairs.PAIR_SCHEMA`` (one parquet file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rl_app.data.pairs import PAIR_SCHEMA

    rng = np.random.default_rng(seed)
    words = np.asarray(_word_pool(tokenizer))

    def text(n: int) -> str:
        return " ".join(rng.choice(words, size=n))

    rows: dict[str, list] = {name: [] for name in PAIR_SCHEMA.names}
    uniform = float(-np.log(s.n_valid))
    for i in range(n_pairs):
        candidates = [text(s.action_len) for _ in range(s.n_valid)]
        chosen, rejected = rng.choice(s.n_valid, size=2, replace=False)
        values = dict(pair_id=f"bench/{i}/0", kind="step", episode_id=f"bench/{i}", goal_index=i, split="train",
                      step=0, source="bench", state=text(s.state_len), candidates=candidates,
                      candidate_texts=candidates, chosen=int(chosen), rejected=int(rejected),
                      ref_chosen_logp=uniform, ref_rejected_logp=uniform)
        for name, value in values.items():
            rows[name].append(value)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pairs.parquet"
    pq.write_table(pa.table({f.name: pa.array(rows[f.name], type=f.type) for f in PAIR_SCHEMA},
                            schema=PAIR_SCHEMA), path)
    return path


def tokenized_batch(pair_file: Path, s: DPOBenchSettings, tokenizer_dir: str) -> dict[str, torch.Tensor]:
    """The first ``batch`` pairs, tokenized as the learner's prelearner does."""
    import pyarrow.parquet as pq

    from rl_app.env.observation import ObservationEncoder

    table = pq.read_table(pair_file).slice(0, s.batch).to_pydict()
    encoder = ObservationEncoder(tokenizer_dir, k_max=s.k, max_state_tokens=s.state_len,
                                 max_action_tokens=s.action_len)
    obs = encoder.encode_batch(table["state"], table["candidate_texts"])
    out = {key: torch.as_tensor(np.asarray(obs[key])) for key in ("state_ids", "action_ids", "action_mask")}
    out.update(chosen=torch.as_tensor(table["chosen"]), rejected=torch.as_tensor(table["rejected"]),
               ref_chosen_logp=torch.as_tensor(table["ref_chosen_logp"], dtype=torch.float32),
               ref_rejected_logp=torch.as_tensor(table["ref_rejected_logp"], dtype=torch.float32))
    lengths = (out["state_ids"] != 0).sum(dim=1)
    valid_rows = out["action_ids"][out["action_mask"].bool()]
    if not (lengths == s.state_len).all() or not ((valid_rows != 0).sum(dim=1) == s.action_len).all():
        raise RuntimeError("the benchmark texts did not fill their token lengths: the workload would be smaller "
                           "than stated")
    if valid_rows.shape[0] != s.batch * s.n_valid:
        raise RuntimeError(f"expected {s.batch * s.n_valid} valid candidates, got {valid_rows.shape[0]}")
    return out


def pair_workload(directory: Path, shape: str, s: DPOBenchSettings, n_pairs: int) -> tuple[str, Path, dict]:
    """A random ``shape`` policy saved in ``directory/policy``, ``n_pairs`` pairs of it in ``directory/pairs`` and
    the first ``s.batch`` of them tokenized: (policy dir, pair dir, batch). Shared by the DPO benchmarks."""
    policy = make_policy(shape, s.state_len, s.action_len)
    policy_dir = str(policy.save_pretrained(directory / "policy"))
    pair_file = write_pair_file(directory / "pairs", policy.tokenizer, s, n_pairs)
    return policy_dir, pair_file.parent, tokenized_batch(pair_file, s, str(Path(policy_dir) / "tokenizer"))


def dpo_config(pair_dir: Path, policy_dir: str, s: DPOBenchSettings, device: torch.device, precision: str):
    """The DPO config the benchmarks' learners use: one local learner on ``device``, the loss-only row's lr,
    beta and grad clip."""
    from rl_app.algorithms.dpo import DPOConfig

    return (DPOConfig()
            .dataset(paths=[str(pair_dir)])
            .observations(k_max=s.k, max_state_tokens=s.state_len, max_action_tokens=s.action_len)
            .rl_module(model_config={"init_checkpoint": policy_dir})
            .dpo(beta=_BETA)
            .training(lr=_LR, train_batch_size_per_learner=s.batch, grad_clip=_GRAD_CLIP)
            .learners(num_learners=0, num_gpus_per_learner=1 if device.type == "cuda" else 0, precision=precision))


# ---------------------------------------------------------------------- timing
def _median_step(step: Callable[[], None], seconds: float, device: torch.device) -> tuple[float, int]:
    return median_step_time(step, seconds, device, warmup_steps=_WARMUP_STEPS, min_steps=_MIN_STEPS)


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def _compiled(encoder: torch.nn.Module, backend: Optional[str]) -> torch.nn.Module:
    """``encoder`` compiled in place as ``WebShopChoiceModule.compile`` does (dynamic shapes), or as it is."""
    if backend is not None:
        encoder.compile(backend=backend, dynamic=True)
    return encoder


def raw_step(shape: str, batch: dict[str, torch.Tensor], device: torch.device, precision: str,
             compile_backend: Optional[str] = None):
    """The raw encoder's step on ``batch``'s token ids (forward + backward + AdamW), and its optimizer."""
    from rl_app.policy.encoder import EncoderConfig, build_encoder

    encoder = build_encoder(_bert_config(shape), EncoderConfig(name_or_path=shape), seed=1).to(device).train()
    _compiled(encoder, compile_backend)
    state = batch["state_ids"].to(device)
    rows = batch["action_ids"][batch["action_mask"].bool()].to(device)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=_LR)

    def step():
        with _autocast(device, precision):
            a = encoder(input_ids=state, attention_mask=torch.ones_like(state)).last_hidden_state
            b = encoder(input_ids=rows, attention_mask=torch.ones_like(rows)).last_hidden_state
        loss = a.float().mean() + b.float().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, optimizer


def _loss_only_step(policy_dir: str, batch: dict[str, torch.Tensor], device: torch.device, precision: str,
                    compile_backend: Optional[str] = None):
    from rl_app.algorithms.dpo.loss import dpo_loss
    from rl_app.policy.checkpoint import load_choice_model

    model = load_choice_model(policy_dir).to(device).train()
    _compiled(model.encoder, compile_backend)
    b = {k: v.to(device) for k, v in batch.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=_LR)

    def step():
        with _autocast(device, precision):
            logits = model(b["state_ids"], b["action_ids"], b["action_mask"], with_value=False).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        chosen = log_probs.gather(1, b["chosen"].long().unsqueeze(1)).squeeze(1)
        rejected = log_probs.gather(1, b["rejected"].long().unsqueeze(1)).squeeze(1)
        loss = dpo_loss(chosen, rejected, b["ref_chosen_logp"], b["ref_rejected_logp"], beta=_BETA).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), _GRAD_CLIP)
        optimizer.step()

    return step


def _rllib_seconds_per_update(pair_dir: Path, policy_dir: str, s: DPOBenchSettings, device: torch.device,
                              precision: str, profile_path: Optional[Path] = None
                              ) -> tuple[tuple[float, int], tuple[float, int]]:
    """((seconds per update, updates timed), (seconds per batch of the data path alone, batches timed)).

    Per update: the median over the timed ``train()`` calls of (its ``time/learner_s``
    increase) / ``updates``. ``time/learner_s`` is the algorithm's cumulative time inside
    ``LearnerGroup.update``: drawing batches from the Ray Data iterator, moving them to the
    device, forward, loss, backward, optimizer step and metrics. Then
    :func:`_data_path_seconds_per_batch` on the same algorithm.
    """
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, num_cpus=max(2, torch.get_num_threads()))
    config = (dpo_config(pair_dir, policy_dir, s, device, precision)
              .dataset(updates_per_iteration=s.updates)
              .debugging(seed=0))
    if s.compile is not None:
        config = config.framework(torch_compile_learner=True, torch_compile_learner_dynamo_backend=s.compile)
    algo = config.build_algo()
    try:
        per_update = train_seconds_per_update(algo, s, device)
        if profile_path is not None:
            _profile_train(algo, device, profile_path)
        data_path = _data_path_seconds_per_batch(algo, s, device)
    finally:
        algo.stop()
    return per_update, data_path


def train_seconds_per_update(algo, s: DPOBenchSettings, device: torch.device) -> tuple[float, int]:
    """(median over ``s.iterations`` timed ``train()`` calls of the ``time/learner_s`` each adds, per
    update; updates timed), after ``s.warmup_iterations`` untimed ones."""
    from rl_app.algorithms.offline import LEARNER_SECONDS

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    learner_s = 0.0
    for _ in range(s.warmup_iterations):
        learner_s = float(algo.train()[LEARNER_SECONDS])
    per_update = []
    for _ in range(s.iterations):
        total = float(algo.train()[LEARNER_SECONDS])
        per_update.append((total - learner_s) / s.updates)
        learner_s = total
    return statistics.median(per_update), s.iterations * s.updates


def learner_batches(algo, s: DPOBenchSettings, device: torch.device, n: int):
    """``n`` batches of ``s.batch`` pairs from the algorithm's (materialized) pair data set through the
    iterator its learner uses (RLlib's ``MiniBatchRayDataIterator``), with the same ``iter_batches``
    settings (prefetch, shuffle buffer) and device."""
    from ray.rllib.utils.minibatch_utils import MiniBatchRayDataIterator

    data = algo.offline_data
    return MiniBatchRayDataIterator(iterator=data.data.iterator(), device=device, minibatch_size=s.batch,
                                    num_iters=n, **data.iter_batches_kwargs)


def _data_path_seconds_per_batch(algo, s: DPOBenchSettings, device: torch.device) -> tuple[float, int]:
    """Median seconds between :func:`learner_batches` with nothing done to them; the first batch
    (the iterator's start-up and shuffle-buffer fill) is not timed."""
    n = s.updates * s.iterations + 1
    gaps, start = [], time.perf_counter()
    for _ in learner_batches(algo, s, device, n):
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the copy to the device has landed
        now = time.perf_counter()
        gaps.append(now - start)
        start = now
    if len(gaps) < 2:
        raise RuntimeError(f"the data path gave {len(gaps)} batches; expected {n}")
    return statistics.median(gaps[1:]), len(gaps) - 1


def _profile_train(algo, device: torch.device, path: Path) -> None:
    """One ``algo.train()`` under cProfile (Python: where the learner thread waits) and
    ``torch.profiler`` (operators, CPU and CUDA time); a summary and the tables to ``path``,
    the profiler's Chrome trace to ``<path stem>-trace.json.gz`` (both atomic)."""
    import cProfile
    import gzip
    import io
    import pstats

    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    python = cProfile.Profile()
    with profile(activities=activities) as ops:
        start = time.perf_counter()
        python.enable()
        algo.train()
        python.disable()
        wall = time.perf_counter() - start
    events = ops.key_averages()
    text = io.StringIO()
    text.write(_profile_summary(ops.events(), events, wall, device))
    for order in ("cumulative", "tottime"):
        text.write(f"== cProfile of one train(), by {order} ==\n")
        pstats.Stats(python, stream=text).sort_stats(order).print_stats(40)
    sorts = ["cuda_time_total", "self_cpu_time_total"] if device.type == "cuda" else ["cpu_time_total"]
    for sort in sorts:
        text.write(f"== torch.profiler, by {sort} ==\n")
        text.write(events.table(sort_by=sort, row_limit=40))
        text.write("\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    trace = path.with_name(f"{path.stem}-trace.json.gz")
    raw_trace = path.with_name(f".{path.stem}-trace.json.raw")  # scratch: the uncompressed export
    ops.export_chrome_trace(str(raw_trace))
    try:
        atomic_write(trace, lambda tmp: tmp.write_bytes(gzip.compress(raw_trace.read_bytes())))
    finally:
        raw_trace.unlink()
    atomic_write_text(path, text.getvalue())
    print(f"profile of one RLlib train(): {path} (trace {trace.name})", flush=True)


# CUDA runtime calls in which the CPU can wait for the GPU (a blocking copy or a sync).
_WAITING_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpyAsync",
                  "cudaMemcpy")


def _profile_summary(raw_events, events, wall_s: float, device: torch.device) -> str:
    """Wall time of the profiled train(), the time the GPU was busy in it (the union of its kernels'
    and copies' intervals) and the CPU's time in the CUDA runtime calls that can wait for the GPU."""
    from torch.autograd import DeviceType

    lines = [f"== summary: one train(), {wall_s * 1e3:.1f} ms wall on {device.type} =="]
    if device.type == "cuda":
        spans = sorted((e.time_range.start, e.time_range.end) for e in raw_events if e.device_type == DeviceType.CUDA)
        busy_us, end = 0.0, float("-inf")
        for lo, hi in spans:
            busy_us += max(0.0, hi - max(lo, end))
            end = max(end, hi)
        lines.append(f"GPU busy (kernels + copies, union): {busy_us / 1e3:.1f} ms = "
                     f"{busy_us / 1e4 / wall_s:.0f}% of wall; {len(spans)} device events")
        for e in events:
            if e.key in _WAITING_CALLS or e.key.startswith("cudaLaunchKernel"):
                lines.append(f"{e.key}: {e.count} calls, {e.self_cpu_time_total / 1e3:.1f} ms CPU")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- one shape
def measure_shape(shape: str, s: DPOBenchSettings, workdir: Optional[Path] = None) -> list[Row]:
    """Raw encoder, loss-only and (with ``s.rllib``) RLlib rows for one encoder shape."""
    device, precision = s.resolved_device(), s.resolved_precision()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        # Enough pairs for every timed update to see new rows (no epoch restart inside).
        n_pairs = s.batch * s.updates * (s.warmup_iterations + s.iterations + 1) if s.rllib else s.batch
        policy_dir, pair_dir, batch = pair_workload(tmp, shape, s, n_pairs)
        tokens = s.batch * (s.state_len + s.n_valid * s.action_len)

        label = precision if s.compile is None else f"{precision}+{s.compile}"
        measured: list[tuple[str, str, float, int]] = []
        raw_s, steps = _median_step(raw_step(shape, batch, device, precision, s.compile)[0], s.seconds, device)
        measured.append((RAW, label, raw_s, steps))
        loss_s, steps = _median_step(_loss_only_step(policy_dir, batch, device, precision, s.compile), s.seconds,
                                     device)
        measured.append((LOSS_ONLY, label, loss_s, steps))
        if s.rllib:
            profile = Path(s.profile_dir) / f"{shape}-rllib-profile.txt" if s.profile_dir else None
            (rllib_s, updates), (data_s, batches) = _rllib_seconds_per_update(pair_dir, policy_dir, s, device,
                                                                               precision, profile)
            measured.append((RLLIB, label, rllib_s, updates))
            measured.append((DATA_PATH, precision, data_s, batches))
    return [Row(shape, name, prec, seconds * 1e3, s.batch / seconds, tokens / seconds,
                None if name in (RAW, DATA_PATH) else seconds / raw_s - 1.0, n)
            for name, prec, seconds, n in measured]


def markdown_table(rows: Sequence[Row]) -> str:
    head = ["shape", "path", "precision", "ms/update", "pairs/s", "tokens/s", "overhead vs raw step", "updates timed"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for r in rows:
        lines.append("| " + " | ".join([
            r.shape, r.model, r.precision, f"{r.ms_per_update:,.1f}", f"{r.pairs_per_s:,.1f}",
            f"{r.tokens_per_s:,.0f}", "-" if r.overhead is None else f"{100 * r.overhead:.0f}%", str(r.updates)]) + " |")
    return "\n".join(lines)


def add_pair_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The pair workload's arguments, shared by the DPO benchmarks: ``--shapes --batch --k --valid
    --state-len --action-len --device --precision --threads --json``."""
    parser.add_argument("--shapes", nargs="+", default=["tiny", "minilm", BERT_BASE_SHAPE],
                        help=f"tiny | minilm | {BERT_BASE_SHAPE} (all randomly initialised)")
    parser.add_argument("--batch", type=int, default=32, help="preference pairs per update")
    parser.add_argument("--k", type=int, default=16, help="candidate rows per state (k_max)")
    parser.add_argument("--valid", type=int, default=None, help="valid candidates per state (default: k)")
    parser.add_argument("--state-len", type=int, default=256)
    parser.add_argument("--action-len", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="auto = bf16 autocast on CUDA, fp32 on CPU")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 gives stable figures on a busy small CPU")
    parser.add_argument("--json", default=None, help="also write the rows here")


def check_pair_workload(parser: argparse.ArgumentParser, s: DPOBenchSettings) -> None:
    """``parser.error`` unless the pair workload ``s`` is one the benchmarks can build."""
    if not 2 <= s.n_valid <= s.k:
        parser.error(f"--valid must be in [2, --k] (a pair needs two candidates), got {s.n_valid}")
    if s.batch < 1 or s.state_len < 8 or s.action_len < 4:
        parser.error("need --batch >= 1, --state-len >= 8, --action-len >= 4")


def main(argv: Optional[Sequence[str]] = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_pair_workload_arguments(parser)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds of the raw and loss-only rows")
    parser.add_argument("--updates", type=int, default=10, help="DPO updates per train() call (RLlib row)")
    parser.add_argument("--iterations", type=int, default=3, help="timed train() calls (RLlib row)")
    parser.add_argument("--warmup-iterations", type=int, default=1, help="untimed train() calls first")
    parser.add_argument("--no-rllib", action="store_true", help="skip the RLlib and data-path rows (no Ray)")
    parser.add_argument("--compile", nargs="?", const="inductor", default=None, metavar="BACKEND",
                        help="torch.compile the encoder (dynamic shapes) in every update row; BACKEND default inductor")
    parser.add_argument("--profile-dir", default=None,
                        help="profile one more RLlib train() per shape (cProfile + torch.profiler tables) into this dir")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    s = DPOBenchSettings(batch=args.batch, k=args.k, valid=args.valid, state_len=args.state_len,
                         action_len=args.action_len, seconds=args.seconds, updates=args.updates,
                         iterations=args.iterations, warmup_iterations=args.warmup_iterations,
                         device=args.device, precision=args.precision, rllib=not args.no_rllib,
                         compile=args.compile, profile_dir=args.profile_dir)
    check_pair_workload(parser, s)
    if min(s.updates, s.iterations) < 1 or s.warmup_iterations < 0:
        parser.error("need --updates, --iterations >= 1, --warmup-iterations >= 0")
    rllib = f"{s.warmup_iterations} + {s.iterations} train() x {s.updates} updates" if s.rllib else "off"
    return run_shapes(measure_shape, markdown_table, args.shapes, s, json_path=args.json,
                      workload=f"{s.batch} pairs per update; state {s.state_len} tokens, k {s.k} rows, {s.n_valid} "
                               f"valid x {s.action_len} tokens; raw/loss rows {s.seconds:g} s each; RLlib row {rllib}")


if __name__ == "__main__":
    main()
