"""Winograd F(m×m, r×r) (glassnet/ops/conv/winograd_tiles.py, winograd.py): the Toom–Cook
matrices, the transforms, the convolution and the weight gradient, and their
use inside conv2d_forward / conv2d_backward (forward, dL/dX and dL/dW),
against the naive loop reference, the im2col path, float64 gradcheck and
PyTorch.

The model-sized rules that pick Winograd are replaced here (``forced``, once
per algorithm in use) so that small shapes take the Winograd path.
"""
from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn.functional as F
import glassnet.threads as th
from glassnet.analysis import gradcheck
from glassnet.ops import conv as convmod
from glassnet.ops.conv import winograd as winograd_module
from glassnet.ops.conv.cache import Im2colCache, WinogradCache
from glassnet.ops.conv.selection import winograd_for
from glassnet.ops.conv.winograd_tiles import F3X3_3X3, F3X3_5X5, F4X4_3X3, toom_cook
from tests.test_kernel_conv import assert_close, naive_conv_backward, naive_conv_forward
from tests.torch_oracle import require_torch

ALGORITHMS = [F4X4_3X3, F3X3_3X3, F3X3_5X5]
ALGORITHM_IDS = ["F4x4_3x3", "F3x3_3x3", "F3x3_5x5"]


@pytest.fixture(params=ALGORITHMS, ids=ALGORITHM_IDS)
def forced(request):
    """One Winograd algorithm for every eligible stride-1 convolution of its
    kernel size, however small; yields the algorithm."""
    algorithm = request.param
    with convmod.conv_settings(winograd=True, winograd_rules=[(algorithm.r, algorithm, 1, 1, 0)]):
        yield algorithm


def _direct(d, g, m):
    """The m×m outputs of correlating tile d with filter g, by loops."""
    r = g.shape[0]
    return np.array([[np.sum(d[i:i + r, j:j + r] * g) for j in range(m)] for i in range(m)])


def test_toom_cook_gives_lavin_and_grays_f4x4_3x3():
    bt, g, at = toom_cook(4, 3, (0, 1, -1, 2, -2))
    np.testing.assert_array_equal(bt, [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                                       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])
    np.testing.assert_allclose(g, [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                                   [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], rtol=1e-15)
    np.testing.assert_array_equal(at, [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                                       [0, 1, -1, 8, -8, 1]])
    with pytest.raises(ValueError, match="distinct"):
        toom_cook(4, 3, (0, 1, 1, 2, -2))


@pytest.mark.parametrize("m,r,points", [(2, 3, (0, 1, -1)), (4, 3, (0, 1, -1, 2, -2)), (3, 3, (0, 1, -1, 2)),
                                        (3, 5, (0, 1, -1, 2, -2, 0.5)), (2, 5, (0, 1, -1, 2, -2))])
def test_one_tile_is_the_direct_correlation(m, r, points):
    """Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the m×m block of outputs, for any tile and filter."""
    bt, g_mat, at = toom_cook(m, r, points)
    rng = np.random.default_rng(8)
    d = rng.standard_normal((m + r - 1, m + r - 1))
    g = rng.standard_normal((r, r))
    y = at @ ((g_mat @ g @ g_mat.T) * (bt @ d @ bt.T)) @ at.T
    np.testing.assert_allclose(y, _direct(d, g, m), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHM_IDS)
def test_transforms_per_tile(algorithm):
    a = algorithm
    t, m = a.t, a.m
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 2, a.r, a.r))
    u = a.transform_filters(w)
    assert u.shape == (t * t, 3, 2)
    np.testing.assert_allclose(u[:, 1, 0].reshape(t, t), a.g @ w[1, 0] @ a.g.T, rtol=1e-13, atol=1e-13)
    xpad = rng.standard_normal((2, 3, m * 2 + a.r - 1, m * 3 + a.r - 1))  # 2 x 3 tiles
    v = a.transform_input(xpad, 2, 3).reshape(t, t, 2, 3, 2, 3)
    mm = rng.standard_normal((t * t, 2, 3 * 2 * 3))
    y = a.transform_output(mm, 3, 2, 3)
    mm_tiles = mm.reshape(t, t, 2, 3, 2, 3)
    for c in range(2):
        for n in range(3):
            for i in range(2):
                for j in range(3):
                    d = xpad[c, n, m * i:m * i + t, m * j:m * j + t]
                    np.testing.assert_allclose(v[:, :, c, n, i, j], a.bt @ d @ a.bt.T, rtol=1e-12, atol=1e-12)
                    block = a.at @ mm_tiles[:, :, c, n, i, j] @ a.at.T
                    np.testing.assert_allclose(y[c, n, m * i:m * i + m, m * j:m * j + m], block, rtol=1e-12,
                                               atol=1e-12)


