"""The report of an experiment directory (finished or partial): tables, CSV, plots.

    python -m rl_app.tune analyze results/dpo_vs_ppo-smoke

Reads Tune's per-trial ``params.json`` / ``result.json`` and the run's ``experiment.json``;
writes into the directory:

* ``report.md``: per arm, score and success rate at the end of the budget (mean over seeds
  and a 95% Student-t interval; one seed gives no interval), learner seconds and the budget
  clock's seconds (``train_s``: GPU seconds when trials hold a GPU, else CPU seconds or CPU
  wall seconds as ``tune.budget_unit`` says; the table's header names which), beside the IL
  start every arm shares.
* ``summary.csv`` (that table), ``trials.csv`` (one row per trial), ``curves.csv`` (every
  evaluation point).
* ``success_vs_train_s.png`` and ``score_vs_train_s.png``: one line per arm over the budget
  clock (mean at each evaluation point over the same seeds the table averages, starting from
  the IL agent at 0 s) with a band from the lowest to the highest seed.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rl_app.data.files import atomic_write, atomic_write_text
from rl_app.errors import InputError
from rl_app.experiments.spec import EVAL_SECONDS, TRAIN_SECONDS as TRAIN_S

__all__ = ["load_trials", "summarize", "write_report", "mean_ci"]

SCORE, SUCCESS = "eval/score", "eval/success_rate"
# rl_app.algorithms.offline.LEARNER_SECONDS (not imported: analysis runs without RLlib's import cost)
LEARNER_S = "time/learner_s"
CONFIDENCE = 0.95


def mean_ci(values) -> tuple[float, float, float]:
    """Mean and the 95% Student-t interval of the mean (NaN bounds for fewer than 2 values)."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def _read_results(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by an interruption
                    continue
    return rows


def load_trials(exp_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per trial, one row per evaluation point) from Tune's trial directories."""
    trials, curves = [], []
    for params_path in sorted(Path(exp_dir).glob("*/params.json")):
        params = json.loads(params_path.read_text())
        label = str(params.get("arm", params_path.parent.name))
        arm = params.get("arms", {}).get(label, {})
        seed = int(params.get("seed", 0))
        rows = _read_results(params_path.parent / "result.json")
        evals = [r for r in rows if SCORE in r]
        last, last_eval = (rows[-1] if rows else {}), (evals[-1] if evals else {})
        trials.append({
            "arm": label, "algorithm": arm.get("algorithm"), "seed": seed, "trial": params_path.parent.name,
            "complete": bool(last.get("done", False)), "iterations": last.get("iteration", 0),
            "score": last_eval.get(SCORE, math.nan), "success_rate": last_eval.get(SUCCESS, math.nan),
            "train_s": last.get(TRAIN_S, math.nan), "learner_s": last.get(LEARNER_S, math.nan),
            "eval_s": last.get(EVAL_SECONDS, math.nan), "resumed": last.get("resumed", 0),
            "env_runner_nodes": last.get("env_runner_nodes", math.nan),
            "train_return": last.get("train/episode_return_mean", math.nan),
            "dpo_margin": last.get("rewards/margins", math.nan),
        })
        for i, r in enumerate(evals):
            curves.append({"arm": label, "seed": seed, "point": i + 1, "train_s": r.get(TRAIN_S),
                           "learner_s": r.get(LEARNER_S), "score": r[SCORE], "success_rate": r.get(SUCCESS)})
    return pd.DataFrame(trials), pd.DataFrame(curves)


def summarize(trials: pd.DataFrame) -> pd.DataFrame:
    """Per arm: seeds, complete seeds, score/success mean and 95% interval, seconds; over the
    complete seeds when there are any (else over the partial ones, for a report mid-run)."""
    rows = []
    for arm, group in trials.groupby("arm", sort=False):
        complete = group[group["complete"]]
        if len(complete):  # an interrupted seed's last evaluation is not at the end of its budget
            group = complete
        score, success = mean_ci(group["score"]), mean_ci(group["success_rate"])
        rows.append({"arm": arm, "seeds": int(len(trials[trials["arm"] == arm])), "complete": int(len(complete)),
                     "score": score[0], "score_ci_low": score[1], "score_ci_high": score[2],
                     "success_rate": success[0], "success_ci_low": success[1], "success_ci_high": success[2],
                     "learner_s": float(group["learner_s"].mean()), "train_s": float(group["train_s"].mean()),
                     "eval_s": float(group["eval_s"].mean())})
    return pd.DataFrame(rows)


