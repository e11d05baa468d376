"""glassnet.ops.pool.reference (the lecture's loop pooling) as the oracle of the fast kernels.

* the fast kernels (glassnet.ops.pool) against the reference on random shapes and arguments
  (padding, dilation, ceil_mode, overlapping windows, ties, NaN): forward, backward and the
  ``return_indices`` indices;
* the reference's backward against a float64 central-difference gradient of its forward.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from glassnet.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from glassnet.ops import pool as P
from glassnet.ops.pool import reference as R

SWEEP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def perm_input(rng, shape, dtype=np.float64):
    """Tie-free values, at least 1/n apart: a centred random permutation."""
    n = int(np.prod(shape))
    return ((rng.permutation(n).reshape(shape) - n / 2) / max(n, 1)).astype(dtype)


def draw_input(rng, shape, kind, dtype=np.float64):
    if kind == "distinct":
        return perm_input(rng, shape, dtype)
    x = rng.integers(0, 3, size=shape).astype(dtype)  # many ties: the first maximum must win
    if kind == "nan":
        x[rng.random(shape) < 0.1] = np.nan
    return x


def empty_window(size, out, k, s, p, d):
    """Some window holds no input element (dilation stepping over a tiny input)."""
    return any(not any(0 <= i * s - p + a * d < size for a in range(k)) for i in range(out))


@st.composite
def window_configs(draw, dilation=True, padding=True):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 11)), draw(st.integers(1, 11)))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))  # s < k: overlapping windows
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2))) if padding else (0, 0)
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    return dict(shape=shape, k=k, s=s, p=p, d=d, ceil_mode=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


def out_hw_or_none(cfg):
    try:
        return P.PoolArgs("max", cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"]).output_hw(cfg["shape"])
    except ShapeError:
        return None


# --------------------------------------------------------------------------
# fast kernels == reference
# --------------------------------------------------------------------------
@SWEEP
@given(cfg=window_configs(), kind=st.sampled_from(["distinct", "ties", "nan"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_max_pool_fast_equals_reference(cfg, kind, dtype):
    shape, k, s, p, d, cm = cfg["shape"], cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"]
    hw = out_hw_or_none(cfg)
    rng = np.random.default_rng(cfg["seed"])
    x = draw_input(rng, shape, kind, dtype)
    if hw is None:
        for fwd in (P.max_pool2d_forward, R.max_pool2d_forward):
            with pytest.raises(ShapeError, match="doesn't fit"):
                fwd(x, k, s, p, d, cm)
        return
    if empty_window(shape[2], hw[0], k[0], s[0], p[0], d[0]) or empty_window(shape[3], hw[1], k[1], s[1], p[1], d[1]):
        return  # PyTorch returns -inf with an out-of-range index there; nothing to route
    out, cache = P.max_pool2d_forward(x, k, s, p, d, cm)
    ref, rcache = R.max_pool2d_forward(x, k, s, p, d, cm)
    assert out.dtype == ref.dtype == dtype
    np.testing.assert_array_equal(out, ref)  # a max picks an element: exact, NaN included
    np.testing.assert_array_equal(P.max_pool2d_indices(cache), R.max_pool2d_indices(rcache))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, rdx = P.max_pool2d_backward(dout, cache), R.max_pool2d_backward(dout, rcache)
    assert dx.dtype == rdx.dtype == dtype
    # the same winners; an input in several windows sums its shares in another order
    np.testing.assert_allclose(dx, rdx, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)


@SWEEP
@given(cfg=window_configs(dilation=False), cip=st.booleans(), div=st.sampled_from([None, 1, 3, 2.5]))
def test_avg_pool_fast_equals_reference(cfg, cip, div):
    shape, k, s, p, cm = cfg["shape"], cfg["k"], cfg["s"], cfg["p"], cfg["ceil_mode"]
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(shape)
    if out_hw_or_none(cfg) is None:
        for fwd in (P.avg_pool2d_forward, R.avg_pool2d_forward):
            with pytest.raises(ShapeError):
                fwd(x, k, s, p, cm, cip, div)
        return
    out, cache = P.avg_pool2d_forward(x, k, s, p, cm, cip, div)
    ref, rcache = R.avg_pool2d_forward(x, k, s, p, cm, cip, div)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(P.avg_pool2d_backward(dout, cache), R.avg_pool2d_backward(dout, rcache),
                               rtol=1e-12, atol=1e-12)


@SWEEP
@given(cfg=window_configs(dilation=False, padding=False),
       norm_type=st.sampled_from([1, 2, 3, 2.5, math.inf, -math.inf]))
def test_lp_pool_fast_equals_reference(cfg, norm_type):
    shape, k, s, cm = cfg["shape"], cfg["k"], cfg["s"], cfg["ceil_mode"]
    rng = np.random.default_rng(cfg["seed"])
    x = perm_input(rng, shape) + 1.5  # positive: x^p is real for every p
    if math.isinf(norm_type):
        x = x - 1.5  # signed: the router takes sign(x)
    if out_hw_or_none(cfg) is None:
        with pytest.raises(ShapeError, match="lp_pool2d"):
            P.lp_pool2d_forward(x, norm_type, k, s, cm)
        return
    out, cache = P.lp_pool2d_forward(x, norm_type, k, s, cm)
    ref, rcache = R.lp_pool2d_forward(x, norm_type, k, s, cm)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(P.lp_pool2d_backward(dout, cache), R.lp_pool2d_backward(dout, rcache),
                               rtol=1e-10, atol=1e-12)


@SWEEP
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)),
       out_hw=st.tuples(st.integers(1, 7), st.integers(1, 7)), kind=st.sampled_from(["distinct", "ties", "nan"]),
       seed=st.integers(0, 2**31 - 1))
def test_adaptive_fast_equals_reference(shape, out_hw, kind, seed):
    rng = np.random.default_rng(seed)
    x = draw_input(rng, shape, kind)
    dout = rng.standard_normal(shape[:2] + out_hw)
    out, cache = P.adaptive_max_pool2d_forward(x, out_hw)
    ref, rcache = R.adaptive_max_pool2d_forward(x, out_hw)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(P.adaptive_max_pool2d_indices(cache), R.adaptive_max_pool2d_indices(rcache))
    np.testing.assert_allclose(P.adaptive_max_pool2d_backward(dout, cache),
                               R.adaptive_max_pool2d_backward(dout, rcache), rtol=1e-14, atol=1e-14)
    if kind == "nan":
        return
    out, cache = P.adaptive_avg_pool2d_forward(x, out_hw)
    ref, rcache = R.adaptive_avg_pool2d_forward(x, out_hw)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(P.adaptive_avg_pool2d_backward(dout, cache),
                               R.adaptive_avg_pool2d_backward(dout, rcache), rtol=1e-12, atol=1e-14)


def test_reference_routes_to_the_first_maximum_like_the_fast_path():
    """A 2x2 window of equal values: the whole gradient goes to its top-left element."""
    x = np.ones((1, 1, 2, 4))
    x[0, 0, 1, 3] = 2.0
    dout = np.array([[[[5.0, 7.0]]]])
    for mod in (P, R):
        out, cache = mod.max_pool2d_forward(x, 2)
        np.testing.assert_array_equal(out, [[[[1.0, 2.0]]]])
        np.testing.assert_array_equal(mod.max_pool2d_backward(dout, cache), [[[[5, 0, 0, 0], [0, 0, 0, 7]]]])


def test_reference_caches_name_their_algorithm():
    x = perm_input(np.random.default_rng(0), (1, 1, 6, 6))
    assert R.max_pool2d_forward(x, 2)[1].algorithm == "reference"
    assert P.max_pool2d_forward(x, 2)[1].algorithm == "separable"
    assert P.max_pool2d_forward(np.full((1, 1, 4, 4), -np.inf), 3, 2, 1)[1].algorithm == "running max"
    assert P.avg_pool2d_forward(x, 2)[1].algorithm == "tiles"
    assert P.avg_pool2d_forward(x, 3, 2, 1)[1].algorithm == "offset views"
    assert P.lp_pool2d_forward(x + 1, 2, 2)[1].algorithm == "power average"
    assert P.lp_pool2d_forward(x, math.inf, 2)[1].algorithm == "max of |x|"
    assert P.adaptive_avg_pool2d_forward(x, 3)[1].algorithm == "tiles"
    assert P.adaptive_avg_pool2d_forward(x, 4)[1].algorithm == "separable matmul"
    assert P.adaptive_max_pool2d_forward(x, 4)[1].algorithm == "separable"


# --------------------------------------------------------------------------
# reference backward == float64 numerical gradient
# --------------------------------------------------------------------------
def numerical_grad(f, x, dout, eps=1e-6):
    """d(Σ f(x) ⊙ dout)/dx by central differences."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = float((f(x) * dout).sum())
        flat[i] = orig - eps
        minus = float((f(x) * dout).sum())
        flat[i] = orig
        gflat[i] = (plus - minus) / (2 * eps)
    return g


