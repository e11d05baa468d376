"""Convolution geometry: output sizes, ``'same'`` padding, padded channel-major copies, chunk sizes.

Notation (the lecture's): an (H, W) input, a kH×kW filter at stride (sH, sW) and dilation
(dH, dW), zero padding (top, bottom, left, right). The dilated filter spans
``d·(k − 1) + 1`` input positions, so an axis has

    Ho = floor((H + top + bottom − dH·(kH − 1) − 1)/sH) + 1        (likewise Wo)

outputs — the lecture's (N − F + 2P)/S + 1, floored as PyTorch does. Arrays here are
channel-major, (C, N, H, W) in memory, as the im2col columns and the Winograd tiles read them.
"""
from __future__ import annotations

from ...backend import get_array_module
from ...errors import InvalidArgumentError, ShapeError
from ...threads import parallel_for

__all__ = ["conv2d_output_shape", "same_padding"]


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise InvalidArgumentError(f"conv2d: {name} must be an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _pads(padding):
    """``p``, ``(pH, pW)`` or ``((top, bottom), (left, right))`` -> 4 ints."""
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and any(
        isinstance(p, (tuple, list)) for p in padding
    ):
        (t, b), (l, r) = (_pair(p, "padding") for p in padding)
    else:
        ph, pw = _pair(padding, "padding")
        t, b, l, r = ph, ph, pw, pw
    if min(t, b, l, r) < 0:
        raise InvalidArgumentError(f"conv2d: padding must be >= 0, got {padding!r}")
    return t, b, l, r


def normalise(stride, padding, dilation):
    """The kernels' stride, padding and dilation as ``(sH, sW, (top, bottom, left, right), dH, dW)``.

    Shape: stride, dilation: int or pair; padding: int, pair or ((top, bottom), (left, right)).
    """
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    if sh < 1 or sw < 1 or dh < 1 or dw < 1:
        raise InvalidArgumentError(f"conv2d: stride and dilation must be >= 1, got stride={stride!r}, dilation={dilation!r}")
    return sh, sw, _pads(padding), dh, dw


def same_padding(kernel_size, dilation=1):
    """The padding PyTorch applies for ``padding='same'`` (stride 1).

    The total per axis is ``d·(k − 1)``; PyTorch puts ``total // 2`` before
    and the rest after, so an even effective kernel pads one more at the
    bottom/right. Returns ``((top, bottom), (left, right))``, which
    :func:`~glassnet.ops.conv.forward.conv2d_forward` accepts as ``padding``.

    Shape:
        kernel_size, dilation: int or (kH, kW) / (dH, dW).
        returns: ((top, bottom), (left, right)).
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    dh, dw = _pair(dilation, "dilation")
    th, tw = dh * (kh - 1), dw * (kw - 1)
    return (th // 2, th - th // 2), (tw // 2, tw - tw // 2)


def conv2d_output_shape(h, w, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """(Ho, Wo) exactly as PyTorch: ``floor((H + pads − d·(k − 1) − 1) / s) + 1``.

    Raises :class:`~glassnet.errors.ShapeError` when an output side would be < 1.

    Shape:
        h, w, kh, kw: ints; stride, dilation: int or pair; padding: int,
        pair, or ((top, bottom), (left, right)). returns: (Ho, Wo).
    """
    sh, sw, pads, dh, dw = normalise(stride, padding, dilation)
    return output_shape(int(h), int(w), int(kh), int(kw), sh, sw, pads, dh, dw)


def output_shape(h, w, kh, kw, sh, sw, pads, dh, dw):
    """(Ho, Wo) of normalised arguments (``pads`` = (top, bottom, left, right)); a
    :class:`~glassnet.errors.ShapeError` naming the sizes when a side would be < 1.

    Shape: ints -> (Ho, Wo).
    """
    t, b, l, r = pads
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    ho = (h + t + b - eh) // sh + 1
    wo = (w + l + r - ew) // sw + 1
    if ho < 1 or wo < 1:
        dil = f" with dilation ({dh}, {dw}) (effective {eh}x{ew})" if (dh, dw) != (1, 1) else ""
        raise ShapeError(
            f"conv2d: a {kh}x{kw} filter{dil} does not fit the {h}x{w} input padded by "
            f"(top {t}, bottom {b}, left {l}, right {r}): output size "
            f"floor(({h} + {t + b} - {eh})/{sh}) + 1 = {ho} by "
            f"floor(({w} + {l + r} - {ew})/{sw}) + 1 = {wo}; each side must be >= 1"
        )
    return ho, wo


def chunk_size(n, per_sample_bytes, limit):
    """Samples per batch chunk so that one im2col-sized buffer stays under ``limit`` bytes
    (at least one sample: a single sample's columns are built whole even when larger).

    Shape: ints -> int in [1, n].
    """
    return max(1, min(n, limit // max(1, per_sample_bytes)))


def is_pointwise(kh, kw, sh, sw, pads):
    """A 1×1, stride-1, unpadded convolution: X_col is the input itself, no im2col."""
    return kh == 1 and kw == 1 and (sh, sw) == (1, 1) and not any(pads)


def channels_first_padded(x, t, b, l, r):
    """(N, C, H, W) -> (C, N, H + t + b, W + l + r), zero-padded, in one copy.

    A plain copy when there is no padding (no copy of the memory order when ``x`` is already
    channel-major, as a convolution's output is). Threads split the channels.

    Shape: x (N, C, H, W) -> (C, N, H + t + b, W + l + r).
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    x_cn = x.transpose(1, 0, 2, 3)  # already contiguous for a convolution's output
    if not (t or b or l or r):
        return xp.ascontiguousarray(x_cn)
    xpad = xp.empty((c, n, h + t + b, w + l + r), dtype=x.dtype)

    def fill_channels(c0, c1):  # zero border, copied interior (threads split the channels)
        block = xpad[c0:c1]
        block[:, :, :t] = 0
        block[:, :, t + h:] = 0
        block[:, :, t : t + h, :l] = 0
        block[:, :, t : t + h, l + w:] = 0
        block[:, :, t : t + h, l : l + w] = x_cn[c0:c1]

    parallel_for(c, fill_channels, xpad.size, xp=xp)
    return xpad


def crop(dxpad, t, l, h, w):
    """The (C, N, H, W) interior of a padded channel-major gradient, as a
    contiguous array (the array itself when there is no padding to strip).

    Shape: dxpad (C, N, Hp, Wp) -> (C, N, h, w).
    """
    if dxpad.shape[2:] == (h, w) and dxpad.flags.c_contiguous:
        return dxpad
    xp = get_array_module(dxpad)
    out = xp.empty(dxpad.shape[:2] + (h, w), dtype=dxpad.dtype)

    def copy_channels(c0, c1):
        out[c0:c1] = dxpad[c0:c1, :, t : t + h, l : l + w]

    parallel_for(out.shape[0], copy_channels, out.size, xp=xp)
    return out
