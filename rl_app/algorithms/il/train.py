"""Train an IL (behaviour-cloning) choice policy from trajectory parquet, save it, evaluate it.

    python -m rl_app.data.demos --num-goals 200 --out runs/demos            # synthetic shop
    python -m rl_app.algorithms.il.train --data runs/demos --encoder tiny --iterations 20 --out runs/il

Writes ``OUT/checkpoint`` (the RLlib Algorithm, ``algo.save_to_path``), ``OUT/policy``
(``ChoicePolicy.save_pretrained``: weights + config + tokenizer, loadable without Ray),
``OUT/metrics.jsonl`` (one line per iteration) and ``OUT/eval.json``; then plays the first
``--eval-goals`` goals of ``--eval-split`` greedily and by sampling (seeded) with
:func:`rl_app.eval.evaluate.evaluate` (per-goal files in ``OUT/eval_greedy``, ``OUT/eval_sampled``).

The shop used for evaluation is the one the data was generated on (read from the data
set's ``_summary.json``) unless ``--catalogue`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = ["main", "build_config", "shop_of_data"]

# Learning rates: a randomly initialised tiny encoder has nothing to forget; pretrained
# BERTs are fine-tuned at the usual 1e-4 or below.
TINY_LR = 1e-3
PRETRAINED_LR = 1e-4


def shop_of_data(paths: Sequence[str]) -> Optional[dict[str, Any]]:
    """The ``shop_config`` recorded in a data set's ``_summary.json`` (rl_app.data.demos), if any."""
    for path in paths:
        summary = Path(path) / "_summary.json"
        if summary.is_file():
            shop = json.loads(summary.read_text()).get("shop_config")
            if shop:
                return dict(shop)
    return None


def build_config(args: argparse.Namespace):
    from rl_app.algorithms.il.il import ILConfig

    model_config: dict[str, Any] = {"encoder": args.encoder}
    if args.init_checkpoint:
        model_config = {"init_checkpoint": str(Path(args.init_checkpoint).absolute())}
    lr = args.lr if args.lr is not None else (TINY_LR if args.encoder == "tiny" else PRETRAINED_LR)
    return (ILConfig()
            .dataset(paths=args.data, updates_per_iteration=args.updates_per_iteration)
            .observations(k_max=args.k_max, max_state_tokens=args.max_state_tokens,
                          max_action_tokens=args.max_action_tokens)
            .rl_module(model_config=model_config)
            .training(lr=lr, train_batch_size_per_learner=args.batch_size)
            .learners(num_learners=args.num_learners, num_gpus_per_learner=args.gpus_per_learner)
            .debugging(seed=args.seed))


