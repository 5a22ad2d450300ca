"""How much slower one DPO update is inside RLlib than the bare loss, and where the difference goes.

    python -m rl_app.bench.dpo_update --shapes tiny minilm bert-base-shape \\
        --batch 32 --k 16 --valid 8 --state-len 256 --action-len 32 [--gradient-step] [--context]

Workload: ``batch`` preference pairs per update; each pair is one state of ``state-len``
tokens with ``k`` candidate rows of which ``valid`` are real ``action-len``-token candidates
(every text fills its length: no padding, the worst case). A DPO update scores all valid
candidates of each state once (chosen and rejected come out of the same log-softmax), so
the encoder work per update is ``batch`` states plus ``batch * valid`` candidates. All rows of a
shape run in one process, in the order below, on the same pairs. Rows:

* ``raw encoder``: a bare Hugging Face ``BertModel`` of the shape (random weights) on
  exactly those token ids: forward + backward + AdamW. The ceiling.
* ``DPO loss (no RLlib)``: the choice model + masked log-softmax + ``dpo_loss`` + grad clip
  + AdamW on pre-tokenized tensors: what the model and the loss cost over the encoder.
* ``--gradient-step``: ``DPOTorchLearner._update`` on that batch, already on the device
  (forward, DPO loss, backward, global-norm clip, optimizer step; no data path), the learner
  built with ``DPOConfig.build_learner()`` in this process, once with RLlib's own clip and
  ``apply_gradients`` (``RLlib gradient step``: a norm and two finiteness reads per gradient
  tensor) and once with rl_app's (``fused gradient step``, what the learners use:
  :mod:`rl_app.algorithms.rllib_patches.gradient_step`). With this flag the raw, loss-only and
  both ``_update`` rows also report the aten operators one update dispatches (on a GPU about
  one kernel launch each) and its host syncs (:class:`rl_app.op_counter.OpCounter`). Torch's
  optimizers take the multi-tensor (``foreach``) path for CUDA tensors and one operator chain
  per parameter tensor on CPU; ``--foreach`` puts every optimizer on the multi-tensor path, so a
  CPU run counts what a CUDA run dispatches.
* ``DPO learner (RLlib)`` (skipped with ``--no-rllib``, which needs no Ray):
  ``DPOConfig -> build_algo -> train()`` reading a pair parquet through Ray Data (tokenizing
  prelearner, shuffle buffer, batch to device), timed by the algorithm's own
  ``time/learner_s`` (its increase per ``train()``) after warm-up iterations (the first
  ``train()`` starts the data actors and materializes the data set). Everything inside
  ``LearnerGroup.update`` is in it: batches from the Ray Data iterator, the copy to the device,
  forward, loss, backward, optimizer step, metrics. The run is seeded
  (``config.debugging(seed=0)``, as every rl_app trainer is).
* ``--context``, in the same algorithm: ``_update, one batch`` (``learner._update`` on one batch
  drawn from the learner's iterator, repeated: RLlib's update without the data iterator and
  ``Learner.update``'s loop); ``_update, drawn batches`` (over batches drawn beforehand: different
  contents each update, no iterator running while timed); ``train(), prefetch 0`` (Ray Data's
  ``prefetch_batches=0``: no background prefetch thread, the learner's thread formats and copies
  each batch itself).
* ``RLlib data path (no update)`` (with the RLlib row): the same algorithm's materialized pair
  data set through the learner's own iterator (RLlib's ``MiniBatchRayDataIterator``: shuffle
  buffer, collate, copy to the device) into a consumer that does nothing: how fast the data path
  alone can hand over batches. If it is slower than a row's update, the learner waits for data.

The rows above run with torch's kernel settings as found (rl_app undoes what RLlib's seeding
changes: :mod:`rl_app.algorithms.rllib_patches.determinism`). With ``--context`` the loss-only,
``train()``, ``_update`` and prefetch-0 rows then run again after
``update_global_seed_if_necessary("torch", 0)``, the call ``config.debugging(seed=...)`` makes
RLlib run in the driver and in every learner (on CUDA it sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8``,
``cudnn.deterministic = True``, ``cudnn.benchmark = False``; without CUDA
``torch.use_deterministic_algorithms(True)``), and the loss-only and ``train()`` rows once more
with those settings undone; the process's settings are restored at the end.

``overhead = row_time / raw_time - 1``: what a row's update costs beyond the raw encoder's step,
as a share of that raw step time (the project's target for the DPO learner: < 30% on GPU, i.e. the
whole DPO update, data path included, in < 1.3x the raw step's time).

``--compile [BACKEND]`` (default backend ``inductor``): ``torch.compile`` the BERT encoder with
dynamic shapes in the raw and loss-only rows, and set ``config.framework(torch_compile_learner=True)``
for the learners (:mod:`rl_app.algorithms.rllib_patches.compile`); the precision column then reads
e.g. ``bf16+inductor``. Compilation happens in the warm-up steps and iteration, outside the timed
figures. ``--profile-dir DIR``: one more ``train()`` per shape under cProfile and
``torch.profiler``, their tables and a Chrome trace into DIR (where the learner's time goes; not
part of the timed figures).

Precision: ``auto`` = bf16 autocast on CUDA, fp32 on CPU. The learners get the same value through
``config.learners(precision=...)`` (:mod:`rl_app.algorithms.rllib_patches.precision`), so all rows
compare at one precision, and the table says so. All figures are medians; the device is
synchronised after every timed step or ``train()``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from rl_app.bench.dpo_workload import BETA, GRAD_CLIP, LR, UpdateBenchSettings, bert_config, dpo_config, \
    module_batch, pair_workload
from rl_app.bench.policy_throughput import BERT_BASE_SHAPE, median_step_time, run_shapes, sync_device
from rl_app.bench.train_profile import profile_train
from rl_app.op_counter import OpCounter, optimizer_step_counters

__all__ = ["Row", "raw_step", "train_seconds_per_update", "learner_batches", "measure_shape", "markdown_table", "main"]

# Paths (rows) and the process states they run in.
RAW = "raw encoder"
LOSS_ONLY = "DPO loss (no RLlib)"
RLLIB_STEP = "_update, RLlib gradient step"
FUSED_STEP = "_update, fused gradient step"
RLLIB = "DPO learner (RLlib)"
ONE_BATCH = "_update, one batch"
DRAWN = "_update, drawn batches"
TRAIN_NO_PREFETCH = "train(), prefetch 0"
DATA_PATH = "RLlib data path (no update)"
AS_FOUND, SEEDED, RESTORED = "as found", "after RLlib's seeding", "seeding's torch settings undone"
_WARMUP_STEPS = 2
_MIN_STEPS = 3


@dataclass(frozen=True)
class Row:
    """One measured row. ``ms_per_update`` is the median time of one update of ``batch`` pairs
    (data-path row: of handing over one batch).

    ``overhead`` = this row's ms / raw ms - 1 (None on the raw and data-path rows); ``updates`` =
    updates (data-path row: batches) timed; ``param_tensors``, ``aten_ops`` and ``host_syncs`` (per
    update) are counted with ``gradient_step`` on the step rows, else None.
    """

    shape: str
    process_state: str
    path: str
    precision: str
    ms_per_update: float
    pairs_per_s: float
    tokens_per_s: float
    overhead: Optional[float]
    updates: int
    param_tensors: Optional[int] = None
    aten_ops: Optional[int] = None
    host_syncs: Optional[int] = None


# ---------------------------------------------------------------------- timing
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

    encoder = build_encoder(bert_config(shape), EncoderConfig(name_or_path=shape), seed=1).to(device).train()
    _compiled(encoder, compile_backend)
    state = batch["state_ids"].to(device)
    rows = batch["action_ids"][batch["action_mask"].bool()].to(device)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=LR)

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
    """The loss-only row's step (choice model + DPO loss + clip + AdamW on ``batch``), and its optimizer."""
    from rl_app.algorithms.dpo.loss import dpo_loss
    from rl_app.policy.checkpoint import load_choice_model

    model = load_choice_model(policy_dir).to(device).train()
    _compiled(model.encoder, compile_backend)
    b = {k: v.to(device) for k, v in batch.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)

    def step():
        with _autocast(device, precision):
            logits = model(b["state_ids"], b["action_ids"], b["action_mask"], with_value=False).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        chosen = log_probs.gather(1, b["chosen"].long().unsqueeze(1)).squeeze(1)
        rejected = log_probs.gather(1, b["rejected"].long().unsqueeze(1)).squeeze(1)
        loss = dpo_loss(chosen, rejected, b["ref_chosen_logp"], b["ref_rejected_logp"], beta=BETA).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()

    return step, optimizer


