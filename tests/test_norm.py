"""Batch norm running statistics / eval mode, LRN and Dropout2d against PyTorch,
plus the error messages. (Per-layer gradcheck and training-mode parity live in
the registry: ``tests/layer_cases_norm.py``.)"""
import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
import glassnet.nn.functional as F
from glassnet.analysis import gradcheck
from glassnet.errors import ShapeError
from tests.torch_oracle import require_torch


def _rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-6, float(np.max(np.abs(b)))))


def _torch_state(module):
    torch = require_torch()
    return {k: torch.from_numpy(np.array(v)) for k, v in module.state_dict().items()}


def _pair(cls_name, num_features, seed=0, **kwargs):
    """A glassnet layer and the PyTorch one, with the same random γ, β."""
    torch = require_torch()
    m = getattr(nn, cls_name)(num_features, **kwargs)
    if m.affine:
        rng = np.random.default_rng(seed)
        m.weight.data[...] = rng.uniform(0.5, 1.5, num_features)
        if m.bias is not None:
            m.bias.data[...] = rng.standard_normal(num_features)
    tm = getattr(torch.nn, cls_name)(num_features, **kwargs)
    tm.load_state_dict(_torch_state(m), strict=True)
    return m, tm


# ------------------------------------------------------------ running stats
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("cls_name,shape", [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (8, 3)),
                                             ("BatchNorm1d", (4, 3, 6))])
def test_running_stats_match_torch_then_eval(cls_name, shape, momentum):
    torch = require_torch()
    m, tm = _pair(cls_name, shape[1], momentum=momentum)
    rng = np.random.default_rng(1)
    for step in range(5):
        x = (rng.standard_normal(shape) * (1 + step) + step).astype(np.float32)
        out = m(gn.tensor(x))
        tout = tm(torch.from_numpy(x))
        assert _rel_err(out.numpy(), tout.detach().numpy()) <= 1e-5
    assert int(m.num_batches_tracked) == 5 == int(tm.num_batches_tracked)
    assert m.num_batches_tracked.dtype == np.int64 and m.num_batches_tracked.shape == ()
    assert m.running_mean.dtype == np.float32 and m.running_var.dtype == np.float32
    np.testing.assert_allclose(m.running_mean, tm.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.running_var, tm.running_var.numpy(), rtol=1e-5, atol=1e-6)

    m.eval(), tm.eval()
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    out = m(gn.tensor(x))
    assert out.dtype == np.float32
    assert _rel_err(out.numpy(), tm(torch.from_numpy(x)).detach().numpy()) <= 1e-5
    assert int(m.num_batches_tracked) == 5  # eval leaves the statistics alone


def test_eval_backward_matches_torch():
    torch = require_torch()
    m, tm = _pair("BatchNorm2d", 3)
    m.running_mean[...] = [0.5, -1.0, 0.2]
    m.running_var[...] = [2.0, 0.5, 1.3]
    tm.load_state_dict(_torch_state(m), strict=True)
    m.eval(), tm.eval()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    xt = gn.tensor(x, requires_grad=True)
    out = m(xt)
    out.backward(g)
    txt = torch.tensor(x, requires_grad=True)
    tout = tm(txt)
    tout.backward(torch.from_numpy(g))
    assert _rel_err(out.numpy(), tout.detach().numpy()) <= 1e-5
    assert _rel_err(xt.grad, txt.grad.numpy()) <= 1e-5
    assert _rel_err(m.weight.grad, tm.weight.grad.numpy()) <= 1e-5
    assert _rel_err(m.bias.grad, tm.bias.grad.numpy()) <= 1e-5
    np.testing.assert_array_equal(m.running_mean, np.float32([0.5, -1.0, 0.2]))  # untouched in eval


def test_eval_gradcheck_float64():
    rng = np.random.default_rng(3)
    x = gn.tensor(rng.standard_normal((3, 2, 3)), requires_grad=True)
    w = gn.tensor(rng.uniform(0.5, 1.5, 2), requires_grad=True)
    b = gn.tensor(rng.standard_normal(2), requires_grad=True)
    rm, rv = rng.standard_normal(2), rng.uniform(0.5, 2, 2)

    def fn(x, w, b):
        return F.batch_norm(x, rm, rv, w, b, training=False)

    result = gradcheck(fn, [x, w, b], eps=1e-6, atol=1e-6, rtol=1e-4)
    assert result.ok, str(result)


def test_no_running_stats_and_no_affine_match_torch():
    torch = require_torch()
    for kwargs in ({"track_running_stats": False}, {"affine": False}):
        m, tm = _pair("BatchNorm2d", 3, **kwargs)
        assert list(m.state_dict()) == list(tm.state_dict())
        rng = np.random.default_rng(4)
        x = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)
        for mode in (True, False):
            m.train(mode), tm.train(mode)
            out = m(gn.tensor(x))
            assert _rel_err(out.numpy(), tm(torch.from_numpy(x)).detach().numpy()) <= 1e-5


