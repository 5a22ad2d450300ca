"""The prepare stage's IL settings: the preset's il section, a trial's GPUs to one remote IL learner."""

from __future__ import annotations

import dataclasses

from rl_app.algorithms.il.il import ILConfig
from rl_app.experiments.prepare import il_stage_settings
from rl_app.presets import load_preset
from rl_app.settings import ILSettings, ObservationSettings


def test_il_stage_without_and_with_gpus():
    ci = load_preset("ci")
    cpu = il_stage_settings(ci)
    assert cpu == ILSettings(iterations=3, batch_size=32, lr=1e-3)  # the ci preset's il section, defaults else
    gpu = il_stage_settings(ci, num_gpus=0.5)
    assert (gpu.num_learners, gpu.gpus_per_learner) == (1, 0.5)
    assert dataclasses.replace(gpu, num_learners=0, gpus_per_learner=0.0) == cpu
    observations = ObservationSettings.of_env(ci.settings("env"))
    assert (observations.k_max, observations.max_state_tokens, observations.max_action_tokens) == (16, 96, 16)
    config = ILConfig.from_settings(gpu, data=["/d"], model=ci.settings("model"), observations=observations)
    assert (config.num_learners, config.num_gpus_per_learner, config.lr, config.k_max) == (1, 0.5, 1e-3, 16)
    local = ILConfig.from_settings(cpu, data=["/d"], model=ci.settings("model"), observations=observations)
    assert (local.num_learners, local.num_gpus_per_learner, local.max_state_tokens) == (0, 0, 96)