GRAD_CASES = [
    # name, forward(x) -> (out, cache), backward, positive input?
    ("max 3x3/2 pad 1", lambda x: R.max_pool2d_forward(x, 3, 2, 1), R.max_pool2d_backward, False),
    ("max 2x3/1 dilation 2 ceil", lambda x: R.max_pool2d_forward(x, (2, 3), 1, (1, 0), 2, True),
     R.max_pool2d_backward, False),
    ("avg 3x3/2 pad 1 ceil", lambda x: R.avg_pool2d_forward(x, 3, 2, 1, True), R.avg_pool2d_backward, False),
    ("avg excl. pad", lambda x: R.avg_pool2d_forward(x, 3, 2, 1, True, False), R.avg_pool2d_backward, False),
    ("avg divisor 5", lambda x: R.avg_pool2d_forward(x, (3, 2), 1, (1, 1), False, True, 5),
     R.avg_pool2d_backward, False),
    ("lp p=2 ceil", lambda x: R.lp_pool2d_forward(x, 2, 3, 2, True), R.lp_pool2d_backward, True),
    ("lp p=3", lambda x: R.lp_pool2d_forward(x, 3, 2, 1), R.lp_pool2d_backward, True),
    ("lp p=inf", lambda x: R.lp_pool2d_forward(x, math.inf, 2, 2), R.lp_pool2d_backward, False),
    ("lp p=-inf", lambda x: R.lp_pool2d_forward(x, -math.inf, 3, 2, True), R.lp_pool2d_backward, False),
    ("adaptive avg 3x2", lambda x: R.adaptive_avg_pool2d_forward(x, (3, 2)), R.adaptive_avg_pool2d_backward, False),
    ("adaptive max 4x3", lambda x: R.adaptive_max_pool2d_forward(x, (4, 3)), R.adaptive_max_pool2d_backward, False),
]