def test_functional_updates_running_stats_in_place():
    torch = require_torch()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 4, 3)).astype(np.float32)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    rm_t, rv_t = gn.tensor(rm.copy()), gn.tensor(rv.copy())  # Tensors work too
    out = F.batch_norm(gn.tensor(x), rm, rv, training=True, momentum=0.3)
    F.batch_norm(gn.tensor(x), rm_t, rv_t, training=True, momentum=0.3)
    trm, trv = torch.zeros(4), torch.ones(4)
    tout = torch.nn.functional.batch_norm(torch.from_numpy(x), trm, trv, training=True, momentum=0.3)
    assert _rel_err(out.numpy(), tout.numpy()) <= 1e-5
    for a, b in ((rm, trm), (rv, trv), (rm_t.numpy(), trm), (rv_t.numpy(), trv)):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------- state dict
def test_state_dict_num_batches_tracked_int64_and_loads_into_torch():
    torch = require_torch()
    m = nn.BatchNorm2d(5)
    m(gn.tensor(np.random.default_rng(6).standard_normal((2, 5, 3, 3)).astype(np.float32)))
    sd = m.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    nbt = sd["num_batches_tracked"]
    assert nbt.dtype == np.int64 and nbt.shape == () and int(nbt) == 1
    tm = torch.nn.BatchNorm2d(5)
    tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, strict=True)
    assert tm.num_batches_tracked.dtype == torch.int64 and int(tm.num_batches_tracked) == 1
    np.testing.assert_array_equal(tm.running_var.numpy(), m.running_var)
    # and back: a PyTorch state_dict loads into glassnet
    m2 = nn.BatchNorm2d(5)
    m2.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    assert int(m2.num_batches_tracked) == 1 and m2.num_batches_tracked.dtype == np.int64


def test_to_dtype_keeps_num_batches_tracked_int64():
    m = nn.BatchNorm1d(3).to(dtype=np.float64)
    assert m.weight.dtype == np.float64 and m.running_var.dtype == np.float64
    assert m.num_batches_tracked.dtype == np.int64
    m.float()
    assert m.running_mean.dtype == np.float32 and m.num_batches_tracked.dtype == np.int64


def test_repr_matches_torch():
    torch = require_torch()
    assert repr(nn.BatchNorm2d(16)) == (
        "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)")
    if "bias=" in repr(torch.nn.BatchNorm2d(16)):  # PyTorch >= 2.13 shows the bias flag
        assert repr(nn.BatchNorm2d(16)) == repr(torch.nn.BatchNorm2d(16))
        assert repr(nn.BatchNorm1d(4, momentum=None, affine=False)) == repr(
            torch.nn.BatchNorm1d(4, momentum=None, affine=False))
    assert repr(nn.LocalResponseNorm(5)) == repr(torch.nn.LocalResponseNorm(5))


# ---------------------------------------------------------------------- LRN
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (2, 6, 3), (1, 9, 2, 3), (2, 4, 2, 2, 2)])
def test_lrn_matches_torch(size, shape):
    torch = require_torch()
    rng = np.random.default_rng(size * 10 + len(shape))
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    alpha, beta, k = 0.05, 0.75, 1.5
    xt = gn.tensor(x, requires_grad=True)
    out = nn.LocalResponseNorm(size, alpha, beta, k)(xt)
    out.backward(g)
    txt = torch.tensor(x, requires_grad=True)
    tout = torch.nn.LocalResponseNorm(size, alpha, beta, k)(txt)
    tout.backward(torch.from_numpy(g))
    assert out.dtype == np.float32 and xt.grad.dtype == np.float32
    assert _rel_err(out.numpy(), tout.detach().numpy()) <= 1e-5
    assert _rel_err(xt.grad, txt.grad.numpy()) <= 1e-4


def test_lrn_gradcheck_channels_fewer_than_size():
    rng = np.random.default_rng(7)
    x = gn.tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    result = gradcheck(lambda x: F.local_response_norm(x, 6, alpha=0.3, beta=0.6, k=1.2), [x],
                       eps=1e-6, atol=1e-6, rtol=1e-4)
    assert result.ok, str(result)


# ---------------------------------------------------------------- Dropout2d
def test_dropout2d_zeroes_whole_channels_and_keeps_expectation():
    p = 0.3
    x = np.ones((400, 50, 2, 3), dtype=np.float32)
    out = F.dropout2d(gn.tensor(x), p=p, training=True, rng=np.random.default_rng(8)).numpy()
    assert out.dtype == np.float32
    per_channel = out.reshape(400, 50, -1)
    # every channel is either all zero or all 1/(1−p)
    dropped = (per_channel == 0).all(axis=2)
    kept = np.isclose(per_channel, 1 / (1 - p)).all(axis=2)
    assert np.all(dropped | kept)
    # 20 000 Bernoulli(0.3) channels: std of the drop fraction ≈ 0.0032
    assert abs(dropped.mean() - p) < 0.015
    assert abs(out.mean() - 1.0) < 0.025  # E[out] = x


