"""Seeded runs keep torch's kernel settings unless deterministic kernels are asked for.

Works around (Ray 2.60.0): ``config.debugging(seed=N)`` calls
``ray.rllib.utils.debug.update_global_seed_if_necessary`` in the driver (``Algorithm.setup``), in
every ``Learner.__init__`` and in every env runner. Besides seeding ``random``, numpy and torch,
it changes process-wide torch settings (``ray.rllib.utils.torch_utils.set_torch_seed``):

* torch built with CUDA: ``CUBLAS_WORKSPACE_CONFIG=:4096:8``,
  ``torch.backends.cudnn.deterministic = True``, ``torch.backends.cudnn.benchmark = False``;
* torch without CUDA: ``torch.use_deterministic_algorithms(True)``.

On a GPU those settings make every operator of a learner update slower on the host while the
GPU waits (``python -m rl_app.bench.dpo_update --context`` times an update before and after
RLlib's seeding; README, Benchmarks).

``config.debugging(deterministic_kernels=False)`` (the default): rl_app's algorithms (driver)
and learners put these settings back as they were before RLlib's seeding. The random number
generators stay seeded, so seeded runs start alike; they are not bit-identical on a GPU. A
seeded offline run also keeps Ray Data's block order and seeds its shuffle (``offline.py``), so
on CPU two runs with the same seed draw the same batches and log the same losses (tested).
``deterministic_kernels=True``: RLlib's settings stay (slower; for debugging numerics).
Env runners keep RLlib's settings either way: they run the policy's forward pass only.

When it can go: when a newer RLlib's ``update_global_seed_if_necessary`` (or
``set_torch_seed``) seeds without switching torch to deterministic kernels, or offers a setting
that leaves them alone. ``tests/algorithms/test_determinism.py``'s first test checks the
seeding still turns deterministic algorithms on; it fails once RLlib stops doing so.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch
from ray.rllib.algorithms.algorithm_config import NotProvided

__all__ = ["KernelSettings", "kernel_settings", "restore_kernel_settings", "kernel_settings_kept",
           "DeterminismConfigMixin", "KernelSettingsLearnerMixin"]

_CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"


@dataclass(frozen=True)
class KernelSettings:
    """The process-wide torch settings RLlib's seeding may change."""

    cublas_workspace_config: Optional[str]
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    deterministic_algorithms: bool
    deterministic_warn_only: bool


def kernel_settings() -> KernelSettings:
    """This process's settings now."""
    return KernelSettings(os.environ.get(_CUBLAS_ENV), torch.backends.cudnn.deterministic,
                          torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
                          torch.is_deterministic_algorithms_warn_only_enabled())


def restore_kernel_settings(settings: KernelSettings) -> None:
    """Put ``settings`` back (the environment variable too: removed if it was unset)."""
    if settings.cublas_workspace_config is None:
        os.environ.pop(_CUBLAS_ENV, None)
    else:
        os.environ[_CUBLAS_ENV] = settings.cublas_workspace_config
    torch.backends.cudnn.deterministic = settings.cudnn_deterministic
    torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    torch.use_deterministic_algorithms(settings.deterministic_algorithms, warn_only=settings.deterministic_warn_only)


@contextmanager
def kernel_settings_kept(config: Any) -> Iterator[None]:
    """Inside: code that may seed through RLlib. After it: the settings from before, unless
    ``config.deterministic_kernels`` is true (also after an exception)."""
    before = kernel_settings()
    try:
        yield
    finally:
        if not getattr(config, "deterministic_kernels", False):
            restore_kernel_settings(before)


class DeterminismConfigMixin:
    """Adds ``deterministic_kernels`` to an ``AlgorithmConfig``'s ``debugging(...)`` builder."""

    deterministic_kernels: bool = False

    def debugging(self, *, deterministic_kernels: bool = NotProvided, **kwargs: Any):
        """RLlib's ``debugging(...)`` plus ``deterministic_kernels``: keep the deterministic cuDNN /
        cuBLAS (GPU) or ``torch.use_deterministic_algorithms`` (CPU) settings RLlib's seeding makes
        (default False: see :mod:`rl_app.algorithms.rllib_patches.determinism`)."""
        super().debugging(**kwargs)
        if deterministic_kernels is not NotProvided:
            if not isinstance(deterministic_kernels, bool):
                raise TypeError(f"deterministic_kernels must be a bool, got {deterministic_kernels!r}")
            self.deterministic_kernels = deterministic_kernels
        return self


class KernelSettingsLearnerMixin:
    """A ``Learner`` whose ``__init__`` (where RLlib seeds a learner's process) leaves torch's
    kernel settings as it found them unless ``config.deterministic_kernels``."""

    def __init__(self, **kwargs: Any) -> None:
        with kernel_settings_kept(kwargs.get("config")):
            super().__init__(**kwargs)
