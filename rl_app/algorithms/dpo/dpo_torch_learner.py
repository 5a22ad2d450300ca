"""The DPO learner: masked log-softmax of the policy, the pair's log-probs, ``dpo_loss``, metrics.

Step pairs: one forward pass over the pairs' states; log pi of chosen and rejected action.
Trajectory pairs (:mod:`rl_app.algorithms.dpo.trajectory`): the (B, 2, T, ...) batch is cut
to its real steps before the forward pass (:meth:`DPOTorchLearner._update`), so the module
sees an ordinary (N, ...) observation batch, once, through DDP when there are several
learners; the loss sums log pi(a_t | s_t) per trajectory. Both call the same ``dpo_loss``
and log the same metrics (for trajectories the log-probs are trajectory sums).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from rl_app.algorithms.dpo.loss import dpo_loss
from rl_app.algorithms.dpo.trajectory import STEP_ACTIONS, STEP_MASK, flatten_steps, is_trajectory_batch, \
    trajectory_logps
from rl_app.algorithms.rllib_patches import PatchedLearnerMixin
from rl_app.algorithms.warmup import LRWarmupLearnerMixin

__all__ = ["DPOTorchLearner"]

# Learner result keys, namespaced ("rewards/...", "losses/..."), under result["learners"][module_id].
DPO_LOSS = "losses/dpo"
REWARDS_CHOSEN = "rewards/chosen"
REWARDS_REJECTED = "rewards/rejected"
REWARDS_MARGINS = "rewards/margins"
REWARDS_ACCURACIES = "rewards/accuracies"
LOGPS_CHOSEN = "logps/chosen"
LOGPS_REJECTED = "logps/rejected"
# Trajectory pairs only: mean steps of the chosen / rejected trajectories in the batch.
NLL_LOSS = "losses/nll"  # per-step NLL of the chosen actions (logged always; in the loss if nll_coeff > 0)
STEPS_CHOSEN = "steps/chosen"
STEPS_REJECTED = "steps/rejected"


class DPOTorchLearner(LRWarmupLearnerMixin, PatchedLearnerMixin, TorchLearner):
    """DPO on the module's masked logits; the reference log-probs come with the batch."""

    def _update(self, batch: dict[str, Any], **kwargs):
        # Trajectory pairs: keep only real steps, flattened, before the module's forward pass
        # (padding would cost a BERT pass per padded step, and the module takes (N, ...) obs).
        batch = {mid: flatten_steps(b) if is_trajectory_batch(b) else b for mid, b in batch.items()}
        return super()._update(batch, **kwargs)

    def compute_loss_for_module(self, *, module_id: str, config: Any = None, batch: Mapping[str, Any],
                                fwd_out: Mapping[str, Any]):
        log_probs = F.log_softmax(fwd_out[Columns.ACTION_DIST_INPUTS].float(), dim=-1)
        extra = {}
        if is_trajectory_batch(batch):
            # ETO: log pi(traj) = sum_t log pi(a_t | s_t) over the real steps.
            step_logps = log_probs.gather(1, batch[STEP_ACTIONS].long().unsqueeze(1)).squeeze(1)
            chosen, rejected = trajectory_logps(step_logps, batch[STEP_MASK])
            steps = batch[STEP_MASK].float().sum(dim=-1)
            extra = {STEPS_CHOSEN: steps[:, 0].mean(), STEPS_REJECTED: steps[:, 1].mean()}
            nll = -(chosen / steps[:, 0].clamp(min=1.0)).mean()
        else:
            chosen = log_probs.gather(1, batch["chosen"].long().unsqueeze(1)).squeeze(1)
            rejected = log_probs.gather(1, batch["rejected"].long().unsqueeze(1)).squeeze(1)
            nll = -chosen.mean()
        cfg = self.config
        out = dpo_loss(chosen, rejected, batch["ref_chosen_logp"].float(), batch["ref_rejected_logp"].float(),
                       beta=cfg.beta, loss_type=cfg.loss_type, label_smoothing=cfg.label_smoothing)
        loss = out.loss + cfg.nll_coeff * nll if cfg.nll_coeff else out.loss
        with torch.no_grad():
            metrics = {
                DPO_LOSS: out.loss.detach(), NLL_LOSS: nll.detach(),
                REWARDS_CHOSEN: out.chosen_rewards.mean(), REWARDS_REJECTED: out.rejected_rewards.mean(),
                REWARDS_MARGINS: out.margins.mean(), REWARDS_ACCURACIES: out.accuracies.mean(),
                LOGPS_CHOSEN: chosen.detach().mean(), LOGPS_REJECTED: rejected.detach().mean(),
                **extra,
            }
        self.metrics.log_dict(metrics, key=module_id, window=max(1, int(cfg.dataset_num_iters_per_learner or 1)))
        return loss
