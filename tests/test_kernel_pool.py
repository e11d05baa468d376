"""Tests for glassnet/ops/pool/ (the fast kernels) and the pooling API built on it
(glassnet/functional/pool.py, glassnet/nn/pooling.py).

References:
* naive float64 pools written with explicit loops over output positions
  (max with first-on-ties arg-max routing, average with both
  ``count_include_pad`` rules and ``ceil_mode``, power-average, adaptive
  average/max), each with a loop backward;
* ``torch.nn.functional`` forward + backward (autograd) in float32, swept by
  hypothesis over random shapes, strides, paddings, dilations and
  ``ceil_mode``, including kernels that do not tile the input.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import glassnet as gn
import glassnet.nn as nn
import glassnet.nn.functional as F
from glassnet.backend import cupy_available
from glassnet.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from glassnet.ops import pool as P
from tests.torch_oracle import require_torch

SWEEP = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------
# naive references: explicit loops over output positions, float64
# --------------------------------------------------------------------------
def ref_out_size(size, k, s, p=0, d=1, ceil_mode=False):
    """PyTorch's output size, written independently of the kernel's."""
    num = size + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        o = -(-num // s) + 1  # ceil division
        if o > 0 and (o - 1) * s >= size + p:  # last window must start inside input / left pad
            o -= 1
    else:
        o = num // s + 1
    return o


def naive_max_pool2d(x, k, s, p, d, ceil_mode):
    """Returns (out, flat arg-max index into H*W per output)."""
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    Ho = ref_out_size(H, k[0], s[0], p[0], d[0], ceil_mode)
    Wo = ref_out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    out = np.empty((N, C, Ho, Wo))
    idx = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    best, bi = -np.inf, -1
                    for a in range(k[0]):
                        r = i * s[0] - p[0] + a * d[0]
                        if not 0 <= r < H:
                            continue
                        for b in range(k[1]):
                            q = j * s[1] - p[1] + b * d[1]
                            if not 0 <= q < W:
                                continue
                            if bi < 0 or x[n, c, r, q] > best:  # strict: first on ties
                                best, bi = x[n, c, r, q], r * W + q
                    out[n, c, i, j], idx[n, c, i, j] = best, bi
    return out, idx


def naive_route(dout, idx, x_shape):
    """Backward of any max pool: each output's gradient to its arg-max."""
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dx[n, c, idx[n, c, i, j]] += dout[n, c, i, j]
    return dx.reshape(x_shape)


def _avg_windows(H, W, k, s, p, ceil_mode):
    """Yield (i, j, (h0, h1, w0, w1) clipped to input, padded-window size)."""
    Ho = ref_out_size(H, k[0], s[0], p[0], 1, ceil_mode)
    Wo = ref_out_size(W, k[1], s[1], p[1], 1, ceil_mode)
    for i in range(Ho):
        for j in range(Wo):
            hs, ws = i * s[0] - p[0], j * s[1] - p[1]
            he, we = min(hs + k[0], H + p[0]), min(ws + k[1], W + p[1])
            pool = (he - hs) * (we - ws)
            yield i, j, (max(hs, 0), min(he, H), max(ws, 0), min(we, W)), pool
    return


def naive_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    Ho = ref_out_size(H, k[0], s[0], p[0], 1, ceil_mode)
    Wo = ref_out_size(W, k[1], s[1], p[1], 1, ceil_mode)
    out = np.zeros((N, C, Ho, Wo))
    for i, j, (h0, h1, w0, w1), pool in _avg_windows(H, W, k, s, p, ceil_mode):
        div = divisor_override or (pool if count_include_pad else (h1 - h0) * (w1 - w0))
        for n in range(N):
            for c in range(C):
                out[n, c, i, j] = x[n, c, h0:h1, w0:w1].sum() / div
    return out


