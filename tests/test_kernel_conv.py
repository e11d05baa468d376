"""Tests for glassnet/ops/conv/ (im2col convolution) and
glassnet/analysis/conv_arith.py (the output-size formula).

References:
* a naive float64 convolution written with explicit loops over output
  positions (forward, and a backward that scatters each output's gradient
  by direct loops);
* ``torch.nn.functional.conv2d`` forward + backward (autograd);
* float64 central differences.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from glassnet.analysis.conv_arith import conv_output_size
from glassnet.backend import cupy_available
from glassnet.errors import ShapeError
from glassnet.ops.conv import im2col_gemm as convmod
from glassnet.ops.conv import (
    DEFAULT_WORKSPACE_LIMIT,
    col2im,
    conv2d_backward,
    conv2d_forward,
    conv2d_output_shape,
    conv_settings,
    current_settings,
    im2col,
    same_padding,
)
from tests.torch_oracle import require_torch


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _pads4(padding):
    """(pH, pW) or ((t, b), (l, r)) -> (t, b, l, r)."""
    if isinstance(padding[0], (tuple, list)):
        (t, b), (l, r) = padding
        return t, b, l, r
    return padding[0], padding[0], padding[1], padding[1]


def naive_conv_forward(x, w, b, stride, padding, dilation, groups):
    """Float64 convolution, one output position at a time."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    t, bt, l, r = _pads4(padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (t, bt), (l, r)))
    ho = (h + t + bt - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + l + r - dw * (kw - 1) - 1) // sw + 1
    cog = c_out // groups
    out = np.zeros((n, c_out, ho, wo))
    for i in range(n):
        for oc in range(c_out):
            g = oc // cog
            for p in range(ho):
                for q in range(wo):
                    patch = xpad[i, g * cg : (g + 1) * cg,
                                 p * sh : p * sh + dh * (kh - 1) + 1 : dh,
                                 q * sw : q * sw + dw * (kw - 1) + 1 : dw]
                    out[i, oc, p, q] = np.sum(patch * w[oc]) + (0.0 if b is None else float(b[oc]))
    return out


