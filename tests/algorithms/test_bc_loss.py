"""bc_loss on numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from rl_app.algorithms.il.loss import bc_loss
from rl_app.policy.choice_model import MASKED_LOGIT

M = MASKED_LOGIT


def test_two_equal_valid_candidates_give_ln2():
    out = bc_loss(torch.tensor([[0.0, 0.0, M, M]]), torch.tensor([1]))
    assert out.loss.item() == pytest.approx(math.log(2), abs=1e-6)  # 0.6931
    assert out.entropy.item() == pytest.approx(math.log(2), abs=1e-6)
    # A tie goes to the lowest index (argmax, the greedy policy): choice 1 is not predicted.
    assert out.accuracy.item() == 0.0
    assert bc_loss(torch.tensor([[0.0, 0.0, M, M]]), torch.tensor([0])).accuracy.item() == 1.0


def test_hand_computed_batch():
    # p = softmax([0, ln 3]) = (1/4, 3/4): -ln(1/4) = 1.3863, -ln(3/4) = 0.2877.
    logits = torch.tensor([[0.0, math.log(3.0), M], [0.0, math.log(3.0), M]])
    out = bc_loss(logits, torch.tensor([0, 1]))
    assert out.loss.item() == pytest.approx((math.log(4) + math.log(4 / 3)) / 2, abs=1e-6)  # 0.8370
    assert out.accuracy.item() == pytest.approx(0.5)  # argmax is candidate 1 in both rows
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # 0.5623
    assert out.entropy.item() == pytest.approx(entropy, abs=1e-6)


def test_masked_candidates_never_contribute():
    short = bc_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([0]))
    logits = torch.tensor([[1.0, 2.0, M, M, M]], requires_grad=True)
    padded = bc_loss(logits, torch.tensor([0]))
    assert padded.loss.item() == pytest.approx(short.loss.item(), abs=1e-6)
    assert padded.entropy.item() == pytest.approx(short.entropy.item(), abs=1e-6)
    padded.loss.backward()
    assert torch.all(logits.grad[0, 2:] == 0)
    # d loss / d logit = softmax - onehot on the valid ones: (p0 - 1, p1).
    p0 = 1 / (1 + math.e)
    assert logits.grad[0, :2].tolist() == pytest.approx([p0 - 1, 1 - p0], abs=1e-6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="masked candidate"):
        bc_loss(torch.tensor([[0.0, M]]), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"logits \(B, K\)"):
        bc_loss(torch.zeros(2, 3), torch.tensor([0]))
