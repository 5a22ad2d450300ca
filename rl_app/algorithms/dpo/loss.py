"""DPO-family losses as pure functions of log-probabilities (no module, no logging).

Notation (Rafailov et al. 2023, "Direct Preference Optimization", arXiv 2305.18290):
for a pair (chosen c, rejected r) in state s,

    chosen_logratios   = log pi(c|s) - log pi_ref(c|s)
    rejected_logratios = log pi(r|s) - log pi_ref(r|s)
    h = chosen_logratios - rejected_logratios

and the implicit rewards are ``beta * chosen_logratios`` and ``beta * rejected_logratios``.
Feng & Feng 2024 (arXiv 2408.16032) use the sigmoid loss at the step level: chosen = the
demonstrated action, rejected = an action sampled from the reference (IL) policy.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["DPOLossType", "DPOLossOutput", "dpo_loss", "LOSS_TYPES"]

DPOLossType = Literal["sigmoid", "ipo", "hinge", "robust"]
LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust")


class DPOLossOutput(NamedTuple):
    """Per-pair values (B,) and the mean loss.

    Attributes:
        loss: mean over pairs (differentiable).
        losses: per-pair loss.
        chosen_rewards, rejected_rewards: ``beta * logratios`` (detached).
        margins: chosen_rewards - rejected_rewards (detached).
        accuracies: 1.0 where chosen_rewards > rejected_rewards (detached).
    """

    loss: torch.Tensor
    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    margins: torch.Tensor
    accuracies: torch.Tensor


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor, *,
             beta: float, loss_type: DPOLossType = "sigmoid", label_smoothing: float = 0.0) -> DPOLossOutput:
    """The DPO loss of ``loss_type`` for a batch of preference pairs.

    * ``sigmoid`` (Rafailov et al. 2023, eq. 7): ``-log sigmoid(beta * h)``; with
      ``label_smoothing = eps`` it is conservative DPO (cDPO, Mitchell 2023):
      ``-(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)``.
    * ``ipo`` (Azar et al. 2023, "A General Theoretical Paradigm...", eq. 17):
      ``(h - 1 / (2 beta))^2``; beta plays the role of IPO's tau.
    * ``hinge`` (SLiC, Zhao et al. 2023): ``max(0, 1 - beta * h)``.
    * ``robust`` (rDPO, Chowdhury et al. 2024, eq. 12), unbiased under label noise eps:
      ``((1 - eps) * -log sigmoid(beta h) - eps * -log sigmoid(-beta h)) / (1 - 2 eps)``.

    Args:
        policy_*_logps, ref_*_logps: (B,) log-probabilities of the chosen / rejected action.
        beta: inverse temperature of the implicit reward (> 0).
        loss_type: one of ``sigmoid``, ``ipo``, ``hinge``, ``robust``.
        label_smoothing: eps in [0, 0.5); only ``sigmoid`` and ``robust`` use it.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    shapes = {tuple(t.shape) for t in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"all four log-prob tensors must have the same (B,) shape, got {sorted(shapes)}")
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    h = chosen_logratios - rejected_logratios
    eps = label_smoothing
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * h) * (1 - eps) - F.logsigmoid(-beta * h) * eps
    elif loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * h)
    elif loss_type == "robust":
        losses = (-F.logsigmoid(beta * h) * (1 - eps) + F.logsigmoid(-beta * h) * eps) / (1 - 2 * eps)
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {LOSS_TYPES}")
    chosen_rewards = (beta * chosen_logratios).detach()
    rejected_rewards = (beta * rejected_logratios).detach()
    return DPOLossOutput(
        loss=losses.mean(), losses=losses, chosen_rewards=chosen_rewards, rejected_rewards=rejected_rewards,
        margins=chosen_rewards - rejected_rewards, accuracies=(chosen_rewards > rejected_rewards).float())
