"""Where one RLlib ``train()`` spends its time: cProfile (Python: where the learner thread waits) and
``torch.profiler`` (operators, CPU and CUDA time) of one call, for ``dpo_update --profile-dir``."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from rl_app.data.files import atomic_write, atomic_write_text

__all__ = ["profile_train", "profile_summary"]


def profile_train(algo, device: torch.device, path: Path) -> None:
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
    text.write(profile_summary(ops.events(), events, wall, device))
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


def profile_summary(raw_events, events, wall_s: float, device: torch.device) -> str:
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