def naive_avg_pool2d_backward(dout, x_shape, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    N, C, H, W = x_shape
    dx = np.zeros(x_shape)
    for i, j, (h0, h1, w0, w1), pool in _avg_windows(H, W, k, s, p, ceil_mode):
        div = divisor_override or (pool if count_include_pad else (h1 - h0) * (w1 - w0))
        for n in range(N):
            for c in range(C):
                dx[n, c, h0:h1, w0:w1] += dout[n, c, i, j] / div
    return dx


def naive_lp_pool2d(x, norm_type, k, s, ceil_mode):
    """y = (kH·kW / |window ∩ input| · Σ x^p)^(1/p) (PyTorch's formula; the
    factor is 1 for full windows). Returns (y, dy/dx routed by dout later)."""
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    p = float(norm_type)
    area = k[0] * k[1]
    Ho = ref_out_size(H, k[0], s[0], 0, 1, ceil_mode)
    Wo = ref_out_size(W, k[1], s[1], 0, 1, ceil_mode)
    out = np.zeros((N, C, Ho, Wo))
    for i, j, (h0, h1, w0, w1), pool in _avg_windows(H, W, k, s, (0, 0), ceil_mode):
        for n in range(N):
            for c in range(C):
                t = (x[n, c, h0:h1, w0:w1] ** p).sum() * area / pool
                out[n, c, i, j] = t ** (1.0 / p)
    return out


def naive_lp_pool2d_backward(dout, x, norm_type, k, s, ceil_mode):
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    p = float(norm_type)
    area = k[0] * k[1]
    dx = np.zeros(x.shape)
    for i, j, (h0, h1, w0, w1), pool in _avg_windows(H, W, k, s, (0, 0), ceil_mode):
        for n in range(N):
            for c in range(C):
                win = x[n, c, h0:h1, w0:w1]
                t = (win ** p).sum() * area / pool
                dt = dout[n, c, i, j] * (1.0 / p) * t ** (1.0 / p - 1.0)
                dx[n, c, h0:h1, w0:w1] += dt * area / pool * p * win ** (p - 1.0)
    return dx


def ref_adaptive_bounds(size, out):
    return [((i * size) // out, ((i + 1) * size + out - 1) // out) for i in range(out)]


def naive_adaptive_avg(x, out_hw):
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    out = np.zeros((N, C, Ho, Wo))
    for i, (h0, h1) in enumerate(ref_adaptive_bounds(H, Ho)):
        for j, (w0, w1) in enumerate(ref_adaptive_bounds(W, Wo)):
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def naive_adaptive_avg_backward(dout, x_shape, out_hw):
    Ho, Wo = out_hw
    dx = np.zeros(x_shape)
    for i, (h0, h1) in enumerate(ref_adaptive_bounds(x_shape[2], Ho)):
        for j, (w0, w1) in enumerate(ref_adaptive_bounds(x_shape[3], Wo)):
            dx[:, :, h0:h1, w0:w1] += dout[:, :, i, j][:, :, None, None] / ((h1 - h0) * (w1 - w0))
    return dx


def naive_adaptive_max(x, out_hw):
    x = np.asarray(x, np.float64)
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    out = np.zeros((N, C, Ho, Wo))
    idx = np.zeros((N, C, Ho, Wo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i, (h0, h1) in enumerate(ref_adaptive_bounds(H, Ho)):
                for j, (w0, w1) in enumerate(ref_adaptive_bounds(W, Wo)):
                    best, bi = -np.inf, -1
                    for r in range(h0, h1):
                        for q in range(w0, w1):
                            if bi < 0 or x[n, c, r, q] > best:
                                best, bi = x[n, c, r, q], r * W + q
                    out[n, c, i, j], idx[n, c, i, j] = best, bi
    return out, idx


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-6, float(np.max(np.abs(b)))))


def perm_input(rng, shape, dtype=np.float64):
    """Tie-free input: a random permutation of 0..n-1, centred and scaled."""
    n = int(np.prod(shape))
    return ((rng.permutation(n).reshape(shape) - n / 2) / max(n, 1)).astype(dtype)


def has_empty_window(size, out, k, s, p, d):
    """True when some window holds no real input element (only possible with
    dilation skipping over a tiny input); PyTorch's result is then -inf with
    an out-of-range index, so the sweeps leave such configs out."""
    for i in range(out):
        if not any(0 <= i * s - p + a * d < size for a in range(k)):
            return True
    return False


@st.composite
def pool_configs(draw, dilation=True, padding=True):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2))) if padding else (0, 0)
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(shape=(n, c, h, w), k=k, s=s, p=p, d=d, ceil_mode=ceil_mode, seed=seed)


def _out_hw(cfg):
    _, _, H, W = cfg["shape"]
    return (ref_out_size(H, cfg["k"][0], cfg["s"][0], cfg["p"][0], cfg["d"][0], cfg["ceil_mode"]),
            ref_out_size(W, cfg["k"][1], cfg["s"][1], cfg["p"][1], cfg["d"][1], cfg["ceil_mode"]))


def _torch_fwd_bwd(torch, fn, x, dout):
    tx = torch.tensor(x, requires_grad=True)
    ty = fn(tx)
    ty.backward(torch.tensor(dout))
    return ty.detach().numpy(), tx.grad.numpy()


# --------------------------------------------------------------------------
# output size
# --------------------------------------------------------------------------
def test_pool_output_size_matches_torch_grid():
    torch = require_torch()
    import torch.nn.functional as TF
    checked = 0
    for size in range(1, 12):
        for k in range(1, 5):
            for s in range(1, 5):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        for ceil_mode in (False, True):
                            ours = P.pool_output_size(size, k, s, p, d, ceil_mode)
                            assert ours == ref_out_size(size, k, s, p, d, ceil_mode)
                            x = torch.zeros(1, 1, size, 1)
                            try:
                                y = TF.max_pool2d(x, (k, 1), (s, 1), (p, 0), (d, 1), ceil_mode)
                            except RuntimeError:
                                assert ours < 1, (size, k, s, p, d, ceil_mode)
                                continue
                            assert ours == y.shape[2], (size, k, s, p, d, ceil_mode)
                            checked += 1
    assert checked > 500


