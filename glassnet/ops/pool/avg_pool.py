"""Average pooling, the fast path: ``y[i, j] = (Σ over R(i, j) of x) / D[i, j]``.

Two algorithms (named by the cache, :mod:`.cache`):

* ``"tiles"`` (:class:`~.cache.AvgPoolTileCache`): non-overlapping windows that need no padding
  (stride = kernel): a reshape to ``(N, C, Ho, kH, Wo, kW)`` and one sum;
* ``"offset views"`` (:class:`~.cache.AvgPoolCache`): everything else, a sum of the kH·kW
  strided offset views of the zero-padded input.

The lecture's loop version is :func:`glassnet.ops.pool.reference.avg_pool2d_forward`.
"""
from __future__ import annotations

import numpy as np

from ...backend import get_array_module, is_channel_major
from .args import PoolArgs
from .cache import AvgPoolCache, AvgPoolTileCache
from .geometry import check_input, is_tiling, offset_view, pad_array, padded_extent, tiles, untile

__all__ = ["avg_pool2d_forward", "avg_pool2d_backward"]


def _avg_divisor_1d(size, out, kernel, stride, padding, count_include_pad):
    """Per-output-position divisor factor along one axis (PyTorch's CPU rule).

    PyTorch: ``start = o·s − p``, ``end = min(start + k, size + p)``;
    ``pool_size = end − start`` (the window clipped to the *padded* input — in
    ceil_mode the window may run past it); then ``start, end`` are clipped to
    the input. The divisor is ``pool_size`` with ``count_include_pad`` else the
    clipped count. Both are products of a row and a column factor.
    """
    start = np.arange(out) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _avg_divisor(xp, x_shape, Ho, Wo, kernel_size, stride, padding, count_include_pad,
                 divisor_override, dtype):
    """The divisor ``D``: ``divisor_override`` as a scalar of ``dtype``, else the
    (Ho, Wo) product of the row and column factors of :func:`_avg_divisor_1d`."""
    if divisor_override is not None:
        return dtype.type(divisor_override)
    H, W = x_shape[2], x_shape[3]
    dh = _avg_divisor_1d(H, Ho, kernel_size[0], stride[0], padding[0], count_include_pad)
    dw = _avg_divisor_1d(W, Wo, kernel_size[1], stride[1], padding[1], count_include_pad)
    return xp.asarray((dh[:, None] * dw[None, :]).astype(dtype))


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None):
    """2-D average pooling, ``y[i, j] = (Σ over R(i, j) of x) / D[i, j]`` (``F.avg_pool2d``).

    The divisor ``D`` follows PyTorch: ``divisor_override`` if given; else with
    ``count_include_pad`` the window size clipped to the padded input (so a
    ceil_mode window that runs past the right padding divides by fewer
    elements), else the number of real input elements in the window.

    Arguments are normalised and checked by :class:`~glassnet.ops.pool.args.PoolArgs`
    (``stride=None`` means ``kernel_size``).

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo), sizes as
    :func:`~glassnet.ops.pool.geometry.pool_output_size` (dilation 1).
    """
    xp = get_array_module(x)
    args = PoolArgs("avg", kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override)
    check_input(args.layer, x)
    Ho, Wo = args.output_hw(x.shape)
    kernel_size, stride, padding, dilation = args.kernel_size, args.stride, args.padding, args.dilation
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    div = _avg_divisor(xp, x.shape, Ho, Wo, kernel_size, stride, padding, args.count_include_pad,
                       args.divisor_override, x.dtype)

    if is_tiling(x.shape, Ho, Wo, kernel_size, stride, padding, dilation):
        s = tiles(x, Ho, Wo, kh, kw).sum(axis=(3, 5))
        return s / div, AvgPoolTileCache(div, x.shape, kernel_size, is_channel_major(x))

    H, W = x.shape[2], x.shape[3]
    Hp = padded_extent(H, Ho, kh, sh, ph, 1)
    Wp = padded_extent(W, Wo, kw, sw, pw, 1)
    xpad = pad_array(xp, x, Hp, Wp, ph, pw, 0)
    s = offset_view(xpad, 0, Ho, Wo, kernel_size, stride, dilation).copy()
    for k in range(1, kh * kw):
        s += offset_view(xpad, k, Ho, Wo, kernel_size, stride, dilation)
    return s / div, AvgPoolCache(div, x.shape, (Hp, Wp), kernel_size, stride, padding)


def avg_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over windows R(i, j) ∋ p of dL/dy[i, j] / D[i, j].

    Every element of a window gets the same share of its output's gradient;
    padding positions take theirs and drop it.

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    xp = get_array_module(dout)
    g = dout / cache.divisor
    if isinstance(cache, AvgPoolTileCache):
        x_shape, (kh, kw) = cache.x_shape, cache.kernel_size
        if cache.channel_major:  # dx in x's order: the next backward (ReLU, batch norm) runs along it
            g, x_shape = g.swapaxes(0, 1), (x_shape[1], x_shape[0]) + tuple(x_shape[2:])
        A, B, Ho, Wo = g.shape
        g6 = xp.broadcast_to(g[:, :, :, None, :, None], (A, B, Ho, kh, Wo, kw))
        dx = untile(xp, xp.ascontiguousarray(g6), x_shape)
        return dx.swapaxes(0, 1) if cache.channel_major else dx

    x_shape, (Hp, Wp), kernel_size, stride, padding = (cache.x_shape, cache.padded_hw, cache.kernel_size,
                                                       cache.stride, cache.padding)
    N, C, H, W = x_shape
    Ho, Wo = g.shape[2], g.shape[3]
    ph, pw = padding
    dxp = xp.zeros((N, C, Hp, Wp), dtype=dout.dtype)
    for k in range(kernel_size[0] * kernel_size[1]):
        view = offset_view(dxp, k, Ho, Wo, kernel_size, stride, (1, 1))
        view += g
    if (Hp, Wp, ph, pw) == (H, W, 0, 0):
        return dxp
    return xp.ascontiguousarray(dxp[:, :, ph:ph + H, pw:pw + W])


