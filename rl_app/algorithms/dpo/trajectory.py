"""Trajectory-level DPO (ETO, Song et al. 2024): fixed-shape trajectory batches, per-trajectory log-probs.

ETO scores a trajectory by the product of the policy's action probabilities; the
environment's transition probabilities are the same under pi and pi_ref and cancel in the
log-ratio, so

    log pi(traj) = sum_t log pi(a_t | s_t)

and the DPO loss (:func:`~rl_app.algorithms.dpo.loss.dpo_loss`) is applied to these sums
unchanged. A pair row of :mod:`rl_app.data.trajectory_pairs` becomes, per pair, the chosen
(side 0) and the rejected (side 1) trajectory padded to ``T`` steps, so every RLlib batch
has the same shapes:

    obs/state_ids   (B, 2, T, L_s)    obs/action_ids (B, 2, T, K, L_a)    obs/action_mask (B, 2, T, K)
    step_actions    (B, 2, T) int64   the action taken at each step (0 on padding)
    step_mask       (B, 2, T) int8    1 on real steps, 0 on padding
    ref_chosen_logp, ref_rejected_logp (B,) float32: sum_t log pi_ref(a_t | s_t), precomputed

The learner keeps only the real steps, (N, ...) with N = step_mask.sum() (padding would
cost a BERT pass per padded step), runs the module once on them (:func:`flatten_steps`),
takes log pi(a_t | s_t) and sums it back per trajectory (:func:`trajectory_logps`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from ray.rllib.core.columns import Columns


__all__ = ["STEP_ACTIONS", "STEP_MASK", "SIDES", "encode_trajectory_pairs", "flatten_steps", "trajectory_logps",
           "is_trajectory_batch"]

STEP_ACTIONS = "step_actions"
STEP_MASK = "step_mask"
SIDES = ("chosen", "rejected")  # index 0 and 1 of the side dimension
_PAIR_COLUMNS = tuple(f"{side}_{name}" for side in SIDES for name in ("states", "candidate_texts", "actions")) + (
    "ref_chosen_logp", "ref_rejected_logp")


def is_trajectory_batch(batch: Mapping[str, Any]) -> bool:
    """A module batch of trajectory pairs (has ``step_mask``), as opposed to step pairs."""
    return STEP_MASK in batch


def encode_trajectory_pairs(batch: Mapping[str, np.ndarray], *, encoder, max_steps: int) -> dict[str, Any]:
    """Trajectory pair rows (text) -> the fixed-shape module batch above (numpy, nested ``obs``).

    Every step of both sides is tokenized in one ``encoder.encode_batch`` call and placed at
    (pair, side, step); padding steps stay all-zero with ``step_mask`` 0. The input batch is
    not modified.

    Raises:
        ValueError: a trajectory is empty or longer than ``max_steps``, its lists disagree in
            length, or an action is outside its step's candidates.
    """
    missing = [c for c in _PAIR_COLUMNS if c not in batch]
    if missing:
        raise ValueError(f"not a trajectory-pair batch: missing columns {missing} "
                         "(build pairs with python -m rl_app.data.trajectory_pairs)")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    n = len(batch["ref_chosen_logp"])
    where, states, texts, actions = [], [], [], []
    for i in range(n):
        for s, side in enumerate(SIDES):
            side_states = list(batch[f"{side}_states"][i])
            side_texts = list(batch[f"{side}_candidate_texts"][i])
            side_actions = [int(a) for a in batch[f"{side}_actions"][i]]
            if not side_states or not len(side_states) == len(side_texts) == len(side_actions):
                raise ValueError(f"row {i} {side}: {len(side_states)} states, {len(side_texts)} candidate lists and "
                                 f"{len(side_actions)} actions; a trajectory needs >= 1 step and equal lengths")
            if len(side_states) > max_steps:
                raise ValueError(f"row {i} {side}: {len(side_states)} steps > max_trajectory_steps={max_steps}; "
                                 "raise config.dpo(max_trajectory_steps=...) or leave it None (the data's longest)")
            for t, (state, cands, action) in enumerate(zip(side_states, side_texts, side_actions)):
                cands = [str(c) for c in cands]
                if not 0 <= action < len(cands):
                    raise ValueError(f"row {i} {side} step {t}: action {action} outside its {len(cands)} candidates")
                where.append((i, s, t))
                states.append(str(state))
                texts.append(cands)
                actions.append(action)
    flat = encoder.encode_batch(states, texts)
    ii, ss, tt = (np.asarray(v, dtype=np.int64) for v in zip(*where)) if where else (np.zeros(0, np.int64),) * 3
    obs = {}
    for key in encoder.keys:
        padded = np.zeros((n, 2, max_steps, *flat[key].shape[1:]), dtype=flat[key].dtype)
        padded[ii, ss, tt] = flat[key]
        obs[key] = padded
    step_actions = np.zeros((n, 2, max_steps), dtype=np.int64)
    step_actions[ii, ss, tt] = actions
    step_mask = np.zeros((n, 2, max_steps), dtype=np.int8)
    step_mask[ii, ss, tt] = 1
    return {
        Columns.OBS: obs,
        STEP_ACTIONS: step_actions,
        STEP_MASK: step_mask,
        "ref_chosen_logp": np.asarray(batch["ref_chosen_logp"], dtype=np.float32),
        "ref_rejected_logp": np.asarray(batch["ref_rejected_logp"], dtype=np.float32),
    }


def flatten_steps(batch: Mapping[str, Any]) -> dict[str, Any]:
    """(B, 2, T, ...) trajectory batch -> the same batch with ``obs`` and ``step_actions`` as
    (N, ...) over the real steps only, in row-major (pair, side, step) order; ``step_mask``
    and the other columns are kept as they are. A new dict; the input is not modified."""
    mask = batch[STEP_MASK].reshape(-1).bool()
    out = dict(batch)
    out[Columns.OBS] = {key: value.reshape(-1, *value.shape[3:])[mask] for key, value in batch[Columns.OBS].items()}
    out[STEP_ACTIONS] = batch[STEP_ACTIONS].reshape(-1)[mask]
    return out


def trajectory_logps(step_logps: torch.Tensor, step_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step log-probs of the real steps (N,), in :func:`flatten_steps` order -> the
    (chosen, rejected) trajectory sums (B,), (B,). Differentiable in ``step_logps``."""
    mask = step_mask.bool()
    if step_logps.shape != (int(mask.sum()),):
        raise ValueError(f"{tuple(step_logps.shape)} step log-probs for {int(mask.sum())} real steps")
    full = step_logps.new_zeros(mask.shape).masked_scatter(mask, step_logps)
    sums = full.sum(dim=-1)  # (B, 2)
    return sums[:, 0], sums[:, 1]
