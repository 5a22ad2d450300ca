"""rl_app.op_counter.OpCounter: operators and host syncs counted, host-side tensors skipped, and the reads
a GPU would wait for counted on CPU too."""

from __future__ import annotations

import torch

from rl_app.op_counter import OpCounter, optimizer_step_counters


def test_counter_sees_syncs_and_skips_host_tensors():
    step = torch.tensor(3.0)
    x = torch.ones(3)
    counter = OpCounter(host_tensors=[step])
    with counter:
        y = x * 2
        assert bool((y > 1).all())   # a read of a value: one sync
        assert step.item() == 3.0    # a host-side counter: not one
    assert counter.syncs == 1
    assert counter.ops >= 4  # mul, gt, all, the read


def test_counter_sees_the_reads_a_gpu_would_wait_for():
    x = torch.tensor([0.0, 1.0, 2.0])
    step = torch.tensor(1.0)
    original = torch.Tensor.tolist
    counter = OpCounter(host_tensors=[step])
    with counter:
        assert x.nonzero().shape == (2, 1)         # output size from the values
        assert x[x > 0].shape == (2,)              # boolean indexing
        assert x.tolist() == [0.0, 1.0, 2.0]       # no dispatch on CPU: counted through the patch
        assert x.numpy().shape == (3,)
        assert step.tolist() == 1.0                # a host-side counter: not counted
        y = x.argsort()                            # fixed-size output: no sync
    assert counter.syncs == 4
    assert y.tolist() == [0, 1, 2]                 # outside: not counted, and tolist restored
    assert counter.syncs == 4 and torch.Tensor.tolist is original


def test_optimizer_step_counters_are_the_step_tensors():
    w = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([w], lr=0.1)
    assert optimizer_step_counters([optimizer]) == []  # no state before the first step
    w.grad = torch.ones(2)
    optimizer.step()
    (step,) = optimizer_step_counters([optimizer])
    assert float(step) == 1.0