def naive_conv_backward(dout, x, w, has_bias, stride, padding, dilation, groups):
    """Float64 gradients by direct loops: every output position sends
    dO·W back to its patch of X, and dO·patch to W."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    dout = np.asarray(dout, np.float64)
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    t, bt, l, r = _pads4(padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (t, bt), (l, r)))
    dxpad = np.zeros_like(xpad)
    dwt = np.zeros_like(w)
    db = np.zeros(c_out)
    ho, wo = dout.shape[2:]
    cog = c_out // groups
    for i in range(n):
        for oc in range(c_out):
            g = oc // cog
            for p in range(ho):
                for q in range(wo):
                    sl = (i, slice(g * cg, (g + 1) * cg),
                          slice(p * sh, p * sh + dh * (kh - 1) + 1, dh),
                          slice(q * sw, q * sw + dw * (kw - 1) + 1, dw))
                    go = dout[i, oc, p, q]
                    dxpad[sl] += go * w[oc]
                    dwt[oc] += go * xpad[sl]
                    db[oc] += go
    dx = dxpad[:, :, t : t + h, l : l + wd]
    return dx, dwt, (db if has_bias else None)


def torch_conv(x, w, b, stride, padding, dilation, groups, dout):
    """Forward + backward through PyTorch in the dtype of the inputs.
    Asymmetric padding goes through F.pad first."""
    torch = require_torch()
    F = torch.nn.functional
    X = torch.tensor(x, requires_grad=True)
    W = torch.tensor(w, requires_grad=True)
    B = None if b is None else torch.tensor(b, requires_grad=True)
    t, bt, l, r = _pads4(padding)
    if t == bt and l == r:
        o = F.conv2d(X, W, B, stride, (t, l), dilation, groups)
    else:
        o = F.conv2d(F.pad(X, (l, r, t, bt)), W, B, stride, 0, dilation, groups)
    o.backward(torch.tensor(dout))
    return (o.detach().numpy(), X.grad.numpy(), W.grad.numpy(),
            None if B is None else B.grad.numpy())


def assert_close(actual, ref, rtol):
    """max |actual − ref| <= rtol · max |ref| (relative to the reference's scale)."""
    assert actual.shape == ref.shape, (actual.shape, ref.shape)
    scale = max(float(np.max(np.abs(ref))), 1e-30) if ref.size else 1.0
    err = float(np.max(np.abs(np.asarray(actual, np.float64) - ref))) if ref.size else 0.0
    assert err <= rtol * scale, f"relative error {err / scale:.3g} > {rtol:g}"


def make_case(rng, n, c, h, w, c_out, kh, kw, groups, bias, dtype):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((c_out, c // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if bias else None
    return x, wt, b


def run_kernel(x, w, b, stride, padding, dilation, groups, dout, **kw):
    out, cache = conv2d_forward(x, w, b, stride, padding, dilation, groups, **kw)
    dx, dw, db = conv2d_backward(dout, cache)
    return out, dx, dw, db


# (n, c, h, w, c_out, kh, kw, stride, padding, dilation, groups, bias)
CONFIGS = [
    (2, 3, 7, 7, 4, 3, 3, (1, 1), (0, 0), (1, 1), 1, True),       # lecture's 7x7, 3x3
    (2, 3, 7, 7, 4, 3, 3, (2, 2), (1, 1), (1, 1), 1, False),
    (1, 2, 9, 8, 3, 2, 3, (3, 2), (1, 0), (1, 1), 1, True),        # doesn't tile
    (2, 4, 11, 10, 6, 3, 2, (2, 1), ((1, 0), (2, 1)), (1, 2), 2, True),  # asymmetric pad
    (3, 4, 8, 9, 8, 3, 3, (1, 2), (2, 1), (2, 1), 4, True),        # depthwise, multiplier 2
    (2, 6, 5, 5, 4, 1, 1, (1, 1), (0, 0), (1, 1), 2, True),        # 1x1 pointwise, grouped
    (2, 3, 6, 7, 5, 1, 1, (2, 3), (1, 0), (1, 1), 1, False),       # 1x1 strided + padded
    (1, 1, 13, 13, 2, 5, 5, (3, 3), (2, 2), (2, 2), 1, True),
]


# --------------------------------------------------------------------------
# parity: naive loops, PyTorch
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", CONFIGS)
def test_matches_naive_float64(cfg):
    n, c, h, w, c_out, kh, kw, stride, padding, dilation, groups, bias = cfg
    rng = np.random.default_rng(0)
    x, wt, b = make_case(rng, n, c, h, w, c_out, kh, kw, groups, bias, np.float64)
    ref = naive_conv_forward(x, wt, b, stride, padding, dilation, groups)
    dout = rng.standard_normal(ref.shape)
    out, dx, dw, db = run_kernel(x, wt, b, stride, padding, dilation, groups, dout)
    rdx, rdw, rdb = naive_conv_backward(dout, x, wt, bias, stride, padding, dilation, groups)
    assert_close(out, ref, 1e-12)
    assert_close(dx, rdx, 1e-12)
    assert_close(dw, rdw, 1e-12)
    if bias:
        assert_close(db, rdb, 1e-12)
    else:
        assert db is None


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-4), (np.float64, 1e-12)])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_matches_torch(cfg, dtype, rtol):
    n, c, h, w, c_out, kh, kw, stride, padding, dilation, groups, bias = cfg
    rng = np.random.default_rng(1)
    x, wt, b = make_case(rng, n, c, h, w, c_out, kh, kw, groups, bias, dtype)
    ho, wo = conv2d_output_shape(h, w, kh, kw, stride, padding, dilation)
    dout = rng.standard_normal((n, c_out, ho, wo)).astype(dtype)
    got = run_kernel(x, wt, b, stride, padding, dilation, groups, dout)
    # reference in float64 from the very same values
    f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    ref = torch_conv(f64(x), f64(wt), f64(b), stride, padding, dilation, groups, f64(dout))
    for g, r in zip(got, ref):
        if r is None:
            assert g is None
            continue
        assert g.dtype == dtype
        assert_close(g, r, rtol)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (2, 3), (5, 2), (1, 1)])