def test_ceil_mode_last_window_rule():
    # 5 + 2*1 - 2 = 5, ceil(5/2) + 1 = 4 windows would start at 0,2,4,6 (padded
    # coordinates); the last starts at 6 - 1 = 5 >= H: in the right padding, dropped.
    assert P.pool_output_size(5, 2, 2, 1, 1, ceil_mode=True) == 3
    assert P.pool_output_size(5, 2, 2, 1, 1, ceil_mode=False) == 3
    assert P.pool_output_size(6, 3, 2, 0, 1, ceil_mode=True) == 3  # last window is cut short
    assert P.pool_output_size(6, 3, 2, 0, 1, ceil_mode=False) == 2


# --------------------------------------------------------------------------
# max pooling
# --------------------------------------------------------------------------
MAX_CASES = [
    # shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),   # tiles: fast path
    ((2, 2, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), False),   # fast path with a cut-off remainder
    ((1, 2, 9, 9), (3, 3), (2, 2), (0, 0), (1, 1), False),   # overlapping (AlexNet)
    ((2, 1, 7, 6), (3, 2), (2, 3), (1, 1), (1, 1), False),   # rectangular, padding
    ((1, 2, 9, 8), (3, 3), (1, 2), (1, 0), (2, 2), False),   # dilation
    ((2, 2, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), True),    # ceil_mode, does not tile
    ((1, 1, 6, 5), (3, 3), (2, 2), (1, 1), (1, 1), True),    # ceil_mode + padding
    ((1, 3, 5, 11), (4, 1), (3, 4), (2, 0), (1, 2), True),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False),
]


@pytest.mark.parametrize("shape,k,s,p,d,ceil_mode", MAX_CASES)
def test_max_pool_matches_naive_float64(shape, k, s, p, d, ceil_mode):
    rng = np.random.default_rng(0)
    x = perm_input(rng, shape)
    out, cache = P.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    ref, idx = naive_max_pool2d(x, k, s, p, d, ceil_mode)
    assert out.dtype == np.float64 and out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    dx = P.max_pool2d_backward(dout, cache)
    assert dx.shape == x.shape and dx.dtype == np.float64
    np.testing.assert_allclose(dx, naive_route(dout, idx, x.shape), rtol=1e-12, atol=1e-12)


def _assert_max_vs_torch(torch, x, cfg):
    import torch.nn.functional as TF
    k, s, p, d, cm = cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"]
    out, cache = P.max_pool2d_forward(x, k, s, p, d, cm)
    assert out.dtype == x.dtype
    rng = np.random.default_rng(cfg["seed"] + 1)
    dout = rng.standard_normal(out.shape).astype(x.dtype)
    dx = P.max_pool2d_backward(dout, cache)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    ty, tdx = _torch_fwd_bwd(torch, lambda t: TF.max_pool2d(t, k, s, p, d, cm), x, dout)
    assert out.shape == ty.shape
    assert rel_err(out, ty) <= 1e-4
    assert rel_err(dx, tdx) <= 1e-4
    return out, dx, dout


@SWEEP
@given(cfg=pool_configs())
def test_max_pool_sweep_vs_torch_and_naive(cfg):
    torch = require_torch()
    shape, k, s, p, d, cm = cfg["shape"], cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"]
    Ho, Wo = _out_hw(cfg)
    x = perm_input(np.random.default_rng(cfg["seed"]), shape, np.float32)
    if Ho < 1 or Wo < 1:
        with pytest.raises(ShapeError):
            P.max_pool2d_forward(x, k, s, p, d, cm)
        with pytest.raises(RuntimeError):
            torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, d, cm)
        return
    if has_empty_window(shape[2], Ho, k[0], s[0], p[0], d[0]) or \
            has_empty_window(shape[3], Wo, k[1], s[1], p[1], d[1]):
        return
    _, dx32, dout = _assert_max_vs_torch(torch, x, cfg)
    # float64 against the loop reference (same tie-free values, exact routing)
    x64 = x.astype(np.float64)
    out64, cache = P.max_pool2d_forward(x64, k, s, p, d, cm)
    ref, idx = naive_max_pool2d(x64, k, s, p, d, cm)
    np.testing.assert_array_equal(out64, ref)
    dx64 = P.max_pool2d_backward(dout.astype(np.float64), cache)
    np.testing.assert_allclose(dx64, naive_route(dout.astype(np.float64), idx, x.shape), atol=1e-12)


