"""Winograd F(2×2, 3×3) and F(4×4, 3×3): the transforms, the convolution, and
their use inside conv2d_forward / conv2d_backward (forward and dL/dX),
against the naive loop reference, the im2col path, float64 gradcheck and
PyTorch.

The model-sized thresholds that pick Winograd are lowered here (``forced``,
once per algorithm) so that small shapes take the Winograd path.
"""
from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn.functional as F
import glassnet.threads as th
from glassnet.analysis import gradcheck
from glassnet.kernels import conv as convmod
from glassnet.kernels import winograd as wg
from glassnet.kernels import winograd_f4 as wg4
from tests.test_kernel_conv import naive_conv_backward, naive_conv_forward
from tests.torch_oracle import require_torch


@pytest.fixture(params=[2, 4], ids=["F2x2", "F4x4"])
def forced(request, monkeypatch):
    """Winograd F(2×2, 3×3), then F(4×4, 3×3), for every eligible 3×3
    stride-1 convolution, however small; yields the output block side."""
    monkeypatch.setattr(convmod, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(convmod, "WINOGRAD_MIN_CHANNELS_X_WIDTH", 1)
    small = 1 if request.param == 4 else 1 << 30
    monkeypatch.setattr(convmod, "WINOGRAD_F4_MIN_CHANNELS", small)
    monkeypatch.setattr(convmod, "WINOGRAD_F4_MIN_WIDTH", small)
    convmod.set_winograd(True)
    yield request.param
    convmod.set_winograd(True)


def test_filter_transform_is_g_g_gt():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2, 3, 3))
    u = wg.transform_filters(w)
    assert u.shape == (16, 3, 2)
    for o in range(3):
        for c in range(2):
            expected = wg._G @ w[o, c] @ wg._G.T
            np.testing.assert_allclose(u[:, o, c].reshape(4, 4), expected, rtol=1e-14, atol=1e-14)


def test_f4_filter_transform_is_g_g_gt():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2, 3, 3))
    u = wg4.transform_filters(w)
    assert u.shape == (36, 3, 2)
    for o in range(3):
        for c in range(2):
            expected = wg4._G @ w[o, c] @ wg4._G.T
            np.testing.assert_allclose(u[:, o, c].reshape(6, 6), expected, rtol=1e-13, atol=1e-13)


def test_f4_input_and_output_transforms_per_tile():
    rng = np.random.default_rng(1)
    xpad = rng.standard_normal((2, 3, 10, 14))  # 2 x 3 tiles of 6×6 at stride 4
    v = wg4.transform_input(xpad, 2, 3).reshape(6, 6, 2, 3, 2, 3)
    m = rng.standard_normal((36, 2, 3 * 2 * 3))
    y = wg4.transform_output(m, 3, 2, 3)
    m_tiles = m.reshape(6, 6, 2, 3, 2, 3)
    for c in range(2):
        for n in range(3):
            for i in range(2):
                for j in range(3):
                    d = xpad[c, n, 4 * i:4 * i + 6, 4 * j:4 * j + 6]
                    np.testing.assert_allclose(v[:, :, c, n, i, j], wg4._BT @ d @ wg4._BT.T, rtol=1e-12,
                                               atol=1e-12)
                    block = wg4._AT @ m_tiles[:, :, c, n, i, j] @ wg4._AT.T
                    np.testing.assert_allclose(y[c, n, 4 * i:4 * i + 4, 4 * j:4 * j + 4], block, rtol=1e-12,
                                               atol=1e-12)


