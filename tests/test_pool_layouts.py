"""Pooling backwards and the memory order of their gradients.

A convolution returns its output channel-major (an (N, C, H, W) view of a C-contiguous
(C, N, H, W) block); a Flatten's backward hands the pool above it an NCHW gradient. The
backwards must give the same values whatever order the upstream gradient comes in, and
return dx in the order of the forward's input, so that the ReLU / batch norm backwards
below run along memory (a mismatch made a 2×2 max pool's backward 6× slower).
"""
import numpy as np
import pytest

from glassnet.backend import is_channel_major
from glassnet.ops.pool import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from glassnet.ops.pool.routing import in_order_of


def _channel_major(a):
    return np.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 3, 0), ((2, 3), (2, 1), 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_backward_takes_either_order(kernel, stride, padding, dtype):
    rng = np.random.default_rng(0)
    x = _channel_major(np.maximum(rng.standard_normal((3, 5, 9, 10)), 0).astype(dtype))  # ReLU ties at 0
    out, cache = max_pool2d_forward(x, kernel, stride, padding)
    g = rng.standard_normal(out.shape).astype(dtype)
    dx_nchw = max_pool2d_backward(np.ascontiguousarray(g), cache)
    dx_cm = max_pool2d_backward(_channel_major(g), cache)
    np.testing.assert_array_equal(dx_nchw, dx_cm)
    assert is_channel_major(dx_nchw) and is_channel_major(dx_cm)
    # an NCHW forward with a channel-major gradient: the same values again, dx in NCHW
    out2, cache2 = max_pool2d_forward(np.ascontiguousarray(x), kernel, stride, padding)
    dx2 = max_pool2d_backward(_channel_major(g), cache2)
    np.testing.assert_array_equal(dx2, dx_nchw)
    assert dx2.flags.c_contiguous


@pytest.mark.parametrize("shape, kernel", [((2, 6, 7, 7), 7), ((3, 4, 8, 6), 2), ((2, 3, 9, 9), 3)])
def test_avg_pool_tiles_backward_keeps_input_order(shape, kernel):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    g_shape = avg_pool2d_forward(x, kernel)[0].shape
    g = rng.standard_normal(g_shape)
    _, cache_c = avg_pool2d_forward(x, kernel)
    _, cache_cm = avg_pool2d_forward(_channel_major(x), kernel)
    dx_c = avg_pool2d_backward(g, cache_c)
    dx_cm = avg_pool2d_backward(g, cache_cm)
    np.testing.assert_array_equal(dx_c, dx_cm)
    assert dx_c.flags.c_contiguous
    assert is_channel_major(dx_cm)


def test_in_order_of_copies_only_on_a_mismatch():
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    cm = _channel_major(a)
    assert in_order_of(np, a, a) is a
    assert in_order_of(np, cm, cm) is cm
    to_cm = in_order_of(np, a, cm)
    assert is_channel_major(to_cm) and np.array_equal(to_cm, a)
    to_c = in_order_of(np, cm, a)
    assert to_c.flags.c_contiguous and np.array_equal(to_c, a)


def test_max_pool_without_grad_keeps_no_arg_and_gives_the_same_output():
    import glassnet as gn
    import glassnet.nn.functional as F
    from glassnet.errors import InvalidArgumentError
    from glassnet.ops.pool.cache import MaxPoolCache, MaxPoolOutputCache

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    x[0, 0, :3, :3] = np.nan
    x[1, 1] = -np.inf
    for kernel, stride, padding in [(2, 2, 0), (3, 2, 1), (3, 1, 1)]:
        full, cache = max_pool2d_forward(x, kernel, stride, padding)
        fast, out_cache = max_pool2d_forward(x, kernel, stride, padding, keep_arg=False)
        assert isinstance(out_cache, MaxPoolOutputCache) and not isinstance(out_cache, MaxPoolCache)
        np.testing.assert_array_equal(fast, full)  # NaN and −inf windows included
        with pytest.raises(InvalidArgumentError, match="keep_arg=False"):
            max_pool2d_backward(np.ones_like(fast), out_cache)
    t = gn.from_numpy(x)
    with gn.no_grad():
        y = F.max_pool2d(t, 3, 2, 1)
    np.testing.assert_array_equal(y.data, max_pool2d_forward(x, 3, 2, 1)[0])
    with gn.no_grad():  # return_indices still works without grad: it needs the arg-max
        _, idx = F.max_pool2d(t, 2, return_indices=True)
    assert idx.shape == (2, 3, 4, 4)
