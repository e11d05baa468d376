"""Pooling kernels: max, average, power-average (Lp) and adaptive pooling.

Contract (every kernel module): ``<op>_forward(x, ...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> dx``. Pure functions on raw NCHW arrays (NumPy
or CuPy); no state, no Tensor. Outputs keep the input's dtype. Arguments
``kernel_size``, ``stride``, ``padding`` and ``dilation`` arrive already
normalised to ``(h, w)`` int pairs.

Notation (the lecture's): a pooling window ``R(i, j)`` of the input feeds
output ``y[i, j]``; ``dL/dy`` is the upstream gradient (``dout``).

Output sizes follow PyTorch exactly (:func:`pool_output_size`): ``floor``, or
with ``ceil_mode`` a ``ceil`` that drops a last window starting in the right
padding.

How the windows are read: one strided view per kernel offset ``(a, b)``,
``x_pad[:, :, a·dH :: sH, b·dW :: sW]`` cut to ``(Ho, Wo)``, so a loop runs
over the ``kH·kW`` kernel offsets, never over output positions. Backward passes
add each offset's share back into the same strided view of ``dx_pad``; within
one offset the positions are distinct, so there is no scatter. Max pooling
splits the window into its rows (kW column views, then kH row views of the
row maxima); non-overlapping average pools take a reshape fast path
``(N, C, Ho, kH, Wo, kW)``.
"""
# Over 500 lines: this session touched it only for the error family (and, in train.py/tensor.py, the
# checkpoint resume checks and gradient hooks); splitting it by job is issue 13's restructuring (ops layer,
# train/ package), planned with farm-studio, not done piecemeal here.

from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module, is_channel_major
from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError
from ..threads import parallel_for

__all__ = [
    "pool_output_size",
    "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward",
    "lp_pool2d_forward", "lp_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward",
    "adaptive_pool_bounds",
    "max_pool2d_indices", "adaptive_max_pool2d_indices",
]


# ---------------------------------------------------------------------------
# geometry and checks
# ---------------------------------------------------------------------------