def _padded(x, pads, out_hw, algorithm):
    return winograd_module._winograd_padded(x, pads, out_hw, algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHM_IDS)
@pytest.mark.parametrize("shape,c_out,pads", [
    ((2, 3, 8, 8), 4, (1, 1, 1, 1)),
    ((1, 2, 7, 9), 3, (1, 1, 1, 1)),  # partial last tiles: the output gradient's blocks overhang
    ((2, 3, 6, 5), 2, (0, 0, 0, 0)),
    ((1, 2, 6, 7), 2, (0, 1, 2, 1)),  # asymmetric
])
def test_weight_gradient_matches_naive_float64(algorithm, shape, c_out, pads):
    rng = np.random.default_rng(9)
    r = algorithm.r
    shape = shape[:2] + (shape[2] + r - 3, shape[3] + r - 3)  # the same output sizes for 5×5
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1], r, r))
    t, b, l, rr = pads
    y = naive_conv_forward(x, w, None, (1, 1), ((t, b), (l, rr)), (1, 1), 1)
    dout = rng.standard_normal(y.shape)
    _, rdw, _ = naive_conv_backward(dout, x, w, False, (1, 1), ((t, b), (l, rr)), (1, 1), 1)
    xpad = _padded(x, pads, y.shape[2:], algorithm)
    dw = algorithm.weight_gradient(xpad, np.ascontiguousarray(dout.transpose(1, 0, 2, 3)))
    assert dw.shape == w.shape and dw.flags.c_contiguous
    np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=ALGORITHM_IDS)
@pytest.mark.parametrize("shape,c_out,pads,bias", [
    ((2, 3, 8, 8), 4, (1, 1, 1, 1), True),
    ((1, 2, 7, 9), 3, (1, 1, 1, 1), False),  # odd output sizes: a partial last tile
    ((2, 3, 6, 5), 2, (0, 0, 0, 0), True),
    ((1, 2, 5, 5), 3, (2, 2, 2, 2), True),
    ((1, 2, 6, 7), 2, (0, 1, 2, 1), True),  # asymmetric
    ((3, 4, 1, 1), 2, (1, 1, 1, 1), True),  # one pixel
])
def test_winograd_conv_matches_naive_float64(shape, c_out, pads, bias, algorithm):
    rng = np.random.default_rng(2)
    k = algorithm.r
    shape = shape[:2] + (shape[2] + k - 3, shape[3] + k - 3)  # the same output sizes for 5×5
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1], k, k))
    b = rng.standard_normal(c_out) if bias else None
    t, bt, l, r = pads
    ref = naive_conv_forward(x, w, b, (1, 1), ((t, bt), (l, r)), (1, 1), 1)
    y = winograd_module._winograd_conv(x, w, b, pads, ref.shape[2:], algorithm)
    assert y.shape == (c_out, shape[0]) + ref.shape[2:] and y.flags.c_contiguous
    np.testing.assert_allclose(y.transpose(1, 0, 2, 3), ref, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("padding", [(1, 1), (0, 0), (2, 2), ((0, 1), (2, 1))])
def test_conv2d_kernel_with_winograd_forward_and_backward_match_naive(forced, padding):
    rng = np.random.default_rng(3)
    k = forced.r
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, k, k))
    b = rng.standard_normal(4)
    out, cache = convmod.conv2d_forward(x, w, b, (1, 1), padding)
    assert isinstance(cache, WinogradCache)  # no X_col: the forward went through Winograd
    ref = naive_conv_forward(x, w, b, (1, 1), padding, (1, 1), 1)
    np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-11)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = convmod.conv2d_backward(dout, cache)
    rdx, rdw, rdb = naive_conv_backward(dout, x, w, True, (1, 1), padding, (1, 1), 1)
    np.testing.assert_allclose(dx, rdx, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(dw, rdw, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(db, rdb, rtol=1e-11, atol=1e-11)


def test_not_used_where_it_does_not_apply(forced):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 11, 11))
    k = forced.r
    other = 5 if k == 3 else 3  # a kernel size the forced rule does not cover
    for w_shape, kw in [((2, 2, k, k), dict(stride=(2, 2), padding=(1, 1))),
                        ((2, 2, k, k), dict(padding=(k, k))),
                        ((2, 2, k, k), dict(dilation=(2, 2))),
                        ((2, 1, k, k), dict(groups=2, padding=(1, 1))),
                        ((2, 2, k, k - 2), dict(padding=(1, 1))),
                        ((2, 2, other, other), dict(padding=(1, 1)))]:
        _, cache = convmod.conv2d_forward(x, rng.standard_normal(w_shape), None, **kw)
        assert isinstance(cache, Im2colCache) and cache.cols is not None  # the im2col path cached X_col