@pytest.mark.parametrize("shape,k,s,p,d,ceil_mode", MAX_CASES)
def test_max_pool_ties_all_equal_vs_torch(shape, k, s, p, d, ceil_mode):
    """All-equal input: every window's gradient goes to its first real element."""
    torch = require_torch()
    x = np.full(shape, 0.5, dtype=np.float32)
    cfg = dict(k=k, s=s, p=p, d=d, ceil_mode=ceil_mode, seed=7)
    _, dx, dout = _assert_max_vs_torch(torch, x, cfg)
    _, idx = naive_max_pool2d(x, k, s, p, d, ceil_mode)
    np.testing.assert_allclose(dx, naive_route(dout.astype(np.float64), idx, shape), atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_max_pool_ties_few_values_vs_torch(seed):
    """Inputs drawn from {0, 1, 2}: many ties in every window, first wins."""
    torch = require_torch()
    rng = np.random.default_rng(seed)
    shape, k, s, p, d, cm = MAX_CASES[seed]
    x = rng.integers(0, 3, size=shape).astype(np.float32)
    _assert_max_vs_torch(torch, x, dict(k=k, s=s, p=p, d=d, ceil_mode=cm, seed=seed))


def test_max_pool_negative_inf_and_nan_like_torch():
    torch = require_torch()
    x = np.full((1, 1, 4, 4), -np.inf, dtype=np.float32)
    x[0, 0, 1, 2] = np.nan
    x[0, 0, 3, 3] = 1.0
    for args in [((2, 2), (2, 2), (0, 0), (1, 1), False), ((3, 3), (1, 1), (1, 1), (1, 1), False)]:
        out, cache = P.max_pool2d_forward(x, *args)
        dout = np.arange(1, out.size + 1, dtype=np.float32).reshape(out.shape)
        dx = P.max_pool2d_backward(dout, cache)
        ty, tdx = _torch_fwd_bwd(torch, lambda t: torch.nn.functional.max_pool2d(t, *args), x, dout)
        np.testing.assert_array_equal(out, ty)
        np.testing.assert_array_equal(dx, tdx)


@pytest.mark.parametrize("shape,k", [((2, 3, 8, 8), 2), ((1, 2, 7, 10), 3), ((1, 1, 6, 6), (3, 2))])
def test_max_and_avg_fast_path_taken_and_correct(shape, k):
    k = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(1)
    x = perm_input(rng, shape)
    out, cache = P.max_pool2d_forward(x, k, k, (0, 0))
    assert cache.algorithm == "separable" and cache.crop is None  # unpadded: no crop
    ref, idx = naive_max_pool2d(x, k, k, (0, 0), (1, 1), False)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(P.max_pool2d_backward(dout, cache), naive_route(dout, idx, shape), atol=1e-12)

    aout, acache = P.avg_pool2d_forward(x, k, k, (0, 0))
    assert acache.algorithm == "tiles"
    np.testing.assert_allclose(aout, naive_avg_pool2d(x, k, k, (0, 0), False, True), atol=1e-12)
    np.testing.assert_allclose(P.avg_pool2d_backward(dout, acache),
                               naive_avg_pool2d_backward(dout, shape, k, k, (0, 0), False, True), atol=1e-12)


def test_max_pool_tracks_the_arg_max_only_for_all_minus_inf_padded_windows():
    x = perm_input(np.random.default_rng(0), (1, 1, 7, 7))

    def path(*args, data=x):
        cache = P.max_pool2d_forward(data, *args)[1]
        if cache.algorithm == "running max":
            return "general"
        return "separable-padded" if cache.crop is not None else "separable"

    assert path((2, 2), (2, 2), (1, 1)) == "separable-padded"  # -inf padding, winners recomputed
    assert path((3, 3), (2, 2), (0, 0)) == "separable"  # unpadded but overlapping: accumulate
    assert path((2, 2), (2, 2), (0, 0), (2, 2)) == "separable"  # dilated
    assert path((2, 2), (2, 2), (0, 0), (1, 1), True) == "separable-padded"  # 7 with ceil_mode reads past the edge
    assert path((2, 2), (2, 2), (0, 0), (1, 1), True, data=x[:, :, :6, :6]) == "separable"
    # a window that is all -inf could pick a padding position: the tracked arg-max path
    minus_inf = np.full((1, 1, 4, 4), -np.inf, dtype=np.float32)
    assert path((3, 3), (2, 2), (1, 1), data=minus_inf) == "general"


# --------------------------------------------------------------------------
# average pooling
# --------------------------------------------------------------------------
AVG_CASES = [
    # shape, kernel, stride, padding, ceil_mode
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), False),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1), False),
    ((2, 1, 7, 6), (3, 2), (2, 3), (1, 1), True),
    ((1, 2, 6, 5), (3, 3), (2, 2), (1, 1), True),
    ((1, 1, 5, 11), (4, 1), (3, 4), (2, 0), True),
    ((1, 2, 7, 7), (2, 2), (2, 2), (0, 0), True),
]


