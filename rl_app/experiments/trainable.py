"""The Tune trial: one DPO or PPO run under a wall-clock budget, evaluated along the way.

:func:`run_trial` is a Tune function trainable. It builds the RLlib algorithm (DPO from the
prepared pairs, or PPO on the env), both starting from the same IL policy, and calls
``train()`` until ``budget_s`` seconds of its own training wall time have passed (build,
sampling or data loading, and updates all count, as a user waiting for the arm would). At every
``eval_every_s`` of that clock and at the end it pauses the clock, checkpoints the
algorithm (Tune keeps it: an interrupted experiment resumes from there with its clock and
curve), and plays the first ``eval_goals`` goals of ``eval_split`` with the current policy.

Every report starts with what Tune's status table shows (its first four numbers):
``last_eval/score`` and ``last_eval/success_rate`` (the latest evaluation; NaN before the
first), ``time/train_s`` (the budget clock) and ``time/budget_left_s``; then
``time/learner_s`` (learner-only seconds), ``time/eval_s`` and, at evaluation points,
``eval/score`` and ``eval/success_rate``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from rl_app.algorithms.budgeted_training import Budget, BudgetedTraining, TrainingState
from rl_app.algorithms.offline import LEARNER_SECONDS
from rl_app.env.webshop_env import WebShopEnvConfig
from rl_app.eval.evaluate import evaluate_checkpoint
from rl_app.experiments.spec import EVAL_SECONDS, TRAIN_SECONDS
from rl_app.settings import DPOSettings, ObservationSettings, PPOSettings, TuneSettings

__all__ = ["run_trial", "flat_trial", "confine_ray_data_to_trial", "trial_resources", "build_algorithm_config"]

STATE_FILE = "trial_state.json"
ALGO_DIR = "algorithm"
# Learner metrics copied into the trial's reports, when present.
_DPO_KEYS = ("losses/dpo", "losses/nll", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected")
_PPO_KEYS = ("policy_loss", "vf_loss", "entropy", "mean_kl_loss")


def trial_resources(bundles: list[dict[str, float]], strategy: str = "PACK"):
    """The same placement group for every trial (the trial process first)."""
    from ray.tune import PlacementGroupFactory

    return PlacementGroupFactory(bundles, strategy=strategy)


def build_algorithm_config(trial: Mapping[str, Any]):
    """The RLlib config of a trial: DPO on its pair set or PPO on the env, from the IL policy."""
    prepared, tune_settings = trial["prepared"], TuneSettings.from_section(trial["settings"], name="tune")
    env, seed = WebShopEnvConfig.from_dict(prepared["env"]), int(trial["seed"])
    section = {**trial[trial["algorithm"]], **trial.get("overrides", {}), "seed": seed}
    # the learner runs in the trial process, on the trial's GPU when it has one
    gpus = float(tune_settings.gpus_per_trial)
    if trial["algorithm"] == "dpo":
        dpo = DPOSettings.from_section({**section, "num_learners": 0, "gpus_per_learner": gpus}, name="dpo")
        from rl_app.algorithms.dpo.dpo import DPOConfig

        return DPOConfig.from_settings(dpo, data=[prepared["pairs"][trial["data"]]],
                                       init_checkpoint=prepared["il_policy"],
                                       observations=ObservationSettings.of_env(env), layout=env.observation_layout)
    if trial["algorithm"] == "ppo":
        ppo = PPOSettings.from_section(section, name="ppo")
        # the trial's other CPU bundles hold the env runners (same resources as DPO's trial)
        runners = ppo.num_env_runners if ppo.num_env_runners is not None else max(0, tune_settings.cpus_per_trial - 1)
        # env runners start from the demonstrations' stored frozen rows (cached-encoder mode)
        cache = {"frozen_cache": prepared["frozen_cache"]} if prepared.get("frozen_cache") else {}
        from rl_app.algorithms.ppo.config import WebShopPPOConfig

        return WebShopPPOConfig.from_settings(ppo, env_config={**prepared["env"], "split": "train"},
                                              model_config=cache, init_checkpoint=prepared["il_policy"],
                                              num_env_runners=runners, num_gpus_per_learner=gpus)
    raise ValueError(f"unknown trial algorithm {trial['algorithm']!r} (dpo or ppo)")


def _evaluate(checkpoint: Path, trial: Mapping[str, Any], out: Path) -> dict[str, float]:
    prepared, settings = trial["prepared"], trial["settings"]
    return evaluate_checkpoint(checkpoint, shop=prepared["shop"], env=prepared["env"], split=settings["eval_split"],
                               n_goals=int(settings["eval_goals"]), greedy=bool(settings["eval_greedy"]),
                               seed=int(trial["seed"]), label=trial["label"], out=out,
                               frozen_cache=prepared.get("frozen_cache"))


def confine_ray_data_to_trial() -> None:
    """Run this process's Ray Data tasks inside the trial's placement group.

    Ray Data schedules its read and map tasks outside any placement group by default, so a
    DPO trial whose group holds all free CPUs would wait forever for its data (Ray's
    "Ray Data and Tune" note). Confining them to the trial's own CPU bundles keeps the
    trial's resources equal to PPO's (whose env runners use the same bundles) and cannot
    hang. The setting is deprecated for removal in 2027; its warning is silenced here.
    """
    import warnings

    import ray
    from ray.data import DataContext
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = ray.util.get_current_placement_group()
    if group is None:
        return
    strategy = PlacementGroupSchedulingStrategy(group, placement_group_capture_child_tasks=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        context = DataContext.get_current()
        context.scheduling_strategy = strategy
        context.scheduling_strategy_large_args = strategy


def _env_runner_nodes(algo) -> list[str]:
    import ray

    group = getattr(algo, "env_runner_group", None)
    if group is None or group.num_remote_env_runners() == 0:
        return [ray.get_runtime_context().get_node_id()]
    return list(group.foreach_env_runner(lambda _runner: ray.get_runtime_context().get_node_id(),
                                         local_env_runner=False))


def _iteration_metrics(result: Mapping[str, Any], algorithm: str) -> dict[str, Any]:
    learner = result.get("learners", {}).get("default_policy", {})
    keys = _DPO_KEYS if algorithm == "dpo" else _PPO_KEYS
    row = {k: float(learner[k]) for k in keys if k in learner}
    runners = result.get("env_runners", {})
    if "episode_return_mean" in runners:
        row["train/episode_return_mean"] = float(runners["episode_return_mean"])
    if "num_env_steps_sampled_lifetime" in runners:
        row["train/env_steps"] = int(runners["num_env_steps_sampled_lifetime"])
    return row


def flat_trial(config: Mapping[str, Any]) -> dict[str, Any]:
    """Tune's config ``{"arm": label, "arms": {label: TrialSpec dict}, "prepared_root": ...,
    "seed": ..., ...}`` -> the trial's settings at the top level, with the prepared data."""
    from rl_app.experiments.prepare import Prepared

    trial = dict(config)
    trial.update(trial.pop("arms")[trial.pop("arm")])
    trial["prepared"] = Prepared.load(trial.pop("prepared_root")).to_dict()
    return trial


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable (see the module docstring)."""
    from ray import tune

    trial = flat_trial(config)
    settings = TuneSettings.from_section(trial["settings"], name="tune")
    # an optional cap on train() calls (the paper's "3,000 DPO steps"); the budget still applies
    section = {**trial[trial["algorithm"]], **trial.get("overrides", {})}
    algorithm = (DPOSettings if trial["algorithm"] == "dpo" else PPOSettings).from_section(section,
                                                                                         name=trial["algorithm"])
    budget = Budget(iterations=int(algorithm.max_iterations), seconds=float(settings.budget_s),
                    unit=settings.budget_unit, count_build=True, eval_every_s=float(settings.eval_every_s))

    def build():
        if trial["algorithm"] == "dpo":
            confine_ray_data_to_trial()
        return build_algorithm_config(trial).build_algo()

    def restore(algo) -> Optional[TrainingState]:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:  # Tuner.restore: carry on from the last evaluation point
            algo.restore_from_path(str(Path(directory) / ALGO_DIR))
            return TrainingState.from_dict(json.loads((Path(directory) / STATE_FILE).read_text()))

    work = Path(tempfile.mkdtemp(prefix="rl_app_trial_"))
    try:
        with BudgetedTraining(build, budget, restore=restore) as training:
            state, algo = training.state, training.algo
            nodes = _env_runner_nodes(algo)
            for step in training:
                # Tune's status table shows the first four numbers of a report: the ones a user follows
                # (``eval/*`` itself is only in the reports of evaluation points).
                metrics: dict[str, Any] = {
                    "last_eval/score": state.score, "last_eval/success_rate": state.success,
                    TRAIN_SECONDS: state.train_s, "time/budget_left_s": max(0.0, budget.seconds - state.train_s),
                    **_iteration_metrics(step.result, trial["algorithm"]), "iteration": state.iteration,
                    LEARNER_SECONDS: state.learner_s, "time/build_s": state.build_s,
                    "resumed": state.resumed, "env_runner_nodes": len(set(nodes)), "done": step.done}
                if not step.evaluate:
                    metrics[EVAL_SECONDS] = state.eval_s
                    tune.report(metrics)
                    continue
                # An evaluation point: the clock is paused; checkpoint, then play the eval goals.
                eval_start = time.perf_counter()
                point = work / f"point_{state.evaluations:04d}"
                algo.save_to_path(str(point / ALGO_DIR))
                metrics.update(_evaluate(point / ALGO_DIR, trial, work / "eval"))
                state.score, state.success = metrics["eval/score"], metrics["eval/success_rate"]
                metrics["last_eval/score"], metrics["last_eval/success_rate"] = state.score, state.success
                state.eval_s += time.perf_counter() - eval_start
                metrics[EVAL_SECONDS] = state.eval_s
                (point / STATE_FILE).write_text(json.dumps(state.to_dict()))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(point)))
                shutil.rmtree(point, ignore_errors=True)  # Tune has its own copy now
    finally:
        shutil.rmtree(work, ignore_errors=True)
