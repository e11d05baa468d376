"""Convolution geometry: output sizes, ``'same'`` padding, padded channel-major copies, chunk sizes.

Notation (the lecture's): an (H, W) input, a kH×kW filter at stride (sH, sW) and dilation
(dH, dW), zero padding (top, bottom, left, right). The dilated filter spans
``d·(k − 1) + 1`` input positions, so an axis has

    Ho = floor((H + top + bottom − dH·(kH − 1) − 1)/sH) + 1        (likewise Wo)

outputs — the lecture's (N − F + 2P)/S + 1, floored as PyTorch does. Arrays here are
channel-major, (C, N, H, W) in memory, as the im2col columns and the Winograd tiles read them. Arguments arrive normalised by
:class:`~glassnet.ops.conv.args.ConvArgs` (which also holds the user-facing
:func:`~glassnet.ops.conv.args.conv2d_output_shape` and :func:`~glassnet.ops.conv.args.same_padding`).
"""
from __future__ import annotations

from ...backend import get_array_module
from ...errors import ShapeError
from ...threads import parallel_for

__all__ = ["output_shape", "same_pads"]


def same_pads(kh, kw, dh, dw):
    """The padding PyTorch applies for ``padding='same'`` (stride 1): per axis ``d·(k − 1)`` in
    all, ``total // 2`` before and the rest after (an even effective kernel pads one more at the
    bottom/right). The user-facing form is :func:`~glassnet.ops.conv.args.same_padding`.

    Shape: ints -> ((top, bottom), (left, right)).
    """
    th, tw = dh * (kh - 1), dw * (kw - 1)
    return (th // 2, th - th // 2), (tw // 2, tw - tw // 2)


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
    """A 1×1, stride-1, unpadded convolution: X_col is the input itself, no im2col.

    Shape: ints; pads (top, bottom, left, right) -> bool.
    """
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