def test_f4_is_the_direct_convolution_of_a_tile():
    """The three matrices together give a 3×3 correlation: for any 6×6 tile d
    and filter g, Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the 4×4 block of outputs."""
    rng = np.random.default_rng(8)
    d = rng.standard_normal((6, 6))
    g = rng.standard_normal((3, 3))
    y = wg4._AT @ ((wg4._G @ g @ wg4._G.T) * (wg4._BT @ d @ wg4._BT.T)) @ wg4._AT.T
    direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(y, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,c_out,pads", [
    ((2, 3, 8, 8), 4, (1, 1, 1, 1)),
    ((1, 2, 7, 9), 3, (1, 1, 1, 1)),  # partial last tiles: the output gradient's blocks overhang
    ((2, 3, 6, 5), 2, (0, 0, 0, 0)),
    ((1, 2, 6, 7), 2, (0, 1, 2, 1)),  # asymmetric
])
def test_f4_weight_gradient_matches_naive_float64(shape, c_out, pads):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1], 3, 3))
    t, b, l, r = pads
    y = naive_conv_forward(x, w, None, (1, 1), ((t, b), (l, r)), (1, 1), 1)
    dout = rng.standard_normal(y.shape)
    _, rdw, _ = naive_conv_backward(dout, x, w, False, (1, 1), ((t, b), (l, r)), (1, 1), 1)
    ho, wo = y.shape[2:]
    xpad = convmod._channels_first_padded(x, t, wg4.padded_extent(ho) - shape[2] - t,
                                          l, wg4.padded_extent(wo) - shape[3] - l)
    dw = wg4.weight_gradient(xpad, np.ascontiguousarray(dout.transpose(1, 0, 2, 3)))
    assert dw.shape == w.shape and dw.flags.c_contiguous
    np.testing.assert_allclose(dw, rdw, rtol=1e-11, atol=1e-11)


def test_input_transform_is_bt_d_b_per_tile():
    b_t = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
    rng = np.random.default_rng(1)
    xpad = rng.standard_normal((2, 3, 8, 10))  # 3 x 4 tiles
    v = wg.transform_input(xpad, 3, 4).reshape(4, 4, 2, 3, 3, 4)
    for c in range(2):
        for n in range(3):
            for i in range(3):
                for j in range(4):
                    d = xpad[c, n, 2 * i:2 * i + 4, 2 * j:2 * j + 4]
                    np.testing.assert_allclose(v[:, :, c, n, i, j], b_t @ d @ b_t.T, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("block", [2, 4])
@pytest.mark.parametrize("shape,c_out,pads,bias", [
    ((2, 3, 8, 8), 4, (1, 1, 1, 1), True),
    ((1, 2, 7, 9), 3, (1, 1, 1, 1), False),  # odd output sizes: a partial last tile
    ((2, 3, 6, 5), 2, (0, 0, 0, 0), True),
    ((1, 2, 5, 5), 3, (2, 2, 2, 2), True),
    ((1, 2, 6, 7), 2, (0, 1, 2, 1), True),  # asymmetric
    ((3, 4, 1, 1), 2, (1, 1, 1, 1), True),  # one pixel
])
def test_winograd_conv_matches_naive_float64(shape, c_out, pads, bias, block):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1], 3, 3))
    b = rng.standard_normal(c_out) if bias else None
    t, bt, l, r = pads
    ref = naive_conv_forward(x, w, b, (1, 1), ((t, bt), (l, r)), (1, 1), 1)
    y = convmod._winograd_conv(x, w, b, pads, ref.shape[2:], block)
    assert y.shape == (c_out, shape[0]) + ref.shape[2:] and y.flags.c_contiguous
    np.testing.assert_allclose(y.transpose(1, 0, 2, 3), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [(1, 1), (0, 0), (2, 2), ((0, 1), (2, 1))])
def test_conv2d_kernel_with_winograd_forward_and_backward_match_naive(forced, padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    out, cache = convmod.conv2d_forward(x, w, b, (1, 1), padding)
    assert cache[8] is None  # no X_col cached: the forward went through Winograd
    ref = naive_conv_forward(x, w, b, (1, 1), padding, (1, 1), 1)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = convmod.conv2d_backward(dout, cache)
    rdx, rdw, rdb = naive_conv_backward(dout, x, w, True, (1, 1), padding, (1, 1), 1)
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-12, atol=1e-12)


def test_not_used_where_it_does_not_apply(forced):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 9, 9))
    for w_shape, kw in [((2, 2, 3, 3), dict(stride=(2, 2), padding=(1, 1))),
                        ((2, 2, 3, 3), dict(padding=(3, 3))),
                        ((2, 2, 3, 3), dict(dilation=(2, 2))),
                        ((2, 1, 3, 3), dict(groups=2, padding=(1, 1))),
                        ((2, 2, 5, 5), dict(padding=(2, 2)))]:
        _, cache = convmod.conv2d_forward(x, rng.standard_normal(w_shape), None, **kw)
        assert cache[8] is not None  # the im2col path cached X_col


