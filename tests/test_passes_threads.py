"""The memory-bound passes of batch norm, ReLU and max pooling give the same
bits with any number of glassnet kernel threads.

Inputs are large enough (more than ``MIN_PARALLEL_ELEMENTS``) that the passes
really are split, with channel counts that do not divide evenly, in NCHW and
channel-major (convolution output) storage.
"""
import numpy as np
import pytest

import glassnet.threads as th
from glassnet.ops import activations as A
from glassnet.ops import norm as Nm
from glassnet.ops import pool as P
from tests.test_threads import _run, channel_major


def _layout(a, layout):
    return channel_major(a) if layout == "channel_major" else a




def _assert_same_bits(results_a, results_b):
    for a, b in zip(results_a, results_b):
        if a is None:
            assert b is None
            continue
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))  # bits, signed zeros included


@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_same_bits_with_any_thread_count(layout, training, affine):
    rng = np.random.default_rng(5)
    C = 37
    x = _layout((rng.standard_normal((6, C, 40, 36)) * 3 + 1).astype(np.float32), layout)
    assert x.size > th.MIN_PARALLEL_ELEMENTS
    dout = _layout(rng.standard_normal(x.shape).astype(np.float32), layout)
    gamma = rng.standard_normal(C).astype(np.float32) if affine else None
    beta = rng.standard_normal(C).astype(np.float32) if affine else None

    def everything():
        rm, rv = rng_stats.copy(), rng_var.copy()
        y, cache = Nm.batch_norm_forward(x, gamma, beta, rm, rv, training, 0.1, 1e-5)
        return (y, rm, rv) + tuple(Nm.batch_norm_backward(dout, cache))

    rng_stats = rng.standard_normal(C).astype(np.float32)
    rng_var = rng.uniform(0.5, 2, C).astype(np.float32)
    serial = _run(everything, 1)
    for threads in (2, 3, 5):
        _assert_same_bits(serial, _run(everything, threads))


def test_batch_norm_mixed_layouts_same_bits_with_any_thread_count():
    """dout in another memory order than the forward's input."""
    rng = np.random.default_rng(6)
    x = channel_major(rng.standard_normal((6, 29, 40, 36)).astype(np.float32))
    dout = rng.standard_normal(x.shape).astype(np.float32)  # NCHW
    g, b = np.ones(29, np.float32), np.zeros(29, np.float32)

    def everything():
        y, cache = Nm.batch_norm_forward(x, g, b, None, None, True, 0.1, 1e-5)
        return (y,) + tuple(Nm.batch_norm_backward(dout, cache))

    serial = _run(everything, 1)
    _assert_same_bits(serial, _run(everything, 2))
    _assert_same_bits(serial, _run(everything, 3))


@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
@pytest.mark.parametrize("k,s,p", [(3, 2, 1), (3, 2, 0), (2, 2, 0), (3, 1, 1)])
def test_max_pool_same_bits_with_any_thread_count(layout, k, s, p):
    rng = np.random.default_rng(7)
    # few distinct values: many ties, so the first-maximum rule is exercised
    x = _layout(rng.integers(0, 5, size=(7, 29, 61, 59)).astype(np.float32), layout)
    assert x.size > th.MIN_PARALLEL_ELEMENTS

    def everything():
        y, cache = P.max_pool2d_forward(x, k, s, p)
        dy = _layout(rng_dy(y.shape), layout)
        dx = P.max_pool2d_backward(dy, cache)
        dy_inf = dy.copy()
        dy_inf[0, 0, 0, 0] = np.inf  # the non-finite routing
        return y, dx, P.max_pool2d_backward(dy_inf, cache), P.max_pool2d_indices(cache).astype(np.int32)

    def rng_dy(shape):
        return np.random.default_rng(8).standard_normal(shape).astype(np.float32)

    serial = _run(everything, 1)
    for threads in (2, 3):
        _assert_same_bits(serial, _run(everything, threads))


@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
def test_relu_same_bits_with_any_thread_count(layout):
    rng = np.random.default_rng(9)
    x = _layout(rng.standard_normal((6, 37, 40, 36)).astype(np.float32), layout)
    dout = _layout(rng.standard_normal(x.shape).astype(np.float32), layout)

    def everything():
        f, cache = A.relu_forward(x)
        return f, A.relu_backward(dout, cache)

    serial = _run(everything, 1)
    for threads in (2, 3):
        _assert_same_bits(serial, _run(everything, threads))


@pytest.mark.parametrize("shape", [(5000, 61), (40, 61, 150)])
def test_batch_norm_1d_same_bits_with_any_thread_count(shape):
    """(N, C) and (N, C, L) inputs (BatchNorm1d)."""
    rng = np.random.default_rng(10)
    x = (rng.standard_normal(shape) * 2 - 1).astype(np.float32)
    assert x.size > th.MIN_PARALLEL_ELEMENTS
    dout = rng.standard_normal(shape).astype(np.float32)
    g, b = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)

    def everything():
        y, cache = Nm.batch_norm_forward(x, g, b, None, None, True, 0.1, 1e-5)
        return (y,) + tuple(Nm.batch_norm_backward(dout, cache))

    serial = _run(everything, 1)
    for threads in (2, 3):
        _assert_same_bits(serial, _run(everything, threads))