def train_seconds_per_update(algo, s: UpdateBenchSettings, device: torch.device) -> tuple[float, int]:
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


def learner_batches(algo, s: UpdateBenchSettings, device: torch.device, n: int):
    """``n`` batches of ``s.batch`` pairs from the algorithm's (materialized) pair data set through the
    iterator its learner uses (RLlib's ``MiniBatchRayDataIterator``), with the same ``iter_batches``
    settings (prefetch, shuffle buffer) and device."""
    from ray.rllib.utils.minibatch_utils import MiniBatchRayDataIterator

    data = algo.offline_data
    return MiniBatchRayDataIterator(iterator=data.data.iterator(), device=device, minibatch_size=s.batch,
                                    num_iters=n, **data.iter_batches_kwargs)


def _data_path_seconds_per_batch(algo, s: UpdateBenchSettings, device: torch.device) -> tuple[float, int]:
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


# ---------------------------------------------------------------------- measuring one row
@dataclass(frozen=True)
class _Timed:
    seconds: float
    updates: int
    param_tensors: Optional[int] = None
    aten_ops: Optional[int] = None
    host_syncs: Optional[int] = None


def _use_foreach(optimizers: Sequence[torch.optim.Optimizer]) -> None:
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["foreach"] = True


def _time_step(step: Callable[[], Any], s: UpdateBenchSettings, device: torch.device,
               optimizers: Sequence[torch.optim.Optimizer] = (), *, count: bool = False) -> _Timed:
    """Median seconds per ``step`` (after warm-up); with ``count``, the aten operators and host
    syncs of one step after the warm-up (when the optimizers' step counters exist; their reads
    are host reads, not counted) and the parameter tensors that got a gradient."""
    if s.foreach:
        _use_foreach(optimizers)
    counted: list[OpCounter] = []

    def count_one_step():
        counter = OpCounter(host_tensors=optimizer_step_counters(optimizers))
        with counter:
            step()
        counted.append(counter)

    seconds, n = median_step_time(step, s.seconds, device, warmup_steps=_WARMUP_STEPS, min_steps=_MIN_STEPS,
                                  before_timing=count_one_step if count else None)
    if not count:
        return _Timed(seconds, n)
    params = sum(p.grad is not None for optimizer in optimizers for group in optimizer.param_groups
                 for p in group["params"])
    return _Timed(seconds, n, params, counted[0].ops, counted[0].syncs)


