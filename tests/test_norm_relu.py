"""Batch norm + ReLU fused (glassnet.ops.norm_relu, glassnet.nn.fusion): bitwise the separate
layers' results, used where the rules allow and nowhere else. The float64 gradcheck and the
PyTorch parity run from the layer registry (tests/layer_cases_norm.py: Sequential(BatchNorm2d, ReLU))."""
import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
from glassnet import autograd
from glassnet.distributed import SyncBatchNorm
from glassnet.models import get_model
from glassnet.nn.fusion import (batch_norm_add_relu, batch_norm_relu, can_fuse, can_pool_first, can_relu_in_place,
                                fusion_enabled, no_fusion)
from glassnet.ops import activations as A
from glassnet.ops import norm as K
from glassnet.ops import norm_relu as KR


def _channel_major(a):
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_kernels_are_bitwise_the_separate_layers(dtype, layout, training, affine):
    rng = np.random.default_rng(0)
    shape = (4, 40, 33, 35)  # several channel blocks (over 2**18 values per array)
    x = rng.standard_normal(shape).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    if layout == "channel_major":
        x, dout = _channel_major(x), _channel_major(dout)
    c = shape[1]
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype) if affine else None
    beta = rng.standard_normal(c).astype(dtype) if affine else None
    stats = [rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)]
    fused_stats, separate_stats = [s.copy() for s in stats], [s.copy() for s in stats]

    out, cache = KR.batch_norm_relu_forward(x, gamma, beta, *fused_stats, training, 0.1, 1e-5)
    y, bn_cache = K.batch_norm_forward(x, gamma, beta, *separate_stats, training, 0.1, 1e-5)
    f, relu_cache = A.relu_forward(y)
    assert out.dtype == dtype and out.strides == f.strides and np.array_equal(out, f)
    assert all(np.array_equal(a, b) for a, b in zip(fused_stats, separate_stats))
    got = KR.batch_norm_relu_backward(dout, cache)
    want = K.batch_norm_backward(A.relu_backward(dout, relu_cache), bn_cache)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            assert g.dtype == dtype and g.strides == w.strides and np.array_equal(g, w)


@pytest.mark.parametrize("residual_layout", ["nchw", "channel_major"])
@pytest.mark.parametrize("training", [True, False])
def test_residual_kernels_are_bitwise_batch_norm_add_relu(residual_layout, training):
    rng = np.random.default_rng(1)
    shape = (3, 24, 30, 31)
    x = _channel_major(rng.standard_normal(shape).astype(np.float32))  # a convolution's output
    r = rng.standard_normal(shape).astype(np.float32)
    r = _channel_major(r) if residual_layout == "channel_major" else r
    dout = _channel_major(rng.standard_normal(shape).astype(np.float32))
    c = shape[1]
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    stats = (rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32))
    out, cache = KR.batch_norm_add_relu_forward(x, r, gamma, beta, *[a.copy() for a in stats], training, 0.1, 1e-5)
    y, bn_cache = K.batch_norm_forward(x, gamma, beta, *[a.copy() for a in stats], training, 0.1, 1e-5)
    f, relu_cache = A.relu_forward(y + r)
    assert np.array_equal(out, f)
    dx, dr, dgamma, dbeta = KR.batch_norm_add_relu_backward(dout, cache)
    ds = A.relu_backward(dout, relu_cache)
    want = K.batch_norm_backward(ds, bn_cache)
    assert np.array_equal(dr, ds)
    for g, w in zip((dx, dgamma, dbeta), want):
        assert np.array_equal(g, w)
    with pytest.raises(gn.errors.ShapeError, match="residual"):
        KR.batch_norm_add_relu_forward(x, r[:, :-1], gamma, beta, *stats, training, 0.1, 1e-5)


def _net():
    gn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 1))


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the fused kernel's forwards."""
    calls = []
    real = KR.batch_norm_relu_forward

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(KR, "batch_norm_relu_forward", spy)
    return calls


def _forward_backward(model, x):
    xt = gn.tensor(x, requires_grad=True)
    out = model(xt)
    out.backward(gn.tensor(np.ones(out.shape, dtype=x.dtype)))
    grads = [p.grad.copy() for p in model.parameters()]
    return out.numpy(), xt.grad.copy(), grads, [b.copy() for _, b in model.named_buffers()]


