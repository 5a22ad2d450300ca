"""Shared command line of the offline trainers (IL, DPO): train, save, evaluate.

Each trainer adds its own options and builds its config; :func:`run` then trains for
``--iterations`` (or until ``--time-budget-s``), writes ``OUT/checkpoint`` (the RLlib
Algorithm), ``OUT/policy`` (``ChoicePolicy.save_pretrained``, loadable without Ray),
``OUT/metrics.jsonl`` (one line per iteration) and ``OUT/eval.json``, and plays the first
``--eval-goals`` goals of ``--eval-split`` greedily and by sampling (seeded) with
:func:`rl_app.eval.evaluate.evaluate` (per-goal files in ``OUT/eval_greedy``, ``OUT/eval_sampled``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from rl_app.algorithms.offline import DEFAULT_MAX_ACTION_TOKENS, DEFAULT_MAX_STATE_TOKENS, LEARNER_SECONDS, \
    LEARNER_SECONDS_ITER
from rl_app.algorithms.rllib_patches.precision import add_precision_argument
from rl_app.algorithms.warmup import add_lr_warmup_argument
from rl_app.data.files import SUMMARY_FILE, read_summary
from rl_app.env.observation import LAYOUTS
from rl_app.errors import InputError

__all__ = ["add_common_args", "add_token_length_args", "token_lengths", "shop_of_data", "run", "evaluate_policy_dir",
           "heldout_accuracy"]


def shop_of_data(paths: Sequence[str]) -> Optional[dict[str, Any]]:
    """The ``shop_config`` recorded in a data set's ``SUMMARY_FILE`` (rl_app.data.demos), if any."""
    for path in paths:
        shop = (read_summary(path) or {}).get("shop_config")
        if shop:
            return dict(shop)
    return None


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data", nargs="+", required=True, help="parquet files or directories")
    ap.add_argument("--out", required=True, help="output directory (checkpoint/, policy/, metrics, eval)")
    ap.add_argument("--iterations", type=int, default=20, help="train() calls")
    ap.add_argument("--time-budget-s", type=float, default=None, help="stop earlier once training took this long")
    ap.add_argument("--updates-per-iteration", type=int, default=10, help="gradient updates per learner per train()")
    ap.add_argument("--batch-size", type=int, default=32, help="rows per update per learner")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--num-learners", type=int, default=0, help="0 = learn in this process")
    ap.add_argument("--gpus-per-learner", type=float, default=0)
    add_precision_argument(ap)
    add_lr_warmup_argument(ap)
    ap.add_argument("--k-max", type=int, default=64)
    ap.add_argument("--observation-layout", choices=LAYOUTS, default="text",
                    help="text (the page as one token row) or segments (instruction, lines, candidates as short "
                         "rows: the cached-encoder mode)")
    add_token_length_args(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray started here")
    ap.add_argument("--catalogue", choices=["synthetic", "webshop"], default=None,
                    help=f"evaluation shop (default: the data's, from {SUMMARY_FILE}; else synthetic)")
    ap.add_argument("--data-dir", default=None, help="real WebShop data (with --catalogue webshop)")
    ap.add_argument("--synthetic-products", type=int, default=1000)
    ap.add_argument("--eval-split", choices=["test", "dev"], default="test")
    ap.add_argument("--eval-goals", type=int, default=200, help="first N goals of the split; 0 = no evaluation")
    ap.add_argument("--eval-seed", type=int, default=0, help="seed of the sampled evaluation")
    ap.add_argument("--eval-workers", type=int, default=0, help="Ray tasks playing the goals (0 = here)")
    ap.add_argument("--heldout", default=None,
                    help="held-out demonstrations (goals not trained on): greedy choice accuracy per decision type "
                         "(eval/accuracy/<type>) is printed and written to eval.json")


def add_token_length_args(ap: argparse.ArgumentParser) -> None:
    """``--max-state-tokens`` / ``--max-action-tokens``, resolved by :func:`token_lengths`."""
    ap.add_argument("--max-state-tokens", type=int, default=None,
                    help=f"state length in tokens (default: the --init-checkpoint policy's, else "
                         f"{DEFAULT_MAX_STATE_TOKENS})")
    ap.add_argument("--max-action-tokens", type=int, default=None,
                    help=f"candidate length in tokens (default: the --init-checkpoint policy's, else "
                         f"{DEFAULT_MAX_ACTION_TOKENS})")


def token_lengths(args: argparse.Namespace, init_checkpoint: Optional[str] = None) -> dict[str, int]:
    """``max_state_tokens`` / ``max_action_tokens`` for a run: the flags where given, else those
    the starting policy was trained at (a policy continued at other lengths sees other token
    ids; for DPO its stored reference log-probs would then not be its own), else the env's
    defaults."""
    from rl_app.policy.checkpoint import TOKEN_LENGTH_KEYS, saved_token_lengths

    lengths = {key: getattr(args, key) for key in TOKEN_LENGTH_KEYS}
    saved = saved_token_lengths(init_checkpoint) if init_checkpoint and None in lengths.values() else {}
    defaults = {"max_state_tokens": DEFAULT_MAX_STATE_TOKENS, "max_action_tokens": DEFAULT_MAX_ACTION_TOKENS}
    return {key: int(value) if value is not None else saved.get(key, defaults[key]) for key, value in lengths.items()}


def _row(i: int, result: dict, metric_keys: Sequence[str]) -> dict[str, Any]:
    learner = result["learners"]["default_policy"]
    row = {"iteration": i, **{k: float(learner[k]) for k in metric_keys if k in learner},
           LEARNER_SECONDS: float(result[LEARNER_SECONDS]), LEARNER_SECONDS_ITER: float(result[LEARNER_SECONDS_ITER]),
           "time_total_s": float(result["time_total_s"])}
    return row


def _line(row: dict[str, Any], metric_keys: Sequence[str]) -> str:
    values = "  ".join(f"{k.split('/')[-1]} {row[k]:.4f}" for k in metric_keys if k in row)
    return (f"iter {row['iteration']:4d}  {values}  learner {row[LEARNER_SECONDS_ITER]:.2f} s "
            f"(total {row[LEARNER_SECONDS]:.1f} s)")


def evaluate_policy_dir(policy_dir: Path, shop: dict[str, Any], *, name: str, split: str, n_goals: int,
                        seed: int, num_workers: int, out: Path) -> dict[str, Any]:
    """Greedy and sampled (seeded) play of a saved policy on the first ``n_goals`` of ``split``;
    per-goal files in ``out/eval_{greedy,sampled}``; returns ``{"eval/greedy": ..., "eval/sampled": ...}``."""
    from rl_app.agents.specs import AgentSpec
    from rl_app.eval.evaluate import evaluate
    from rl_app.shop.config import ShopConfig, load_shop

    goals = list(load_shop(ShopConfig.from_dict(shop)).goals.indices(split))[:n_goals]
    results: dict[str, Any] = {}
    for mode, greedy in (("greedy", True), ("sampled", False)):
        spec = AgentSpec(name=f"{name}:{mode}", kind="policy", checkpoint=str(policy_dir), greedy=greedy, seed=seed)
        result = evaluate(spec, shop, split=split, goal_indices=goals, num_workers=num_workers,
                          out_dir=out / f"eval_{mode}")
        results[f"eval/{mode}"] = {**result.metrics(), "goals": len(goals), "split": split, "seed": seed,
                                   "wall_s": result.wall_s}
        print(f"eval {mode:>7} on the first {len(goals)} {split} goals: {result.line()}")
    return results


def heldout_accuracy(policy_dir: Path, data: str) -> dict[str, Any]:
    """Greedy choice accuracy of a saved policy per decision type on held-out demonstrations, printed."""
    from rl_app.eval.diagnostics import DECISION_TYPES, accuracy_key, decision_accuracy, read_steps
    from rl_app.policy.choice_policy import ChoicePolicy

    steps = read_steps(Path(data))
    result = decision_accuracy(ChoicePolicy.from_checkpoint(policy_dir), steps["state"], steps["candidate_texts"],
                               steps["chosen"], candidates=steps["candidates"])
    print("held-out accuracy: " + ", ".join(f"{kind} {result[accuracy_key(kind)]:.3f}"
                                            for kind in ("all", *DECISION_TYPES) if accuracy_key(kind) in result))
    return result


def run(config, args: argparse.Namespace, *, name: str, metric_keys: Sequence[str],
        extra_summary: Optional[dict[str, Any]] = None) -> int:
    """Train ``config`` as the parsed ``args`` say, save the checkpoint and policy, evaluate."""
    import ray

    from rl_app.data.io import parquet_files
    from rl_app.shop.config import ShopConfig, load_shop

    # What the user gave is checked before Ray starts and before anything is written.
    if args.iterations < 1:
        raise InputError("--iterations must be >= 1")
    for path in [*args.data, *([args.heldout] if getattr(args, "heldout", None) else [])]:
        parquet_files(Path(path))
    out = Path(args.out).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; pass a directory")
    if args.catalogue is not None:
        shop = {"catalogue": args.catalogue, "data_dir": args.data_dir, "synthetic_products": args.synthetic_products}
    else:
        shop = shop_of_data(args.data) or {"catalogue": "synthetic", "synthetic_products": args.synthetic_products}
    load_shop(ShopConfig.from_dict(shop))
    out.mkdir(parents=True, exist_ok=True)
    if not ray.is_initialized():
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)

    t0 = time.perf_counter()
    algo = config.build_algo()
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = []
    try:
        with (out / "metrics.jsonl").open("w") as log:
            for i in range(1, args.iterations + 1):
                row = _row(i, algo.train(), metric_keys)
                print(_line(row, metric_keys), flush=True)
                log.write(json.dumps(row) + "\n")
                rows.append(row)
                if args.time_budget_s is not None and time.perf_counter() - t0 >= args.time_budget_s:
                    print(f"time budget {args.time_budget_s:.0f} s reached after {i} iterations")
                    break
        train_s = time.perf_counter() - t0
        checkpoint = algo.save_to_path(str(out / "checkpoint"))
        algo.get_choice_policy().save_pretrained(out / "policy")
    finally:
        algo.stop()
    summary: dict[str, Any] = {
        "algorithm": name, "data": [str(Path(p).absolute()) for p in args.data], "iterations": len(rows),
        "batch_size": args.batch_size, "updates_per_iteration": args.updates_per_iteration,
        "num_learners": args.num_learners, "lr": config.lr, "seed": args.seed,
        "gradient_updates": len(rows) * args.updates_per_iteration,
        # train_wall_s: the train() calls (after the build); learner_s: inside LearnerGroup.update.
        "build_s": build_s, "train_wall_s": train_s, "frozen_cache": getattr(algo, "frozen_cache_dir", None),
        "frozen_cache_s": getattr(algo, "frozen_cache_s", 0.0), "learner_s": rows[-1][LEARNER_SECONDS],
        "final": rows[-1], "checkpoint": checkpoint, "policy": str(out / "policy"), "shop": shop,
        **(extra_summary or {}),
    }
    print(f"trained {len(rows)} iterations x {args.updates_per_iteration} updates x batch {args.batch_size} "
          f"in {train_s:.1f} s wall (learner {summary['learner_s']:.1f} s, build {build_s:.1f} s); "
          f"saved {checkpoint} and {out / 'policy'}")

    if getattr(args, "heldout", None):
        summary["heldout"] = heldout_accuracy(out / "policy", args.heldout)
    if args.eval_goals > 0:
        summary.update(evaluate_policy_dir(out / "policy", shop, name=name, split=args.eval_split,
                                           n_goals=args.eval_goals, seed=args.eval_seed,
                                           num_workers=args.eval_workers, out=out))
    (out / "eval.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0
