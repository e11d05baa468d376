"""Pooling geometry shared by the fast kernels: output sizes, padding, strided window views.

Notation (the lecture's): a pooling window ``R(i, j)`` of the input feeds output ``y[i, j]``.

How the fast kernels read the windows: one strided view per kernel offset ``(a, b)``,
``x_pad[:, :, a·dH :: sH, b·dW :: sW]`` cut to ``(Ho, Wo)``, so a loop runs over the ``kH·kW``
kernel offsets, never over output positions. Backward passes add each offset's share back into
the same strided view of ``dx_pad``; within one offset the positions are distinct, so there is no
scatter. Arguments arrive normalised by :class:`~glassnet.ops.pool.args.PoolArgs`.
"""
from __future__ import annotations

import numpy as np

from ...backend import is_channel_major
from ...errors import InvalidTypeError, ShapeError
from ...threads import parallel_for

__all__ = ["pool_output_size"]


def pool_output_size(size, kernel, stride, padding=0, dilation=1, ceil_mode=False):
    """One spatial output size of a pooling layer, exactly as PyTorch computes it.

    ``out = ⌊(size + 2p − d(k−1) − 1 [+ s − 1 if ceil_mode]) / s⌋ + 1``; in
    ``ceil_mode`` the last window is dropped when it would start at or after
    ``size + p`` (inside the right padding), so every window starts inside the
    input or the left padding.  May return ``<= 0`` (too small an input);
    :meth:`PoolArgs.output_hw <glassnet.ops.pool.args.PoolArgs.output_hw>` turns that into a
    :class:`ShapeError`.

    Shape: scalars (one axis).
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        span += stride - 1
    out = span // stride + 1  # Python // is floor division, as PyTorch's div_rtn
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def check_input(layer, x):
    """``x`` must be a floating-point 4-D (N, C, H, W) array."""
    if getattr(x, "dtype", None) is None or x.dtype.kind != "f":
        raise InvalidTypeError(f"{layer}: expected a floating-point array, got dtype {getattr(x, 'dtype', type(x))}")
    if x.ndim != 4:
        raise ShapeError(f"{layer}: expected a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")


def padded_extent(size, out, kernel, stride, padding, dilation):
    """Length of the padded axis the strided views need: left padding, the
    input, then right padding (at least ``padding``, more when ``ceil_mode``'s
    last window runs past it, less is never needed)."""
    needed = (out - 1) * stride + dilation * (kernel - 1) + 1
    return max(needed, size + padding)


def offset_view(a, k, Ho, Wo, kernel_size, stride, dilation):
    """The ``(Ho, Wo)`` strided view of padded array ``a`` for kernel offset ``k``
    (row-major over the kernel, ``k = a_row · kW + a_col``)."""
    kw = kernel_size[1]
    (sh, sw), (dh, dw) = stride, dilation
    i, j = divmod(k, kw)
    r0, c0 = i * dh, j * dw
    return a[:, :, r0:r0 + (Ho - 1) * sh + 1:sh, c0:c0 + (Wo - 1) * sw + 1:sw]


def is_tiling(x_shape, Ho, Wo, kernel_size, stride, padding, dilation):
    """Non-overlapping windows that need no padding: reshape fast path."""
    (kh, kw) = kernel_size
    return (tuple(stride) == (kh, kw) and tuple(padding) == (0, 0) and tuple(dilation) == (1, 1)
            and Ho * kh <= x_shape[2] and Wo * kw <= x_shape[3])


def index_dtype(n):
    """Smallest signed integer dtype holding ``0 .. n-1`` (argmax caches)."""
    for dt in (np.int8, np.int16, np.int32):
        if n <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def empty_in_order_of(xp, x, shape):
    """An empty (N, C, h, w) array stored in the memory order of ``x`` (NCHW,
    or a convolution output's channel-major order)."""
    if is_channel_major(x):
        return xp.empty((shape[1], shape[0]) + tuple(shape[2:]), dtype=x.dtype).transpose(1, 0, 2, 3)
    return xp.empty(shape, dtype=x.dtype)


def pad_array(xp, x, Hp, Wp, ph, pw, fill):
    """``x`` placed at ``(ph, pw)`` inside a ``(N, C, Hp, Wp)`` array of ``fill``
    (``x`` itself when no padding is needed).

    Shape: x (N, C, H, W) -> (N, C, Hp, Wp).
    """
    N, C, H, W = x.shape
    if (Hp, Wp, ph, pw) == (H, W, 0, 0):
        return x
    out = empty_in_order_of(xp, x, (N, C, Hp, Wp))  # keeps a convolution output's memory order
    out[...] = fill
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def tiles(x, Ho, Wo, kh, kw):
    """View of the tiled part of ``x`` as ``(N, C, Ho, kh, Wo, kw)``."""
    N, C = x.shape[:2]
    return x[:, :, :Ho * kh, :Wo * kw].reshape(N, C, Ho, kh, Wo, kw)


def untile(xp, g6, x_shape):
    """Inverse of :func:`tiles` for gradients: ``(N, C, Ho, kh, Wo, kw)`` back
    to ``x_shape``, zeros where the tiling cut off a remainder."""
    N, C, Ho, kh, Wo, kw = g6.shape
    g = g6.reshape(N, C, Ho * kh, Wo * kw)
    H, W = x_shape[2], x_shape[3]
    if (Ho * kh, Wo * kw) == (H, W):
        return g
    dx = xp.zeros(x_shape, dtype=g.dtype)
    dx[:, :, :Ho * kh, :Wo * kw] = g
    return dx


def column_views(a, Wo, kw, sw, dw):
    """The ``kW`` views ``a[..., b·dW :: sW]`` cut to ``Wo`` columns: view ``b``
    holds column offset ``b`` of every window's row segment."""
    return [a[:, :, :, b * dw:b * dw + (Wo - 1) * sw + 1:sw] for b in range(kw)]


def row_views(a, Ho, kh, sh, dh):
    """The ``kH`` views ``a[:, :, r·dH :: sH]`` cut to ``Ho`` rows."""
    return [a[:, :, r * dh:r * dh + (Ho - 1) * sh + 1:sh] for r in range(kh)]


def for_planes(xp, x, work):
    """``work(sl)`` for index tuples ``sl`` that cut the outer memory axis of
    ``x`` (C for channel-major arrays, else N) into ranges, split over the
    kernel threads (:mod:`glassnet.threads`). Pooling acts per (n, c) plane,
    so every range is independent and writes its own slice."""
    axis = 1 if is_channel_major(x) else 0

    def run(lo, hi):
        work((slice(None),) * axis + (slice(lo, hi),))

    parallel_for(x.shape[axis], run, x.size, xp=xp)


def disjoint(kernel, stride, dilation):
    """Whether the offset views of one axis never share a position."""
    return stride >= (kernel - 1) * dilation + 1


def covers(size, out, kernel, stride, dilation):
    """Whether the windows of one axis cover every position exactly once."""
    return dilation == 1 and stride == kernel and out * kernel == size
