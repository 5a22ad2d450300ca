"""The DPO learner: masked log-softmax of the policy, the pair's log-probs, ``dpo_loss``, metrics."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from rl_app.algorithms.dpo.loss import dpo_loss

__all__ = ["DPOTorchLearner"]

# Learner result keys (STYLE 9), under result["learners"][module_id].
DPO_LOSS = "losses/dpo"
REWARDS_CHOSEN = "rewards/chosen"
REWARDS_REJECTED = "rewards/rejected"
REWARDS_MARGINS = "rewards/margins"
REWARDS_ACCURACIES = "rewards/accuracies"
LOGPS_CHOSEN = "logps/chosen"
LOGPS_REJECTED = "logps/rejected"


class DPOTorchLearner(TorchLearner):
    """DPO on the module's masked logits; the reference log-probs come with the batch."""

    def compute_loss_for_module(self, *, module_id: str, config: Any = None, batch: Mapping[str, Any],
                                fwd_out: Mapping[str, Any]):
        log_probs = F.log_softmax(fwd_out[Columns.ACTION_DIST_INPUTS].float(), dim=-1)
        chosen = log_probs.gather(1, batch["chosen"].long().unsqueeze(1)).squeeze(1)
        rejected = log_probs.gather(1, batch["rejected"].long().unsqueeze(1)).squeeze(1)
        cfg = self.config
        out = dpo_loss(chosen, rejected, batch["ref_chosen_logp"].float(), batch["ref_rejected_logp"].float(),
                       beta=cfg.beta, loss_type=cfg.loss_type, label_smoothing=cfg.label_smoothing)
        with torch.no_grad():
            metrics = {
                DPO_LOSS: out.loss.detach(),
                REWARDS_CHOSEN: out.chosen_rewards.mean(), REWARDS_REJECTED: out.rejected_rewards.mean(),
                REWARDS_MARGINS: out.margins.mean(), REWARDS_ACCURACIES: out.accuracies.mean(),
                LOGPS_CHOSEN: chosen.detach().mean(), LOGPS_REJECTED: rejected.detach().mean(),
            }
        self.metrics.log_dict(metrics, key=module_id, window=max(1, int(cfg.dataset_num_iters_per_learner or 1)))
        return out.loss