def _learner_line(i: int, result: dict) -> tuple[str, dict[str, Any]]:
    from rl_app.algorithms.il.il_torch_learner import ACCURACY, BC_LOSS, ENTROPY
    from rl_app.algorithms.offline import LEARNER_SECONDS, LEARNER_SECONDS_ITER

    learner = result["learners"]["default_policy"]
    row = {"iteration": i, BC_LOSS: float(learner[BC_LOSS]), ACCURACY: float(learner[ACCURACY]),
           ENTROPY: float(learner[ENTROPY]), LEARNER_SECONDS: float(result[LEARNER_SECONDS]),
           LEARNER_SECONDS_ITER: float(result[LEARNER_SECONDS_ITER]), "time_total_s": float(result["time_total_s"])}
    line = (f"iter {i:4d}  loss {row[BC_LOSS]:.4f}  acc {row[ACCURACY]:.3f}  entropy {row[ENTROPY]:.3f}  "
            f"learner {row[LEARNER_SECONDS_ITER]:.2f} s (total {row[LEARNER_SECONDS]:.1f} s)")
    return line, row


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rl_app.algorithms.il.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True, help="trajectory parquet files or directories")
    ap.add_argument("--out", required=True, help="output directory (checkpoint/, policy/, metrics, eval)")
    ap.add_argument("--encoder", default="minilm", help="minilm (default), tiny, or a BERT name/path")
    ap.add_argument("--init-checkpoint", default=None, help="start from a saved policy (overrides --encoder)")
    ap.add_argument("--iterations", type=int, default=20, help="train() calls")
    ap.add_argument("--time-budget-s", type=float, default=None, help="stop earlier once training took this long")
    ap.add_argument("--updates-per-iteration", type=int, default=10, help="gradient updates per learner per train()")
    ap.add_argument("--batch-size", type=int, default=32, help="states per update per learner")
    ap.add_argument("--lr", type=float, default=None, help=f"default {TINY_LR} for tiny, else {PRETRAINED_LR}")
    ap.add_argument("--num-learners", type=int, default=0, help="0 = learn in this process")
    ap.add_argument("--gpus-per-learner", type=float, default=0)
    ap.add_argument("--k-max", type=int, default=64)
    ap.add_argument("--max-state-tokens", type=int, default=512)
    ap.add_argument("--max-action-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray started here")
    ap.add_argument("--catalogue", choices=["synthetic", "webshop"], default=None,
                    help="evaluation shop (default: the data's, from _summary.json; else synthetic)")
    ap.add_argument("--data-dir", default=None, help="real WebShop data (with --catalogue webshop)")
    ap.add_argument("--synthetic-products", type=int, default=1000)
    ap.add_argument("--eval-split", choices=["test", "dev"], default="test")
    ap.add_argument("--eval-goals", type=int, default=200, help="first N goals of the split; 0 = no evaluation")
    ap.add_argument("--eval-seed", type=int, default=0, help="seed of the sampled evaluation")
    ap.add_argument("--eval-workers", type=int, default=0, help="Ray tasks playing the goals (0 = here)")
    args = ap.parse_args(argv)
    if args.iterations < 1:
        ap.error("--iterations must be >= 1")

    import ray

    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    if args.catalogue is not None:
        shop = {"catalogue": args.catalogue, "data_dir": args.data_dir, "synthetic_products": args.synthetic_products}
    else:
        shop = shop_of_data(args.data) or {"catalogue": "synthetic", "synthetic_products": args.synthetic_products}
    config = build_config(args)
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
                line, row = _learner_line(i, algo.train())
                print(line, flush=True)
                log.write(json.dumps(row) + "\n")
                rows.append(row)
                if args.time_budget_s is not None and time.perf_counter() - t0 >= args.time_budget_s:
                    print(f"time budget {args.time_budget_s:.0f} s reached after {i} iterations")
                    break
        train_s = time.perf_counter() - t0
        checkpoint = algo.save_to_path(str(out / "checkpoint"))
        policy = algo.get_choice_policy()
        policy.save_pretrained(out / "policy")
    finally:
        algo.stop()
    summary: dict[str, Any] = {
        "data": [str(Path(p).absolute()) for p in args.data], "encoder": args.encoder,
        "init_checkpoint": args.init_checkpoint, "iterations": len(rows), "batch_size": args.batch_size,
        "updates_per_iteration": args.updates_per_iteration, "num_learners": args.num_learners,
        "lr": config.lr, "gradient_updates": len(rows) * args.updates_per_iteration,
        # train_wall_s: the train() calls (after the build); learner_s: inside LearnerGroup.update.
        "build_s": build_s, "train_wall_s": train_s, "learner_s": rows[-1]["time/learner_s"],
        "final": rows[-1], "checkpoint": checkpoint, "policy": str(out / "policy"), "shop": shop,
    }
    print(f"trained {len(rows)} iterations x {args.updates_per_iteration} updates x batch {args.batch_size} "
          f"in {train_s:.1f} s wall (learner {summary['learner_s']:.1f} s, build {build_s:.1f} s); "
          f"saved {checkpoint} and {out / 'policy'}")

    if args.eval_goals > 0:
        from rl_app.env.config import ShopConfig, load_shop
        from rl_app.eval.agents import AgentSpec
        from rl_app.eval.evaluate import evaluate

        goals = list(load_shop(ShopConfig.from_dict(shop)).goals.indices(args.eval_split))[: args.eval_goals]
        for mode, greedy in (("greedy", True), ("sampled", False)):
            spec = AgentSpec(name=f"il:{mode}", kind="policy", checkpoint=str(out / "policy"), greedy=greedy,
                             seed=args.eval_seed)
            result = evaluate(spec, shop, split=args.eval_split, goal_indices=goals, num_workers=args.eval_workers,
                              out_dir=out / f"eval_{mode}")
            summary[f"eval/{mode}"] = {**result.metrics(), "goals": len(goals), "split": args.eval_split,
                                       "seed": args.eval_seed, "wall_s": result.wall_s}
            print(f"eval {mode:>7} on the first {len(goals)} {args.eval_split} goals: {result.line()}")
    (out / "eval.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