@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("shape,k,s,p,ceil_mode", AVG_CASES)
def test_avg_pool_matches_naive_float64(shape, k, s, p, ceil_mode, cip):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    out, cache = P.avg_pool2d_forward(x, k, s, p, ceil_mode, cip)
    ref = naive_avg_pool2d(x, k, s, p, ceil_mode, cip)
    assert out.shape == ref.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = P.avg_pool2d_backward(dout, cache)
    np.testing.assert_allclose(dx, naive_avg_pool2d_backward(dout, shape, k, s, p, ceil_mode, cip),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("divisor", [1, 3, 7])
def test_avg_pool_divisor_override_vs_torch(divisor):
    torch = require_torch()
    rng = np.random.default_rng(divisor)
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    for k, s, p, cm in [((2, 2), (2, 2), (0, 0), False), ((3, 2), (2, 1), (1, 1), True)]:
        out, cache = P.avg_pool2d_forward(x, k, s, p, cm, True, divisor)
        assert out.dtype == np.float32
        dout = rng.standard_normal(out.shape).astype(np.float32)
        dx = P.avg_pool2d_backward(dout, cache)
        ty, tdx = _torch_fwd_bwd(
            torch, lambda t: torch.nn.functional.avg_pool2d(t, k, s, p, cm, True, divisor), x, dout)
        assert rel_err(out, ty) <= 1e-5 and rel_err(dx, tdx) <= 1e-5
        np.testing.assert_allclose(out, naive_avg_pool2d(x, k, s, p, cm, True, divisor), rtol=1e-5, atol=1e-6)


@SWEEP
@given(cfg=pool_configs(dilation=False), cip=st.booleans())
def test_avg_pool_sweep_vs_torch_and_naive(cfg, cip):
    torch = require_torch()
    import torch.nn.functional as TF
    shape, k, s, p, cm = cfg["shape"], cfg["k"], cfg["s"], cfg["p"], cfg["ceil_mode"]
    Ho, Wo = _out_hw(cfg)
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(shape).astype(np.float32)
    if Ho < 1 or Wo < 1:
        with pytest.raises(ShapeError):
            P.avg_pool2d_forward(x, k, s, p, cm, cip)
        with pytest.raises(RuntimeError):
            TF.avg_pool2d(torch.tensor(x), k, s, p, cm, cip)
        return
    out, cache = P.avg_pool2d_forward(x, k, s, p, cm, cip)
    assert out.dtype == np.float32
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = P.avg_pool2d_backward(dout, cache)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    ty, tdx = _torch_fwd_bwd(torch, lambda t: TF.avg_pool2d(t, k, s, p, cm, cip), x, dout)
    assert out.shape == ty.shape
    assert rel_err(out, ty) <= 1e-4
    assert rel_err(dx, tdx) <= 1e-4
    x64, d64 = x.astype(np.float64), dout.astype(np.float64)
    out64, c64 = P.avg_pool2d_forward(x64, k, s, p, cm, cip)
    np.testing.assert_allclose(out64, naive_avg_pool2d(x64, k, s, p, cm, cip), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(P.avg_pool2d_backward(d64, c64),
                               naive_avg_pool2d_backward(d64, shape, k, s, p, cm, cip), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# power-average (Lp) pooling
# --------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [1, 2, 3, 1.5])
@pytest.mark.parametrize("shape,k,s,ceil_mode", [
    ((2, 2, 8, 8), (2, 2), (2, 2), False),
    ((1, 3, 7, 9), (3, 3), (2, 2), False),
    ((2, 1, 7, 6), (3, 2), (2, 3), True),
    ((1, 2, 5, 5), (2, 3), (1, 2), True),
])
def test_lp_pool_matches_naive_float64(shape, k, s, ceil_mode, norm_type):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 1.5, size=shape)
    out, cache = P.lp_pool2d_forward(x, norm_type, k, s, ceil_mode)
    ref = naive_lp_pool2d(x, norm_type, k, s, ceil_mode)
    assert out.shape == ref.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(P.lp_pool2d_backward(dout, cache),
                               naive_lp_pool2d_backward(dout, x, norm_type, k, s, ceil_mode), rtol=1e-10, atol=1e-12)


def test_lp_pool_p2_is_l2_norm_of_window():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 6, 6))
    out, cache = P.lp_pool2d_forward(x, 2, (3, 3), (3, 3))
    win = x.reshape(1, 2, 2, 3, 2, 3)
    np.testing.assert_allclose(out, np.sqrt((win ** 2).sum(axis=(3, 5))), rtol=1e-12)
    dx = P.lp_pool2d_backward(np.ones_like(out), cache)  # d‖w‖/dw = w / ‖w‖
    np.testing.assert_allclose(dx.reshape(1, 2, 2, 3, 2, 3), win / out[:, :, :, None, :, None], rtol=1e-12)


