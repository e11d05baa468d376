"""Tests for ``F.conv2d`` / ``nn.Conv2d`` and ``analysis.conv_output_size``.

References: a naive float64 convolution (explicit loops over sample, output
channel and output pixel), ``torch.nn.functional.conv2d`` (forward and
autograd backward), and the lecture's output-size figures.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import glassnet as gn
import glassnet.nn as nn
import glassnet.nn.functional as F
from glassnet.analysis import conv_output_size
from glassnet.errors import ShapeError
from tests.torch_oracle import require_torch


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def naive_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """Float64 cross-correlation, one (sample, output channel, output pixel) at a time."""
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xpad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cog = c_out // groups
    out = np.zeros((n, c_out, ho, wo))
    for i in range(n):
        for o in range(c_out):
            g = o // cog
            for r in range(ho):
                for s in range(wo):
                    acc = 0.0 if b is None else float(b[o])
                    for ci in range(cg):
                        for a in range(kh):
                            for e in range(kw):
                                acc += w[o, ci, a, e] * xpad[i, g * cg + ci, r * sh + a * dh, s * sw + e * dw]
                    out[i, o, r, s] = acc
    return out


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-6, float(np.max(np.abs(b))))) if a.size else 0.0


def _torch_grads(torch, x, w, b, upstream, **kw):
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    tout = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    tout.backward(torch.from_numpy(upstream))
    return tout.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), None if b is None else tb.grad.numpy()


def _gn_grads(x, w, b, upstream, **kw):
    gx = gn.tensor(x, requires_grad=True)
    gw = gn.tensor(w, requires_grad=True)
    gb = None if b is None else gn.tensor(b, requires_grad=True)
    out = F.conv2d(gx, gw, gb, **kw)
    out.backward(upstream)
    return out.numpy(), gx.grad, gw.grad, None if b is None else gb.grad


def _compare_with_torch(x, w, b, **kw):
    """Forward and (dx, dw, db) against torch, float32, rel err <= 1e-4."""
    torch = require_torch()
    rng = np.random.default_rng(7)
    t_out = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                       None if b is None else torch.from_numpy(b), **kw)
    upstream = rng.standard_normal(tuple(t_out.shape)).astype(x.dtype)
    ours = _gn_grads(x, w, b, upstream, **kw)
    ref = _torch_grads(torch, x, w, b, upstream, **kw)
    for name, a, r in zip(("out", "dx", "dw", "db"), ours, ref):
        if r is None:
            assert a is None
            continue
        assert a.shape == r.shape, f"{name}: shape {a.shape} vs torch {r.shape}"
        assert a.dtype == r.dtype == x.dtype, name
        assert rel_err(a, r) <= 1e-4, f"{name}: rel err {rel_err(a, r):.2e} with {kw}"


# --------------------------------------------------------------------------
# (a) naive reference, float64
# --------------------------------------------------------------------------
NAIVE_CONFIGS = [
    # x shape, w shape, stride, padding, dilation, groups, bias
    ((2, 3, 7, 7), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    ((1, 2, 7, 7), (3, 2, 3, 3), (3, 3), (0, 0), (1, 1), 1, False),
    ((2, 4, 9, 8), (2, 2, 3, 2), (2, 1), (1, 2), (2, 1), 2, True),
    ((1, 3, 6, 5), (3, 1, 3, 3), (1, 2), (2, 0), (1, 2), 3, True),
    ((2, 2, 5, 5), (3, 2, 1, 1), (2, 2), (0, 0), (1, 1), 1, True),
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups, bias", NAIVE_CONFIGS)
def test_matches_naive_reference_float64(xs, ws, stride, padding, dilation, groups, bias):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    out = F.conv2d(gn.tensor(x), gn.tensor(w), None if b is None else gn.tensor(b),
                   stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), naive_conv2d(x, w, b, stride, padding, dilation, groups),
                               rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# (b) hypothesis sweep against torch, float32
# --------------------------------------------------------------------------
@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 4))
    c_in = groups * draw(st.integers(1, 4 // groups))
    c_out = groups * draw(st.integers(1, 4 // groups))
    return dict(
        n=draw(st.integers(1, 3)),
        c_in=c_in,
        c_out=c_out,
        groups=groups,
        h=draw(st.integers(1, 12)),
        w=draw(st.integers(1, 12)),
        k=(draw(st.integers(1, 5)), draw(st.integers(1, 5))),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=(draw(st.integers(0, 2)), draw(st.integers(0, 2))),
        dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=60, deadline=None)
@given(cfg=conv_configs())
def test_forward_backward_match_torch(cfg):
    (kh, kw), (ph, pw), (dh, dw) = cfg["k"], cfg["padding"], cfg["dilation"]
    assume(cfg["h"] + 2 * ph >= dh * (kh - 1) + 1 and cfg["w"] + 2 * pw >= dw * (kw - 1) + 1)
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"], cfg["w"])).astype(np.float32)
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], kh, kw)).astype(np.float32)
    b = rng.standard_normal(cfg["c_out"]).astype(np.float32) if cfg["bias"] else None
    _compare_with_torch(x, w, b, stride=cfg["stride"], padding=cfg["padding"],
                        dilation=cfg["dilation"], groups=cfg["groups"])


# --------------------------------------------------------------------------
# (c) shape errors name the layer, the shapes and the rule
# --------------------------------------------------------------------------
def _x(*shape, dtype=np.float32):
    return gn.tensor(np.zeros(shape, dtype=dtype))


def test_channel_mismatch_names_layer_and_shapes():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(ShapeError) as exc:
        conv(_x(2, 4, 8, 8))
    msg = str(exc.value)
    assert "Conv2d(3, 8, kernel_size=(3, 3)" in msg
    assert "(2, 4, 8, 8)" in msg and "(8, 3, 3, 3)" in msg and "4 channels" in msg


def test_channel_mismatch_with_groups():
    conv = nn.Conv2d(4, 4, 3, groups=2)
    with pytest.raises(ShapeError, match=r"groups=2 expects in_channels = 2\*2 = 4"):
        conv(_x(1, 2, 5, 5))


def test_kernel_larger_than_padded_input_shows_arithmetic():
    conv = nn.Conv2d(1, 1, 5, padding=1)
    with pytest.raises(ShapeError) as exc:
        conv(_x(1, 1, 2, 9))
    msg = str(exc.value)
    assert "Conv2d(1, 1, kernel_size=(5, 5)" in msg and "(1, 1, 2, 9)" in msg and "(1, 1, 5, 5)" in msg
    assert "2 + 1 + 1 = 4 < 5" in msg


def test_dilated_kernel_too_large():
    conv = nn.Conv2d(1, 1, 3, dilation=(1, 3))
    with pytest.raises(ShapeError, match=r"width.*6 \+ 0 \+ 0 = 6 < 7"):
        conv(_x(1, 1, 6, 6))


@pytest.mark.parametrize("shape", [(8, 8), (1, 1, 3, 8, 8), (8,)])
def test_wrong_rank(shape):
    conv = nn.Conv2d(3, 2, 3)
    with pytest.raises(ShapeError) as exc:
        conv(_x(*shape))
    msg = str(exc.value)
    assert "Conv2d(3, 2" in msg and str(shape) in msg and "(N, C, H, W)" in msg


def test_unbatched_input_gives_unbatched_output():
    torch = require_torch()
    gn.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    gx = gn.tensor(x, requires_grad=True)
    out = conv(gx)
    assert out.shape == (3, 5, 4)
    out.sum().backward()
    assert gx.grad.shape == (2, 5, 4)
    tconv = torch.nn.Conv2d(2, 3, 3, padding=1)
    tconv.load_state_dict({k: torch.from_numpy(v) for k, v in conv.state_dict().items()})
    assert rel_err(out.numpy(), tconv(torch.from_numpy(x)).detach().numpy()) <= 1e-5


def test_functional_default_layer_name():
    with pytest.raises(ShapeError, match=r"^conv2d: "):
        F.conv2d(_x(1, 2, 5, 5), _x(1, 3, 3, 3))


def test_bias_shape_mismatch():
    with pytest.raises(ShapeError, match=r"bias must have shape \(4,\)"):
        F.conv2d(_x(1, 2, 5, 5), _x(4, 2, 3, 3), _x(3))


# --------------------------------------------------------------------------
# constructor validation
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((3, 4, 3), dict(groups=2), "in_channels"),
        ((4, 3, 3), dict(groups=2), "out_channels"),
        ((3, 4, 0), {}, "kernel_size"),
        ((0, 4, 3), {}, "in_channels"),
        ((3, 4, 3), dict(stride=0), "stride"),
        ((3, 4, 3), dict(padding=-1), "padding"),
        ((3, 4, 3), dict(dilation=0), "dilation"),
        ((3, 4, 3), dict(groups=0), "groups"),
        ((3, 4, 3), dict(padding="same", stride=2), "strided"),
        ((3, 4, 3), dict(padding="full"), "'valid' or 'same'"),
        ((3, 4, 3), dict(padding_mode="mirror"), "padding_mode"),
    ],
)
def test_constructor_rejects(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(*args, **kwargs)


def test_other_padding_modes_not_implemented():
    with pytest.raises(NotImplementedError, match="reflect"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")


def test_functional_same_with_stride_rejected():
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(_x(1, 1, 5, 5), _x(1, 1, 3, 3), stride=2, padding="same")


def test_attributes_repr_and_init():
    torch = require_torch()
    gn.manual_seed(0)
    conv = nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=1, groups=2, bias=True)
    assert conv.kernel_size == (3, 5) and conv.stride == (2, 1) and conv.padding == (1, 1)
    assert conv.dilation == (1, 1) and conv.weight.shape == (6, 2, 3, 5) and conv.bias.shape == (6,)
    assert conv.weight.dtype == np.float32
    for args, kwargs in [((3, 16, 3), dict(padding=1)), ((3, 16, 3), {}),
                         ((4, 4, (3, 5)), dict(stride=(2, 1), dilation=2, groups=2, bias=False)),
                         ((2, 2, 4), dict(padding="same")), ((2, 2, 4), dict(padding="valid"))]:
        assert repr(nn.Conv2d(*args, **kwargs)) == repr(torch.nn.Conv2d(*args, **kwargs))
    big = nn.Conv2d(8, 64, 3, groups=2)  # fan_in = 8/2*3*3 = 36 -> bound 1/6
    bound = 1 / 6
    for p in (big.weight.numpy(), big.bias.numpy()):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound


# --------------------------------------------------------------------------
# (d) 'same' / 'valid' padding against torch
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "h, w, k, dilation",
    [(5, 5, (3, 3), (1, 1)), (6, 7, (4, 4), (1, 1)), (6, 5, (2, 5), (1, 1)),
     (7, 6, (4, 3), (2, 1)), (5, 8, (3, 2), (2, 3)), (1, 1, (3, 3), (1, 1))],
)
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_string_padding_matches_torch(h, w, k, dilation, padding):
    if padding == "valid" and (h < dilation[0] * (k[0] - 1) + 1 or w < dilation[1] * (k[1] - 1) + 1):
        with pytest.raises(ShapeError, match="larger than the padded input"):
            F.conv2d(_x(1, 2, h, w), _x(3, 2, *k), padding=padding, dilation=dilation)
        return
    rng = np.random.default_rng(h * 100 + w)
    x = rng.standard_normal((2, 2, h, w)).astype(np.float32)
    wt = rng.standard_normal((3, 2) + k).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    _compare_with_torch(x, wt, b, padding=padding, dilation=dilation)
    out = F.conv2d(gn.tensor(x), gn.tensor(wt), gn.tensor(b), padding=padding, dilation=dilation)
    if padding == "same":
        assert out.shape == (2, 3, h, w)


# --------------------------------------------------------------------------
# (e) conv_output_size: the lecture's figures
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n, f, stride, padding, expected",
    [(7, 3, 1, 0, 5), (7, 3, 2, 0, 3), (32, 5, 1, 2, 32), (227, 11, 4, 0, 55), (7, 3, 1, 1, 7), (5, 5, 1, 0, 1)],
)
def test_conv_output_size_lecture_figures(n, f, stride, padding, expected):
    assert conv_output_size(n, f, stride=stride, padding=padding) == expected


def test_conv_output_size_does_not_fit():
    with pytest.raises(ShapeError) as exc:
        conv_output_size(7, 3, stride=3)
    msg = str(exc.value)
    assert "(7 - 3 + 2*0)/3 + 1 = 2.33" in msg and "doesn't fit" in msg


def test_conv_output_size_floor_is_pytorch_size():
    torch = require_torch()
    assert conv_output_size(7, 3, stride=3, floor=True) == 2
    assert conv_output_size(224, 11, stride=4, padding=2, floor=True) == 55
    for n, f, s, p, d in [(7, 3, 3, 0, 1), (10, 4, 3, 1, 2), (9, 2, 2, 0, 1), (224, 7, 2, 3, 1)]:
        t = torch.nn.functional.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f), stride=s, padding=p,
                                       dilation=d)
        assert conv_output_size(n, f, stride=s, padding=p, dilation=d, floor=True) == t.shape[-1]


def test_conv_output_size_filter_larger_than_input():
    with pytest.raises(ShapeError, match="larger than the padded input"):
        conv_output_size(3, 5, floor=True)


# --------------------------------------------------------------------------
# (f) dtypes: kept, never upcast
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    gn.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, dtype=dtype)
    assert conv.weight.dtype == dtype and conv.bias.dtype == dtype
    x = gn.tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(dtype), requires_grad=True)
    out = conv(x)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype and conv.weight.grad.dtype == dtype and conv.bias.grad.dtype == dtype


def test_mixed_dtypes_raise_type_error():
    conv = nn.Conv2d(2, 3, 3).to(dtype=np.float64)
    with pytest.raises(TypeError, match="float32.*float64"):
        conv(_x(1, 2, 5, 5, dtype=np.float32))
    with pytest.raises(TypeError, match="bias"):
        F.conv2d(_x(1, 2, 5, 5), _x(3, 2, 3, 3), _x(3, dtype=np.float64))


def test_functional_rejects_raw_arrays():
    with pytest.raises(TypeError, match="input must be a glassnet Tensor"):
        F.conv2d(np.zeros((1, 1, 3, 3), np.float32), _x(1, 1, 3, 3))


# --------------------------------------------------------------------------
# the algorithm the kernel chose lands on the tape
# --------------------------------------------------------------------------
@pytest.mark.parametrize("winograd", [True, False])
def test_op_record_names_the_algorithm(winograd):
    from glassnet.ops.conv import conv_settings

    rng = np.random.default_rng(21)
    x = gn.tensor(rng.standard_normal((1, 64, 56, 56)).astype(np.float32), requires_grad=True)
    conv = nn.Conv2d(64, 64, 3, padding=1)  # VGG-sized: the measured rules pick F(4x4, 3x3)
    with conv_settings(winograd=winograd):
        y = conv(x)
    assert y._op.name == "conv2d"
    assert y._op.algorithm == ("winograd F(4x4,3x3)" if winograd else "im2col")
    small = nn.Conv2d(3, 4, 3, stride=2)(gn.tensor(rng.standard_normal((1, 3, 9, 9)).astype(np.float32),
                                                  requires_grad=True))
    assert small._op.algorithm == "im2col"
