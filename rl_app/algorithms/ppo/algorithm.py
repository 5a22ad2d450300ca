"""``WebShopPPO``: RLlib's PPO that also reports learner-only seconds.

GPU-time-matched comparisons (same resources and wall budget per trial) report, beside
each trial's wall budget, the seconds its learners spent updating. The offline algorithms
measure them around ``LearnerGroup.update``; PPO's own ``training_step`` logs that span
only as an EMA timer (``timers/learner_update_timer``), so here the learner group's
``update`` is timed and summed into the same keys: ``time/learner_s`` (cumulative) and ``time/learner_iter_s``.
"""

from __future__ import annotations

import functools
import time

from ray.rllib.algorithms.ppo import PPO

from rl_app.algorithms.rllib_patches.determinism import kernel_settings_kept
from rl_app.algorithms.offline import LEARNER_SECONDS, LEARNER_SECONDS_ITER

__all__ = ["WebShopPPO"]


class WebShopPPO(PPO):
    """PPO with ``time/learner_s`` and ``time/learner_iter_s`` in every result."""

    def setup(self, config) -> None:
        with kernel_settings_kept(config):  # RLlib's seeding (rl_app.algorithms.rllib_patches.determinism)
            super().setup(config)
        update = self.learner_group.update

        @functools.wraps(update)
        def timed_update(*args, **kwargs):
            start = time.perf_counter()
            try:
                return update(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - start
                self.metrics.log_value(LEARNER_SECONDS, seconds, reduce="lifetime_sum")
                self.metrics.log_value(LEARNER_SECONDS_ITER, seconds, reduce="sum")

        # An instance attribute: only this algorithm's learner group is wrapped.
        self.learner_group.update = timed_update