def test_sequential_fuses_the_pair_with_the_same_bits_and_statistics(fused_calls):
    x = np.random.default_rng(1).standard_normal((5, 3, 8, 8)).astype(np.float32)
    fused = _forward_backward(_net(), x)
    assert fused_calls == [(5, 6, 8, 8)]
    with no_fusion():
        assert not fusion_enabled()
        separate = _forward_backward(_net(), x)
    assert fusion_enabled() and len(fused_calls) == 1
    for a, b in zip(fused[:2], separate[:2]):
        assert np.array_equal(a, b)
    for a, b in zip(fused[2] + fused[3], separate[2] + separate[3]):  # grads, running stats, batch count
        assert np.array_equal(a, b)


def test_not_fused_where_something_would_notice(fused_calls):
    x = gn.tensor(np.random.default_rng(2).standard_normal((2, 3, 4, 4)).astype(np.float32))
    bn, relu = nn.BatchNorm2d(3), nn.ReLU()
    assert can_fuse(bn, relu) and can_fuse(bn, None)
    seen = []
    handle = relu.register_forward_hook(lambda m, inputs, output: seen.append(output.shape))
    assert not can_fuse(bn, relu)
    batch_norm_relu(bn, relu, x)
    assert seen == [(2, 3, 4, 4)] and fused_calls == []  # the hook saw the ReLU's own call
    handle.remove()
    assert not can_fuse(SyncBatchNorm(3), relu)  # a subclass with its own forward
    assert not can_fuse(bn, nn.LeakyReLU()) and not can_fuse(nn.Identity(), relu)
    autograd.tracer, previous = (lambda *args: None), autograd.tracer
    try:
        assert not can_fuse(bn, relu)  # graph capture (ONNX export) sees both layers
    finally:
        autograd.tracer = previous
    batch_norm_relu(bn, None, x)  # the functional F.relu form
    assert fused_calls == [(2, 3, 4, 4)]
    handle = bn.register_forward_hook(lambda m, inputs, output: seen.append("bn"))
    y = batch_norm_add_relu(bn, relu, x, x)
    handle.remove()
    assert seen[-1] == "bn" and y.shape == (2, 3, 4, 4)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "googlenet"])
