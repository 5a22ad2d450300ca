"""Linear learning-rate warmup (rl_app.algorithms.warmup): the factor by hand, the learning rate of each
optimizer step of a real DPO learner, a restore, the configs and the trainers' flag."""

from __future__ import annotations

import pytest
import torch

from rl_app.algorithms.warmup import optimizer_steps, warmup_factor


def test_warmup_factor_by_hand():
    assert [warmup_factor(n, 4) for n in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0 and warmup_factor(0, 1) == 1.0


def _lrs_of_steps(learner, batch, updates: int) -> list[float]:
    """The learning rate each optimizer step ran with, over ``updates`` learner updates."""
    optimizer = next(iter(learner._named_optimizers.values()))
    seen, step = [], optimizer.step

    def recording_step(*args, **kwargs):
        seen.append(optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    optimizer.step = recording_step
    try:
        for _ in range(updates):
            learner._update(batch)
    finally:
        del optimizer.step
    return seen


def test_lr_warmup_ramps_the_first_updates_and_restores_the_lr(tiny_dpo):
    build, batch = tiny_dpo
    learner = build(lr_warmup_updates=4)
    assert learner.config.lr_warmup_updates == 4
    assert _lrs_of_steps(learner, batch, 6) == pytest.approx([0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3])
    optimizer = next(iter(learner._named_optimizers.values()))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # RLlib sees (and logs) the undamped lr
    assert optimizer_steps(optimizer) == 6
    # Without warmup every step runs at the full lr.
    assert _lrs_of_steps(build(), batch, 2) == pytest.approx([1e-3, 1e-3])


def test_lr_warmup_continues_after_a_restore(tiny_dpo):
    build, batch = tiny_dpo
    first = build(lr_warmup_updates=4)
    assert _lrs_of_steps(first, batch, 2) == pytest.approx([0.25e-3, 0.5e-3])
    restored = build(lr_warmup_updates=4)
    restored.set_state(first.get_state())  # what an RLlib checkpoint restore does to a learner
    assert _lrs_of_steps(restored, batch, 3) == pytest.approx([0.75e-3, 1e-3, 1e-3])


def test_lr_warmup_needs_a_step_counting_optimizer(tiny_dpo):
    learner = tiny_dpo[0](lr_warmup_updates=3)
    name = next(iter(learner._named_optimizers))
    params = [p for group in learner._named_optimizers[name].param_groups for p in group["params"]]
    learner._named_optimizers[name] = torch.optim.SGD(params, lr=1e-3)
    with pytest.raises(ValueError, match="counts its steps.*SGD"):
        learner.apply_gradients({})
    assert optimizer_steps(torch.optim.SGD(params, lr=1e-3)) is None


def test_configs_take_and_validate_lr_warmup(demo_dir):
    from rl_app.algorithms.dpo import DPOConfig
    from rl_app.algorithms.ppo import WebShopPPOConfig
    from .conftest import tiny_il_config

    assert tiny_il_config([str(demo_dir)]).lr_warmup_updates == 0
    ppo = WebShopPPOConfig().training(lr_warmup_updates=50, lr=3e-5)
    assert (ppo.lr_warmup_updates, ppo.lr) == (50, 3e-5)  # RLlib's own arguments still apply
    assert DPOConfig().training(lr_warmup_updates=7).lr_warmup_updates == 7
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="lr_warmup_updates"):
            tiny_il_config([str(demo_dir)]).training(lr_warmup_updates=bad).validate()


def test_trainers_take_lr_warmup_updates(tmp_path):
    from rl_app.algorithms.dpo.train import build_config, build_parser

    # explicit token lengths: the (empty) --init-checkpoint is then not read for them
    args = build_parser().parse_args(["--data", str(tmp_path), "--out", str(tmp_path), "--init-checkpoint",
                                      str(tmp_path), "--max-state-tokens", "512", "--max-action-tokens", "32",
                                      "--lr-warmup-updates", "25"])
    assert build_config(args).lr_warmup_updates == 25
