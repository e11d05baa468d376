"""Adaptive pooling to a fixed output size: windows ``[⌊i·H/Ho⌋, ⌈(i+1)·H/Ho⌉)`` × the same on columns.

Algorithms (named by the cache, :mod:`.cache`):

* ``"tiles"`` (:class:`~.cache.AdaptiveTileCache`): ``Ho | H`` and ``Wo | W`` — the windows tile and
  it is a plain average/max pool with kernel = stride = ``(H/Ho, W/Wo)``;
* ``"separable matmul"`` (:class:`~.cache.AdaptiveAvgCache`): the mean is ``A_H · x · A_Wᵀ``;
* ``"separable"`` (:class:`~.cache.AdaptiveMaxCache`): the max over each row's column window,
  then over the row window.

The lecture's loop versions are :func:`glassnet.ops.pool.reference.adaptive_avg_pool2d_forward`
and :func:`~glassnet.ops.pool.reference.adaptive_max_pool2d_forward`.
"""
from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from ...gemm import matmul
from .args import AdaptivePoolArgs
from .avg_pool import avg_pool2d_backward, avg_pool2d_forward
from .cache import AdaptiveAvgCache, AdaptiveMaxCache, AdaptiveTileCache
from .geometry import check_input, index_dtype
from .max_pool import max_pool2d_backward, max_pool2d_forward, max_pool2d_indices

__all__ = ["adaptive_pool_bounds", "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
           "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward", "adaptive_max_pool2d_indices"]


def adaptive_pool_bounds(size, out):
    """PyTorch's adaptive windows along one axis: for output ``i`` the input
    range ``[⌊i·size/out⌋, ⌈(i+1)·size/out⌉)``. Returns ``(start, end)`` NumPy
    int arrays of length ``out``.

    Shape: scalars -> two (out,) arrays.
    """
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    return start, end


def _output_hw(kind, x, output_size):
    """``(Ho, Wo)`` for ``x``, checked by :class:`~glassnet.ops.pool.args.AdaptivePoolArgs`."""
    args = AdaptivePoolArgs(kind, output_size)
    check_input(args.layer, x)
    return args.output_hw(x.shape)


def _selection_matrix(xp, size, out, dtype):
    """``A`` of shape (out, size) with ``A[i, h] = 1/len_i`` on window i."""
    start, end = adaptive_pool_bounds(size, out)
    h = np.arange(size)
    A = ((h[None, :] >= start[:, None]) & (h[None, :] < end[:, None])).astype(dtype)
    A /= (end - start)[:, None].astype(dtype)
    return xp.asarray(A)