def test_dropout2d_backward_uses_the_same_channel_mask():
    x = gn.tensor(np.random.default_rng(9).standard_normal((3, 5, 2, 2)).astype(np.float32),
                  requires_grad=True)
    out = F.dropout2d(x, p=0.5, training=True, rng=np.random.default_rng(10))
    out.backward(np.ones(out.shape, dtype=np.float32))
    expected = (out.numpy() != 0).astype(np.float32) * 2.0
    np.testing.assert_allclose(x.grad, expected)


def test_dropout2d_eval_is_identity_and_edge_probabilities():
    x_np = np.random.default_rng(11).standard_normal((2, 3, 4)).astype(np.float32)
    layer = nn.Dropout2d(0.5)
    layer.eval()
    np.testing.assert_array_equal(layer(gn.tensor(x_np)).numpy(), x_np)
    np.testing.assert_array_equal(F.dropout2d(gn.tensor(x_np), p=0.0).numpy(), x_np)
    assert not F.dropout2d(gn.tensor(x_np), p=1.0).numpy().any()
    with pytest.raises(ValueError, match="Dropout2d"):
        nn.Dropout2d(1.5)


# ------------------------------------------------------------------- errors
def test_shape_errors_name_layer_and_shapes():
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(4\).*\(N, C, H, W\).*\(2, 4, 5\)"):
        nn.BatchNorm2d(4)(gn.tensor(np.zeros((2, 4, 5), np.float32)))
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(4\).*\(N, C\) or \(N, C, L\).*\(2, 4, 5, 5\)"):
        nn.BatchNorm1d(4)(gn.tensor(np.zeros((2, 4, 5, 5), np.float32)))
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(4\).*\(2, 3, 5, 5\).*3 channels.*num_features = 4"):
        nn.BatchNorm2d(4)(gn.tensor(np.zeros((2, 3, 5, 5), np.float32)))
    with pytest.raises(ShapeError, match=r"batch_norm.*\(2, 3, 4\).*running_mean has shape \(5,\)"):
        F.batch_norm(gn.tensor(np.zeros((2, 3, 4), np.float32)), np.zeros(5, np.float32),
                     np.ones(5, np.float32), training=True)
    with pytest.raises(ShapeError, match=r"LocalResponseNorm\(3\).*\(4, 5\)"):
        nn.LocalResponseNorm(3)(gn.tensor(np.zeros((4, 5), np.float32)))
    with pytest.raises(ShapeError, match=r"Dropout2d\(p=0.5\).*\(4, 5\)"):
        nn.Dropout2d()(gn.tensor(np.zeros((4, 5), np.float32)))


def test_batch_norm_value_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(gn.tensor(np.zeros((1, 3), np.float32)))
    with pytest.raises(TypeError, match="float32 and float64"):
        nn.BatchNorm1d(3)(gn.tensor(np.zeros((4, 3), np.float64)))


def test_weight_without_bias_matches_torch():
    torch = require_torch()
    import inspect
    if "bias" not in inspect.signature(torch.nn.BatchNorm1d.__init__).parameters:
        pytest.skip("this PyTorch's BatchNorm has no bias= flag (added in 2.13)")
    m, tm = _pair("BatchNorm1d", 3, bias=False)
    assert m.bias is None and list(m.state_dict()) == list(tm.state_dict())
    x = np.random.default_rng(12).standard_normal((5, 3, 2)).astype(np.float32)
    g = np.random.default_rng(13).standard_normal(x.shape).astype(np.float32)
    xt, txt = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = m(xt), tm(txt)
    out.backward(g), tout.backward(torch.from_numpy(g))
    assert _rel_err(out.numpy(), tout.detach().numpy()) <= 1e-5
    assert _rel_err(xt.grad, txt.grad.numpy()) <= 1e-4
    assert _rel_err(m.weight.grad, tm.weight.grad.numpy()) <= 1e-4


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_kernel_same_on_channel_major_input(training):
    """Convolutions hand batch norm channel-major arrays (stored (C, N, H, W));
    its per-channel sums take a different path there, which must agree with
    the NCHW path in float64 to rounding, and keep its input's layout."""
    from glassnet.ops import norm as K

    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 9, 7)) * 3 + 1
    cm = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    dout = rng.standard_normal(x.shape)
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    results = []
    for inp in (x, cm):
        rm, rv = np.zeros(6), np.ones(6)
        y, cache = K.batch_norm_forward(inp, gamma, beta, rm, rv, training, 0.1, 1e-5)
        dx, dg, db = K.batch_norm_backward(dout, cache)
        results.append((y, rm, rv, dx, dg, db))
    assert not results[1][0].flags.c_contiguous  # the output keeps the channel-major order
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
