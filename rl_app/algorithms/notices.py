"""Ray/RLlib notices that say nothing a user of this project can act on, silenced at their source.

Each is a one-time log line of Ray 2.60 (keyed by ``ray.util.log_once``); marking its key as
already logged in a process keeps that process's console free of it. What is silenced and why:

* ``RLModule(config=[RLModuleConfig object])`` deprecation: RLlib's own ``RLModule.__init__``
  builds the deprecated ``RLModuleConfig`` for every module; this project's module is built
  with the new keyword arguments, so nothing here calls the deprecated form.
* ``You are running <algo> on the new API stack!``: the project runs only on the new API
  stack (RLModules, Learners, EnvRunners); the notice that it is on is not a problem.
* Tune's "experiment state snapshotting has been triggered multiple times": each trial keeps
  one checkpoint (``CheckpointConfig(num_to_keep=1)``: an algorithm checkpoint with a BERT is
  ~90 MB), so every new checkpoint forces a snapshot of the local experiment state, which is
  cheap here.
"""

from __future__ import annotations

import os

__all__ = ["silence_harmless_notices"]

_LOG_ONCE_KEYS = ("RLModule(config=[RLModuleConfig object])",
                  *(f"{algo}_on_new_api_stack" for algo in ("IL", "DPO", "PPO")))
_TUNE_SNAPSHOT_WARNING = "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"


def silence_harmless_notices() -> None:
    """Mark the notices above as shown in this process (idempotent, cheap)."""
    from ray.util import log_once

    for key in _LOG_ONCE_KEYS:
        log_once(key)
    os.environ.setdefault(_TUNE_SNAPSHOT_WARNING, "0")  # 0: Tune's documented "never warn"