def adaptive_avg_pool2d_forward(x, output_size):
    """Adaptive average pooling to ``output_size = (Ho, Wo)`` (``F.adaptive_avg_pool2d``).

    Window ``(i, j)`` is rows ``[⌊iH/Ho⌋, ⌈(i+1)H/Ho⌉)`` × the same rule on
    columns; ``y`` is its mean. When ``Ho | H`` and ``Wo | W`` (global pooling,
    7×7 → 1×1, ...) the windows tile and it is ``avg_pool2d`` with kernel =
    stride = ``(H/Ho, W/Wo)``. Otherwise the mean is separable,
    ``y = A_H · x · A_Wᵀ`` with ``A[i, h] = 1/len_i`` on window ``i``: two
    matrix products, no loop.

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo). ``None`` in ``output_size``
    keeps that input size.
    """
    xp = get_array_module(x)
    Ho, Wo = _output_hw("avg", x, output_size)
    H, W = x.shape[2], x.shape[3]
    if H % Ho == 0 and W % Wo == 0:
        k = (H // Ho, W // Wo)
        out, c = avg_pool2d_forward(x, k, k, (0, 0))
        return out, AdaptiveTileCache(c)
    Ah = _selection_matrix(xp, H, Ho, x.dtype)
    Aw = _selection_matrix(xp, W, Wo, x.dtype)
    out = matmul(matmul(Ah, x), Aw.T)
    return out, AdaptiveAvgCache(Ah, Aw)


def adaptive_avg_pool2d_backward(dout, cache):
    """dL/dx = A_Hᵀ · dL/dy · A_W  (each input gets ``dL/dy[i, j] / |R(i, j)|``
    summed over the windows it lies in; adaptive windows may overlap).

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    if isinstance(cache, AdaptiveTileCache):
        return avg_pool2d_backward(dout, cache.pool)
    Ah, Aw = cache.Ah, cache.Aw
    return matmul(matmul(Ah.T, dout), Aw)


def _adaptive_max_1d(xp, x, axis, out_len, idt):
    """Max over adaptive windows along ``axis`` (2 or 3) of ``x``.

    Loops over the offset within the window (window length, not output size);
    offsets past a short window repeat its last element, which never wins
    (strict ``>``). Returns ``(max, arg)`` with ``arg`` the offset in the window.
    """
    size = x.shape[axis]
    start, end = adaptive_pool_bounds(size, out_len)
    L = int((end - start).max())
    out = arg = None
    for j in range(L):
        idx = xp.asarray(np.minimum(start + j, end - 1))
        v = xp.take(x, idx, axis=axis)
        if out is None:
            out = v
            arg = xp.zeros(v.shape, dtype=idt)
            continue
        take = v > out
        take |= v != v  # NaN wins, as PyTorch
        xp.copyto(out, v, where=take)
        xp.copyto(arg, j, where=take, casting="unsafe")
    return out, arg


def _adaptive_route_1d(xp, g, arg, axis, size, dtype):
    """Backward of :func:`_adaptive_max_1d`: send ``g`` (reduced along ``axis``)
    to the chosen offset. Per offset ``j`` a 0/1 matrix ``S_j`` (size × out)
    places window positions; a matrix product sums where windows overlap (no
    scatter)."""
    out_len = g.shape[axis]
    start, end = adaptive_pool_bounds(size, out_len)
    L = int((end - start).max())
    res = None
    rows = np.arange(size)
    for j in range(L):
        idx = np.minimum(start + j, end - 1)
        S = xp.asarray((rows[:, None] == idx[None, :]).astype(dtype))  # (size, out_len)
        m = g * (arg == j)
        if axis == 2:
            part = matmul(S, m)            # (size, Ho) @ (N, C, Ho, W)
        else:
            part = matmul(m, S.T)          # (N, C, H, Wo) @ (Wo, size)
        res = part if res is None else res + part
    return res


def adaptive_max_pool2d_forward(x, output_size):
    """Adaptive max pooling to ``output_size = (Ho, Wo)`` (``F.adaptive_max_pool2d``).

    Windows as :func:`adaptive_avg_pool2d_forward`. When they tile (``Ho | H``,
    ``Wo | W``) this is ``max_pool2d`` with kernel = stride. Otherwise the
    max is taken separably — over each row's column window, then over the row
    window — which picks the same element as PyTorch's row-major scan: the
    first row holding the maximum, and in it the first column (ties → first).

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo).
    """
    xp = get_array_module(x)
    Ho, Wo = _output_hw("max", x, output_size)
    H, W = x.shape[2], x.shape[3]
    if H % Ho == 0 and W % Wo == 0:
        k = (H // Ho, W // Wo)
        out, c = max_pool2d_forward(x, k, k, (0, 0))
        return out, AdaptiveTileCache(c)
    idt = index_dtype(max(H, W))
    colmax, argc = _adaptive_max_1d(xp, x, 3, Wo, idt)       # (N, C, H, Wo)
    out, argr = _adaptive_max_1d(xp, colmax, 2, Ho, idt)     # (N, C, Ho, Wo)
    return out, AdaptiveMaxCache(argc, argr, x.shape, x.dtype)


def adaptive_max_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over windows whose arg-max is p of dL/dy[i, j] (gradient router).

    Separable form: first route ``dL/dy`` to the winning row of each column
    maximum, then along that row to the winning column.

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    xp = get_array_module(dout)
    if isinstance(cache, AdaptiveTileCache):
        return max_pool2d_backward(dout, cache.pool)
    argc, argr, x_shape = cache.argc, cache.argr, cache.x_shape
    H, W = x_shape[2], x_shape[3]
    dcol = _adaptive_route_1d(xp, dout, argr, 2, H, dout.dtype)   # (N, C, H, Wo)
    return _adaptive_route_1d(xp, dcol, argc, 3, W, dout.dtype)   # (N, C, H, W)


def adaptive_max_pool2d_indices(cache):
    """PyTorch's ``return_indices`` for adaptive max pooling: flat ``r·W + c``
    index (int64) of each output's arg-max, read off an
    :func:`adaptive_max_pool2d_forward` cache.

    Shape: (N, C, Ho, Wo), int64.
    """
    if isinstance(cache, AdaptiveTileCache):
        return max_pool2d_indices(cache.pool)
    argc, argr, x_shape = cache.argc, cache.argr, cache.x_shape
    xp = get_array_module(argr)
    H, W = x_shape[2], x_shape[3]
    Ho, Wo = argr.shape[2], argr.shape[3]
    sh, eh = adaptive_pool_bounds(H, Ho)
    sw, ew = adaptive_pool_bounds(W, Wo)
    row = xp.minimum(xp.asarray(sh)[:, None] + argr.astype(np.int64), xp.asarray(eh - 1)[:, None])
    colarg = xp.take_along_axis(argc.astype(np.int64), row, axis=2)   # (N, C, Ho, Wo)
    col = xp.minimum(xp.asarray(sw)[None, :] + colarg, xp.asarray(ew - 1)[None, :])
    return row * W + col