def test_switch_off_gives_the_im2col_path(forced):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, forced.r, forced.r)).astype(np.float32)
    y_wino, c_wino = convmod.conv2d_forward(x, w, None, (1, 1), (1, 1))
    with convmod.conv_settings(winograd=False):
        y_col, c_col = convmod.conv2d_forward(x, w, None, (1, 1), (1, 1))
    assert isinstance(c_wino, WinogradCache) and isinstance(c_col, Im2colCache) and c_col.cols is not None
    assert y_wino.dtype == np.float32
    # Winograd's float32 error scales with the outputs' magnitude (its transforms mix a tile's values), not with each
    # output, so the bound is relative to max |y|. Measured max |y_wino - y_col| / max |y_col|: 3.3e-6 for this input
    # under OPENBLAS_CORETYPE=SkylakeX/Haswell/Sandybridge/Prescott/Nehalem, 7.4e-6 over seeds 0-199 under
    # SkylakeX/Haswell/Sandybridge (F3x3_5x5; 2.5e-6 for the 3x3 algorithms); 3e-5 is 4x the worst. (The former
    # elementwise rtol=atol=5e-5 reached 0.57 of its limit here and was exceeded 1.8x at other seeds.)
    assert_close(y_wino, y_col, 3e-5)


def test_model_sized_decisions():
    """Winograd where it was measured to pay (tuning.WINOGRAD_RULES), im2col elsewhere."""
    settings = convmod.current_settings()
    limit = settings.workspace_limit

    def pick(k, c_in, c_out, n, size, limit=limit):
        return winograd_for(settings, k, k, 1, 1, 1, 1, 1, (1, 1, 1, 1), c_in, c_out, n, size, size, 4, limit)

    assert pick(3, 64, 64, 1, 224) is F4X4_3X3  # VGG16 conv1_2
    assert pick(3, 128, 128, 1, 112) is F4X4_3X3  # VGG16 conv2_x
    assert pick(3, 256, 256, 2, 56) is F4X4_3X3  # VGG16 conv3_x
    assert pick(3, 512, 512, 2, 28) is F4X4_3X3  # VGG16 conv4_x
    assert pick(3, 64, 64, 8, 56) is F4X4_3X3  # ResNet-18 layer1
    assert pick(3, 128, 128, 8, 28) is F4X4_3X3  # ResNet-18 layer2
    assert pick(3, 256, 256, 8, 14) is F3X3_3X3  # ResNet-18 layer3
    assert pick(3, 384, 256, 16, 13) is F3X3_3X3  # AlexNet conv4
    assert pick(5, 64, 192, 16, 27) is F3X3_5X5  # AlexNet conv2
    assert pick(3, 512, 512, 8, 7) is None  # ResNet-18 layer4: small maps
    assert pick(3, 512, 512, 1, 14) is None  # VGG16 conv5_x at batch 1: 25 tiles
    assert pick(3, 64, 64, 8, 28) is None  # 64 channels on a small map
    assert pick(3, 32, 64, 128, 14) is None  # the FMNIST CNN's conv2: few channels
    assert pick(3, 3, 64, 1, 224) is None  # VGG16 conv1_1: 3 input channels
    assert pick(5, 6, 16, 128, 10) is None  # LeNet-5's conv2
    assert pick(3, 512, 512, 64, 28, limit=1 << 20) is None  # over the workspace limit
    assert winograd_for(settings, 3, 3, 2, 2, 1, 1, 1, (1, 1, 1, 1), 256, 256, 8, 28, 28, 4, limit) is None