def _interval(mean: float, low: float, high: float, scale: float = 1.0, digits: int = 1) -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isnan(low):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def _plot(curves: pd.DataFrame, il: dict[str, Any], metric: str, ylabel: str, xlabel: str, path: Path,
          scale: float = 1.0) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    start = il.get(f"eval/{metric}")  # the IL agent every arm starts from, at 0 s
    for arm, group in curves.groupby("arm", sort=False):
        by_point = group.groupby("point")
        x = by_point["train_s"].mean().to_numpy()
        mean, low, high = (by_point[metric].mean().to_numpy() * scale, by_point[metric].min().to_numpy() * scale,
                           by_point[metric].max().to_numpy() * scale)
        if start is not None:
            x, mean = np.r_[0.0, x], np.r_[start * scale, mean]
            low, high = np.r_[start * scale, low], np.r_[start * scale, high]
        ax.plot(x, mean, marker="o", label=f"{arm} ({group['seed'].nunique()} seeds)")
        ax.fill_between(x, low, high, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    top = max(float(np.nanmax(curves[metric].to_numpy())) * scale if len(curves) else 0.0,
              (start or 0.0) * scale)
    ax.set_ylim(0.0, max(1.05 * top, 1.0))  # rates and scores are >= 0; an all-zero curve keeps a 0..1 axis
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return True


def _table_seeds(curves: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """The evaluation points of the seeds :func:`summarize` averages (an arm's complete seeds
    when it has any), so a curve ends where the table's row is."""
    keep = set()
    for arm, group in trials.groupby("arm", sort=False):
        complete = group[group["complete"]]
        keep |= {(arm, seed) for seed in (complete if len(complete) else group)["seed"]}
    mask = [(a, s) in keep for a, s in zip(curves["arm"], curves["seed"])]
    return curves[mask]


def _pairs_not_made(stage: dict) -> str:
    if stage.get("rejected", "sample") == "top":  # rl_app.data.pairs: no ties, only states without a second candidate
        return f"rejected = pi_ref's top other action; {stage.get('dropped_ties', 0)} without one"
    return f"{stage.get('dropped_ties', 0)} ties dropped"


def write_report(exp_dir: str | os.PathLike) -> Path:
    """Write report.md, summary.csv, trials.csv, curves.csv and the plots; returns report.md."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: no such experiment directory")
    meta_path = exp_dir / "experiment.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    trials, curves = load_trials(exp_dir)
    if trials.empty:
        raise InputError(f"{exp_dir}: no Tune trials found (no */params.json)")
    summary = summarize(trials)
    order = [arm["label"] for arm in meta.get("arms", [])]  # the experiment's own arm order
    if order:
        rank = {label: i for i, label in enumerate(order)}
        summary = summary.sort_values("arm", key=lambda col: col.map(lambda a: rank.get(a, len(rank))),
                                      kind="stable").reset_index(drop=True)
    for frame, name in ((summary, "summary.csv"), (trials, "trials.csv"), (curves, "curves.csv")):
        atomic_write_text(exp_dir / name, frame.to_csv(index=False))

    settings = meta.get("settings", {})
    prepared = meta.get("prepared", {})
    il = dict(prepared.get("il_eval", {}))
    gpus = float(settings.get("gpus_per_trial", 0) or 0)
    cpu_budget = settings.get("budget_unit", "wall") == "cpu"
    seconds = "GPU s" if gpus else ("CPU s (trial + env runners)" if cpu_budget else "CPU wall s (no GPU)")
    unit = ("CPU seconds of the trial process and its env runners in train() (build not charged)" if cpu_budget
            else "training wall time")
    split, goals = settings.get("eval_split", "?"), settings.get("eval_goals", "?")
    greedy = "greedy" if settings.get("eval_greedy", True) else "sampled"
    lines = [f"# {meta.get('experiment', exp_dir.name)} ({meta.get('preset', '?')} preset)", ""]
    lines.append(f"{meta.get('machine', 'machine: not recorded')}. Each trial: {settings.get('cpus_per_trial', '?')} CPU, "
                 f"{gpus:g} GPU, budget {settings.get('budget_s', '?')} s of {unit}; "
                 f"evaluation: first {goals} {split} goals, {greedy}, at the end of the budget. "
                 f"Intervals: 95% Student-t over seeds. Shared preparation (not charged to trials): "
                 f"{_prep_seconds(prepared):.0f} s.")
    if meta.get("skipped_arms"):
        lines.append(f"Skipped arms (no data; see prepared.json): {', '.join(meta['skipped_arms'])}.")
    lines += ["", f"| arm | seeds (complete) | score | success % | learner s | {seconds} |",
              "|---|---|---|---|---|---|"]
    if il:
        lines.append(f"| IL start | - | {il.get(SCORE, math.nan):.1f} | {100 * il.get(SUCCESS, math.nan):.1f} | "
                     f"{prepared.get('stages', {}).get('il', {}).get('learner_s', math.nan):.0f} (IL) | - |")
    for row in summary.itertuples():
        lines.append(f"| {row.arm} | {row.seeds} ({row.complete}) | "
                     f"{_interval(row.score, row.score_ci_low, row.score_ci_high)} | "
                     f"{_interval(row.success_rate, row.success_ci_low, row.success_ci_high, 100.0)} | "
                     f"{row.learner_s:.0f} | {row.train_s:.0f} |")
    stages = prepared.get("stages", {})
    gen = stages.get("generated")
    if gen:
        lines += ["", f"Generated trajectories: kept {gen.get('kept')} of {gen.get('attempts')} attempts "
                      f"(yield {100 * gen.get('yield', 0):.1f}%, reward >= {gen.get('min_reward')})."]
    pair_lines = [f"{k[len('pairs_'):]}: {v.get('pairs')} pairs"
                  + (f" from the {v.get('states')} steps of successful episodes" if v.get("only_success") else "")
                  + f" ({_pairs_not_made(v)})"
                  for k, v in stages.items() if k.startswith("pairs_")]
    if pair_lines:
        lines.append("Preference pairs: " + "; ".join(pair_lines) + ".")
    plots = []
    if not curves.empty:
        xlabel = f"training {seconds} per trial"
        for metric, ylabel, scale in (("success_rate", "success rate (%)", 100.0), ("score", "score", 1.0)):
            path = exp_dir / f"{metric.split('_')[0]}_vs_train_s.png"
            if _plot(_table_seeds(curves, trials), il, metric, ylabel, xlabel, path, scale):
                plots.append(path.name)
    if plots:
        lines += [""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "Files: summary.csv, trials.csv, curves.csv" + (", " + ", ".join(plots) if plots else "") + "."]
    report = exp_dir / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    return report


def _prep_seconds(prepared: dict[str, Any]) -> float:
    return float(sum(v.get("wall_s", 0.0) for v in prepared.get("stages", {}).values()))