@pytest.mark.parametrize("name,fwd,bwd,positive", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_reference_backward_matches_numerical_gradient(name, fwd, bwd, positive):
    rng = np.random.default_rng(1)
    # values 1/70 apart, and no two with the same |x|: a 1e-6 step never changes a max's winner
    x = perm_input(rng, (2, 2, 7, 5)) + 0.25 / 140
    if positive:
        x = x + 1.0
    out, cache = fwd(x)
    dout = rng.standard_normal(out.shape)
    analytic = bwd(dout, cache)
    numeric = numerical_grad(lambda a: fwd(a)[0], x.copy(), dout)
    assert analytic.shape == x.shape and np.abs(analytic).max() > 0
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------
# the argument objects: the one validator, with clear errors
# --------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: R.max_pool2d_forward(np.zeros((1, 1, 4, 4)), 2.5),
    lambda: P.max_pool2d_forward(np.zeros((1, 1, 4, 4)), (2, 2), 1.5, 0),
    lambda: P.avg_pool2d_forward(np.zeros((1, 1, 4, 4)), 2, 2, 0.5),
])
def test_kernels_and_reference_reject_non_integer_sizes(make):
    with pytest.raises(InvalidArgumentError, match="must be an int >= [01] or a pair of them.*not a whole number"):
        make()


def test_pool_args_normalise():
    a = P.PoolArgs("max", 3, None, 1, (2,), 1)
    assert (a.kernel_size, a.stride, a.padding, a.dilation, a.ceil_mode) == ((3, 3), (3, 3), (1, 1), (2, 2), True)
    assert P.PoolArgs("max", np.int64(2), 2.0).stride == (2, 2)
    assert P.PoolArgs("lp", 2, norm_type=2).norm_type == 2.0
    assert P.PoolArgs("max", 2, layer="A") == P.PoolArgs("max", 2, layer="B")  # the name is not an argument
    assert P.AdaptivePoolArgs("avg", (3, None)).resolved((1, 2, 5, 7)).output_size == (3, 7)
    with pytest.raises(InvalidTypeError, match=r"max_pool2d: stride must be an int >= 1.*a str, not a number"):
        P.PoolArgs("max", 2, "2")
    with pytest.raises(InvalidTypeError, match="kernel_size"):
        P.PoolArgs("max", True)
    with pytest.raises(InvalidArgumentError, match=r"dilation must be an int >= 1 or a pair of them, got \(1, 0\)"):
        P.PoolArgs("max", 2, 2, 0, (1, 0))
    with pytest.raises(InvalidArgumentError, match="only max pooling takes a dilation"):
        P.PoolArgs("avg", 2, 2, 0, 2)
    with pytest.raises(InvalidArgumentError, match=r"kernel_size.*\(3 values\)"):
        P.PoolArgs("max", (2, 2, 2))
    with pytest.raises(ShapeError, match=r"MyPool: output_size must be positive"):
        P.AdaptivePoolArgs("max", (0, 2), layer="MyPool")