def test_gradcheck_float64_through_functional(forced):
    rng = np.random.default_rng(6)
    x = gn.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = gn.tensor(rng.standard_normal((3, 2, forced.r, forced.r)), requires_grad=True)
    b = gn.tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), (x, w, b))


@pytest.mark.parametrize("seed", range(4))
def test_matches_torch_float32_random_shapes(forced, seed):
    torch = require_torch()
    rng = np.random.default_rng(seed)
    k = forced.r
    n, c, c_out = rng.integers(1, 4), rng.integers(1, 6), rng.integers(1, 6)
    h, w_ = rng.integers(1, 12, size=2)
    p = int(rng.integers(0, k))
    if h + 2 * p < k or w_ + 2 * p < k:
        p = k - 1
    x = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    w = rng.standard_normal((c_out, c, k, k)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    out, cache = convmod.conv2d_forward(x, w, b, (1, 1), (p, p))
    assert isinstance(cache, WinogradCache)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dw, db = convmod.conv2d_backward(dout, cache)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=p)
    ty.backward(torch.tensor(dout))
    for mine, ref in [(out, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)]:
        ref = ref.detach().numpy()
        assert mine.dtype == np.float32
        np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))


def test_bitwise_equal_with_threads(forced):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 32, 32, 32)).astype(np.float32)  # large enough to be split
    w = rng.standard_normal((24, 32, forced.r, forced.r)).astype(np.float32)
    dout = rng.standard_normal((16, 24, 32, 32)).astype(np.float32)
    pad = (forced.r - 1) // 2  # "same" padding: dout's shape fits

    def run(threads):
        th.set_num_threads(threads)
        try:
            y, cache = convmod.conv2d_forward(x, w, None, (1, 1), (pad, pad))
            return (y,) + convmod.conv2d_backward(dout, cache)[:2]
        finally:
            th.set_num_threads(1)

    for a, b in zip(run(1), run(2)):
        assert np.array_equal(a, b)


def test_weight_gradient_reuses_the_forwards_input_transform(forced):
    """The forward keeps V for dL/dW (unless conv_settings(cache_cols=False)); the
    gradients are bitwise those of recomputing it."""
    rng = np.random.default_rng(10)
    k = forced.r
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, k, k)).astype(np.float32)
    pad = (k - 1) // 2
    out, cache = convmod.conv2d_forward(x, w, None, (1, 1), (pad, pad))
    assert cache.v is not None and cache.tiles is forced
    dout = rng.standard_normal(out.shape).astype(np.float32)
    kept = convmod.conv2d_backward(dout, cache)
    with convmod.conv_settings(cache_cols=False):
        _, cache_without = convmod.conv2d_forward(x, w, None, (1, 1), (pad, pad))
        assert cache_without.v is None
        recomputed = convmod.conv2d_backward(dout, cache_without)
    for a, b in zip(kept[:2], recomputed[:2]):
        assert np.array_equal(a, b)


def test_winograd_forward_with_im2col_dx_matches_im2col():
    """The rules can pick Winograd for the forward but not for dX (here the
    forward's output is 56 wide, dX's only 54): dW then comes from Winograd
    alone and dX from col2im, agreeing with the all-im2col path."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 64, 54, 54))
    w = rng.standard_normal((64, 64, 3, 3)) * 0.05
    b = rng.standard_normal(64)
    out, cache = convmod.conv2d_forward(x, w, b, (1, 1), (2, 2))
    assert cache.v is not None and cache.tiles is F4X4_3X3
    dout = rng.standard_normal(out.shape)
    grads = convmod.conv2d_backward(dout, cache)
    with convmod.conv_settings(winograd=False):
        ref_out, ref_cache = convmod.conv2d_forward(x, w, b, (1, 1), (2, 2))
        ref = convmod.conv2d_backward(dout, ref_cache)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-10)
    for mine, theirs in zip(grads, ref):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)