def pool_output_size(size, kernel, stride, padding=0, dilation=1, ceil_mode=False):
    """One spatial output size of a pooling layer, exactly as PyTorch computes it.

    ``out = ⌊(size + 2p − d(k−1) − 1 [+ s − 1 if ceil_mode]) / s⌋ + 1``; in
    ``ceil_mode`` the last window is dropped when it would start at or after
    ``size + p`` (inside the right padding), so every window starts inside the
    input or the left padding.  May return ``<= 0`` (too small an input); the
    forward functions turn that into a :class:`ShapeError`.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        span += stride - 1
    out = span // stride + 1  # Python // is floor division, as PyTorch's div_rtn
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _float_dtype_or_raise(name, x):
    if getattr(x, "dtype", None) is None or x.dtype.kind != "f":
        raise InvalidTypeError(f"{name}: expected a floating-point array, got dtype {getattr(x, 'dtype', type(x))}")


def _check_4d(name, x):
    _float_dtype_or_raise(name, x)
    if x.ndim != 4:
        raise ShapeError(f"{name}: expected a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")


def _pool_geometry(name, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Check the pooling arguments against ``x`` and return ``(Ho, Wo)``."""
    _check_4d(name, x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    if min(kh, kw) <= 0 or min(sh, sw) <= 0 or min(dh, dw) <= 0:
        raise InvalidArgumentError(
            f"{name}: kernel_size, stride and dilation must be positive, got "
            f"kernel_size={kernel_size}, stride={stride}, dilation={dilation}")
    if min(ph, pw) < 0:
        raise InvalidArgumentError(f"{name}: padding must be non-negative, got padding={padding}")
    if ph > kh // 2 or pw > kw // 2:
        raise ShapeError(
            f"{name}: padding {padding} is more than half the kernel size {kernel_size}; "
            "PyTorch's rule is padding <= kernel_size // 2 in each dimension")
    H, W = x.shape[2], x.shape[3]
    Ho = pool_output_size(H, kh, sh, ph, dh, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, dw, ceil_mode)
    if Ho < 1 or Wo < 1:
        raise ShapeError(
            f"{name}: input of shape {tuple(x.shape)} is too small for kernel_size={kernel_size}, "
            f"stride={stride}, padding={padding}, dilation={dilation}: the output would be "
            f"{Ho}x{Wo} (out = floor((in + 2*padding - dilation*(kernel-1) - 1) / stride) + 1 must be >= 1)")
    return Ho, Wo


def _padded_extent(size, out, kernel, stride, padding, dilation):
    """Length of the padded axis the strided views need: left padding, the
    input, then right padding (at least ``padding``, more when ``ceil_mode``'s
    last window runs past it, less is never needed)."""
    needed = (out - 1) * stride + dilation * (kernel - 1) + 1
    return max(needed, size + padding)


def _offset_views(a, k, Ho, Wo, kernel_size, stride, dilation):
    """The ``(Ho, Wo)`` strided view of padded array ``a`` for kernel offset ``k``
    (row-major over the kernel, ``k = a_row · kW + a_col``)."""
    kw = kernel_size[1]
    (sh, sw), (dh, dw) = stride, dilation
    i, j = divmod(k, kw)
    r0, c0 = i * dh, j * dw
    return a[:, :, r0:r0 + (Ho - 1) * sh + 1:sh, c0:c0 + (Wo - 1) * sw + 1:sw]


def _is_tiling(x_shape, Ho, Wo, kernel_size, stride, padding, dilation):
    """Non-overlapping windows that need no padding: reshape fast path."""
    (kh, kw) = kernel_size
    return (tuple(stride) == (kh, kw) and tuple(padding) == (0, 0) and tuple(dilation) == (1, 1)
            and Ho * kh <= x_shape[2] and Wo * kw <= x_shape[3])


def _index_dtype(n):
    """Smallest signed integer dtype holding ``0 .. n-1`` (argmax caches)."""
    for dt in (np.int8, np.int16, np.int32):
        if n <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _pad_array(xp, x, Hp, Wp, ph, pw, fill):
    """``x`` placed at ``(ph, pw)`` inside a ``(N, C, Hp, Wp)`` array of ``fill``
    (``x`` itself when no padding is needed)."""
    N, C, H, W = x.shape
    if (Hp, Wp, ph, pw) == (H, W, 0, 0):
        return x
    out = _empty_in_order_of(xp, x, (N, C, Hp, Wp))  # keeps a convolution output's memory order
    out[...] = fill
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def _tiles(x, Ho, Wo, kh, kw):
    """View of the tiled part of ``x`` as ``(N, C, Ho, kh, Wo, kw)``."""
    N, C = x.shape[:2]
    return x[:, :, :Ho * kh, :Wo * kw].reshape(N, C, Ho, kh, Wo, kw)


def _untile(xp, g6, x_shape):
    """Inverse of :func:`_tiles` for gradients: ``(N, C, Ho, kh, Wo, kw)`` back
    to ``x_shape``, zeros where the tiling cut off a remainder."""
    N, C, Ho, kh, Wo, kw = g6.shape
    g = g6.reshape(N, C, Ho * kh, Wo * kw)
    H, W = x_shape[2], x_shape[3]
    if (Ho * kh, Wo * kw) == (H, W):
        return g
    dx = xp.zeros(x_shape, dtype=g.dtype)
    dx[:, :, :Ho * kh, :Wo * kw] = g
    return dx


def _column_views(a, Wo, kw, sw, dw):
    """The ``kW`` views ``a[..., b·dW :: sW]`` cut to ``Wo`` columns: view ``b``
    holds column offset ``b`` of every window's row segment."""
    return [a[:, :, :, b * dw:b * dw + (Wo - 1) * sw + 1:sw] for b in range(kw)]


def _row_views(a, Ho, kh, sh, dh):
    """The ``kH`` views ``a[:, :, r·dH :: sH]`` cut to ``Ho`` rows."""
    return [a[:, :, r * dh:r * dh + (Ho - 1) * sh + 1:sh] for r in range(kh)]


def _elementwise_max(xp, views, out):
    """``out = max(views[0], views[1], …)`` (NaN propagates)."""
    if len(views) == 1:
        out[...] = views[0]
        return
    xp.maximum(views[0], views[1], out=out)
    for v in views[2:]:
        xp.maximum(out, v, out=out)


def _empty_in_order_of(xp, x, shape):
    """An empty (N, C, h, w) array stored in the memory order of ``x`` (NCHW,
    or a convolution output's channel-major order)."""
    if is_channel_major(x):
        return xp.empty((shape[1], shape[0]) + tuple(shape[2:]), dtype=x.dtype).transpose(1, 0, 2, 3)
    return xp.empty(shape, dtype=x.dtype)


def _for_planes(xp, x, work):
    """``work(sl)`` for index tuples ``sl`` that cut the outer memory axis of
    ``x`` (C for channel-major arrays, else N) into ranges, split over the
    kernel threads (:mod:`glassnet.threads`). Pooling acts per (n, c) plane,
    so every range is independent and writes its own slice."""
    axis = 1 if is_channel_major(x) else 0

    def run(lo, hi):
        work((slice(None),) * axis + (slice(lo, hi),))

    parallel_for(x.shape[axis], run, x.size, xp=xp)


def _disjoint(kernel, stride, dilation):
    """Whether the offset views of one axis never share a position."""
    return stride >= (kernel - 1) * dilation + 1


def _covers(size, out, kernel, stride, dilation):
    """Whether the windows of one axis cover every position exactly once."""
    return dilation == 1 and stride == kernel and out * kernel == size


def _route_to_first_max(xp, g, views, best, target_views, disjoint):
    """Add ``g`` into ``target_views[k]`` for the first ``k`` whose ``views[k]``
    equals ``best`` (PyTorch's tie rule), with one running remainder:

        share_k = rest · [views[k] = best],  rest ← rest − share_k,  share_last = rest

    Once a position is routed its ``rest`` is 0, so later equal offsets get
    nothing. ``g`` must be finite (``0 · inf`` would be NaN) and is not changed.
    With ``disjoint`` views each share is written straight into its target.
    """
    last = len(views) - 1
    if last == 0:
        if disjoint:
            target_views[0][...] = g
        else:
            target_views[0] += g
        return
    hit = xp.empty_like(best, dtype=bool)  # in the memory order of best
    rest = g
    for k in range(last):
        xp.equal(views[k], best, out=hit)
        if disjoint:
            share = xp.multiply(rest, hit, out=target_views[k])
            if k == last - 1:  # the last offset takes what is left
                xp.subtract(rest, share, out=target_views[last])
                return
        else:
            share = rest * hit
            target_views[k] += share
        if rest is g:  # the first subtraction makes rest our own array
            rest = rest - share
        else:
            xp.subtract(rest, share, out=rest)
    target_views[last] += rest


def _all_finite(xp, a):
    """No NaN or ±inf in ``a`` (a finite sum proves it in one pass without a
    temporary; an overflowing sum falls back to the element-wise test)."""
    return bool(xp.isfinite(a.sum())) or bool(xp.isfinite(a).all())


def _no_nan(xp, a):
    """No NaN in ``a`` (±inf allowed)."""
    return bool(xp.isfinite(a.sum())) or not bool(xp.isnan(a).any())


def _running_max(xp, xpad, Ho, Wo, kernel_size, stride, dilation, arg, out):
    """Max over the kH·kW offset views of ``xpad`` and the offset that won,
    updating ``out`` (starting as offset 0's view) and ``arg`` in place.

    A later offset wins only when strictly greater (first index on ties) or
    NaN (NaN always wins, as in PyTorch: ``val > maxval || isnan(val)``).
    """
    K = kernel_size[0] * kernel_size[1]
    take = xp.empty(out.shape, dtype=bool)
    for k in range(1, K):
        v = _offset_views(xpad, k, Ho, Wo, kernel_size, stride, dilation)
        xp.greater(v, out, out=take)
        if v.dtype.kind == "f":
            take |= v != v
        xp.copyto(out, v, where=take)
        xp.copyto(arg, k, where=take, casting="unsafe")
    return out, arg


# ---------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------

def max_pool2d_forward(x, kernel_size, stride, padding, dilation=(1, 1), ceil_mode=False):
    """2-D max pooling, ``y[i, j] = max over R(i, j) of x`` (PyTorch's ``F.max_pool2d``).

    Padding counts as ``−inf`` (never chosen). Ties go to the first element of
    the window in row-major order, as PyTorch's CPU kernel; a NaN in a window
    makes the output NaN (the last NaN in row-major order is the "argmax").

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo) with
    ``Ho = ⌊(H + 2·pH − dH·(kH−1) − 1) / sH⌋ + 1`` (ceil with ``ceil_mode``, see
    :func:`pool_output_size`), likewise ``Wo``. The cache holds the (padded)
    input, the row-segment maxima ``m1`` and the output, from which the
    backward finds the winners; only
    for all-−inf windows with padding does it hold the tracked arg-max (the
    kernel-offset index ``a·kW + b`` per output, in the smallest int dtype).
    """
    xp = get_array_module(x)
    Ho, Wo = _pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    K = kh * kw
    idt = _index_dtype(K)

    H, W = x.shape[2], x.shape[3]
    Hp = _padded_extent(H, Ho, kh, sh, ph, dh)
    Wp = _padded_extent(W, Wo, kw, sw, pw, dw)
    xpad = _pad_array(xp, x, Hp, Wp, ph, pw, -np.inf)  # x itself when nothing is padded
    # The window max is separable: first the max over each window's row
    # segment, m1[r, j] = max_b x[r, j·sW + b·dW] (all rows r), then
    # y[i, j] = max_a m1[i·sH + a·dH, j] — kW + kH strided passes instead of
    # kW·kH. The arg-max is not stored: the backward finds the winners from
    # x, m1 and y, which costs less than tracking them here — unless a window
    # is all −inf with padding in it (a padding position could then tie for
    # the max, and PyTorch's choice, the first in-bounds element, needs the
    # tracked arg-max below).
    N, C = x.shape[:2]
    m1 = _empty_in_order_of(xp, xpad, (N, C, Hp, Wo))
    out = _empty_in_order_of(xp, xpad, (N, C, Ho, Wo))

    def pool_planes(sl):
        _elementwise_max(xp, _column_views(xpad[sl], Wo, kw, sw, dw), m1[sl])
        _elementwise_max(xp, _row_views(m1[sl], Ho, kh, sh, dh), out[sl])

    _for_planes(xp, xpad, pool_planes)
    crop = None if xpad is x else (ph, pw, H, W)
    if crop is None or not bool((out == -np.inf).any()):
        return out, ("separable", xpad, m1, out, kernel_size, stride, dilation, crop)

    # Start from offset 0; where offset 0 lies in the padding its −inf loses to
    # any real value, and the argmax starts at the window's first in-bounds
    # element — exactly PyTorch's initial index (it matters only for −inf input).
    out = _offset_views(xpad, 0, Ho, Wo, kernel_size, stride, dilation).copy()
    if ph == 0 and pw == 0:
        arg = xp.zeros(out.shape, dtype=idt)
    else:
        i0 = np.maximum(0, -(-(ph - np.arange(Ho) * sh) // dh))  # first row offset inside the input
        j0 = np.maximum(0, -(-(pw - np.arange(Wo) * sw) // dw))
        init = (i0[:, None] * kw + j0[None, :]).astype(idt)
        arg = xp.broadcast_to(xp.asarray(init), out.shape).copy()
    out, arg = _running_max(xp, xpad, Ho, Wo, kernel_size, stride, dilation, arg, out)
    cache = ("general", arg, x.shape, (Hp, Wp), kernel_size, stride, padding, dilation, x.dtype)
    return out, cache


def _separable_max_backward(xp, x, m1, out, dout, kernel_size, stride, dilation):
    """Max-pool backward in the two stages of the separable forward, for
    finite upstream gradients and NaN-free maxima:

        dL/dm1 = dL/dy routed, per window, to the first row a with m1 = y
        dL/dx  = dL/dm1 routed, per row segment, to the first column b with x = m1

    Together this picks the window's first maximum in row-major order (the
    first row holding the max, then the first column in it), PyTorch's rule.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    Ho, Wo = out.shape[2], out.shape[3]
    Hp, Wp = x.shape[2], x.shape[3]
    # empty_like / zeros_like keep the memory order of x (NCHW or a
    # convolution output's channel-major order), so every pass runs in order.
    dm1 = (xp.empty_like if _covers(Hp, Ho, kh, sh, dh) else xp.zeros_like)(m1, dtype=dout.dtype)
    dx = (xp.empty_like if _covers(Wp, Wo, kw, sw, dw) else xp.zeros_like)(x, dtype=dout.dtype)

    def route_planes(sl):
        _route_to_first_max(xp, dout[sl], _row_views(m1[sl], Ho, kh, sh, dh), out[sl],
                            _row_views(dm1[sl], Ho, kh, sh, dh), _disjoint(kh, sh, dh))
        _route_to_first_max(xp, dm1[sl], _column_views(x[sl], Wo, kw, sw, dw), m1[sl],
                            _column_views(dx[sl], Wo, kw, sw, dw), _disjoint(kw, sw, dw))

    _for_planes(xp, x, route_planes)
    return dx


def _winners(xp, x, out, kernel_size, stride, dilation):
    """The arg-max offset ``a·kW + b`` of every window of an unpadded max pool.

    Lowest offset among those equal to the max (first on ties); in a window
    whose max is NaN, the last NaN (PyTorch's rule).
    """
    Ho, Wo = out.shape[2], out.shape[3]
    K = kernel_size[0] * kernel_size[1]
    arg = xp.zeros(out.shape, dtype=_index_dtype(K))
    eq = xp.empty(out.shape, dtype=bool)
    for k in range(K - 1, -1, -1):  # descending, so the lowest equal offset is written last
        xp.equal(_offset_views(x, k, Ho, Wo, kernel_size, stride, dilation), out, out=eq)
        xp.copyto(arg, k, where=eq, casting="unsafe")
    nan = out != out
    if bool(nan.any()):
        first = _offset_views(x, 0, Ho, Wo, kernel_size, stride, dilation)
        xp.copyto(arg, 0, where=nan & (first != first), casting="unsafe")
        for k in range(1, K):
            v = _offset_views(x, k, Ho, Wo, kernel_size, stride, dilation)
            xp.copyto(arg, k, where=nan & (v != v), casting="unsafe")
    return arg


def max_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over outputs (i, j) whose arg-max is p of dL/dy[i, j].

    The max is a gradient router: each upstream gradient goes, whole, to the
    one input that won its window (first index on ties); every other input of
    the window gets 0. Inputs in several windows collect a sum.

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    xp = get_array_module(dout)
    if cache[0] == "separable":
        _, x, m1, out, kernel_size, stride, dilation, crop = cache
        if _no_nan(xp, out) and _all_finite(xp, dout):
            dx = _separable_max_backward(xp, x, m1, out, dout, kernel_size, stride, dilation)
        else:  # NaN maxima (routed to the last NaN) or non-finite upstream gradients
            arg = _winners(xp, x, out, kernel_size, stride, dilation)
            Ho, Wo = out.shape[2], out.shape[3]
            dx = xp.zeros(x.shape, dtype=dout.dtype)
            for k in range(kernel_size[0] * kernel_size[1]):
                view = _offset_views(dx, k, Ho, Wo, kernel_size, stride, dilation)
                # where, not dout * (arg == k): an inf/NaN upstream gradient
                # must reach only its arg-max (0 * inf would leak NaN)
                view += xp.where(arg == k, dout, dout.dtype.type(0))
        if crop is not None:  # x was the padded input: strip the padding
            ph, pw, h, w = crop
            return dx[:, :, ph:ph + h, pw:pw + w].copy(order="K")
        return dx

    _, arg, x_shape, (Hp, Wp), kernel_size, stride, padding, dilation, _ = cache
    N, C, H, W = x_shape
    Ho, Wo = arg.shape[2], arg.shape[3]
    ph, pw = padding
    dxp = xp.zeros((N, C, Hp, Wp), dtype=dout.dtype)
    for k in range(kernel_size[0] * kernel_size[1]):
        view = _offset_views(dxp, k, Ho, Wo, kernel_size, stride, dilation)
        # where, not dout * (arg == k): an inf/NaN upstream gradient must reach
        # only its arg-max (0 * inf would leak NaN into the other positions).
        view += xp.where(arg == k, dout, dout.dtype.type(0))
    if (Hp, Wp, ph, pw) == (H, W, 0, 0):
        return dxp
    return xp.ascontiguousarray(dxp[:, :, ph:ph + H, pw:pw + W])


def max_pool2d_indices(cache):
    """PyTorch's ``return_indices``: for each output the flat index ``r·W + c``
    into its input's ``(H, W)`` plane of the element it took (int64), read off
    a :func:`max_pool2d_forward` cache."""
    if cache[0] == "separable":
        _, x, _, out, (kh, kw), (sh, sw), (dh, dw), crop = cache
        xp = get_array_module(x)
        arg = _winners(xp, x, out, (kh, kw), (sh, sw), (dh, dw))
        if crop is None:
            x_shape, (ph, pw) = x.shape, (0, 0)
        else:
            ph, pw, h, w = crop
            x_shape = x.shape[:2] + (h, w)
    else:
        _, arg, x_shape, _, (kh, kw), (sh, sw), (ph, pw), (dh, dw), _ = cache
    xp = get_array_module(arg)
    W = x_shape[3]
    Ho, Wo = arg.shape[2], arg.shape[3]
    a = arg.astype(np.int64)
    rows = xp.arange(Ho, dtype=np.int64)[:, None] * sh - ph + (a // kw) * dh
    cols = xp.arange(Wo, dtype=np.int64)[None, :] * sw - pw + (a % kw) * dw
    return rows * W + cols


# ---------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------

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
    if divisor_override is not None:
        return dtype.type(divisor_override)
    H, W = x_shape[2], x_shape[3]
    dh = _avg_divisor_1d(H, Ho, kernel_size[0], stride[0], padding[0], count_include_pad)
    dw = _avg_divisor_1d(W, Wo, kernel_size[1], stride[1], padding[1], count_include_pad)
    return xp.asarray((dh[:, None] * dw[None, :]).astype(dtype))


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode=False,
                       count_include_pad=True, divisor_override=None):
    """2-D average pooling, ``y[i, j] = (Σ over R(i, j) of x) / D[i, j]`` (``F.avg_pool2d``).

    The divisor ``D`` follows PyTorch: ``divisor_override`` if given; else with
    ``count_include_pad`` the window size clipped to the padded input (so a
    ceil_mode window that runs past the right padding divides by fewer
    elements), else the number of real input elements in the window.

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo), sizes as :func:`pool_output_size`.
    """
    xp = get_array_module(x)
    dilation = (1, 1)
    Ho, Wo = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise InvalidArgumentError("avg_pool2d: divisor_override must be non-zero")
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    div = _avg_divisor(xp, x.shape, Ho, Wo, kernel_size, stride, padding, count_include_pad,
                       divisor_override, x.dtype)

    if _is_tiling(x.shape, Ho, Wo, kernel_size, stride, padding, dilation):
        s = _tiles(x, Ho, Wo, kh, kw).sum(axis=(3, 5))
        return s / div, ("tile", div, x.shape, kernel_size)

    H, W = x.shape[2], x.shape[3]
    Hp = _padded_extent(H, Ho, kh, sh, ph, 1)
    Wp = _padded_extent(W, Wo, kw, sw, pw, 1)
    xpad = _pad_array(xp, x, Hp, Wp, ph, pw, 0)
    s = _offset_views(xpad, 0, Ho, Wo, kernel_size, stride, dilation).copy()
    for k in range(1, kh * kw):
        s += _offset_views(xpad, k, Ho, Wo, kernel_size, stride, dilation)
    return s / div, ("general", div, x.shape, (Hp, Wp), kernel_size, stride, padding)


def avg_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over windows R(i, j) ∋ p of dL/dy[i, j] / D[i, j].

    Every element of a window gets the same share of its output's gradient;
    padding positions take theirs and drop it.

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    xp = get_array_module(dout)
    g = dout / cache[1]
    if cache[0] == "tile":
        _, _, x_shape, (kh, kw) = cache
        N, C, Ho, Wo = g.shape
        g6 = xp.broadcast_to(g[:, :, :, None, :, None], (N, C, Ho, kh, Wo, kw))
        return _untile(xp, xp.ascontiguousarray(g6), x_shape)

    _, _, x_shape, (Hp, Wp), kernel_size, stride, padding = cache
    N, C, H, W = x_shape
    Ho, Wo = g.shape[2], g.shape[3]
    ph, pw = padding
    dxp = xp.zeros((N, C, Hp, Wp), dtype=dout.dtype)
    for k in range(kernel_size[0] * kernel_size[1]):
        view = _offset_views(dxp, k, Ho, Wo, kernel_size, stride, (1, 1))
        view += g
    if (Hp, Wp, ph, pw) == (H, W, 0, 0):
        return dxp
    return xp.ascontiguousarray(dxp[:, :, ph:ph + H, pw:pw + W])


# ---------------------------------------------------------------------------
# power-average (Lp) pooling
# ---------------------------------------------------------------------------

def lp_pool2d_forward(x, norm_type, kernel_size, stride, ceil_mode=False):
    """Power-average pooling ``y = (Σ over R(i, j) of x^p)^(1/p)`` (``F.lp_pool2d``).

    ``norm_type = p``; ``p = 2`` is the lecture's L2 pooling, ``p = ∞`` is max
    pooling of ``|x|`` (and ``−∞`` is ``−max(−|x|)``), as in PyTorch. No padding.
    The finite case replicates PyTorch's formula step by step:

        a = avg_pool2d(x^p, kernel, stride, ceil_mode)      # divisor as avg_pool2d
        t = sign(a) · relu(|a|) · (kH·kW)
        y = t^(1/p)

    so a ceil_mode window cut short by the input edge is scaled by
    ``kH·kW / (elements in it)``, and a negative ``a`` (odd ``p``) gives NaN,
    both exactly as PyTorch.

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo), sizes as :func:`pool_output_size`
    with padding 0.
    """
    xp = get_array_module(x)
    _check_4d("lp_pool2d", x)
    p = float(norm_type)
    if p == math.inf or p == -math.inf:
        sgn = 1 if p > 0 else -1
        out, mcache = max_pool2d_forward(sgn * xp.abs(x), kernel_size, stride, (0, 0), (1, 1), ceil_mode)
        return sgn * out, ("inf", sgn, x, mcache)
    if p == 0:
        raise InvalidArgumentError("lp_pool2d: norm_type must be non-zero (y = (Σ x^p)^(1/p))")
    xp_pow = x ** x.dtype.type(p)
    a, acache = avg_pool2d_forward(xp_pow, kernel_size, stride, (0, 0), ceil_mode)
    area = kernel_size[0] * kernel_size[1]
    t = xp.sign(a) * xp.maximum(xp.abs(a), 0) * x.dtype.type(area)
    out = t ** x.dtype.type(1.0 / p)
    return out, ("finite", p, x, a, t, area, acache)


def lp_pool2d_backward(dout, cache):
    """Chain rule through ``y = t^(1/p)``, ``t = kH·kW · a``, ``a = avgpool(x^p)``:

        dL/dt = dL/dy · (1/p) · t^(1/p − 1)     (0 where a = 0, as PyTorch: the
                                                 relu in its formula cuts it)
        dL/da = kH·kW · dL/dt
        dL/dx = avg_pool2d_backward(dL/da) ⊙ p · x^(p−1)

    For ``p = 2``: ``dL/dx = x ⊙ Σ_{windows ∋ x} dL/dy / y`` — the L2 norm's
    gradient ``x / ‖x‖`` per window. For ``p = ±∞`` the max-pool router on
    ``|x|`` times ``sign(x)``.

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    xp = get_array_module(dout)
    if cache[0] == "inf":
        _, sgn, x, mcache = cache
        g = max_pool2d_backward(sgn * dout, mcache)
        return g * (sgn * xp.sign(x))
    _, p, x, a, t, area, acache = cache
    dt = dout.dtype.type
    nz = a != 0
    safe_t = xp.where(nz, t, dt(1))
    g_t = dout * dt(1.0 / p) * safe_t ** dt(1.0 / p - 1.0)
    g_a = xp.where(nz, g_t * dt(area), dt(0))
    g_xp = avg_pool2d_backward(g_a, acache)
    if p == 1.0:
        return g_xp
    return g_xp * (dt(p) * x ** dt(p - 1.0))


# ---------------------------------------------------------------------------
# adaptive pooling
# ---------------------------------------------------------------------------

def adaptive_pool_bounds(size, out):
    """PyTorch's adaptive windows along one axis: for output ``i`` the input
    range ``[⌊i·size/out⌋, ⌈(i+1)·size/out⌉)``. Returns ``(start, end)`` NumPy
    int arrays of length ``out``."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    return start, end


def _check_adaptive(name, x, output_size):
    _check_4d(name, x)
    Ho, Wo = output_size
    if Ho is None:
        Ho = x.shape[2]
    if Wo is None:
        Wo = x.shape[3]
    if Ho < 1 or Wo < 1:
        raise ShapeError(f"{name}: output_size must be positive, got {output_size}")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ShapeError(f"{name}: input of shape {tuple(x.shape)} has an empty spatial dimension")
    return int(Ho), int(Wo)


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
    Ho, Wo = _check_adaptive("adaptive_avg_pool2d", x, output_size)
    H, W = x.shape[2], x.shape[3]
    if H % Ho == 0 and W % Wo == 0:
        k = (H // Ho, W // Wo)
        out, c = avg_pool2d_forward(x, k, k, (0, 0))
        return out, ("pool", c)
    Ah = _selection_matrix(xp, H, Ho, x.dtype)
    Aw = _selection_matrix(xp, W, Wo, x.dtype)
    out = xp.matmul(xp.matmul(Ah, x), Aw.T)
    return out, ("matmul", Ah, Aw)


def adaptive_avg_pool2d_backward(dout, cache):
    """dL/dx = A_Hᵀ · dL/dy · A_W  (each input gets ``dL/dy[i, j] / |R(i, j)|``
    summed over the windows it lies in; adaptive windows may overlap).

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    xp = get_array_module(dout)
    if cache[0] == "pool":
        return avg_pool2d_backward(dout, cache[1])
    _, Ah, Aw = cache
    return xp.matmul(xp.matmul(Ah.T, dout), Aw)


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
            part = xp.matmul(S, m)            # (size, Ho) @ (N, C, Ho, W)
        else:
            part = xp.matmul(m, S.T)          # (N, C, H, Wo) @ (Wo, size)
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
    Ho, Wo = _check_adaptive("adaptive_max_pool2d", x, output_size)
    H, W = x.shape[2], x.shape[3]
    if H % Ho == 0 and W % Wo == 0:
        k = (H // Ho, W // Wo)
        out, c = max_pool2d_forward(x, k, k, (0, 0))
        return out, ("pool", c)
    idt = _index_dtype(max(H, W))
    colmax, argc = _adaptive_max_1d(xp, x, 3, Wo, idt)       # (N, C, H, Wo)
    out, argr = _adaptive_max_1d(xp, colmax, 2, Ho, idt)     # (N, C, Ho, Wo)
    return out, ("separable", argc, argr, x.shape, x.dtype)


def adaptive_max_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over windows whose arg-max is p of dL/dy[i, j] (gradient router).

    Separable form: first route ``dL/dy`` to the winning row of each column
    maximum, then along that row to the winning column.

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    xp = get_array_module(dout)
    if cache[0] == "pool":
        return max_pool2d_backward(dout, cache[1])
    _, argc, argr, x_shape, _ = cache
    H, W = x_shape[2], x_shape[3]
    dcol = _adaptive_route_1d(xp, dout, argr, 2, H, dout.dtype)   # (N, C, H, Wo)
    return _adaptive_route_1d(xp, dcol, argc, 3, W, dout.dtype)   # (N, C, H, W)


def adaptive_max_pool2d_indices(cache):
    """PyTorch's ``return_indices`` for adaptive max pooling: flat ``r·W + c``
    index (int64) of each output's arg-max, read off an
    :func:`adaptive_max_pool2d_forward` cache."""
    if cache[0] == "pool":
        return max_pool2d_indices(cache[1])
    _, argc, argr, x_shape, _ = cache
    xp = get_array_module(argr)
    H, W = x_shape[2], x_shape[3]
    Ho, Wo = argr.shape[2], argr.shape[3]
    sh, eh = adaptive_pool_bounds(H, Ho)
    sw, ew = adaptive_pool_bounds(W, Wo)
    row = xp.minimum(xp.asarray(sh)[:, None] + argr.astype(np.int64), xp.asarray(eh - 1)[:, None])
    colarg = xp.take_along_axis(argc.astype(np.int64), row, axis=2)   # (N, C, Ho, Wo)
    col = xp.minimum(xp.asarray(sw)[None, :] + colarg, xp.asarray(ew - 1)[None, :])
    return row * W + col