def _ensure_ray(num_cpus: Optional[int] = None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, num_cpus=num_cpus)


def _learner_config(pair_dir: Path, policy_dir: str, s: UpdateBenchSettings, device: torch.device, precision: str):
    """:func:`dpo_config` with the run's compile setting."""
    config = dpo_config(pair_dir, policy_dir, s, device, precision)
    if s.compile is not None:
        config = config.framework(torch_compile_learner=True, torch_compile_learner_dynamo_backend=s.compile)
    return config


def _gradient_step_rows(pair_dir: Path, policy_dir: str, batch: dict, s: UpdateBenchSettings, device: torch.device,
                        precision: str) -> list[tuple[str, _Timed]]:
    """``_update`` on one batch with RLlib's gradient step and with the fused one (same config and
    starting weights), operators and syncs counted."""
    from rl_app.algorithms.dpo.dpo_torch_learner import DPOTorchLearner
    from rl_app.algorithms.rllib_patches.gradient_step import with_rllib_gradient_step

    if device.type == "cuda":
        _ensure_ray()  # RLlib picks a local learner's GPU through Ray's accelerator context
    on_device = module_batch(batch, device)
    rows = []
    for name, learner_class in ((RLLIB_STEP, with_rllib_gradient_step(DPOTorchLearner)), (FUSED_STEP, None)):
        config = _learner_config(pair_dir, policy_dir, s, device, precision)
        if learner_class is not None:
            config.learners(learner_class=learner_class)
        learner = config.build_learner()
        optimizers = [opt for mid in learner.module.keys() for _, opt in learner.get_optimizers_for_module(mid)]
        rows.append((name, _time_step(partial(learner._update, on_device), s, device, optimizers, count=True)))
        del learner, optimizers
    return rows