def test_zoo_models_train_bitwise_the_same_fused(name, fused_calls):
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32)

    def run():
        gn.manual_seed(0)
        kwargs = {"aux_logits": False} if name == "googlenet" else {}
        model = get_model(name, num_classes=5, **kwargs)
        model.train()
        return _forward_backward(model, x)

    residual_calls = []
    real = KR.batch_norm_add_relu_forward
    KR_spy = lambda *args: residual_calls.append(args[0].shape) or real(*args)  # noqa: E731
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KR, "batch_norm_add_relu_forward", KR_spy)
        fused = run()
    assert fused_calls, f"{name}: no batch norm + ReLU pair was fused"
    assert bool(residual_calls) == name.startswith("resnet"), f"{name}: residual ends fused {len(residual_calls)}"
    with no_fusion():
        separate = run()
    assert np.array_equal(fused[0], separate[0]) and np.array_equal(fused[1], separate[1])
    for a, b in zip(fused[2] + fused[3], separate[2] + separate[3]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("pool", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2),                       # overlapping windows (AlexNet, ResNet's stem)
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=2),
])
def test_relu_then_max_pool_runs_pool_first_with_the_same_bits(pool, monkeypatch):
    """relu(max_pool(x)) == max_pool(relu(x)) value for value and gradient for gradient, on
    inputs with ties, exact zeros and all-negative windows."""
    from glassnet.functional import pool as pool_functional

    rng = np.random.default_rng(4)
    x = np.round(rng.standard_normal((3, 4, 9, 10)) * 2) / 2  # many ties and zeros
    x[0, 0] = -np.abs(x[0, 0]) - 1                           # every window negative
    x = x.astype(np.float32)
    order = []
    real_relu, real_in_place, real_pool = nn.functional.relu, A.relu_inplace_forward, pool_functional.max_pool2d
    monkeypatch.setattr(nn.activation.F, "relu", lambda *a, **k: order.append("relu") or real_relu(*a, **k))
    monkeypatch.setattr(A, "relu_inplace_forward", lambda x: order.append("relu in place") or real_in_place(x))
    monkeypatch.setattr(nn.pooling.F, "max_pool2d", lambda *a, **k: order.append("pool") or real_pool(*a, **k))

    def run():
        gn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.MaxPool2d(**pool))
        with gn.no_grad():
            model[0].weight.data[...] = np.eye(4, dtype=np.float32).reshape(4, 4, 1, 1)
            model[0].bias.data[...] = 0
        return _forward_backward(model, x)

    rewritten = run()
    assert order == ["pool", "relu in place"]  # on the pool's output, which its backward never reads
    with no_fusion():
        plain = run()
    assert order == ["pool", "relu in place", "relu", "pool"]
    for a, b in zip(rewritten[:2] + tuple(rewritten[2]), plain[:2] + tuple(plain[2])):
        assert np.array_equal(a, b)
    assert not can_pool_first(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    hooked = nn.MaxPool2d(2)
    hooked.register_forward_hook(lambda *args: None)
    assert not can_pool_first(nn.ReLU(), hooked) and not can_pool_first(nn.LeakyReLU(), nn.MaxPool2d(2))


def test_relu_after_conv_or_linear_runs_in_place_with_the_same_bits(monkeypatch):
    calls = []
    real = A.relu_inplace_forward
    monkeypatch.setattr(A, "relu_inplace_forward", lambda x: calls.append(x.shape) or real(x))
    x = np.random.default_rng(5).standard_normal((4, 3, 6, 6)).astype(np.float32)

    def run():
        gn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 2, 3), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
        return _forward_backward(model, x)

    in_place = run()
    # conv → ReLU, the pool-first ReLU on the pooled (4, 2, 2, 2), linear → ReLU
    assert calls == [(4, 5, 6, 6), (4, 2, 2, 2), (4, 6)]
    with no_fusion():
        plain = run()
    assert len(calls) == 3
    for a, b in zip(in_place[:2] + tuple(in_place[2]), plain[:2] + tuple(plain[2])):
        assert np.array_equal(a, b)


def test_relu_in_place_stands_aside_for_hooks_and_refuses_leaves():
    conv, relu = nn.Conv2d(1, 2, 1), nn.ReLU()
    assert can_relu_in_place(conv, relu) and can_relu_in_place(nn.Linear(2, 2), relu)
    kept = []
    conv.register_forward_hook(lambda m, inputs, output: kept.append(output.numpy().copy()) or None)
    assert not can_relu_in_place(conv, relu)
    with gn.no_grad():
        conv.weight.data[...] = np.array([1.0, -1.0], dtype=np.float32).reshape(2, 1, 1, 1)
    out = nn.Sequential(conv, relu)(gn.tensor(np.ones((1, 1, 2, 2), dtype=np.float32)))
    assert kept[0].min() < 0 <= out.numpy().min()  # the hook's view of the conv output was not clipped
    assert not can_relu_in_place(nn.Conv2d(1, 1, 1), nn.LeakyReLU())
    with gn.no_grad():  # no graph: arrays die at once, the in-place pass did not pay
        assert not can_relu_in_place(nn.Conv2d(1, 1, 1), nn.ReLU())
    leaf = gn.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(gn.errors.InvalidArgumentError, match="leaf"):
        nn.functional.relu_(leaf)
    y = nn.functional.relu_(gn.tensor(np.array([-1.0, 2.0], dtype=np.float32)))
    assert y.numpy().tolist() == [0.0, 2.0]


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 7)])
def test_batch_norm_1d_then_relu_fuses_with_the_same_bits(shape, fused_calls):
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)

    def run():
        gn.manual_seed(0)
        return _forward_backward(nn.Sequential(nn.Linear(shape[-1], shape[-1]), nn.BatchNorm1d(shape[1]),
                                               nn.ReLU()), x)

    fused = run()
    assert fused_calls == [shape]
    with no_fusion():
        plain = run()
    for a, b in zip(fused[:2] + tuple(fused[2]) + tuple(fused[3]), plain[:2] + tuple(plain[2]) + tuple(plain[3])):
        assert np.array_equal(a, b)
