"""The IL learner: one forward pass, :func:`~rl_app.algorithms.il.loss.bc_loss`, its metrics."""

from __future__ import annotations

from typing import Any, Mapping

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from rl_app.algorithms.il.loss import bc_loss
from rl_app.algorithms.rllib_patches import PatchedLearnerMixin
from rl_app.algorithms.warmup import LRWarmupLearnerMixin

__all__ = ["ILTorchLearner", "BC_LOSS", "ACCURACY", "ENTROPY"]

# Learner result keys, under result["learners"][module_id]; namespaced like the DPO and PPO keys.
BC_LOSS = "losses/bc"
ACCURACY = "metrics/accuracy"
ENTROPY = "metrics/entropy"


class ILTorchLearner(LRWarmupLearnerMixin, PatchedLearnerMixin, TorchLearner):
    """Behaviour cloning on ``WebShopChoiceModule``'s masked logits."""

    def compute_loss_for_module(self, *, module_id: str, config: Any = None, batch: Mapping[str, Any],
                                fwd_out: Mapping[str, Any]):
        out = bc_loss(fwd_out[Columns.ACTION_DIST_INPUTS], batch[Columns.ACTIONS])
        # Averaged over this train() call's updates (one window per iteration).
        self.metrics.log_dict({BC_LOSS: out.loss.detach(), ACCURACY: out.accuracy, ENTROPY: out.entropy},
                              key=module_id, window=max(1, int(self.config.dataset_num_iters_per_learner or 1)))
        return out.loss
