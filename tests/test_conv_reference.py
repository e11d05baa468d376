"""glassnet.ops.conv.reference (the lecture's im2col patch loop, col2im overlay and the
convolution through them) as the oracle of the fast paths (im2col + GEMM and Winograd).

* the fast im2col is the patch loop exactly (both copy the same elements);
* col2im is im2col's adjoint, ``<im2col(x), C> = <x, col2im(C)>``, in the reference and fast;
* the fast forward/backward equal the reference to float64 rounding on random shapes, strides,
  paddings (symmetric, asymmetric, 'same'), dilations and groups, chunked or not, and on the
  Winograd path (forced for small shapes).
"""
from __future__ import annotations

import numpy as np
import pytest

from glassnet.ops import conv as fast
from glassnet.ops.conv import reference as ref
from glassnet.ops.conv.winograd_tiles import F3X3_3X3, F3X3_5X5, F4X4_3X3


def random_case(rng):
    """One random convolution: (x shape, weight shape, stride, padding, dilation, groups)."""
    groups = int(rng.choice([1, 1, 2, 3]))
    c, c_out = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    elif kind == 1:
        padding = tuple(tuple(int(v) for v in rng.integers(0, 3, size=2)) for _ in range(2))
    else:
        padding, stride = "same", (1, 1)
    h = int(rng.integers(dilation[0] * (kh - 1) + 1, 12))
    w = int(rng.integers(dilation[1] * (kw - 1) + 1, 12))
    n = int(rng.integers(1, 4))
    return (n, c, h, w), (c_out, c // groups, kh, kw), stride, padding, dilation, groups


CASES = [random_case(np.random.default_rng(seed)) for seed in range(40)]


@pytest.mark.parametrize("case", CASES)
def test_fast_im2col_is_the_patch_loop(case):
    x_shape, w_shape, stride, padding, dilation, _ = case
    x = np.random.default_rng(1).standard_normal(x_shape)
    if padding == "same":
        padding = fast.same_padding(w_shape[2:], dilation)
    kh, kw = w_shape[2:]
    np.testing.assert_array_equal(fast.im2col(x, kh, kw, stride, padding, dilation),
                                  ref.im2col(x, kh, kw, stride, padding, dilation))


@pytest.mark.parametrize("case", CASES[:12])
def test_col2im_is_the_adjoint_of_im2col(case):
    x_shape, w_shape, stride, padding, dilation, _ = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    kh, kw = w_shape[2:]
    cols = ref.im2col(x, kh, kw, stride, padding, dilation)
    c = rng.standard_normal(cols.shape)
    for module in (ref, fast):
        back = module.col2im(c, x.shape, kh, kw, stride, padding, dilation)
        assert back.shape == x.shape
        np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)
    np.testing.assert_allclose(fast.col2im(c, x.shape, kh, kw, stride, padding, dilation),
                               ref.col2im(c, x.shape, kh, kw, stride, padding, dilation), rtol=1e-12, atol=1e-12)


def _compare(x, w, b, dout, stride, padding, dilation, groups, **kw):
    out, cache = fast.conv2d_forward(x, w, b, stride, padding, dilation, groups, **kw)
    r_out, r_cache = ref.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    assert r_cache.algorithm == "reference"
    np.testing.assert_allclose(out, r_out, rtol=1e-10, atol=1e-10)
    grads = fast.conv2d_backward(dout, cache)
    for got, want in zip(grads, ref.conv2d_backward(dout, r_cache)):
        if want is None:
            assert got is None
            continue
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    return cache


@pytest.mark.parametrize("limit", [None, 1])
@pytest.mark.parametrize("case", CASES)
def test_fast_conv_matches_reference(case, limit):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if rng.integers(0, 2) else None
    if padding == "same":
        padding = fast.same_padding(w_shape[2:], dilation)
    ho, wo = fast.conv2d_output_shape(x_shape[2], x_shape[3], *w_shape[2:], stride, padding, dilation)
    dout = rng.standard_normal((x_shape[0], w_shape[0], ho, wo))
    cache = _compare(x, w, b, dout, stride, padding, dilation, groups, workspace_limit_bytes=limit)
    assert cache.algorithm == "im2col"


@pytest.mark.parametrize("algorithm", [F4X4_3X3, F3X3_3X3, F3X3_5X5], ids=lambda a: f"F{a.m}x{a.r}")
@pytest.mark.parametrize("seed", range(3))
def test_winograd_matches_reference(algorithm, seed):
    rng = np.random.default_rng(10 + seed)
    k = algorithm.r
    n, c, c_out = (int(v) for v in rng.integers(1, 4, size=3))
    h, w_ = (int(v) for v in rng.integers(k, 12, size=2))
    pads = tuple(tuple(int(v) for v in rng.integers(0, k, size=2)) for _ in range(2))
    x, w = rng.standard_normal((n, c, h, w_)), rng.standard_normal((c_out, c, k, k))
    b = rng.standard_normal(c_out)
    ho, wo = fast.conv2d_output_shape(h, w_, k, k, 1, pads, 1)
    dout = rng.standard_normal((n, c_out, ho, wo))
    with fast.conv_settings(winograd_rules=[(k, algorithm, 1, 1, 0)]):
        cache = _compare(x, w, b, dout, (1, 1), pads, (1, 1), 1)
    assert cache.algorithm == f"winograd F({algorithm.m}x{algorithm.m},{k}x{k})"


def test_reference_keeps_float32():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out, cache = ref.conv2d_forward(x, w, np.zeros(4, np.float32), 1, 1)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in ref.conv2d_backward(np.ones_like(out), cache))


def test_fast_backward_refuses_a_foreign_cache():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    out, cache = ref.conv2d_forward(x, w)
    with pytest.raises(TypeError, match="ReferenceCache"):
        fast.conv2d_backward(np.ones_like(out), cache)
