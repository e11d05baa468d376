"""The autograd side of data parallelism: post-accumulate-grad hooks and queue_callback
(glassnet/autograd.py, glassnet/tensor.py)."""
import numpy as np
import pytest

import glassnet as gn
from glassnet.errors import GlassnetRuntimeError
from tests.distributed_scripts.fakes import loss_of, mlp


def test_post_accumulate_grad_hook_fires_once_with_the_final_gradient_while_backward_runs():
    model = mlp()
    params = dict(model.named_parameters())
    calls = []

    def hook(p):
        calls.append((next(n for n, q in params.items() if q is p), p.grad.copy(), model[0].weight.grad is None))
    for p in params.values():
        p.register_post_accumulate_grad_hook(hook)
    loss_of(model).backward()
    assert sorted(n for n, *_ in calls) == sorted(params)  # each parameter once
    for name, grad, _ in calls:
        np.testing.assert_array_equal(grad, params[name].grad)  # already final
    first_layer_pending = {n: pending for n, _, pending in calls}
    # the last layer's gradients arrive while the first layer's are still being computed
    assert first_layer_pending["4.weight"] and first_layer_pending["4.bias"]
    assert [n for n, *_ in calls].index("4.weight") < [n for n, *_ in calls].index("0.weight")


def test_hook_sees_the_sum_of_all_uses_and_accumulation_and_can_be_removed():
    x = gn.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    seen = []
    handle = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.copy()))
    (x * x + x * 3).sum().backward()        # two uses: one call, with 2x + 3
    (x * 2).sum().backward()                 # accumulates: 2x + 3 + 2
    handle.remove()
    (x * 2).sum().backward()
    assert len(seen) == 2
    np.testing.assert_array_equal(seen[0], [5.0, 7.0])
    np.testing.assert_array_equal(seen[1], [7.0, 9.0])


def test_hook_only_on_leaves_that_require_grad():
    x = gn.tensor([1.0], requires_grad=True)
    with pytest.raises(GlassnetRuntimeError, match="only leaf tensors"):
        (x * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(GlassnetRuntimeError, match="does not require grad"):
        gn.tensor([1.0]).register_post_accumulate_grad_hook(print)


def test_queue_callback_runs_after_the_walk():
    model = mlp()
    events = []

    def hook(p):
        if not events:
            gn.autograd.queue_callback(lambda: events.append(all(q.grad is not None for q in model.parameters())))
        events.append("hook")
    for p in model.parameters():
        p.register_post_accumulate_grad_hook(hook)
    loss_of(model).backward()
    assert events[-1] is True and events.count("hook") == 6
    with pytest.raises(GlassnetRuntimeError, match="no backward"):
        gn.autograd.queue_callback(print)


