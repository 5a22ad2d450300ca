"""The Tune trial: one DPO or PPO run under a wall-clock budget, evaluated along the way.

:func:`run_trial` is a Tune function trainable. It builds the RLlib algorithm (DPO from the
prepared pairs, or PPO on the env), both starting from the same IL policy, and calls
``train()`` until ``budget_s`` seconds of its own training wall time have passed (build,
sampling or data loading, and updates all count: DECISIONS.md 8). At every
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

from rl_app.algorithms.offline import LEARNER_SECONDS, LEARNER_SECONDS_ITER
from rl_app.experiments.spec import EVAL_SECONDS, TRAIN_SECONDS

__all__ = ["run_trial", "flat_trial", "evaluate_checkpoint", "confine_ray_data_to_trial", "trial_resources",
           "build_algorithm_config"]

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
    prepared, settings = trial["prepared"], trial["settings"]
    env, seed = prepared["env"], int(trial["seed"])
    gpus = float(settings["gpus_per_trial"])
    if trial["algorithm"] == "dpo":
        from rl_app.algorithms.dpo import DPOConfig

        dpo = {**trial["dpo"], **trial.get("overrides", {})}
        config = (DPOConfig()
                  .dataset(paths=[prepared["pairs"][trial["data"]]],
                           updates_per_iteration=int(dpo.get("updates_per_iteration", 10)))
                  .observations(k_max=int(env.get("k_max", 64)), max_state_tokens=int(env.get("max_state_tokens", 512)),
                                max_action_tokens=int(env.get("max_action_tokens", 32)),
                                layout=env.get("observation_layout", "text"),
                                frozen_cache=env.get("observation_layout", "text") == "segments")
                  .rl_module(model_config={"init_checkpoint": prepared["il_policy"]})
                  .dpo(beta=float(dpo.get("beta", 0.1)), loss_type=dpo.get("loss_type", "sigmoid"),
                       label_smoothing=float(dpo.get("label_smoothing", 0.0)),
                       nll_coeff=float(dpo.get("nll_coeff", 0.0)))
                  .training(train_batch_size_per_learner=int(dpo.get("batch_size", 32)))
                  # the learner runs in the trial process, on the trial's GPU when it has one
                  .learners(num_learners=0, num_gpus_per_learner=gpus)
                  .debugging(seed=seed))
        if "lr" in dpo:
            config.training(lr=float(dpo["lr"]))
        return config
    if trial["algorithm"] == "ppo":
        from rl_app.algorithms.ppo import WebShopPPOConfig

        ppo = {**trial["ppo"], **trial.get("overrides", {})}
        # the trial's other CPU bundles hold the env runners (same resources as DPO's trial)
        runners = int(ppo.get("num_env_runners", max(0, int(settings["cpus_per_trial"]) - 1)))
        # env runners start from the demonstrations' stored frozen rows (cached-encoder mode)
        cache = {"frozen_cache": prepared["frozen_cache"]} if prepared.get("frozen_cache") else {}
        config = (WebShopPPOConfig()
                  .webshop(env_config={**env, "split": "train"}, model_config=cache,
                           init_checkpoint=prepared["il_policy"])
                  .env_runners(num_env_runners=runners, num_envs_per_env_runner=int(ppo.get("envs_per_runner", 1)))
                  .training(train_batch_size_per_learner=int(ppo.get("train_batch", 256)),
                            minibatch_size=int(ppo.get("minibatch", 32)), num_epochs=int(ppo.get("epochs", 2)),
                            lr=float(ppo.get("lr", 1e-5)), entropy_coeff=float(ppo.get("entropy", 0.01)))
                  .learners(num_learners=0, num_gpus_per_learner=gpus)
                  .debugging(seed=seed))
        return config
    raise ValueError(f"unknown trial algorithm {trial['algorithm']!r} (dpo or ppo)")


def evaluate_checkpoint(checkpoint: str | Path, *, shop: Mapping[str, Any], env: Mapping[str, Any], split: str,
                        n_goals: int, greedy: bool, seed: int, label: str, out: Path,
                        frozen_cache: Optional[str] = None, keep_rows: Optional[str] = None) -> dict[str, float]:
    """Play the first ``n_goals`` goals of ``split`` with a saved policy, in this process,
    with the experiment's episode settings (max_steps, k_max, action history).

    ``frozen_cache``: stored frozen rows a cached-encoder policy starts from. ``keep_rows``: a
    cache root where the rows this evaluation had to encode are stored (as one more cache,
    named after the split and goals), so later evaluations on these goals read them."""
    from rl_app.data.frozen_cache import load_into_policy, save_memo_rows
    from rl_app.env.config import ShopConfig, load_shop
    from rl_app.env.text_env import TextEnvConfig
    from rl_app.eval.agents import AgentSpec
    from rl_app.eval.evaluate import evaluate
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.policy.frozen_rows import FrozenRows

    goals = list(load_shop(ShopConfig.from_dict(dict(shop))).goals.indices(split))[:n_goals]
    text = {k: env[k] for k in ("k_max", "num_prev_actions") if k in env}  # the policy picks its own layout
    spec = AgentSpec(name=label, kind="policy", checkpoint=str(checkpoint), greedy=greedy, seed=seed,
                     frozen_cache=frozen_cache)
    policy = ChoicePolicy.from_checkpoint(str(checkpoint))
    load_into_policy(policy, frozen_cache)
    frozen = getattr(policy.model, "frozen", None)
    known = set(frozen.memo) if isinstance(frozen, FrozenRows) else set()
    result = evaluate(spec, dict(shop), split=split, goal_indices=goals, max_steps=int(env.get("max_steps", 20)),
                      env_config=TextEnvConfig(**text), out_dir=out, policy=policy)
    if keep_rows is not None and isinstance(frozen, FrozenRows):
        save_memo_rows(frozen, keep_rows, policy.observation_encoder(int(env.get("k_max", 64))),
                       {"checkpoint": str(checkpoint)}, name=f"{split}_{len(goals)}", skip=known)
    return {**result.metrics(), "goals": len(goals)}


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


def _cpu_clock(algo):
    """CPU seconds of this process plus its remote env runners (PPO's sampling), as a clock."""
    group = getattr(algo, "env_runner_group", None)
    remote = group is not None and group.num_remote_env_runners() > 0

    def now() -> float:
        seconds = time.process_time()
        if remote:
            seconds += sum(group.foreach_env_runner(lambda _runner: time.process_time(), local_env_runner=False))
        return seconds

    return now


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

    budget_s, eval_every_s = float(trial["settings"]["budget_s"]), float(trial["settings"]["eval_every_s"])
    # an optional cap on train() calls (the paper's "3,000 DPO steps"); the budget still applies
    max_iterations = int({**trial[trial["algorithm"]], **trial.get("overrides", {})}.get("max_iterations", 0) or 0)
    state: dict[str, Any] = {"train_s": 0.0, "learner_s": 0.0, "eval_s": 0.0, "build_s": 0.0, "iteration": 0,
                             "next_eval_s": eval_every_s, "evaluations": 0, "resumed": 0}
    cpu_budget = trial["settings"].get("budget_unit", "wall") == "cpu"
    start = time.perf_counter()
    if trial["algorithm"] == "dpo":
        confine_ray_data_to_trial()
    algo = build_algorithm_config(trial).build_algo()
    clock = _cpu_clock(algo) if cpu_budget else time.perf_counter
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # Tuner.restore: carry on from the last evaluation point
        with checkpoint.as_directory() as directory:
            algo.restore_from_path(str(Path(directory) / ALGO_DIR))
            state = json.loads((Path(directory) / STATE_FILE).read_text())
        state["resumed"] += 1
    state["build_s"] += time.perf_counter() - start
    if not cpu_budget:  # the wall clock counts the build (DECISIONS.md 8)
        state["train_s"] += time.perf_counter() - start
    nodes = _env_runner_nodes(algo)
    work = Path(tempfile.mkdtemp(prefix="rl_app_trial_"))
    try:
        while True:
            start = clock()
            result = algo.train()
            state["train_s"] += clock() - start
            state["learner_s"] += float(result.get(LEARNER_SECONDS_ITER, 0.0))
            state["iteration"] += 1
            done = state["train_s"] >= budget_s or 0 < max_iterations <= state["iteration"]
            # Tune's status table shows the first four numbers of a report: the ones a user follows
            # (``eval/*`` itself is only in the reports of evaluation points).
            metrics: dict[str, Any] = {
                "last_eval/score": state.get("score", float("nan")),
                "last_eval/success_rate": state.get("success", float("nan")),
                TRAIN_SECONDS: state["train_s"], "time/budget_left_s": max(0.0, budget_s - state["train_s"]),
                **_iteration_metrics(result, trial["algorithm"]), "iteration": state["iteration"],
                LEARNER_SECONDS: state["learner_s"], "time/build_s": state["build_s"],
                "resumed": state["resumed"], "env_runner_nodes": len(set(nodes)), "done": done}
            if not (done or state["train_s"] >= state["next_eval_s"]):
                metrics[EVAL_SECONDS] = state["eval_s"]
                tune.report(metrics)
                continue
            # An evaluation point: the clock is paused; checkpoint, then play the eval goals.
            eval_start = time.perf_counter()
            while state["next_eval_s"] <= state["train_s"]:
                state["next_eval_s"] += eval_every_s
            state["evaluations"] += 1
            point = work / f"point_{state['evaluations']:04d}"
            algo.save_to_path(str(point / ALGO_DIR))
            metrics.update(_evaluate(point / ALGO_DIR, trial, work / "eval"))
            state["score"], state["success"] = metrics["eval/score"], metrics["eval/success_rate"]
            metrics["last_eval/score"], metrics["last_eval/success_rate"] = state["score"], state["success"]
            state["eval_s"] += time.perf_counter() - eval_start
            metrics[EVAL_SECONDS] = state["eval_s"]
            (point / STATE_FILE).write_text(json.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(point)))
            shutil.rmtree(point, ignore_errors=True)  # Tune has its own copy now
            if done:
                return
    finally:
        algo.stop()
        shutil.rmtree(work, ignore_errors=True)