def test_lp_pool_inf_is_max_of_abs():
    rng = np.random.default_rng(3)
    x = perm_input(rng, (1, 2, 6, 7))
    out, cache = P.lp_pool2d_forward(x, math.inf, (2, 3), (2, 2))
    ref, idx = naive_max_pool2d(np.abs(x), (2, 3), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(P.lp_pool2d_backward(dout, cache),
                               naive_route(dout, idx, x.shape) * np.sign(x), atol=1e-12)


@SWEEP
@given(cfg=pool_configs(dilation=False, padding=False), norm_type=st.sampled_from([1, 2, 3, 2.5]),
       signed=st.booleans())
def test_lp_pool_sweep_vs_torch(cfg, norm_type, signed):
    torch = require_torch()
    import torch.nn.functional as TF
    shape, k, s, cm = cfg["shape"], cfg["k"], cfg["s"], cfg["ceil_mode"]
    Ho, Wo = _out_hw(cfg)
    rng = np.random.default_rng(cfg["seed"])
    if signed and norm_type == 2:
        x = rng.standard_normal(shape).astype(np.float32)  # even power: sign does not matter
    else:
        x = rng.uniform(0.2, 1.5, size=shape).astype(np.float32)
    if Ho < 1 or Wo < 1:
        with pytest.raises(ShapeError):
            P.lp_pool2d_forward(x, norm_type, k, s, cm)
        return
    out, cache = P.lp_pool2d_forward(x, norm_type, k, s, cm)
    assert out.dtype == np.float32
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = P.lp_pool2d_backward(dout, cache)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    ty, tdx = _torch_fwd_bwd(torch, lambda t: TF.lp_pool2d(t, norm_type, k, s, cm), x, dout)
    assert out.shape == ty.shape
    assert rel_err(out, ty) <= 1e-4
    assert rel_err(dx, tdx) <= 1e-4


# --------------------------------------------------------------------------
# adaptive pooling
# --------------------------------------------------------------------------
def test_adaptive_bounds_match_reference():
    for size in range(1, 14):
        for out in range(1, 8):
            start, end = P.adaptive_pool_bounds(size, out)
            assert list(zip(start.tolist(), end.tolist())) == ref_adaptive_bounds(size, out)


@pytest.mark.parametrize("shape,out_hw", [
    ((2, 3, 7, 5), (3, 2)), ((1, 2, 7, 7), (1, 1)), ((1, 1, 6, 9), (3, 3)),
    ((2, 1, 5, 4), (7, 6)), ((1, 2, 13, 1), (5, 1)), ((1, 1, 3, 8), (2, 5)),
])
def test_adaptive_matches_naive_float64(shape, out_hw):
    rng = np.random.default_rng(0)
    x = perm_input(rng, shape)
    dout = rng.standard_normal(shape[:2] + out_hw)
    out, cache = P.adaptive_avg_pool2d_forward(x, out_hw)
    np.testing.assert_allclose(out, naive_adaptive_avg(x, out_hw), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(P.adaptive_avg_pool2d_backward(dout, cache),
                               naive_adaptive_avg_backward(dout, shape, out_hw), rtol=1e-12, atol=1e-15)
    out, cache = P.adaptive_max_pool2d_forward(x, out_hw)
    ref, idx = naive_adaptive_max(x, out_hw)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(P.adaptive_max_pool2d_backward(dout, cache),
                               naive_route(dout, idx, shape), atol=1e-12)


def test_adaptive_none_keeps_size():
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 6))
    assert P.adaptive_avg_pool2d_forward(x, (None, 3))[0].shape == (1, 2, 5, 3)
    assert P.adaptive_max_pool2d_forward(x, (2, None))[0].shape == (1, 2, 2, 6)


@SWEEP
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 13), w=st.integers(1, 13),
       ho=st.integers(1, 7), wo=st.integers(1, 7), seed=st.integers(0, 2**31 - 1), ties=st.booleans())
def test_adaptive_sweep_vs_torch(n, c, h, w, ho, wo, seed, ties):
    torch = require_torch()
    import torch.nn.functional as TF
    rng = np.random.default_rng(seed)
    shape = (n, c, h, w)
    x = rng.integers(0, 3, size=shape).astype(np.float32) if ties else perm_input(rng, shape, np.float32)
    dout = rng.standard_normal((n, c, ho, wo)).astype(np.float32)
    for fwd, bwd, tfn in [
        (P.adaptive_avg_pool2d_forward, P.adaptive_avg_pool2d_backward, TF.adaptive_avg_pool2d),
        (P.adaptive_max_pool2d_forward, P.adaptive_max_pool2d_backward, TF.adaptive_max_pool2d),
    ]:
        out, cache = fwd(x, (ho, wo))
        dx = bwd(dout, cache)
        assert out.dtype == np.float32 and dx.dtype == np.float32
        ty, tdx = _torch_fwd_bwd(torch, lambda t: tfn(t, (ho, wo)), x, dout)
        assert out.shape == ty.shape
        assert rel_err(out, ty) <= 1e-4, fwd.__name__
        assert rel_err(dx, tdx) <= 1e-4, bwd.__name__


# --------------------------------------------------------------------------
# dtype and argument errors (kernel level)
# --------------------------------------------------------------------------
def test_float32_stays_float32_everywhere():
    x = perm_input(np.random.default_rng(0), (1, 2, 7, 7), np.float32)
    pairs = [
        (lambda: P.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0)), P.max_pool2d_backward),
        (lambda: P.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), True), P.max_pool2d_backward),
        (lambda: P.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0)), P.avg_pool2d_backward),
        (lambda: P.avg_pool2d_forward(x, (3, 3), (2, 2), (1, 1), True, False), P.avg_pool2d_backward),
        (lambda: P.avg_pool2d_forward(x, (3, 3), (2, 2), (1, 1), True, True, 5), P.avg_pool2d_backward),
        (lambda: P.lp_pool2d_forward(np.abs(x) + 1, 2, (3, 3), (2, 2), True), P.lp_pool2d_backward),
        (lambda: P.lp_pool2d_forward(x, math.inf, (3, 3), (2, 2)), P.lp_pool2d_backward),
        (lambda: P.adaptive_avg_pool2d_forward(x, (3, 2)), P.adaptive_avg_pool2d_backward),
        (lambda: P.adaptive_avg_pool2d_forward(x, (1, 1)), P.adaptive_avg_pool2d_backward),
        (lambda: P.adaptive_max_pool2d_forward(x, (3, 2)), P.adaptive_max_pool2d_backward),
        (lambda: P.adaptive_max_pool2d_forward(x, (7, 1)), P.adaptive_max_pool2d_backward),
    ]
    for fwd, bwd in pairs:
        out, cache = fwd()
        assert out.dtype == np.float32
        assert bwd(np.ones_like(out), cache).dtype == np.float32


