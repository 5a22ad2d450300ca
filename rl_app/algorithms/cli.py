"""Shared command line of the trainers (IL, DPO, PPO): train to a budget, save, evaluate.

Each trainer's flags come from its settings (:mod:`rl_app.settings`); :func:`add_offline_arguments`
adds the offline trainers' (IL, DPO) common ones. :func:`train_and_save` then trains with the
one budgeted loop (:mod:`rl_app.algorithms.budgeted_training`) for ``--iterations`` (or until
``--time-budget-s``), writes ``OUT/checkpoint`` (the RLlib Algorithm), ``OUT/policy``
(``ChoicePolicy.save_pretrained``, loadable without Ray) and ``OUT/metrics.jsonl`` (one line
per iteration); :func:`run` (IL, DPO) adds ``OUT/eval.json`` and plays the first
``--eval-goals`` goals of ``--eval-split`` greedily and by sampling (seeded) with
:func:`rl_app.eval.evaluate.evaluate` (per-goal files in ``OUT/eval_greedy``, ``OUT/eval_sampled``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from rl_app.algorithms.budgeted_training import Budget, BudgetedTraining
from rl_app.algorithms.offline import LEARNER_SECONDS, LEARNER_SECONDS_ITER
from rl_app.data.files import SUMMARY_FILE, read_summary
from rl_app.errors import InputError
from rl_app.shop.config import add_shop_arguments, shop_from_args
from rl_app.settings import BudgetSettings, EvalSettings, ObservationSettings, Settings

__all__ = ["add_offline_arguments", "token_lengths", "shop_of_data", "command_shop", "init_ray", "budget_of",
           "Trained", "train_and_save", "run", "run_args", "evaluate_policy_dir", "heldout_accuracy"]


def shop_of_data(paths: Sequence[str]) -> Optional[dict[str, Any]]:
    """The ``shop_config`` recorded in a data set's ``SUMMARY_FILE`` (rl_app.data.demos), if any."""
    for path in paths:
        shop = (read_summary(path) or {}).get("shop_config")
        if shop:
            return dict(shop)
    return None


def add_offline_arguments(ap: argparse.ArgumentParser, settings: type[Settings], *,
                          skip: Sequence[str] = ()) -> None:
    """The offline trainers' flags: data and output, the budget, ``settings``' fields (all but
    ``skip`` and a trial's ``max_iterations``), observations, the evaluation shop, evaluation."""
    ap.add_argument("--data", nargs="+", required=True, help="parquet files or directories")
    ap.add_argument("--out", required=True, help="output directory (checkpoint/, policy/, metrics, eval)")
    own = {f.name for f in dataclasses.fields(settings)}
    BudgetSettings.add_arguments(ap, skip=[name for name in ("iterations",) if name in own])
    settings.add_arguments(ap, skip=("max_iterations", *skip))
    ObservationSettings.add_arguments(ap, skip=skip)
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray started here")
    add_shop_arguments(ap, catalogue=None,
                       catalogue_help=f"evaluation shop (default: the data's, from {SUMMARY_FILE}; else synthetic)")
    EvalSettings.add_arguments(ap, prefix="eval")
    ap.add_argument("--heldout", default=None,
                    help="held-out demonstrations (goals not trained on): greedy choice accuracy per decision type "
                         "(eval/accuracy/<type>) is printed and written to eval.json")


def token_lengths(args: Any, init_checkpoint: Optional[str] = None) -> dict[str, int]:
    """``max_state_tokens`` / ``max_action_tokens`` for a run: the flags where given, else those
    the starting policy was trained at, else the env's defaults (:class:`ObservationSettings`)."""
    return ObservationSettings.from_args(args).token_lengths(init_checkpoint)


def command_shop(args: argparse.Namespace, data: Sequence[str] = ()) -> dict[str, Any]:
    """The shop of a command line: ``--catalogue``'s, else the data's (``_summary.json``), else synthetic."""
    if args.catalogue is None:
        recorded = shop_of_data(data)
        if recorded:
            return recorded
        args = argparse.Namespace(**{**vars(args), "catalogue": "synthetic"})
    return dataclasses.asdict(shop_from_args(args))


def init_ray(num_cpus: Optional[int]) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def budget_of(args: argparse.Namespace, iterations: Optional[int] = None) -> Budget:
    """A command line's budget: ``--iterations`` (or ``iterations``) and ``--time-budget-s``."""
    budget = BudgetSettings.from_args(args)
    iterations = budget.iterations if iterations is None else iterations
    if iterations < 1:
        raise InputError("--iterations must be >= 1")
    return Budget(iterations=int(iterations), seconds=budget.time_budget_s)


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


@dataclass(frozen=True)
class Trained:
    """What :func:`train_and_save` did: one row per iteration, the saved checkpoint, the timings."""

    rows: list[dict[str, Any]]
    checkpoint: str
    build_s: float
    train_s: float
    frozen_cache: Optional[str] = None
    frozen_cache_s: float = 0.0


