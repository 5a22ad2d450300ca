"""The behaviour-cloning loss: a pure function of masked logits and demonstrated choices.

WebShop's imitation learning (Yao et al. 2022, arXiv 2207.01206, "Imitation learning") trains
the BERT choice model with the cross-entropy of the human's choice among the valid actions,
L_IL = -E_(s, a) [log pi(a | s)], pi = softmax over the valid candidates' scores; Feng &
Feng 2024 start every agent from such an IL checkpoint.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from rl_app.policy.choice_model import MASKED_LOGIT

__all__ = ["BCLossOutput", "bc_loss"]

# A logit at or below this marks a masked candidate (the module writes MASKED_LOGIT = -1e9).
_MASKED_BELOW = MASKED_LOGIT / 2


class BCLossOutput(NamedTuple):
    """What :func:`bc_loss` returns (scalars).

    Attributes:
        loss: mean negative log-likelihood of the demonstrated choices (differentiable).
        accuracy: share of states whose highest logit is the demonstrated choice (ties go
            to the lowest index, as ``argmax`` and the greedy policy break them).
        entropy: mean entropy (nats) of pi(. | s) over the valid candidates.
    """

    loss: torch.Tensor
    accuracy: torch.Tensor
    entropy: torch.Tensor


def bc_loss(logits: torch.Tensor, actions: torch.Tensor) -> BCLossOutput:
    """Cross-entropy of ``actions`` under ``softmax(logits)``.

    Args:
        logits: (B, K) scores with masked candidates already at ``MASKED_LOGIT`` (what
            ``WebShopChoiceModule`` returns as ``ACTION_DIST_INPUTS``); their softmax
            probability is exactly 0, so they never contribute to loss or entropy.
        actions: (B,) index of the demonstrated candidate; it must be a valid one.

    Raises:
        ValueError: on shape mismatches or an action that points at a masked candidate.
    """
    if logits.dim() != 2 or actions.shape != logits.shape[:1]:
        raise ValueError(f"need logits (B, K) and actions (B,), got {tuple(logits.shape)} and {tuple(actions.shape)}")
    actions = actions.long()
    chosen_logits = logits.gather(1, actions.unsqueeze(1)).squeeze(1)
    if bool((chosen_logits <= _MASKED_BELOW).any()):
        row = int(torch.nonzero(chosen_logits <= _MASKED_BELOW)[0, 0])
        raise ValueError(f"row {row}: action {int(actions[row])} is a masked candidate "
                         "(the demonstrated choice must be among the valid candidates)")
    log_probs = F.log_softmax(logits.float(), dim=-1)
    nll = -log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        accuracy = (logits.argmax(dim=-1) == actions).float().mean()
        # p * log p is exactly 0 for masked rows (p == 0, log p finite at ~-1e9).
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1).mean()
    return BCLossOutput(loss=nll.mean(), accuracy=accuracy, entropy=entropy)
