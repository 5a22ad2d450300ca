"""What an experiment runs: its trials, their shared budget and resources, from a preset.

A preset's ``tune`` section (:class:`rl_app.settings.TuneSettings`) sets the comparison
at matched compute: every trial gets the same resources (``cpus_per_trial`` CPUs, ``gpus_per_trial`` GPUs, as one placement group) and the
same training budget (``budget_s`` wall seconds from its own start: building the algorithm,
sampling or data loading, and updates; evaluation pauses are not charged and are reported
apart). Sections ``dpo``, ``ppo``, ``generated`` and ``pairs`` set the stages.

Experiments (``EXPERIMENTS``):

* ``dpo_vs_ppo``: DPO on demonstrations, DPO on generated trajectories and PPO, each from
  the same IL checkpoint, ``seeds`` seeds each (the paper's comparison).
* ``data_efficiency``: DPO on the first N demonstration trajectories for N in
  ``tune.data_sizes`` (the paper: 100 generated ~ 1,200 human).
* ``beta_sweep``: DPO on demonstrations over ``tune.betas`` x ``tune.loss_types``, evaluated
  on the dev split (hyperparameters are chosen on dev, never on test).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Mapping, Optional, Sequence

from rl_app.presets import PresetError
from rl_app.settings import TuneSettings

__all__ = ["EXPERIMENTS", "TrialSpec", "trial_specs", "ExperimentName", "TRAIN_SECONDS", "EVAL_SECONDS"]

# Trial report keys (namespaced constants) beside RLlib's and the learners' own: the budget clock and the
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
