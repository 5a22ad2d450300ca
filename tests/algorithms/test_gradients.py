"""The fused gradient step (rl_app.algorithms.gradients): RLlib's numbers, far fewer host syncs."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.torch_utils import clip_gradients

from rl_app.algorithms.gradients import all_finite, clip_by_global_norm, global_norm, optimizer_steps, \
    warmup_factor
from rl_app.bench import dpo_throughput as dpo_bench
from rl_app.bench.gradient_step import OpCounter, module_batch, optimizer_step_counters, stock_learner_class


def _random_grads(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(*shape, generator=g) for name, shape in
            (("w1", (4, 3)), ("b1", (4,)), ("w2", (2, 4)), ("b2", (2,)), ("emb", (7, 5)))}


def test_global_norm_and_clip_by_hand():
    # Per-tensor norms 5 and 12 -> global norm 13; grad_clip 6.5 halves every gradient.
    grads = {"a": torch.tensor([3.0, 4.0]), "b": torch.tensor([12.0]), "unused": None}
    assert float(global_norm([grads["a"], grads["b"]])) == pytest.approx(13.0)
    norm = clip_by_global_norm(grads, grad_clip=6.5, grad_clip_by="global_norm")
    assert float(norm) == pytest.approx(13.0)  # the norm before clipping, as RLlib returns it
    assert grads["a"].tolist() == pytest.approx([1.5, 2.0], rel=1e-6)
    assert grads["b"].tolist() == pytest.approx([6.0], rel=1e-6)
    assert grads["unused"] is None
    # Under the threshold nothing changes (coefficient clamped to 1).
    small = {"a": torch.tensor([0.3, 0.4])}
    assert float(clip_by_global_norm(small, grad_clip=1.0, grad_clip_by="global_norm")) == pytest.approx(0.5)
    assert small["a"].tolist() == pytest.approx([0.3, 0.4])


@pytest.mark.parametrize("grad_clip", [0.5, 1e3])
def test_clip_matches_rllib_on_finite_gradients(grad_clip):
    ours, theirs = _random_grads(), _random_grads()
    norm = clip_by_global_norm(ours, grad_clip=grad_clip, grad_clip_by="global_norm")
    expected = clip_gradients(theirs, grad_clip=grad_clip, grad_clip_by="global_norm")
    torch.testing.assert_close(norm, expected)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name])
    assert (float(norm) > grad_clip) == (grad_clip == 0.5)  # one case clips, the other does not


def test_clip_matches_rllib_on_nan_and_inf_gradients():
    ours, theirs = _random_grads(1), _random_grads(1)
    for grads in (ours, theirs):
        grads["w1"][0, 0] = float("nan")   # RLlib counts this tensor's norm as 0 ...
        grads["b2"][1] = float("inf")      # ... and this one's as 10e8
    norm = clip_by_global_norm(ours, grad_clip=1.0, grad_clip_by="global_norm")
    expected = clip_gradients(theirs, grad_clip=1.0, grad_clip_by="global_norm")
    torch.testing.assert_close(norm, expected)
    assert float(norm) == pytest.approx(10e8, rel=1e-6)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], equal_nan=True)


def test_other_clip_modes_are_rllibs():
    grads = {"a": torch.tensor([0.5, -2.0, 0.05])}
    clip_by_global_norm(grads, grad_clip=0.1, grad_clip_by="value")
    assert grads["a"].tolist() == pytest.approx([0.1, -0.1, 0.05])
    assert clip_by_global_norm(grads, grad_clip=None) is None
    with pytest.raises(ValueError, match="grad_clip_by"):
        clip_by_global_norm(grads, grad_clip=1.0, grad_clip_by="max")


def test_all_finite():
    grads = list(_random_grads().values())
    assert all_finite(grads) and all_finite([])
    for bad in (float("nan"), float("inf"), float("-inf")):
        broken = [g.clone() for g in grads]
        broken[2][1, 3] = bad
        assert not all_finite(broken)


# ---------------------------------------------------------------------- on a real DPO learner
@pytest.fixture(scope="module")
def tiny_pairs(tmp_path_factory):
    """A tiny random policy, 4 preference pairs of it and their tokenized batch (CPU tensors)."""
    tmp = tmp_path_factory.mktemp("gradstep")
    s = dpo_bench.DPOBenchSettings(batch=4, k=4, valid=3, state_len=16, action_len=6, device="cpu",
                                   precision="fp32")
    policy_dir, pair_dir, batch = dpo_bench.pair_workload(tmp, "tiny", s, n_pairs=s.batch)
    return s, policy_dir, pair_dir, module_batch(batch, torch.device("cpu"))


def build_learner(tiny_pairs, learner_class=None, **training):
    """A DPO learner of the tiny config, built in this process (no Ray); lr 1e-3 unless given."""
    s, policy_dir, pair_dir, _ = tiny_pairs
    config = dpo_bench.dpo_config(pair_dir, policy_dir, s, torch.device("cpu"), "fp32")
    config.training(**{"lr": 1e-3, **training})
    if learner_class is not None:
        config.learners(learner_class=learner_class)
    return config.build_learner()


@pytest.fixture(scope="module")
def learners(tiny_pairs):
    """(fused, stock) DPO learners of one config, each one update in, and a batch."""
    batch = tiny_pairs[3]
    built = build_learner(tiny_pairs), build_learner(tiny_pairs, stock_learner_class())
    for learner in built:
        learner._update(batch)  # the optimizer state (Adam's step counters) exists from here on
    return (*built, batch)


def _gradients(learner, batch) -> dict:
    """Postprocessed (clipped) gradients of one DPO loss on ``batch``, as apply_gradients gets them."""
    fwd_out = learner.module.forward_train(batch)
    loss = learner.compute_losses(fwd_out=fwd_out, batch=batch)
    return learner.postprocess_gradients(learner.compute_gradients(loss))


def test_fused_step_gives_rllibs_parameters_with_one_host_sync(learners):
    fused, _, batch = learners
    module = fused.module["default_policy"]
    start = copy.deepcopy(module.state_dict())
    optimizer = next(iter(fused._named_optimizers.values()))
    grads = _gradients(fused, batch)
    assert len(grads) > 20
    saved_grads = {pid: g.clone() for pid, g in grads.items()}
    optimizer_state = copy.deepcopy(optimizer.state_dict())

    counter = OpCounter(host_tensors=optimizer_step_counters(fused._named_optimizers.values()))
    with counter:
        fused.apply_gradients(grads)
    after_fused = copy.deepcopy(module.state_dict())

    module.load_state_dict(start)
    optimizer.load_state_dict(optimizer_state)
    stock = OpCounter(host_tensors=optimizer_step_counters(fused._named_optimizers.values()))
    with stock:
        TorchLearner.apply_gradients(fused, {pid: g.clone() for pid, g in saved_grads.items()})
    after_stock = module.state_dict()

    assert counter.syncs == 1  # the one fused finiteness check
    assert stock.syncs == 2 * len(grads)  # RLlib reads every gradient twice
    assert any(not torch.equal(after_fused[k], start[k]) for k in start)
    for k in start:
        torch.testing.assert_close(after_fused[k], after_stock[k], rtol=0, atol=0)


def test_nonfinite_gradients_take_rllibs_path(learners, caplog):
    fused, _, batch = learners
    grads = _gradients(fused, batch)
    pid = next(iter(grads))
    grads[pid][(0,) * grads[pid].dim()] = float("nan")
    with caplog.at_level(logging.WARNING, logger="ray.rllib.core.learner.torch.torch_learner"):
        fused.apply_gradients(grads)
    assert "contain `nan/inf` values" in caplog.text  # RLlib's own warning: its per-tensor path ran
    assert not torch.isnan(fused._params[pid].grad).any()  # nan zeroed before the step
    assert all(torch.isfinite(p).all() for p in fused.module["default_policy"].parameters())


def test_learner_update_syncs_do_not_grow_with_the_parameter_count(learners):
    fused, stock, batch = learners
    counts = {}
    for name, learner in (("fused", fused), ("stock", stock)):
        counter = OpCounter(host_tensors=optimizer_step_counters(learner._named_optimizers.values()))
        with counter:
            learner._update(batch)
        counts[name] = counter
    n_grads = sum(p.grad is not None for p in fused.module["default_policy"].parameters())
    assert n_grads > 20
    # The forward pass's one read (cut lengths, valid-candidate count) plus the one finiteness check.
    assert counts["fused"].syncs == 2
    # Same forward and loss; RLlib's step reads each gradient twice where the fused one reads once in all.
    assert counts["stock"].syncs - counts["fused"].syncs == 2 * n_grads - 1
    assert counts["stock"].ops > counts["fused"].ops + 5 * n_grads


# ---------------------------------------------------------------------- learning-rate warmup
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


def test_lr_warmup_ramps_the_first_updates_and_restores_the_lr(tiny_pairs):
    batch = tiny_pairs[3]
    learner = build_learner(tiny_pairs, lr_warmup_updates=4)
    assert learner.config.lr_warmup_updates == 4
    assert _lrs_of_steps(learner, batch, 6) == pytest.approx([0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3])
    optimizer = next(iter(learner._named_optimizers.values()))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)  # RLlib sees (and logs) the undamped lr
    assert optimizer_steps(optimizer) == 6
    # Without warmup every step runs at the full lr.
    assert _lrs_of_steps(build_learner(tiny_pairs), batch, 2) == pytest.approx([1e-3, 1e-3])


def test_lr_warmup_continues_after_a_restore(tiny_pairs):
    batch = tiny_pairs[3]
    first = build_learner(tiny_pairs, lr_warmup_updates=4)
    assert _lrs_of_steps(first, batch, 2) == pytest.approx([0.25e-3, 0.5e-3])
    restored = build_learner(tiny_pairs, lr_warmup_updates=4)
    restored.set_state(first.get_state())  # what an RLlib checkpoint restore does to a learner
    assert _lrs_of_steps(restored, batch, 3) == pytest.approx([0.75e-3, 1e-3, 1e-3])


def test_lr_warmup_needs_a_step_counting_optimizer(tiny_pairs):
    learner = build_learner(tiny_pairs, lr_warmup_updates=3)
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
