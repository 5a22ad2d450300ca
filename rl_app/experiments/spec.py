"""What an experiment runs: its trials, their shared budget and resources, from a preset.

A preset's ``tune`` section sets the comparison (DECISIONS.md 8): every trial gets the same
resources (``cpus_per_trial`` CPUs, ``gpus_per_trial`` GPUs, as one placement group) and the
same training budget (``budget_s`` wall seconds from its own start: building the algorithm,
sampling or data loading, and updates; evaluation pauses are not charged and are reported
apart). Sections ``dpo``, ``ppo``, ``generated`` and ``pairs`` set the stages.

Experiments (``EXPERIMENTS``):

* ``dpo_vs_ppo``: DPO on demonstrations, DPO on generated trajectories and PPO, each from
  the same IL checkpoint, ``seeds`` seeds each (the paper's comparison).
* ``data_efficiency``: DPO on the first N demonstration trajectories for N in
  ``tune.data_sizes`` (the paper: 100 generated ~ 1,200 human).
* ``beta_sweep``: DPO on demonstrations over ``tune.betas`` x ``tune.loss_types``, evaluated
  on the dev split (hyperparameters are chosen on dev, DECISIONS.md 9).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Mapping, Optional, Sequence

from rl_app.presets import Preset, PresetError

__all__ = ["EXPERIMENTS", "TrialSpec", "TuneSettings", "trial_specs", "ExperimentName", "TRAIN_SECONDS",
           "EVAL_SECONDS"]

# Trial report keys (STYLE 9) beside RLlib's and the learners' own: the budget clock and the
# evaluation pauses (``time/learner_s`` is rl_app.algorithms.offline.LEARNER_SECONDS).
TRAIN_SECONDS = "time/train_s"
EVAL_SECONDS = "time/eval_s"

ExperimentName = Literal["dpo_vs_ppo", "data_efficiency", "beta_sweep"]
EXPERIMENTS: dict[str, str] = {
    "dpo_vs_ppo": "DPO (demonstrations), DPO (generated trajectories) and PPO from one IL agent, "
                  "same resources and budget",
    "data_efficiency": "DPO success vs number of demonstration trajectories (tune.data_sizes)",
    "beta_sweep": "DPO over tune.betas x tune.loss_types, on the dev split",
}
# Trial kinds: DPO on a pair file or PPO on the env.
Algorithm = Literal["dpo", "ppo"]


@dataclasses.dataclass(frozen=True)
class TuneSettings:
    """The preset's ``tune`` section (defaults: a few CPU minutes)."""

    budget_s: float = 60.0          # training seconds per trial, in budget_unit
    # wall: seconds of the trial's own clock from its start (build included; the paper's GPU-time
    # matching). cpu: CPU seconds of the trial process and its env runners in train() calls
    # (what another process's load on the machine cannot eat); the build is reported apart.
    budget_unit: Literal["wall", "cpu"] = "wall"
    seeds: int = 2
    eval_every_s: float = 20.0      # evaluation points along the budget (plus the end)
    eval_goals: int = 50            # first N goals of eval_split
    eval_split: Literal["test", "dev"] = "test"
    eval_greedy: bool = True
    cpus_per_trial: int = 2
    gpus_per_trial: float = 0.0
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    max_concurrent_trials: int = 0  # 0 = as many as the resources allow
    data_sizes: tuple[int, ...] = (20, 60, 200)
    betas: tuple[float, ...] = (0.05, 0.1, 0.5)
    loss_types: tuple[str, ...] = ("sigmoid", "ipo")

    @classmethod
    def from_preset(cls, preset: Preset, **overrides: Any) -> "TuneSettings":
        raw = {**preset.section("tune"), **{k: v for k, v in overrides.items() if v is not None}}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise PresetError(f"{preset.path}: unknown tune keys {sorted(unknown)}; known: {sorted(names)}")
        for key in ("data_sizes", "betas", "loss_types"):
            if key in raw:
                raw[key] = tuple(raw[key])
        settings = cls(**raw)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.budget_s <= 0:
            raise PresetError(f"tune.budget_s must be > 0, got {self.budget_s}")
        if self.budget_unit not in ("wall", "cpu"):
            raise PresetError(f"tune.budget_unit must be 'wall' or 'cpu', got {self.budget_unit!r}")
        if self.seeds < 1:
            raise PresetError(f"tune.seeds must be >= 1, got {self.seeds}")
        if self.eval_every_s <= 0 or self.eval_goals < 1:
            raise PresetError("tune.eval_every_s must be > 0 and tune.eval_goals >= 1")
        if self.cpus_per_trial < 1 or self.gpus_per_trial < 0:
            raise PresetError("tune.cpus_per_trial must be >= 1 and tune.gpus_per_trial >= 0")
        if any(n < 1 for n in self.data_sizes) or any(b <= 0 for b in self.betas):
            raise PresetError("tune.data_sizes must be >= 1 and tune.betas > 0")

    def bundles(self) -> list[dict[str, float]]:
        """One trial's placement group: the trial process (learner; the GPU) + CPU bundles
        (PPO's env runners, DPO's data workers)."""
        head: dict[str, float] = {"CPU": 1.0}
        if self.gpus_per_trial:
            head["GPU"] = float(self.gpus_per_trial)
        return [head] + [{"CPU": 1.0} for _ in range(self.cpus_per_trial - 1)]


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """One arm of an experiment (seeds are added by Tune's grid)."""

    label: str                       # e.g. "dpo_demos", "ppo", "dpo_demos_n60"
    algorithm: Algorithm
    data: Optional[str] = None       # the prepared pair set (a key of Prepared.pairs), DPO only
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # dpo/ppo section keys


def trial_specs(experiment: str, settings: TuneSettings, *, pair_sets: Sequence[str]) -> list[TrialSpec]:
    """The arms of ``experiment``; ``pair_sets`` are the prepared pair sets (DPO arms whose
    data could not be made, e.g. no generated trajectory reached the reward filter, are left out)."""
    if experiment == "dpo_vs_ppo":
        arms = [TrialSpec("dpo_demos", "dpo", "demos"), TrialSpec("dpo_generated", "dpo", "generated"),
                TrialSpec("ppo", "ppo")]
    elif experiment == "data_efficiency":
        arms = [TrialSpec(f"dpo_demos_n{n}", "dpo", f"demos_n{n}") for n in settings.data_sizes]
    elif experiment == "beta_sweep":
        arms = [TrialSpec(f"dpo_{loss}_beta{beta:g}", "dpo", "demos", {"beta": beta, "loss_type": loss})
                for loss in settings.loss_types for beta in settings.betas]
    else:
        raise PresetError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
    return [arm for arm in arms if arm.data is None or arm.data in pair_sets]
