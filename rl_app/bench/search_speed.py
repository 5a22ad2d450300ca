"""Search benchmark: build time, query latency and memory, one core.

Workload: the goals' instruction texts as queries, top 50, result cache off, over
synthetic catalogues whose documents follow the real length distribution (mean ~124
words), or over the real 1,000-product catalogue. Memory is the peak RSS of the process
holding catalogue + index; each size runs in its own process so the peaks do not mix.

    python -m rl_app.bench.search_speed --sizes 1000 100000 1180000
    python -m rl_app.bench.search_speed --catalogue webshop --data-dir ../shared/webshop-data

For synthetic catalogues the queries come from ``build_goal_set`` over an evenly spaced
sample of at most ``--goal-products`` instruction-carrying products (building every goal
of 1.18M products would take gigabytes and changes nothing about the queries' form).
"""

from __future__ import annotations

import os

# One thread everywhere, before numpy (or anything that imports it) is loaded.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("DISABLE_TQDM", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Optional  # noqa: E402

__all__ = ["main", "run_one", "machine_description"]

HEADER = ("| catalogue | products | queries | generate s | build s | p50 ms | p95 ms | mean ms "
          "| index MB | peak RSS GB |")
RULE = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
TOP_K = 50
WARMUP_QUERIES = 20


def machine_description() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numpy

    pinned = (f"each run pinned to CPU {min(os.sched_getaffinity(0))}"
              if hasattr(os, "sched_getaffinity") else "not pinned (no sched_setaffinity)")
    return (f"{platform.platform()}; {cpu}; {os.cpu_count()} logical cores, {pinned}; "
            f"Python {platform.python_version()}; numpy {numpy.__version__}")


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _peak_rss_gb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def _queries(catalogue, n_queries: int, goal_products: int, full: bool) -> list[str]:
    from rl_app.shop.catalogue import Catalogue
    from rl_app.shop.goals import build_goal_set

    if not full:
        with_instruction = [p for p in catalogue if p.instruction is not None]
        step = max(1, len(with_instruction) // goal_products)
        catalogue = Catalogue(tuple(with_instruction[::step][:goal_products]), source="goal sample")
    goals = build_goal_set(catalogue, seed=0)
    return [g.instruction_text for g in goals.goals[:n_queries]]


def run_one(catalogue_kind: str, size: Optional[int], data_dir: Optional[str], n_queries: int,
            goal_products: int, seed: int, use_mmap: bool) -> str:
    """Build, query, and return one markdown table row."""
    import numpy as np

    from rl_app.shop.search import SearchEngine

    t0 = time.perf_counter()
    if catalogue_kind == "webshop":
        from rl_app.shop.catalogue import load_webshop_catalogue

        catalogue = load_webshop_catalogue(data_dir)
    else:
        from rl_app.shop.synthetic import generate_catalogue

        catalogue = generate_catalogue(size, seed=seed)
    generate_s = time.perf_counter() - t0
    queries = _queries(catalogue, n_queries, goal_products, full=catalogue_kind == "webshop")

    t0 = time.perf_counter()
    engine = SearchEngine.build(catalogue, cache_size=0)
    build_s = time.perf_counter() - t0
    label = catalogue_kind
    if use_mmap:
        tmp = tempfile.mkdtemp(prefix="rl_app_search_bench_")
        engine.save(os.path.join(tmp, "index"))
        del engine
        engine = SearchEngine.load(os.path.join(tmp, "index"), mmap=True, cache_size=0)
        label += " (mmap)"

    for q in queries[:WARMUP_QUERIES]:
        engine.search(q, TOP_K)
    times = []
    for q in queries:
        t = time.perf_counter()
        engine.search(q, TOP_K)
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1e3
    return (f"| {label} | {len(catalogue):,} | {len(queries):,} | {generate_s:.1f} | {build_s:.1f} "
            f"| {np.median(ms):.2f} | {np.percentile(ms, 95):.2f} | {ms.mean():.2f} "
            f"| {engine.memory_bytes() / 1e6:.0f} | {_peak_rss_gb():.2f} |")


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogue", choices=("synthetic", "webshop"), default="synthetic")
    parser.add_argument("--data-dir", default=None, help="real WebShop data (--catalogue webshop)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000],
                        help="synthetic catalogue sizes")
    parser.add_argument("--queries", type=int, default=1000, help="queries timed per size")
    parser.add_argument("--goal-products", type=int, default=5000,
                        help="instruction products the synthetic queries are drawn from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mmap", action="store_true", help="time a saved, memory-mapped index")
    parser.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.queries <= 0 or any(s <= 0 for s in args.sizes):
        parser.error("--queries and --sizes must be positive")

    if not args.no_header:
        print(f"machine: {machine_description()}")
        print(f"workload: goal instruction texts, top {TOP_K}, cache off, 1 thread\n")
        print(HEADER)
        print(RULE, flush=True)
    if args.catalogue == "webshop" or len(args.sizes) == 1:
        _pin_one_core()
        size = None if args.catalogue == "webshop" else args.sizes[0]
        print(run_one(args.catalogue, size, args.data_dir, args.queries, args.goal_products,
                      args.seed, args.mmap), flush=True)
        return
    for size in args.sizes:  # a fresh process per size keeps each peak RSS separate
        cmd = [sys.executable, "-m", "rl_app.bench.search_speed", "--sizes", str(size),
               "--queries", str(args.queries), "--goal-products", str(args.goal_products),
               "--seed", str(args.seed), "--no-header"] + (["--mmap"] if args.mmap else [])
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