def train_and_save(config, budget: Budget, out: Path, *, row: Callable[[int, Mapping[str, Any]], dict[str, Any]],
                   line: Callable[[dict[str, Any]], str], save_policy: Callable[[Any, str], None],
                   flush: bool = False) -> Trained:
    """Build ``config``, train it to ``budget`` (each iteration's ``row`` printed as ``line`` and
    written to ``OUT/metrics.jsonl``), save ``OUT/checkpoint`` and, with ``save_policy(algo,
    checkpoint)``, ``OUT/policy``."""
    rows: list[dict[str, Any]] = []
    with BudgetedTraining(config.build_algo, budget) as training:
        with (out / "metrics.jsonl").open("w") as log:
            for step in training:
                rows.append(row(training.state.iteration, step.result))
                print(line(rows[-1]), flush=True)
                log.write(json.dumps(rows[-1]) + "\n")
                if flush:
                    log.flush()
                if step.seconds_spent:
                    print(f"time budget {budget.seconds:.0f} s reached after {training.state.iteration} iterations")
        checkpoint = training.algo.save_to_path(str(out / "checkpoint"))
        save_policy(training.algo, checkpoint)
        algo = training.algo
    return Trained(rows, checkpoint, training.state.build_s, training.state.train_s,
                   getattr(algo, "frozen_cache_dir", None), getattr(algo, "frozen_cache_s", 0.0))


def run(config, *, name: str, metric_keys: Sequence[str], settings, budget: Budget, data: Sequence[str],
        out: str | Path, shop: Optional[Mapping[str, Any]] = None, evaluation: EvalSettings = EvalSettings(),
        heldout: Optional[str] = None, num_cpus: Optional[int] = None,
        extra_summary: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Train an offline trainer's ``config`` (built from ``settings``) on ``data`` to ``budget``, save
    the checkpoint and policy in ``out``, evaluate on ``shop`` (None: the data's, else synthetic) as
    ``evaluation`` says; returns what ``OUT/eval.json`` holds."""
    from rl_app.data.io import parquet_files
    from rl_app.shop.config import ShopConfig, load_shop

    # What the user gave is checked before Ray starts and before anything is written.
    for path in [*data, *([heldout] if heldout else [])]:
        parquet_files(Path(path))
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; pass a directory")
    shop = dict(shop) if shop is not None else shop_of_data(data) or dataclasses.asdict(ShopConfig())
    load_shop(ShopConfig.from_dict(shop))
    out.mkdir(parents=True, exist_ok=True)
    init_ray(num_cpus)

    trained = train_and_save(config, budget, out, row=lambda i, result: _row(i, result, metric_keys),
                             line=lambda row: _line(row, metric_keys),
                             save_policy=lambda algo, _checkpoint: algo.get_choice_policy().save_pretrained(
                                 out / "policy"))
    rows = trained.rows
    summary: dict[str, Any] = {
        "algorithm": name, "data": [str(Path(p).absolute()) for p in data], "iterations": len(rows),
        "batch_size": settings.batch_size, "updates_per_iteration": settings.updates_per_iteration,
        "num_learners": settings.num_learners, "lr": config.lr, "seed": settings.seed,
        "gradient_updates": len(rows) * settings.updates_per_iteration,
        # train_wall_s: the train() calls (after the build); learner_s: inside LearnerGroup.update.
        "build_s": trained.build_s, "train_wall_s": trained.train_s, "frozen_cache": trained.frozen_cache,
        "frozen_cache_s": trained.frozen_cache_s, "learner_s": rows[-1][LEARNER_SECONDS],
        "final": rows[-1], "checkpoint": trained.checkpoint, "policy": str(out / "policy"), "shop": shop,
        **(extra_summary or {}),
    }
    print(f"trained {len(rows)} iterations x {settings.updates_per_iteration} updates x batch {settings.batch_size} "
          f"in {trained.train_s:.1f} s wall (learner {summary['learner_s']:.1f} s, build {trained.build_s:.1f} s); "
          f"saved {trained.checkpoint} and {out / 'policy'}")

    if heldout:
        summary["heldout"] = heldout_accuracy(out / "policy", heldout)
    if evaluation.goals > 0:
        summary.update(evaluate_policy_dir(out / "policy", shop, name=name, split=evaluation.split,
                                           n_goals=evaluation.goals, seed=evaluation.seed,
                                           num_workers=evaluation.workers, out=out))
    (out / "eval.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def run_args(config, args: argparse.Namespace, **kwargs: Any) -> dict[str, Any]:
    """:func:`run` with what :func:`add_offline_arguments`' flags give (data, out, shop, evaluation)."""
    return run(config, data=args.data, out=args.out,
               shop=command_shop(args, args.data),
               evaluation=EvalSettings.from_args(args, prefix="eval"), heldout=args.heldout, num_cpus=args.num_cpus,
               **kwargs)