def test_same_padding_matches_torch(k, d):
    torch = require_torch()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, k, k + 1))
    pad = same_padding((k, k + 1), d)
    eh, ew = d * (k - 1), d * k
    assert pad == ((eh // 2, eh - eh // 2), (ew // 2, ew - ew // 2))
    out, cache = conv2d_forward(x, w, None, (1, 1), pad, (d, d))
    X = torch.tensor(x, requires_grad=True)
    W = torch.tensor(w, requires_grad=True)
    o = torch.nn.functional.conv2d(X, W, None, 1, "same", d)
    assert out.shape == tuple(o.shape) == x.shape[:1] + (4,) + x.shape[2:]
    assert_close(out, o.detach().numpy(), 1e-12)
    dout = rng.standard_normal(out.shape)
    o.backward(torch.tensor(dout))
    dx, dw, db = conv2d_backward(dout, cache)
    assert db is None
    assert_close(dx, X.grad.numpy(), 1e-12)
    assert_close(dw, W.grad.numpy(), 1e-12)


# --------------------------------------------------------------------------
# hypothesis sweep
# --------------------------------------------------------------------------
@st.composite
def conv_configs(draw):
    groups_kind = draw(st.sampled_from(["one", "two", "depthwise"]))
    if groups_kind == "one":
        c, groups = draw(st.integers(1, 4)), 1
    elif groups_kind == "two":
        c, groups = 2 * draw(st.integers(1, 2)), 2
    else:
        c = draw(st.integers(1, 4))
        groups = c
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    # only sizes whose output is >= 1: H + 2p >= d(k-1)+1 (odd and even sizes,
    # and remainders that leave the last rows/cols unused)
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), dh * (kh - 1) + 1 - 2 * ph + 8))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), dw * (kw - 1) + 1 - 2 * pw + 8))
    n = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return n, c, h, w, c_out, kh, kw, (sh, sw), (ph, pw), (dh, dw), groups, bias, seed


@settings(max_examples=40, deadline=None)
@given(conv_configs())
def test_hypothesis_sweep(cfg):
    n, c, h, w, c_out, kh, kw, stride, padding, dilation, groups, bias, seed = cfg
    rng = np.random.default_rng(seed)
    x, wt, b = make_case(rng, n, c, h, w, c_out, kh, kw, groups, bias, np.float64)
    ho, wo = conv2d_output_shape(h, w, kh, kw, stride, padding, dilation)
    dout = rng.standard_normal((n, c_out, ho, wo))
    ref = torch_conv(x, wt, b, stride, padding, dilation, groups, dout)
    # float64: tight against PyTorch
    got = run_kernel(x, wt, b, stride, padding, dilation, groups, dout)
    for g, r in zip(got, ref):
        if r is None:
            assert g is None
        else:
            assert_close(g, r, 1e-11)
    # float32: same values, 1e-4 relative to the float64 reference
    f32 = lambda a: None if a is None else a.astype(np.float32)  # noqa: E731
    got32 = run_kernel(f32(x), f32(wt), f32(b), stride, padding, dilation, groups, f32(dout))
    for g, r in zip(got32, ref):
        if r is not None:
            assert g.dtype == np.float32
            assert_close(g, r, 1e-4)
    # the naive loops agree on the forward as well
    assert_close(got[0], naive_conv_forward(x, wt, b, stride, padding, dilation, groups), 1e-11)


