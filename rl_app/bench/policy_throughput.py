"""Choice-model training throughput next to the raw encoder's, on the same batch shapes.

    python -m rl_app.bench.policy_throughput --shapes tiny minilm bert-base-shape \\
        --batch 32 --k 16 --state-len 512 --action-len 32 --seconds 3

Workload: ``batch`` states of ``state-len`` tokens (no padding: the worst case), each with
``k`` candidate rows of which ``valid`` are real ``action-len``-token candidates. The raw
encoder row encodes exactly the tokens the choice model's encoder sees (the states plus the
valid candidates) with a bare ``BertModel``, so "% of raw" is what the interaction, the
gather/scatter and the heads cost. ``train`` = forward + loss + backward + AdamW step;
``forward`` runs under ``torch.no_grad``. On CUDA the default precision is bf16 autocast.
Figures are the median step time over ``seconds`` (after warmup steps).
Shapes: ``tiny``, ``minilm`` (packaged, pretrained), ``bert-base-shape`` (random init,
12 layers x 768, no download), or any BERT name/path.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch

from rl_app.data.files import atomic_write_json

__all__ = ["BenchSettings", "Row", "measure_shape", "markdown_table", "machine_info", "median_step_time", "sync_device",
           "run_shapes", "BERT_BASE_SHAPE", "BERT_BASE_ARCH", "main"]

BERT_BASE_SHAPE = "bert-base-shape"
# bert-base-uncased's architecture (random weights in the benchmarks: nothing is downloaded).
BERT_BASE_ARCH = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, max_position_embeddings=512, pad_token_id=0)
_WARMUP_STEPS = 3
_MIN_STEPS = 3
_LR = 1e-5


class ShapeSettingsMixin:
    """Derived settings shared by the throughput benchmarks (fields ``k``, ``valid``, ``device``,
    ``precision`` live on the dataclass that mixes this in)."""

    @property
    def n_valid(self) -> int:
        return self.k if self.valid is None else self.valid

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def resolved_precision(self) -> str:
        if self.precision == "auto":
            return "bf16" if self.resolved_device().type == "cuda" else "fp32"
        return self.precision


@dataclass(frozen=True)
class BenchSettings(ShapeSettingsMixin):
    """Batch shape, timing and precision of one benchmark run."""

    batch: int = 32
    k: int = 16
    valid: Optional[int] = None  # None = k
    state_len: int = 512
    action_len: int = 32
    seconds: float = 3.0
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16
    modes: tuple[str, ...] = ("forward", "train")
    compare_all_rows: bool = False


@dataclass(frozen=True)
class Row:
    shape: str
    model: str
    mode: str
    ms_per_step: float
    states_per_s: float
    pairs_per_s: float
    pct_of_raw: Optional[float]
    peak_mem_gib: Optional[float]
    steps: int


def machine_info(device: torch.device, precision: str) -> str:
    import transformers

    from rl_app.machine import cpu_model

    parts = [platform.platform(), f"CPU {cpu_model()} ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})",
             f"torch {torch.__version__}", f"transformers {transformers.__version__}"]
    if device.type == "cuda":
        parts.append(f"GPU {torch.cuda.get_device_name(device)}")
    if hasattr(os, "getloadavg"):
        parts.append(f"load avg {os.getloadavg()[0]:.1f}")  # other work on the machine skews CPU figures
    parts.append(f"device {device.type}, {precision}")
    return "; ".join(parts)


def _encoder(shape: str):
    from rl_app.policy.encoder import EncoderConfig, build_encoder, load_encoder

    if shape == BERT_BASE_SHAPE:
        return build_encoder(BERT_BASE_ARCH, EncoderConfig(name_or_path=BERT_BASE_SHAPE), seed=0)
    return load_encoder(EncoderConfig(name_or_path=shape))


def _inputs(s: BenchSettings, vocab: int, device: torch.device, gen: torch.Generator):
    state = torch.randint(1000, vocab, (s.batch, s.state_len), generator=gen)
    actions = torch.zeros(s.batch, s.k, s.action_len, dtype=torch.long)
    actions[:, : s.n_valid] = torch.randint(1000, vocab, (s.batch, s.n_valid, s.action_len), generator=gen)
    mask = torch.zeros(s.batch, s.k, dtype=torch.int8)
    mask[:, : s.n_valid] = 1
    labels = torch.randint(0, max(s.n_valid, 1), (s.batch,), generator=gen)
    return [t.to(device) for t in (state, actions, mask, labels)]


def sync_device(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA); nothing to wait for on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_step_time(step: Callable[[], None], seconds: float, device: torch.device, *,
                     warmup_steps: int = _WARMUP_STEPS, min_steps: int = _MIN_STEPS,
                     before_timing: Optional[Callable[[], None]] = None) -> tuple[float, int]:
    """Median seconds per ``step`` (robust to other processes sharing a small CPU) over at least
    ``min_steps`` steps and ``seconds``, after ``warmup_steps``; the device is synchronised after
    every step. Returns (median seconds, steps timed). Shared by the throughput benchmarks."""
    for _ in range(warmup_steps):
        step()
    sync_device(device)
    if before_timing is not None:
        before_timing()
    durations: list[float] = []
    start = time.perf_counter()
    while len(durations) < min_steps or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        sync_device(device)
        durations.append(time.perf_counter() - t0)
    return statistics.median(durations), len(durations)


def _time(step: Callable[[], None], seconds: float, device: torch.device) -> tuple[float, int, Optional[float]]:
    """Median seconds per step, steps, peak GiB (CUDA)."""
    reset = (lambda: torch.cuda.reset_peak_memory_stats(device)) if device.type == "cuda" else None
    median, steps = median_step_time(step, seconds, device, before_timing=reset)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return median, steps, peak


def measure_shape(shape: str, s: BenchSettings) -> list[Row]:
    """Raw encoder and choice model rows (forward and/or train) for one encoder shape."""
    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.encoder import EncoderConfig

    device, precision = s.resolved_device(), s.resolved_precision()
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16"
                else nullcontext())
    encoder = _encoder(shape)
    gen = torch.Generator().manual_seed(0)
    state, actions, mask, labels = _inputs(s, int(encoder.config.vocab_size), device, gen)
    valid_rows = actions.view(-1, s.action_len)[mask.view(-1) != 0]
    n_pairs = valid_rows.shape[0]

    def raw_forward():
        with autocast:
            a = encoder(input_ids=state, attention_mask=torch.ones_like(state)).last_hidden_state
            b = encoder(input_ids=valid_rows, attention_mask=torch.ones_like(valid_rows)).last_hidden_state
        return a.float().mean() + b.float().mean()

    models = {"raw encoder": (encoder, raw_forward)}
    variants = [("choice model", True)] + ([("choice (all K rows)", False)] if s.compare_all_rows else [])
    for name, valid_only in variants:
        torch.manual_seed(0)
        config = ChoiceModelConfig(encoder=EncoderConfig(name_or_path=shape), encode_valid_only=valid_only)
        model = ChoiceModel(config, encoder=encoder)

        def choice_forward(model=model):
            with autocast:
                out = model(state, actions, mask)
            return torch.nn.functional.cross_entropy(out.logits, labels) + 0.5 * out.value.pow(2).mean()

        models[name] = (model, choice_forward)

    rows: list[Row] = []
    for mode in s.modes:
        raw_ms = None
        for name, (module, forward) in models.items():
            module.to(device).train(mode == "train")
            if mode == "forward":
                def step(forward=forward):
                    with torch.no_grad():
                        forward()
            else:
                optimizer = torch.optim.AdamW(module.parameters(), lr=_LR)

                def step(forward=forward, optimizer=optimizer):
                    loss = forward()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            seconds_per_step, steps, peak = _time(step, s.seconds, device)
            if name == "raw encoder":
                raw_ms = seconds_per_step
            rows.append(Row(shape, name, mode, seconds_per_step * 1e3, s.batch / seconds_per_step,
                            n_pairs / seconds_per_step, None if name == "raw encoder" else 100 * raw_ms / seconds_per_step,
                            peak, steps))
            if mode == "train":
                del optimizer
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    show_mem = any(r.peak_mem_gib is not None for r in rows)
    head = ["shape", "model", "mode", "ms/step", "states/s", "cand-pairs/s", "% of raw"] + (["peak GiB"] if show_mem else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.shape, r.model, r.mode, f"{r.ms_per_step:,.1f}", f"{r.states_per_s:,.1f}", f"{r.pairs_per_s:,.0f}",
                 "-" if r.pct_of_raw is None else f"{r.pct_of_raw:.0f}%"]
        if show_mem:
            cells.append("-" if r.peak_mem_gib is None else f"{r.peak_mem_gib:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json_report(path: str, machine: str, settings, rows: Sequence) -> None:
    """Machine, settings and rows as JSON, written to a temporary file and renamed."""
    atomic_write_json(path, {"machine": machine, "settings": dataclasses.asdict(settings),
                             "rows": [dataclasses.asdict(r) for r in rows]})


def run_shapes(measure: Callable[[str, Any], list], table: Callable[[Sequence], str], shapes: Sequence[str],
               settings, *, workload: str, json_path: Optional[str] = None) -> list:
    """Print the machine and ``workload`` lines, measure every shape, print the table, write the JSON."""
    device, precision = settings.resolved_device(), settings.resolved_precision()
    print(f"machine: {machine_info(device, precision)}")
    print(f"workload: {workload}\n", flush=True)
    rows: list = []
    for shape in shapes:
        rows += measure(shape, settings)
    print(table(rows))
    if json_path:
        write_json_report(json_path, machine_info(device, precision), settings, rows)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["tiny", "minilm", BERT_BASE_SHAPE],
                        help="tiny | minilm | bert-base-shape | any BERT name or path")
    parser.add_argument("--batch", type=int, default=32, help="states per step")
    parser.add_argument("--k", type=int, default=16, help="candidate rows per state (k_max)")
    parser.add_argument("--valid", type=int, default=None, help="valid candidates per state (default: k)")
    parser.add_argument("--state-len", type=int, default=512)
    parser.add_argument("--action-len", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement (after warmup)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--modes", nargs="+", default=["forward", "train"], choices=["forward", "train"])
    parser.add_argument("--compare-all-rows", action="store_true",
                        help="also time the choice model encoding all k rows (no valid-only gather)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 gives stable figures on a busy small CPU")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    s = BenchSettings(batch=args.batch, k=args.k, valid=args.valid, state_len=args.state_len,
                      action_len=args.action_len, seconds=args.seconds, device=args.device,
                      precision=args.precision, modes=tuple(args.modes), compare_all_rows=args.compare_all_rows)
    if not 0 <= s.n_valid <= s.k:
        parser.error(f"--valid must be in [0, --k], got {s.n_valid}")
    return run_shapes(measure_shape, markdown_table, args.shapes, s, json_path=args.json,
                      workload=f"batch {s.batch} states x {s.state_len} tokens, k {s.k} rows, {s.n_valid} valid x "
                               f"{s.action_len} tokens; {s.seconds:g} s per measurement")


if __name__ == "__main__":
    main()
