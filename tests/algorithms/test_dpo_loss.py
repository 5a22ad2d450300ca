"""DPO losses against values worked out by hand, and their gradient signs."""

from __future__ import annotations

import math

import pytest
import torch

from rl_app.algorithms.dpo.loss import dpo_loss


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_equal_logratios_give_ln2_for_sigmoid():
    out = dpo_loss(_t(-1.0), _t(-2.0), _t(-1.0), _t(-2.0), beta=0.1)
    assert out.loss.item() == pytest.approx(math.log(2), abs=1e-12)  # -log sigmoid(0) = 0.6931
    assert out.margins.item() == 0 and out.accuracies.item() == 0.0


def test_margin_two_beta_half():
    # chosen logratio +1, rejected logratio -1: h = 2; beta 0.5 -> -log sigmoid(1) = 0.3133
    out = dpo_loss(_t(-1.0), _t(-3.0), _t(-2.0), _t(-2.0), beta=0.5)
    assert out.loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1))), abs=1e-12)
    assert out.loss.item() == pytest.approx(0.3133, abs=1e-4)
    assert out.chosen_rewards.item() == pytest.approx(0.5) and out.rejected_rewards.item() == pytest.approx(-0.5)
    assert out.margins.item() == pytest.approx(1.0) and out.accuracies.item() == 1.0


def test_other_losses_by_hand():
    args = (_t(-1.0), _t(-3.0), _t(-2.0), _t(-2.0))  # h = 2
    assert dpo_loss(*args, beta=0.5, loss_type="ipo").loss.item() == pytest.approx((2 - 1) ** 2)  # (h - 1/(2b))^2
    assert dpo_loss(*args, beta=0.25, loss_type="hinge").loss.item() == pytest.approx(0.5)  # 1 - 0.25*2
    assert dpo_loss(*args, beta=1.0, loss_type="hinge").loss.item() == 0.0
    # robust with eps 0.1 at beta*h = 1: (0.9 * 0.3133 - 0.1 * 1.3133) / 0.8
    sp, sn = -math.log(1 / (1 + math.exp(-1))), -math.log(1 / (1 + math.exp(1)))
    assert dpo_loss(*args, beta=0.5, loss_type="robust", label_smoothing=0.1).loss.item() == \
        pytest.approx((0.9 * sp - 0.1 * sn) / 0.8)
    # cDPO: 0.9 * 0.3133 + 0.1 * 1.3133
    assert dpo_loss(*args, beta=0.5, label_smoothing=0.1).loss.item() == pytest.approx(0.9 * sp + 0.1 * sn)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge", "robust"])
def test_gradient_raises_chosen_and_lowers_rejected(loss_type):
    chosen = torch.tensor([-1.0], requires_grad=True)
    rejected = torch.tensor([-1.0], requires_grad=True)
    dpo_loss(chosen, rejected, _t(-1.0).float(), _t(-1.0).float(), beta=0.1, loss_type=loss_type,
             label_smoothing=0.1 if loss_type == "robust" else 0.0).loss.backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()  # descent raises log pi(c), lowers log pi(r)


def test_bad_input():
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(_t(0.0), _t(0.0), _t(0.0), _t(0.0), beta=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(_t(0.0), _t(0.0), _t(0.0), _t(0.0), beta=1, label_smoothing=0.5)
    with pytest.raises(ValueError, match="same"):
        dpo_loss(_t(0.0, 1.0), _t(0.0), _t(0.0), _t(0.0), beta=1)
    with pytest.raises(ValueError, match="unknown loss_type"):
        dpo_loss(_t(0.0), _t(0.0), _t(0.0), _t(0.0), beta=1, loss_type="kto")