# --------------------------------------------------------------------------
# numerical gradient (float64 central differences)
# --------------------------------------------------------------------------
def numeric_grad(f, a, eps=1e-6):
    """d f / d a by central differences; f returns a scalar, a is perturbed in place."""
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = a[idx]
        a[idx] = old + eps
        fp = f()
        a[idx] = old - eps
        fm = f()
        a[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("cfg", [
    (2, 4, 6, 5, 4, 3, 2, (2, 1), ((1, 0), (0, 2)), (1, 2), 2, True),
    (1, 3, 5, 5, 3, 3, 3, (1, 1), (1, 1), (1, 1), 3, True),
])
def test_numeric_gradient(cfg):
    n, c, h, w, c_out, kh, kw, stride, padding, dilation, groups, bias = cfg
    rng = np.random.default_rng(3)
    x, wt, b = make_case(rng, n, c, h, w, c_out, kh, kw, groups, bias, np.float64)
    out, cache = conv2d_forward(x, wt, b, stride, padding, dilation, groups)
    dout = rng.standard_normal(out.shape)

    def loss():
        return float(np.sum(conv2d_forward(x, wt, b, stride, padding, dilation, groups)[0] * dout))

    dx, dw, db = conv2d_backward(dout, cache)
    for analytic, param in ((dx, x), (dw, wt), (db, b)):
        num = numeric_grad(loss, param)
        np.testing.assert_allclose(analytic, num, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------
ADJOINT_CASES = [
    ((2, 3, 7, 7), 3, 3, 1, 0, 1),
    ((2, 3, 7, 7), 3, 3, 2, 1, 1),
    ((1, 2, 9, 8), 2, 3, (3, 2), (1, 0), (2, 1)),
    ((3, 1, 10, 11), 4, 2, (2, 3), ((2, 1), (0, 3)), (1, 2)),
    ((2, 2, 5, 5), 1, 1, 1, 0, 1),
]


@pytest.mark.parametrize("case", ADJOINT_CASES)
def test_col2im_is_adjoint_of_im2col(case):
    shape, kh, kw, stride, padding, dilation = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    cols = im2col(x, kh, kw, stride, padding, dilation)
    c = rng.standard_normal(cols.shape)
    lhs = float(np.sum(cols * c))
    rhs = float(np.sum(x * col2im(c, shape, kh, kw, stride, padding, dilation)))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_im2col_columns_are_patches():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    kh, kw, (sh, sw), (ph, pw), (dh, dw) = 3, 2, (2, 1), (1, 0), (1, 2)
    cols = im2col(x, kh, kw, (sh, sw), (ph, pw), (dh, dw))
    ho, wo = conv2d_output_shape(7, 6, kh, kw, (sh, sw), (ph, pw), (dh, dw))
    assert cols.shape == (3 * kh * kw, 2 * ho * wo) and cols.dtype == np.float32
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    for n in range(2):
        for p in range(ho):
            for q in range(wo):
                patch = xpad[n, :, p * sh : p * sh + dh * (kh - 1) + 1 : dh, q * sw : q * sw + dw * (kw - 1) + 1 : dw]
                np.testing.assert_array_equal(cols[:, n * ho * wo + p * wo + q], patch.reshape(-1))


def test_col2im_counts_overlaps():
    # col2im(im2col(ones)) counts how many patches cover each pixel
    x = np.ones((1, 1, 4, 4))
    back = col2im(im2col(x, 3, 3, 1, 0, 1), x.shape, 3, 3, 1, 0, 1)
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]], float)
    np.testing.assert_array_equal(back[0, 0], expected)


def test_col2im_rejects_wrong_shape():
    with pytest.raises(ShapeError, match="col2im"):
        col2im(np.zeros((9, 10)), (1, 1, 4, 4), 3, 3)


# --------------------------------------------------------------------------
# fast paths, chunking, dtypes, errors
# --------------------------------------------------------------------------
def _count_im2col(monkeypatch):
    calls = []
    real = convmod._im2col

    def spy(x, *args):
        cols = real(x, *args)
        calls.append(cols.nbytes)
        return cols

    monkeypatch.setattr(convmod, "_im2col", spy)
    return calls


