"""The fused gradient step (rl_app.algorithms.rllib_patches.gradient_step): RLlib's numbers, far fewer
host syncs; and RLlib's own step still reads every gradient twice (when that fails, the patch may go)."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.torch_utils import clip_gradients

from rl_app.algorithms.rllib_patches.gradient_step import all_finite, clip_by_global_norm, global_norm, \
    with_rllib_gradient_step
from rl_app.op_counter import OpCounter, optimizer_step_counters


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
def learners(tiny_dpo):
    """(fused, stock) DPO learners of one config, each one update in, and a batch."""
    from rl_app.algorithms.dpo.dpo_torch_learner import DPOTorchLearner

    build, batch = tiny_dpo
    built = build(), build(with_rllib_gradient_step(DPOTorchLearner))
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