def test_switch_off_gives_the_im2col_path(forced):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y_wino, c_wino = convmod.conv2d_forward(x, w, None, (1, 1), (1, 1))
    convmod.set_winograd(False)
    y_col, c_col = convmod.conv2d_forward(x, w, None, (1, 1), (1, 1))
    assert c_wino[8] is None and c_col[8] is not None
    assert y_wino.dtype == np.float32
    tol = 1e-5 if forced == 2 else 5e-5  # F(4×4, 3×3)'s larger coefficients round more
    np.testing.assert_allclose(y_wino, y_col, rtol=tol, atol=tol)


def test_model_sized_decisions():
    """F(4×4, 3×3) where it was measured to pay (64+ channels on maps 56+
    wide: VGG's conv1_2–conv3_x, ResNet-18's layer1), F(2×2, 3×3) for VGG's
    conv4_x, im2col elsewhere (small maps, few channels)."""
    block = convmod._winograd_block
    limit = convmod.get_workspace_limit()
    s1 = (3, 3, 1, 1, 1, 1, 1)
    pad = (1, 1, 1, 1)
    assert block(*s1, pad, 64, 64, 1, 224, 224, 4, limit) == 4  # VGG conv1_2
    assert block(*s1, pad, 128, 128, 1, 112, 112, 4, limit) == 4  # VGG conv2_x
    assert block(*s1, pad, 256, 256, 2, 56, 56, 4, limit) == 4  # VGG conv3_x
    assert block(*s1, pad, 64, 64, 8, 56, 56, 4, limit) == 4  # ResNet-18 layer1
    assert block(*s1, pad, 512, 512, 2, 28, 28, 4, limit) == 2  # VGG conv4_x
    assert block(*s1, pad, 512, 512, 1, 14, 14, 4, limit) == 0  # VGG conv5_x
    assert block(*s1, pad, 128, 128, 8, 28, 28, 4, limit) == 0  # ResNet-18 layer2
    assert block(*s1, pad, 32, 64, 128, 14, 14, 4, limit) == 0  # the FMNIST CNN's conv2
    assert block(*s1, pad, 3, 64, 1, 224, 224, 4, limit) == 0  # VGG conv1_1: 3 input channels
    assert block(*s1, pad, 512, 512, 64, 28, 28, 4, 1 << 20) == 0  # over the workspace limit
    assert block(*s1, pad, 64, 64, 64, 224, 224, 4, 1 << 26) == 0  # F4 over the limit, F2 not eligible


def test_gradcheck_float64_through_functional(forced):
    rng = np.random.default_rng(6)
    x = gn.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    w = gn.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = gn.tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), (x, w, b))


@pytest.mark.parametrize("seed", range(4))
def test_matches_torch_float32_random_shapes(forced, seed):
    torch = require_torch()
    rng = np.random.default_rng(seed)
    n, c, c_out = rng.integers(1, 4), rng.integers(1, 6), rng.integers(1, 6)
    h, w_ = rng.integers(1, 12, size=2)
    p = int(rng.integers(0, 3))
    if h + 2 * p < 3 or w_ + 2 * p < 3:
        p = 2
    x = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    w = rng.standard_normal((c_out, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    out, cache = convmod.conv2d_forward(x, w, b, (1, 1), (p, p))
    assert cache[8] is None
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
    w = rng.standard_normal((24, 32, 3, 3)).astype(np.float32)
    dout = rng.standard_normal((16, 24, 32, 32)).astype(np.float32)

    def run(threads):
        th.set_num_threads(threads)
        try:
            y, cache = convmod.conv2d_forward(x, w, None, (1, 1), (1, 1))
            return (y,) + convmod.conv2d_backward(dout, cache)[:2]
        finally:
            th.set_num_threads(1)

    for a, b in zip(run(1), run(2)):
        assert np.array_equal(a, b)