def _drawn_batches(algo, s: UpdateBenchSettings, device: torch.device, n: int) -> list:
    """``n`` batches from the learner's own iterator settings, already on ``device``."""
    drawn = [b.policy_batches for b in learner_batches(algo, s, device, n)]
    sync_device(device)
    return drawn


def _reset_iterator(algo, **iter_batches_kwargs) -> None:
    """Next ``train()`` builds the learner's data iterator anew with these ``iter_batches`` settings."""
    algo.offline_data.iter_batches_kwargs.update(iter_batches_kwargs)
    algo.learner_group._learner.iterator = None


def _context_rows(algo, s: UpdateBenchSettings, device: torch.device) -> list[tuple[str, _Timed]]:
    """``_update`` on one drawn batch and over drawn batches in the algorithm's own learner, then
    ``train()`` without Ray Data's prefetch thread (the prefetch setting put back after)."""
    learner = algo.learner_group._learner  # the local learner, in this process
    drawn = _drawn_batches(algo, s, device, s.updates)
    one = _time_step(lambda: learner._update(drawn[0]), s, device)
    cursor = iter(range(10**9))
    many = _time_step(lambda: learner._update(drawn[next(cursor) % len(drawn)]), s, device)
    prefetch = algo.offline_data.iter_batches_kwargs.get("prefetch_batches")
    _reset_iterator(algo, prefetch_batches=0)
    no_prefetch = _Timed(*train_seconds_per_update(algo, s, device))
    _reset_iterator(algo, prefetch_batches=prefetch if prefetch is not None else 1)
    return [(ONE_BATCH, one), (DRAWN, many), (TRAIN_NO_PREFETCH, no_prefetch)]


def _rllib_rows(pair_dir: Path, policy_dir: str, s: UpdateBenchSettings, device: torch.device, precision: str,
                loss_only: Callable[[], None], profile_path: Optional[Path]) -> list[tuple[str, str, _Timed]]:
    """(process state, path, timing) of the RLlib rows: ``train()``, the ``--context`` rows, the data
    path, and with ``--context`` the rows again after RLlib's seeding and with it undone."""
    from ray.rllib.utils.debug import update_global_seed_if_necessary

    from rl_app.algorithms.rllib_patches.determinism import kernel_settings, restore_kernel_settings

    _ensure_ray(num_cpus=max(2, torch.get_num_threads()))
    settings = kernel_settings()
    algo = (_learner_config(pair_dir, policy_dir, s, device, precision)
            .dataset(updates_per_iteration=s.updates)
            .debugging(seed=0)
            .build_algo())
    rows: list[tuple[str, str, _Timed]] = []
    try:
        rows.append((AS_FOUND, RLLIB, _Timed(*train_seconds_per_update(algo, s, device))))
        if profile_path is not None:
            profile_train(algo, device, profile_path)
        if s.context:
            rows += [(AS_FOUND, path, timed) for path, timed in _context_rows(algo, s, device)]
        rows.append((AS_FOUND, DATA_PATH, _Timed(*_data_path_seconds_per_batch(algo, s, device))))
        if s.context:
            update_global_seed_if_necessary("torch", 0)
            rows += [(SEEDED, LOSS_ONLY, _time_step(loss_only, s, device)),
                     (SEEDED, RLLIB, _Timed(*train_seconds_per_update(algo, s, device)))]
            rows += [(SEEDED, path, timed) for path, timed in _context_rows(algo, s, device)]
            restore_kernel_settings(settings)
            rows += [(RESTORED, LOSS_ONLY, _time_step(loss_only, s, device)),
                     (RESTORED, RLLIB, _Timed(*train_seconds_per_update(algo, s, device)))]
    finally:
        algo.stop()
        restore_kernel_settings(settings)
    return rows


