"""Seeded runs keep torch's kernel settings unless deterministic kernels are asked for
(rl_app.algorithms.rllib_patches.determinism): the context manager, the config flag, a seeded algorithm's
driver and a remote learner's process."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch
from ray.rllib.utils.debug import update_global_seed_if_necessary

from rl_app.algorithms.rllib_patches.determinism import kernel_settings, kernel_settings_kept, restore_kernel_settings
from .conftest import tiny_il_config


def test_rllib_seeding_is_undone_by_default_and_kept_on_request():
    before = kernel_settings()
    assert not before.deterministic_algorithms
    with kernel_settings_kept(SimpleNamespace(deterministic_kernels=False)):
        update_global_seed_if_necessary("torch", 0)
        # What RLlib's seeding does where torch has no CUDA ...
        assert torch.are_deterministic_algorithms_enabled()
        # ... and, with CUDA, to the environment and cuDNN.
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.backends.cudnn.deterministic = True
    assert kernel_settings() == before and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    try:
        with kernel_settings_kept(SimpleNamespace(deterministic_kernels=True)):
            update_global_seed_if_necessary("torch", 0)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        restore_kernel_settings(before)
    # An exception inside still restores.
    with pytest.raises(RuntimeError, match="boom"):
        with kernel_settings_kept(SimpleNamespace(deterministic_kernels=False)):
            torch.use_deterministic_algorithms(True)
            raise RuntimeError("boom")
    assert kernel_settings() == before


def test_configs_take_the_flag(demo_dir):
    from rl_app.algorithms.dpo import DPOConfig
    from rl_app.algorithms.ppo import WebShopPPOConfig

    assert tiny_il_config([str(demo_dir)]).deterministic_kernels is False
    dpo = DPOConfig().debugging(seed=3, deterministic_kernels=True)
    assert (dpo.seed, dpo.deterministic_kernels) == (3, True)  # RLlib's own arguments still apply
    assert WebShopPPOConfig().debugging(deterministic_kernels=True).deterministic_kernels is True
    with pytest.raises(TypeError, match="must be a bool"):
        DPOConfig().debugging(deterministic_kernels="yes")


@pytest.mark.parametrize("deterministic", [False, True])
def test_seeded_algorithm_driver_and_remote_learner(ray_session, demo_dir, deterministic):
    before = kernel_settings()
    config = (tiny_il_config([str(demo_dir)], updates_per_iteration=1)
              .learners(num_learners=1)
              .debugging(seed=0, deterministic_kernels=deterministic))
    algo = config.build_algo()
    try:
        # The driver (Algorithm.setup seeds it) and the learner's own process (Learner.__init__ seeds it).
        assert torch.are_deterministic_algorithms_enabled() is deterministic
        in_learner = algo.learner_group.foreach_learner(lambda learner: torch.are_deterministic_algorithms_enabled())
        assert [r.get() for r in in_learner] == [deterministic]
        algo.train()
    finally:
        algo.stop()
        restore_kernel_settings(before)
