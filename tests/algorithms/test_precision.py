"""bf16 autocast on learners (rl_app.algorithms.rllib_patches.precision): resolution, config, and a real IL update."""

from __future__ import annotations

import pytest
import torch

from rl_app.algorithms.rllib_patches.precision import resolve_precision
from .conftest import tiny_il_config


def test_auto_is_fp32_on_cpu_and_explicit_values_win():
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")


@pytest.mark.parametrize("native_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cuda_follows_native_bf16_support(monkeypatch, native_bf16, expected):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: calls.append(including_emulation) or native_bf16)
    assert resolve_precision("auto", "cuda:0") == expected
    assert calls == [False]  # emulated bf16 (a T4) is slower than fp32: not chosen


def test_configs_take_and_validate_precision(demo_dir):
    from rl_app.algorithms.dpo import DPOConfig
    from rl_app.algorithms.ppo import WebShopPPOConfig

    assert tiny_il_config([str(demo_dir)]).precision == "auto"
    assert DPOConfig().learners(precision="bf16", num_learners=0).precision == "bf16"
    ppo = WebShopPPOConfig().learners(precision="fp32", num_gpus_per_learner=0)
    assert (ppo.precision, ppo.num_gpus_per_learner) == ("fp32", 0)  # RLlib's own arguments still apply
    bad = tiny_il_config([str(demo_dir)]).learners(precision="fp16")
    with pytest.raises(ValueError, match="precision='fp16'"):
        bad.validate()


@pytest.mark.parametrize("precision, autocast, matmul_dtype", [("bf16", True, torch.bfloat16),
                                                              ("fp32", False, torch.float32),
                                                              ("auto", False, torch.float32)])
def test_il_update_runs_under_the_chosen_precision(ray_session, demo_dir, precision, autocast, matmul_dtype):
    config = tiny_il_config([str(demo_dir)], updates_per_iteration=2).learners(num_learners=0, precision=precision)
    algo = config.build_algo()
    seen = []
    try:
        learner = algo.learner_group._learner  # the local learner, in this process
        loss_fn = learner.compute_loss_for_module

        def recording_loss(*, module_id, config=None, batch, fwd_out):
            # Inside the update: is autocast on, and which dtypes do the logits and weights have?
            weight = next(learner.module[module_id].parameters())
            seen.append((torch.is_autocast_enabled("cpu"), fwd_out["action_dist_inputs"].dtype, weight.dtype))
            return loss_fn(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)

        learner.compute_loss_for_module = recording_loss
        linear = next(m for m in learner.module["default_policy"].modules() if isinstance(m, torch.nn.Linear))
        matmuls = []
        hook = linear.register_forward_hook(lambda mod, args, out: matmuls.append(out.dtype))
        before = {k: v.clone() for k, v in learner.module["default_policy"].state_dict().items()}
        result = algo.train()
        after = learner.module["default_policy"].state_dict()
        hook.remove()
    finally:
        algo.stop()
    assert learner.autocast_dtype == (torch.bfloat16 if autocast else None)
    # Matrix products run in bf16 under autocast; the module's logits are fp32 either way (its contract).
    assert matmuls and set(matmuls) == {matmul_dtype}
    assert seen == [(autocast, torch.float32, torch.float32)] * 2
    assert not torch.is_autocast_enabled("cpu")  # switched off again after the update
    # Master weights stay fp32 and move; the loss is finite and near ln(#candidates) at the start.
    assert all(v.dtype == before[k].dtype for k, v in after.items())
    assert any(not torch.equal(v, before[k]) for k, v in after.items() if v.is_floating_point())
    loss = result["learners"]["default_policy"]["losses/bc"]
    assert 0.3 < loss < 5.0