def test_pointwise_skips_im2col(monkeypatch):
    calls = _count_im2col(monkeypatch)
    rng = np.random.default_rng(6)
    x, w, b = make_case(rng, 2, 6, 5, 4, 4, 1, 1, 2, True, np.float64)
    dout = rng.standard_normal((2, 4, 5, 4))
    got = run_kernel(x, w, b, (1, 1), (0, 0), (1, 1), 2, dout)
    assert calls == []
    ref = naive_conv_backward(dout, x, w, True, (1, 1), (0, 0), (1, 1), 2)
    assert_close(got[0], naive_conv_forward(x, w, b, (1, 1), (0, 0), (1, 1), 2), 1e-12)
    for g, r in zip(got[1:], ref):
        assert_close(g, r, 1e-12)


@pytest.mark.parametrize("cache_cols", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunking_matches_unchunked(monkeypatch, cache_cols, dtype):
    rng = np.random.default_rng(7)
    n, c, h, w, c_out, k = 5, 4, 9, 8, 6, 3
    x, wt, b = make_case(rng, n, c, h, w, c_out, k, k, 2, True, dtype)
    stride, padding, dilation = (2, 1), ((1, 0), (1, 2)), (1, 2)
    ho, wo = conv2d_output_shape(h, w, k, k, stride, padding, dilation)
    dout = rng.standard_normal((n, c_out, ho, wo)).astype(dtype)
    with conv_settings(cache_cols=cache_cols):
        full = run_kernel(x, wt, b, stride, padding, dilation, 2, dout)
        per_sample = c * k * k * ho * wo * np.dtype(dtype).itemsize
        for limit in (1, per_sample, 2 * per_sample + 3):  # chunks of 1, 1, 2 (+ a short last one)
            calls = _count_im2col(monkeypatch)
            got = run_kernel(x, wt, b, stride, padding, dilation, 2, dout, workspace_limit_bytes=limit)
            assert len(calls) == 2 * -(-n // max(1, limit // per_sample))  # forward + rebuilt in backward
            assert max(calls) <= max(limit, per_sample)
            for g, r in zip(got, full):
                assert g.dtype == dtype
                np.testing.assert_allclose(g, r, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                           atol=1e-5 if dtype == np.float32 else 1e-12)
            monkeypatch.undo()
    assert current_settings().cache_cols


def test_global_workspace_limit_and_cache(monkeypatch):
    rng = np.random.default_rng(8)
    x, w, b = make_case(rng, 4, 2, 6, 6, 3, 3, 3, 1, True, np.float32)
    dout = rng.standard_normal((4, 3, 4, 4)).astype(np.float32)
    full = run_kernel(x, w, b, (1, 1), (0, 0), (1, 1), 1, dout)
    assert current_settings().workspace_limit == DEFAULT_WORKSPACE_LIMIT
    calls = _count_im2col(monkeypatch)
    with conv_settings(workspace_limit=1):
        assert current_settings().workspace_limit == 1
        got = run_kernel(x, w, b, (1, 1), (0, 0), (1, 1), 1, dout)
    assert current_settings().workspace_limit == DEFAULT_WORKSPACE_LIMIT
    assert len(calls) == 8  # 4 chunks forward, 4 rebuilt in backward
    for g, r in zip(got, full):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
    # unchunked: the forward's X_col is cached and the backward builds none
    calls.clear()
    run_kernel(x, w, b, (1, 1), (0, 0), (1, 1), 1, dout)
    assert len(calls) == 1
    with pytest.raises(ValueError):
        with conv_settings(workspace_limit=0):
            pass


def test_float32_stays_float32():
    rng = np.random.default_rng(9)
    x, w, b = make_case(rng, 2, 3, 8, 8, 4, 3, 3, 1, True, np.float32)
    out, cache = conv2d_forward(x, w, b, (1, 1), (1, 1))
    dx, dw, db = conv2d_backward(np.ones_like(out), cache)
    assert {a.dtype for a in (out, dx, dw, db)} == {np.dtype(np.float32)}


def test_mixed_dtypes_refused():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(TypeError, match="upcast"):
        conv2d_forward(x, np.zeros((1, 1, 3, 3), np.float64))
    with pytest.raises(TypeError, match="bias"):
        conv2d_forward(x, np.zeros((1, 1, 3, 3), np.float32), np.zeros(1, np.float64))


def test_shape_errors_are_clear():
    x = np.zeros((1, 3, 4, 4))
    with pytest.raises(ShapeError, match="3 channels"):
        conv2d_forward(x, np.zeros((2, 2, 3, 3)))
    with pytest.raises(ShapeError, match="groups=2"):
        conv2d_forward(np.zeros((1, 4, 4, 4)), np.zeros((3, 2, 3, 3)), groups=2)
    with pytest.raises(ShapeError, match=r"5x5 filter does not fit the 4x4 input"):
        conv2d_forward(x, np.zeros((2, 3, 5, 5)))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        conv2d_forward(np.zeros((3, 4, 4)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(ShapeError, match="bias"):
        conv2d_forward(x, np.zeros((2, 3, 3, 3)), np.zeros(3))


def test_output_shape_formula():
    # floor((H + 2p − d(k−1) − 1)/s) + 1
    assert conv2d_output_shape(7, 7, 3, 3, 3, 0, 1) == (2, 2)
    assert conv2d_output_shape(224, 224, 3, 3, 1, 1, 1) == (224, 224)
    assert conv2d_output_shape(227, 227, 11, 11, 4, 0, 1) == (55, 55)
    assert conv2d_output_shape(10, 9, 3, 2, (2, 1), ((1, 0), (2, 1)), (2, 3)) == (4, 9)


# --------------------------------------------------------------------------
# conv_output_size (the lecture's formula)
# --------------------------------------------------------------------------
def test_conv_output_size_lecture_examples():
    assert conv_output_size(7, 3, stride=1) == 5
    assert conv_output_size(7, 3, stride=2) == 3
    assert conv_output_size(7, 3, stride=1, padding=1) == 7
    assert conv_output_size(227, 11, stride=4) == 55  # AlexNet CONV1
    assert conv_output_size(32, 5, stride=1, padding=2) == 32
    assert conv_output_size(7, 3, dilation=2) == 3  # effective 5x5


def test_conv_output_size_stride_3_does_not_fit():
    with pytest.raises(ShapeError) as err:
        conv_output_size(7, 3, stride=3)
    msg = str(err.value)
    assert "3x3 filter at stride 3 on a 7x7 input doesn't fit" in msg
    assert "(7 - 3 + 2*0)/3 + 1 = 2.33 is not an integer" in msg


def test_conv_output_size_floor_matches_pytorch():
    assert conv_output_size(7, 3, stride=3, floor=True) == 2
    for n in range(1, 20):
        for f in range(1, 6):
            for s in range(1, 4):
                for p in range(0, 3):
                    for d in range(1, 3):
                        if d * (f - 1) + 1 > n + 2 * p:
                            continue
                        got = conv_output_size(n, f, s, p, d, floor=True)
                        assert got == conv2d_output_shape(n, n, f, f, s, p, d)[0]
                        if (n - d * (f - 1) - 1 + 2 * p) % s == 0:
                            assert conv_output_size(n, f, s, p, d) == got


def test_conv_output_size_filter_too_large():
    for floor in (False, True):
        with pytest.raises(ShapeError, match="larger than the padded input"):
            conv_output_size(4, 7, floor=floor)
    with pytest.raises(ShapeError, match="effective 9x9"):
        conv_output_size(7, 3, dilation=4)
    with pytest.raises(ValueError):
        conv_output_size(7, 3, stride=0)


# --------------------------------------------------------------------------
# CuPy: the same code on a GPU (skipped without one)
# --------------------------------------------------------------------------
@pytest.mark.skipif(not cupy_available(), reason="CuPy with a GPU not available")
@pytest.mark.parametrize("cfg", CONFIGS)
def test_cupy_matches_numpy(cfg):
    import cupy

    n, c, h, w, c_out, kh, kw, stride, padding, dilation, groups, bias = cfg
    rng = np.random.default_rng(10)
    x, wt, b = make_case(rng, n, c, h, w, c_out, kh, kw, groups, bias, np.float32)
    ho, wo = conv2d_output_shape(h, w, kh, kw, stride, padding, dilation)
    dout = rng.standard_normal((n, c_out, ho, wo)).astype(np.float32)
    ref = run_kernel(x, wt, b, stride, padding, dilation, groups, dout)
    for limit in (None, 1):
        g = lambda a: None if a is None else cupy.asarray(a)  # noqa: E731
        got = run_kernel(g(x), g(wt), g(b), stride, padding, dilation, groups, g(dout),
                         workspace_limit_bytes=limit)
        for a, r in zip(got, ref):
            if r is None:
                assert a is None
                continue
            assert isinstance(a, cupy.ndarray) and a.dtype == np.float32
            assert_close(cupy.asnumpy(a), r.astype(np.float64), 1e-4)


@pytest.mark.parametrize("limit", [None, 1])
def test_bias_in_gemm_and_skipped_dx(limit):
    """groups=1 with bias folds b into the GEMM (ones row in X_col); need_dx=False skips dX only."""
    rng = np.random.default_rng(11)
    x, w, b = make_case(rng, 3, 2, 7, 6, 4, 3, 2, 1, True, np.float64)
    out, cache = conv2d_forward(x, w, b, (2, 1), (1, 0), (1, 1), 1, workspace_limit_bytes=limit)
    assert cache.bias_in_gemm  # the bias rode in the GEMM
    assert_close(out, naive_conv_forward(x, w, b, (2, 1), (1, 0), (1, 1), 1), 1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    ref = naive_conv_backward(dout, x, w, True, (2, 1), (1, 0), (1, 1), 1)
    for got, r in zip((dx, dw, db), ref):
        assert_close(got, r, 1e-12)
    out2, cache2 = conv2d_forward(x, w, b, (2, 1), (1, 0), (1, 1), 1, workspace_limit_bytes=limit, need_dx=False)
    dx2, dw2, db2 = conv2d_backward(dout, cache2)
    assert dx2 is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


def test_bias_added_after_the_gemm_when_the_output_is_smaller_than_the_weights():
    """N·Ho·Wo < C·kH·kW (a batch-1 forward of a deep layer): the bias is added to the output
    instead of copying the weights into [W_row | b]; values and gradients as the reference."""
    rng = np.random.default_rng(14)
    x, w, b = make_case(rng, 1, 16, 3, 3, 8, 3, 3, 1, True, np.float64)   # 9 outputs, 144 rows
    out, cache = conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), 1)
    assert not cache.bias_in_gemm
    assert_close(out, naive_conv_forward(x, w, b, (1, 1), (1, 1), (1, 1), 1), 1e-12)
    dout = rng.standard_normal(out.shape)
    got = conv2d_backward(dout, cache)
    ref = naive_conv_backward(dout, x, w, True, (1, 1), (1, 1), (1, 1), 1)
    for g, r in zip(got, ref):
        assert_close(g, r, 1e-12)


@pytest.mark.parametrize("groups", [1, 2])
def test_weight_grad_orientation_for_many_rows(groups):
    """Layers with >= 128 X_col rows per group take the (X_col · dOᵀ)ᵀ route for dW."""
    rng = np.random.default_rng(12)
    x, w, b = make_case(rng, 2, 32, 6, 5, 4, 3, 3, groups, True, np.float64)  # 32/groups·9 >= 144 rows
    out, cache = conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), groups)
    dout = rng.standard_normal(out.shape)
    got = conv2d_backward(dout, cache)
    ref = naive_conv_backward(dout, x, w, True, (1, 1), (1, 1), (1, 1), groups)
    for g, r in zip(got, ref):
        assert_close(g, r, 1e-12)


@pytest.mark.parametrize("dilation,padding", [((1, 1), (1, 1)), ((2, 1), ((2, 1), (0, 3)))])
def test_wide_row_col2im_on_wide_images(monkeypatch, dilation, padding):
    """Stride-1 layers on wide inputs take the full-width-row col2im; it must equal the reference."""
    calls = []
    real = convmod._col2im_wide_rows
    monkeypatch.setattr(convmod, "_col2im_wide_rows", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(13)
    x, w, b = make_case(rng, 2, 3, 9, 81, 4, 3, 3, 1, True, np.float64)
    out, cache = conv2d_forward(x, w, b, (1, 1), padding, dilation, 1)
    dout = rng.standard_normal(out.shape)
    got = conv2d_backward(dout, cache)
    ref = naive_conv_backward(dout, x, w, True, (1, 1), padding, dilation, 1)
    assert calls  # the wide-row path ran
    for g, r in zip(got, ref):
        assert_close(g, r, 1e-12)


# --------------------------------------------------------------------------
# settings: one frozen ConvSettings in a context variable
# --------------------------------------------------------------------------
def test_conv_settings_nest_restore_and_validate():
    from glassnet.ops.conv import ConvSettings

    base = current_settings()
    assert base == ConvSettings()
    with conv_settings(winograd=False) as outer:
        assert current_settings() is outer and not outer.winograd
        with conv_settings(cache_cols=False, workspace_limit=4096):
            inner = current_settings()
            assert (inner.winograd, inner.cache_cols, inner.workspace_limit) == (False, False, 4096)
        assert current_settings() is outer
        with pytest.raises(ValueError, match="workspace_limit"):
            with conv_settings(workspace_limit=-1):
                pass
        with pytest.raises(ValueError, match="winograd_on_gpu"):  # the message lists the settings
            with conv_settings(winograd_on_gpu_typo=True):
                pass
        assert current_settings() is outer
    assert current_settings() == base
    with pytest.raises(AttributeError):
        base.winograd = False  # frozen


def test_backward_uses_the_forwards_settings_in_any_thread(monkeypatch):
    """The cache carries the settings its forward ran under: a backward in another thread
    (which sees the default context) decides the same way as the forward's block said."""
    import threading

    from glassnet.ops.conv import backward as backward_module
    from glassnet.ops.conv.winograd_tiles import F4X4_3X3

    def in_thread(fn):
        result = {}
        thread = threading.Thread(target=lambda: result.update(value=fn(), seen=current_settings()))
        thread.start()
        thread.join()
        assert result["seen"] == type(result["seen"])()  # the thread has the default settings
        return result["value"]

    rng = np.random.default_rng(14)
    x, w, b = make_case(rng, 6, 2, 7, 7, 3, 3, 3, 1, True, np.float64)
    dout = rng.standard_normal((6, 3, 5, 5))
    full = run_kernel(x, w, b, (1, 1), (0, 0), (1, 1), 1, dout)
    with conv_settings(workspace_limit=1, cache_cols=False):
        _, cache = conv2d_forward(x, w, b, (1, 1), (0, 0))
    assert cache.settings.workspace_limit == 1 and cache.cols is None
    calls = _count_im2col(monkeypatch)
    grads = in_thread(lambda: conv2d_backward(dout, cache))
    assert len(calls) == 6  # X_col rebuilt sample by sample, under the forward's limit
    for got, ref in zip(grads, full[1:]):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # dL/dX by Winograd because the forward's rules say so (the thread's default rules would not)
    winograd_dx = []
    real = backward_module.winograd_input_gradient
    monkeypatch.setattr(backward_module, "winograd_input_gradient",
                        lambda *a: winograd_dx.append(1) or real(*a))
    with conv_settings(winograd_rules=[(3, F4X4_3X3, 1, 1, 0)]):
        _, cache = conv2d_forward(x, w, b, (1, 1), (1, 1))
    assert cache.algorithm == "winograd F(4x4,3x3)"
    grads = in_thread(lambda: conv2d_backward(rng.standard_normal((6, 3, 7, 7)), cache))
    assert winograd_dx == [1] and grads[0].shape == x.shape