# ---------------------------------------------------------------------- one shape
def measure_shape(shape: str, s: UpdateBenchSettings, workdir: Optional[Path] = None) -> list[Row]:
    """The rows of the module docstring for one encoder shape, in its order."""
    device, precision = s.resolved_device(), s.resolved_precision()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        # Enough pairs for every data iterator's timed updates to see new rows (no epoch restart inside).
        n_pairs = s.batch * s.updates * (s.warmup_iterations + s.iterations + 1) if s.rllib else s.batch
        policy_dir, pair_dir, batch = pair_workload(tmp, shape, s, n_pairs)
        count = s.gradient_step
        measured: list[tuple[str, str, _Timed]] = []
        step, optimizer = raw_step(shape, batch, device, precision, s.compile)
        # (not BERT's pooler: it gets no gradient)
        measured.append((AS_FOUND, RAW, _time_step(step, s, device, [optimizer], count=count)))
        del step, optimizer
        loss_only, optimizer = _loss_only_step(policy_dir, batch, device, precision, s.compile)
        measured.append((AS_FOUND, LOSS_ONLY, _time_step(loss_only, s, device, [optimizer], count=count)))
        if s.gradient_step:
            measured += [(AS_FOUND, path, timed)
                         for path, timed in _gradient_step_rows(pair_dir, policy_dir, batch, s, device, precision)]
        if s.rllib:
            profile = Path(s.profile_dir) / f"{shape}-rllib-profile.txt" if s.profile_dir else None
            measured += _rllib_rows(pair_dir, policy_dir, s, device, precision, loss_only, profile)
    tokens = s.batch * (s.state_len + s.n_valid * s.action_len)
    label = precision if s.compile is None else f"{precision}+{s.compile}"
    raw_s = measured[0][2].seconds
    return [Row(shape, state, path, precision if path == DATA_PATH else label, t.seconds * 1e3, s.batch / t.seconds,
                tokens / t.seconds, None if path in (RAW, DATA_PATH) else t.seconds / raw_s - 1.0, t.updates,
                t.param_tensors, t.aten_ops, t.host_syncs)
            for state, path, t in measured]


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a table; the process-state column only when a row ran in another state, the
    counts only when they were taken."""
    states = any(r.process_state != AS_FOUND for r in rows)
    counts = any(r.aten_ops is not None for r in rows)
    raw_ops = {r.shape: r.aten_ops for r in rows if r.path == RAW}
    head = (["shape"] + (["process state"] if states else []) + ["path", "precision", "ms/update", "pairs/s",
            "tokens/s", "overhead vs raw step"]
            + (["param tensors", "aten ops/update", "ops over raw", "host syncs/update"] if counts else [])
            + ["updates timed"])
    n_text = 3 + states
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * n_text + "---:|" * (len(head) - n_text)]

    def count(value: Optional[int]) -> str:
        return "-" if value is None else f"{value:,}"

    for r in rows:
        cells = [r.shape] + ([r.process_state] if states else []) + [
            r.path, r.precision, f"{r.ms_per_update:,.1f}", f"{r.pairs_per_s:,.1f}",
            f"{r.tokens_per_s:,.0f}", "-" if r.overhead is None else f"{100 * r.overhead:.0f}%"]
        if counts:
            over = ("-" if r.aten_ops is None or r.path == RAW or not raw_ops.get(r.shape)
                    else f"{r.aten_ops / raw_ops[r.shape] - 1:+.0%}")
            cells += [count(r.param_tensors), count(r.aten_ops), over, count(r.host_syncs)]
        lines.append("| " + " | ".join(cells + [str(r.updates)]) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--json", default=None, help="also write the machine, settings and rows here")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds of each step row (after warm-up)")
    parser.add_argument("--updates", type=int, default=10, help="DPO updates per train() call (RLlib rows)")
    parser.add_argument("--iterations", type=int, default=3, help="timed train() calls per train() row")
    parser.add_argument("--warmup-iterations", type=int, default=1, help="untimed train() calls first")
    parser.add_argument("--no-rllib", action="store_true", help="skip the RLlib train() and data-path rows (no Ray)")
    parser.add_argument("--gradient-step", action="store_true",
                        help="add _update rows with RLlib's and the fused gradient step; count operators and host "
                             "syncs per update")
    parser.add_argument("--foreach", action="store_true",
                        help="every optimizer on torch's multi-tensor path, as on CUDA (a CPU run then counts the "
                             "operators a GPU run dispatches)")
    parser.add_argument("--context", action="store_true",
                        help="add the _update / prefetch-0 rows in the algorithm, and repeat after RLlib's seeding "
                             "and with its torch settings undone")
    parser.add_argument("--compile", nargs="?", const="inductor", default=None, metavar="BACKEND",
                        help="torch.compile the encoder (dynamic shapes) in every update row; BACKEND default inductor")
    parser.add_argument("--profile-dir", default=None,
                        help="profile one more RLlib train() per shape (cProfile + torch.profiler tables) into this dir")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    s = UpdateBenchSettings(batch=args.batch, k=args.k, valid=args.valid, state_len=args.state_len,
                            action_len=args.action_len, seconds=args.seconds, updates=args.updates,
                            iterations=args.iterations, warmup_iterations=args.warmup_iterations,
                            device=args.device, precision=args.precision, rllib=not args.no_rllib,
                            gradient_step=args.gradient_step, foreach=args.foreach, context=args.context,
                            compile=args.compile, profile_dir=args.profile_dir)
    if not 2 <= s.n_valid <= s.k:
        parser.error(f"--valid must be in [2, --k] (a pair needs two candidates), got {s.n_valid}")
    if s.batch < 1 or s.state_len < 8 or s.action_len < 4:
        parser.error("need --batch >= 1, --state-len >= 8, --action-len >= 4")
    if min(s.updates, s.iterations) < 1 or s.warmup_iterations < 0:
        parser.error("need --updates, --iterations >= 1, --warmup-iterations >= 0")
    if not s.rllib and (s.context or s.profile_dir):
        parser.error("--context and --profile-dir time the RLlib algorithm: drop --no-rllib")
    rllib = f"{s.warmup_iterations} + {s.iterations} train() x {s.updates} updates" if s.rllib else "off"
    extras = [name for name, on in (("gradient steps counted", s.gradient_step), ("context rows", s.context),
                                    ("optimizers on the multi-tensor path", s.foreach)) if on]
    return run_shapes(measure_shape, markdown_table, args.shapes, s, json_path=args.json,
                      workload=f"{s.batch} pairs per update; state {s.state_len} tokens, k {s.k} rows, {s.n_valid} "
                               f"valid x {s.action_len} tokens; step rows {s.seconds:g} s each; RLlib rows {rllib}"
                               + "".join(f"; {e}" for e in extras))


if __name__ == "__main__":
    main()