def test_kernel_argument_errors():
    x = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ShapeError, match="too small"):
        P.max_pool2d_forward(x, (4, 4), (1, 1), (0, 0))
    with pytest.raises(ValueError, match="half the kernel"):
        P.max_pool2d_forward(x, (2, 2), (1, 1), (2, 0))
    with pytest.raises(ShapeError, match="4-D"):
        P.avg_pool2d_forward(x[0], (2, 2), (1, 1), (0, 0))
    with pytest.raises(TypeError, match="floating"):
        P.max_pool2d_forward(x.astype(np.int32), (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError):
        P.lp_pool2d_forward(x, 0, (2, 2), (2, 2))


@pytest.mark.skipif(not cupy_available(), reason="CuPy with a GPU not available")
def test_cupy_matches_numpy():
    import cupy
    rng = np.random.default_rng(0)
    x = perm_input(rng, (2, 3, 9, 8), np.float32)
    calls = [
        (lambda a: P.max_pool2d_forward(a, (2, 2), (2, 2), (0, 0)), P.max_pool2d_backward),
        (lambda a: P.max_pool2d_forward(a, (3, 3), (2, 2), (1, 1), (2, 1), True), P.max_pool2d_backward),
        (lambda a: P.avg_pool2d_forward(a, (3, 2), (2, 2), (1, 1), True, False), P.avg_pool2d_backward),
        (lambda a: P.avg_pool2d_forward(a, (2, 2), (2, 2), (0, 0)), P.avg_pool2d_backward),
        (lambda a: P.lp_pool2d_forward(a + 1, 2, (3, 3), (2, 2), True), P.lp_pool2d_backward),
        (lambda a: P.adaptive_avg_pool2d_forward(a, (4, 3)), P.adaptive_avg_pool2d_backward),
        (lambda a: P.adaptive_max_pool2d_forward(a, (4, 3)), P.adaptive_max_pool2d_backward),
    ]
    for fwd, bwd in calls:
        out, cache = fwd(x)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        dx = bwd(dout, cache)
        gout, gcache = fwd(cupy.asarray(x))
        gdx = bwd(cupy.asarray(dout), gcache)
        assert isinstance(gout, cupy.ndarray) and gout.dtype == np.float32
        assert isinstance(gdx, cupy.ndarray) and gdx.dtype == np.float32
        assert rel_err(cupy.asnumpy(gout), out) <= 1e-5
        assert rel_err(cupy.asnumpy(gdx), dx) <= 1e-5


@pytest.mark.parametrize("norm_type", [math.inf, -math.inf])
def test_lp_pool_infinite_norm_vs_torch(norm_type):
    torch = require_torch()
    rng = np.random.default_rng(4)
    x = perm_input(rng, (2, 2, 7, 6), np.float32)
    for k, s, cm in [((2, 2), (2, 2), False), ((3, 2), (2, 1), True)]:
        out, cache = P.lp_pool2d_forward(x, norm_type, k, s, cm)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        dx = P.lp_pool2d_backward(dout, cache)
        ty, tdx = _torch_fwd_bwd(torch, lambda t: torch.nn.functional.lp_pool2d(t, norm_type, k, s, cm), x, dout)
        assert out.dtype == np.float32 and rel_err(out, ty) <= 1e-6 and rel_err(dx, tdx) <= 1e-6


# --------------------------------------------------------------------------
# functional API and modules
# --------------------------------------------------------------------------
def test_functional_return_indices_match_torch():
    torch = require_torch()
    import torch.nn.functional as TF
    rng = np.random.default_rng(5)
    for shape, args, kwargs in [
        ((2, 3, 8, 8), (2,), {}),
        ((1, 2, 9, 7), (3, 2, 1), dict(ceil_mode=True)),
        ((1, 2, 9, 7), ((3, 2), (2, 1), (1, 0), 2), {}),
        ((3, 7, 7), (3, 2), {}),  # unbatched
    ]:
        x = perm_input(rng, shape, np.float32)
        out, idx = F.max_pool2d(gn.tensor(x), *args, return_indices=True, **kwargs)
        tout, tidx = TF.max_pool2d(torch.tensor(x), *args, return_indices=True, **kwargs)
        np.testing.assert_array_equal(out.numpy(), tout.numpy())
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    for shape, osz in [((2, 3, 7, 5), (3, 2)), ((1, 2, 6, 6), 3), ((2, 4, 4), (3, None))]:
        x = perm_input(rng, shape, np.float32)
        out, idx = F.adaptive_max_pool2d(gn.tensor(x), osz, return_indices=True)
        tout, tidx = TF.adaptive_max_pool2d(torch.tensor(x), osz, return_indices=True)
        np.testing.assert_array_equal(out.numpy(), tout.numpy())
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_functional_defaults_and_unbatched_grad():
    x = gn.tensor(perm_input(np.random.default_rng(0), (3, 6, 6), np.float32), requires_grad=True)
    y = F.max_pool2d(x, 3)  # stride=None -> stride = kernel_size
    assert y.shape == (3, 2, 2) and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == (3, 6, 6) and x.grad.sum() == 12
    assert F.avg_pool2d(x, 2).shape == (3, 3, 3)
    assert F.lp_pool2d(x, 2, 2).shape == (3, 3, 3)
    assert F.adaptive_avg_pool2d(x, 1).shape == (3, 1, 1)
    assert F.adaptive_max_pool2d(x, (2, None)).shape == (3, 2, 6)


def test_functional_shape_errors_name_layer_shapes_and_rule():
    x = gn.tensor(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ShapeError, match=r"MyPool.*doesn.t fit.*\(1, 1, 3, 3\).*floor"):
        F.max_pool2d(x, 4, layer="MyPool")
    with pytest.raises(ShapeError, match=r"avg_pool2d.*padding=\(2, 2\).*half of kernel_size=\(3, 3\)"):
        F.avg_pool2d(x, 3, 1, 2)
    with pytest.raises(ShapeError, match=r"max_pool2d.*3-D \(C, H, W\) or 4-D.*\(3, 3\)"):
        F.max_pool2d(gn.tensor(np.zeros((3, 3), np.float32)), 2)
    with pytest.raises(ShapeError, match="lp_pool2d"):
        F.lp_pool2d(gn.tensor(np.zeros((1, 1, 2, 5), np.float32)), 2, 3)
    with pytest.raises(ShapeError, match="adaptive_avg_pool2d.*5-D"):
        F.adaptive_avg_pool2d(gn.tensor(np.zeros((1, 1, 1, 2, 2), np.float32)), 1)
    with pytest.raises(ShapeError, match=r"MaxPool2d\(kernel_size=5.*doesn't fit"):
        nn.MaxPool2d(5)(x)


def test_module_repr_attributes_match_torch():
    torch = require_torch()
    pairs = [
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=2, ceil_mode=True),
         torch.nn.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=2, ceil_mode=True)),
        (nn.AvgPool2d(3, 2, 1), torch.nn.AvgPool2d(3, 2, 1)),
        (nn.LPPool2d(2, 3), torch.nn.LPPool2d(2, 3)),
        (nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None))),
        (nn.AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d(2)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    for name in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"):
        assert getattr(nn.AvgPool2d(2), name) == getattr(torch.nn.AvgPool2d(2), name)
    assert nn.LPPool2d(2, 3).stride is None
    assert nn.MaxPool2d(2).return_indices is False and list(nn.MaxPool2d(2).parameters()) == []
    x = gn.tensor(perm_input(np.random.default_rng(0), (1, 2, 6, 6), np.float32))
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert out.shape == idx.shape == (1, 2, 3, 3)


@pytest.mark.parametrize("make,rule", [
    (lambda: nn.MaxPool2d(2.5), r"MaxPool2d: kernel_size must be an int >= 1 or a pair of them, got 2\.5"),
    (lambda: nn.MaxPool2d(2, stride=(1, 1.5)), r"MaxPool2d: stride must be an int >= 1.*got \(1, 1\.5\)"),
    (lambda: nn.MaxPool2d(3, padding=0.5), r"MaxPool2d: padding must be an int >= 0"),
    (lambda: nn.MaxPool2d(3, dilation=0), r"MaxPool2d: dilation must be an int >= 1"),
    (lambda: nn.AvgPool2d((2, 2.5)), r"AvgPool2d: kernel_size must be an int >= 1"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), r"AvgPool2d: divisor_override must be non-zero"),
    (lambda: nn.LPPool2d(2, 1.5), r"LPPool2d: kernel_size must be an int >= 1"),
    (lambda: nn.LPPool2d(0, 2), r"LPPool2d: norm_type must be non-zero"),
    (lambda: nn.AdaptiveAvgPool2d(2.5), r"AdaptiveAvgPool2d: output_size must be an int >= 1"),
    (lambda: nn.AdaptiveMaxPool2d((2, 0.5)), r"AdaptiveMaxPool2d: output_size must be an int >= 1"),
])
def test_modules_reject_bad_sizes_on_construction_like_conv2d(make, rule):
    """nn.MaxPool2d(2.5) once pooled 2x2 silently; like nn.Conv2d(1, 1, 2.5) it now raises."""
    with pytest.raises(InvalidArgumentError, match=rule):
        make()
    with pytest.raises(InvalidArgumentError, match="Conv2d: kernel_size"):
        nn.Conv2d(1, 1, 2.5)


def test_functional_rejects_bad_sizes_naming_the_layer():
    x = gn.tensor(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(InvalidArgumentError, match=r"MyPool: kernel_size must be an int >= 1.*2\.5"):
        F.max_pool2d(x, 2.5, layer="MyPool")
    with pytest.raises(InvalidTypeError, match=r"avg_pool2d: stride must be an int >= 1.*a str, not a number"):
        F.avg_pool2d(x, 2, "2")
    with pytest.raises(InvalidArgumentError, match=r"adaptive_max_pool2d: output_size must be an int >= 1"):
        F.adaptive_max_pool2d(x, 1.5)
    assert nn.MaxPool2d(2.0)(x).shape == (1, 1, 2, 2)  # a whole number given as a float is that number
