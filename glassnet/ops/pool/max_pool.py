"""Max pooling, the fast path: ``y[i, j] = max over R(i, j) of x`` and its gradient router.

Two algorithms (named by the cache, :mod:`.cache`):

* ``"separable"`` (:class:`~.cache.MaxPoolCache`, almost always): the window max is separable —
  first the max over each window's row segment (kW column views), then over the window's rows
  (kH row views of the row maxima): kW + kH strided passes instead of kW·kH. Each stage's
  arg-max (the first offset holding the maximum) is kept in the cache as a small int array,
  and the backward routes the gradient with them in the same two stages (:mod:`.routing`),
  comparing no floats.
* ``"running max"`` (:class:`~.cache.MaxPoolArgCache`): a window that is all −inf with padding
  in it could tie with a padding position, and PyTorch's choice (the first in-bounds element)
  needs the arg-max tracked while running over the kernel offsets; and a NaN maximum (routed
  to the window's last NaN) keeps the window's arg-max found once in the forward.

The lecture's loop version is :func:`glassnet.ops.pool.reference.max_pool2d_forward`.
"""
from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from ...errors import InvalidArgumentError
from .args import PoolArgs
from .cache import Crop, MaxPoolArgCache, MaxPoolCache, MaxPoolOutputCache
from .geometry import (
    check_input, column_views, empty_in_order_of, for_planes, index_dtype, offset_view, pad_array,
    padded_extent, row_views,
)
from .routing import in_order_of, needs_zeros, new_in_order_of, route_by_arg, route_plan, route_tile_into_crop

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "max_pool2d_indices"]


def _elementwise_max(xp, views, out):
    """``out = max(views[0], views[1], …)`` (NaN propagates)."""
    if len(views) == 1:
        out[...] = views[0]
        return
    xp.maximum(views[0], views[1], out=out)
    for v in views[2:]:
        xp.maximum(out, v, out=out)



def _first_equal(xp, views, best, arg):
    """``arg`` = the first ``k`` with ``views[k] = best`` (``best`` is their
    maximum, NaN-free), written in place: the number of leading offsets that
    do not hold the maximum, counted in int8 arithmetic on the comparisons."""
    last = len(views) - 1
    if last == 0:
        arg[...] = 0
        return
    not_yet = xp.empty_like(best, dtype=bool)  # no offset up to k holds the maximum (best's memory order)
    xp.not_equal(views[0], best, out=not_yet)
    xp.copyto(arg, not_yet, casting="unsafe")
    if last == 1:
        return
    ne = xp.empty_like(not_yet)
    for k in range(1, last):
        xp.not_equal(views[k], best, out=ne)
        xp.logical_and(not_yet, ne, out=not_yet)
        xp.add(arg, not_yet, out=arg, casting="unsafe")


def _window_arg(xp, cache):
    """The arg-max offset ``a·kW + b`` of every window, from a
    :class:`~.cache.MaxPoolCache`'s two stages: ``a = argr``, ``b`` = ``argc``
    at the winning row ``i·sH + a·dH``."""
    argc, argr = cache.argc, cache.argr
    (kh, kw), (sh, _), (dh, _) = cache.kernel_size, cache.stride, cache.dilation
    a = argr.astype(np.int64)
    rows = xp.arange(argr.shape[2], dtype=np.int64)[:, None] * sh + a * dh
    b = xp.take_along_axis(argc, rows, axis=2).astype(np.int64)
    return (a * kw + b).astype(index_dtype(kh * kw))


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
        v = offset_view(xpad, k, Ho, Wo, kernel_size, stride, dilation)
        xp.greater(v, out, out=take)
        if v.dtype.kind == "f":
            take |= v != v
        xp.copyto(out, v, where=take)
        xp.copyto(arg, k, where=take, casting="unsafe")
    return out, arg


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, keep_arg=True):
    """2-D max pooling, ``y[i, j] = max over R(i, j) of x`` (PyTorch's ``F.max_pool2d``).

    Padding counts as ``−inf`` (never chosen). Ties go to the first element of
    the window in row-major order, as PyTorch's CPU kernel; a NaN in a window
    makes the output NaN (the last NaN in row-major order is the "argmax").

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo) with
    ``Ho = ⌊(H + 2·pH − dH·(kH−1) − 1) / sH⌋ + 1`` (ceil with ``ceil_mode``, see
    :func:`~glassnet.ops.pool.geometry.pool_output_size`), likewise ``Wo``. The
    arguments are normalised and checked by :class:`~glassnet.ops.pool.args.PoolArgs`
    (``stride=None`` means ``kernel_size``). The cache (:class:`~.cache.MaxPoolCache`)
    holds the arg-max of both separable stages (the first column offset of each
    row-segment maximum, the first row offset of each window's maximum, as small
    int arrays), with which the backward routes the gradient; only for
    all-−inf windows with padding, or NaN maxima, is it a
    :class:`~.cache.MaxPoolArgCache` holding the window's arg-max (the
    kernel-offset index ``a·kW + b`` per output, in the smallest int dtype).
    With ``keep_arg=False`` (no gradient wanted: ``no_grad()``, inference) no
    arg-max is found at all and the cache is a :class:`~.cache.MaxPoolOutputCache`,
    which no backward accepts.
    """
    xp = get_array_module(x)
    args = PoolArgs("max", kernel_size, stride, padding, dilation, ceil_mode)
    check_input(args.layer, x)
    Ho, Wo = args.output_hw(x.shape)
    kernel_size, stride, padding, dilation = args.kernel_size, args.stride, args.padding, args.dilation
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    K = kh * kw
    idt = index_dtype(K)

    H, W = x.shape[2], x.shape[3]
    Hp = padded_extent(H, Ho, kh, sh, ph, dh)
    Wp = padded_extent(W, Wo, kw, sw, pw, dw)
    xpad = pad_array(xp, x, Hp, Wp, ph, pw, -np.inf)  # x itself when nothing is padded
    # The window max is separable: first the max over each window's row
    # segment, m1[r, j] = max_b x[r, j·sW + b·dW] (all rows r), then
    # y[i, j] = max_a m1[i·sH + a·dH, j] — kW + kH strided passes instead of
    # kW·kH. Each stage's arg-max is then kept for the backward — unless a
    # window is all −inf with padding in it (a padding position could then tie
    # for the max, and PyTorch's choice, the first in-bounds element, needs the
    # tracked arg-max below) or a maximum is NaN (routed to the window's last NaN).
    N, C = x.shape[:2]
    m1 = empty_in_order_of(xp, xpad, (N, C, Hp, Wo))
    out = empty_in_order_of(xp, xpad, (N, C, Ho, Wo))

    def pool_planes(sl):
        _elementwise_max(xp, column_views(xpad[sl], Wo, kw, sw, dw), m1[sl])
        _elementwise_max(xp, row_views(m1[sl], Ho, kh, sh, dh), out[sl])

    for_planes(xp, xpad, pool_planes)
    if not keep_arg:  # the separable max is the output in every case (−inf padding, NaN included)
        return out, MaxPoolOutputCache()
    crop = None if xpad is x else Crop(ph, pw, H, W)
    if crop is None or not bool((out == -np.inf).any()):
        if not _no_nan(xp, out):
            arg = _winners(xp, xpad, out, kernel_size, stride, dilation)
            return out, MaxPoolArgCache(arg, x.shape, (Hp, Wp), kernel_size, stride, padding, dilation, x.dtype)
        argc = new_in_order_of(xp, xpad, (N, C, Hp, Wo), index_dtype(kw))
        argr = new_in_order_of(xp, xpad, (N, C, Ho, Wo), index_dtype(kh))

        def arg_planes(sl):
            _first_equal(xp, column_views(xpad[sl], Wo, kw, sw, dw), m1[sl], argc[sl])
            _first_equal(xp, row_views(m1[sl], Ho, kh, sh, dh), out[sl], argr[sl])

        for_planes(xp, xpad, arg_planes)
        return out, MaxPoolCache(argc, argr, (Hp, Wp), kernel_size, stride, dilation, crop)

    # Start from offset 0; where offset 0 lies in the padding its −inf loses to
    # any real value, and the argmax starts at the window's first in-bounds
    # element — exactly PyTorch's initial index (it matters only for −inf input).
    out = offset_view(xpad, 0, Ho, Wo, kernel_size, stride, dilation).copy()
    if ph == 0 and pw == 0:
        arg = xp.zeros(out.shape, dtype=idt)
    else:
        i0 = np.maximum(0, -(-(ph - np.arange(Ho) * sh) // dh))  # first row offset inside the input
        j0 = np.maximum(0, -(-(pw - np.arange(Wo) * sw) // dw))
        init = (i0[:, None] * kw + j0[None, :]).astype(idt)
        arg = xp.broadcast_to(xp.asarray(init), out.shape).copy()
    out, arg = _running_max(xp, xpad, Ho, Wo, kernel_size, stride, dilation, arg, out)
    return out, MaxPoolArgCache(arg, x.shape, (Hp, Wp), kernel_size, stride, padding, dilation, x.dtype)


def _separable_max_backward(xp, cache, dout):
    """Max-pool backward in the two stages of the separable forward, for
    finite upstream gradients, routed by the forward's arg-max:

        dL/dm1 = dL/dy routed, per window, to its row a = argr
        dL/dx  = dL/dm1 routed, per row segment, to its column b = argc

    Together this picks the window's first maximum in row-major order (the
    first row holding the max, then the first column in it), PyTorch's rule.
    """
    argc, argr = cache.argc, cache.argr
    (kh, kw), (sh, sw), (dh, dw) = cache.kernel_size, cache.stride, cache.dilation
    Ho, Wo = argr.shape[2], argr.shape[3]
    Hp, Wp = cache.padded_hw
    N, C = argr.shape[:2]
    # in the input's memory order (NCHW or a convolution output's channel-major
    # order), so every pass runs in order
    crop = cache.crop
    # padded and overlapping columns (the usual 3×3/2, padding 1): the columns
    # route straight into the unpadded dx (padding never wins a window here)
    cropped = crop is not None and route_plan(Wp, Wo, kw, sw, dw) == "tile"
    dm1 = new_in_order_of(xp, argc, (N, C, Hp, Wo), dout.dtype, zero=needs_zeros(Hp, Ho, kh, sh, dh))
    if cropped:
        dx = new_in_order_of(xp, argc, (N, C, crop.height, crop.width), dout.dtype)
    else:
        dx = new_in_order_of(xp, argc, (N, C, Hp, Wp), dout.dtype, zero=needs_zeros(Wp, Wo, kw, sw, dw))

    def route_planes(sl):
        route_by_arg(xp, dout[sl], argr[sl], dm1[sl], 2, Ho, kh, sh, dh)
        if cropped:
            rows = tuple(sl) + (slice(None),) * (2 - len(sl)) + (slice(crop.top, crop.top + crop.height),)
            route_tile_into_crop(xp, dm1[rows], argc[rows], dx[sl], Wo, kw, sw, crop.left)
        else:
            route_by_arg(xp, dm1[sl], argc[sl], dx[sl], 3, Wo, kw, sw, dw)

    for_planes(xp, dx, route_planes)
    return dx, cropped


def _winners(xp, x, out, kernel_size, stride, dilation):
    """The arg-max offset ``a·kW + b`` of every window of an unpadded max pool.

    Lowest offset among those equal to the max (first on ties); in a window
    whose max is NaN, the last NaN (PyTorch's rule).
    """
    Ho, Wo = out.shape[2], out.shape[3]
    K = kernel_size[0] * kernel_size[1]
    arg = xp.zeros(out.shape, dtype=index_dtype(K))
    eq = xp.empty(out.shape, dtype=bool)
    for k in range(K - 1, -1, -1):  # descending, so the lowest equal offset is written last
        xp.equal(offset_view(x, k, Ho, Wo, kernel_size, stride, dilation), out, out=eq)
        xp.copyto(arg, k, where=eq, casting="unsafe")
    nan = out != out
    if bool(nan.any()):
        first = offset_view(x, 0, Ho, Wo, kernel_size, stride, dilation)
        xp.copyto(arg, 0, where=nan & (first != first), casting="unsafe")
        for k in range(1, K):
            v = offset_view(x, k, Ho, Wo, kernel_size, stride, dilation)
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
    if isinstance(cache, MaxPoolOutputCache):
        raise _no_arg_error("max_pool2d_backward")
    dout = in_order_of(xp, dout, cache.argr if isinstance(cache, MaxPoolCache) else cache.arg)
    if isinstance(cache, MaxPoolCache):
        crop, kernel_size, stride, dilation = cache.crop, cache.kernel_size, cache.stride, cache.dilation
        if _all_finite(xp, dout):
            dx, cropped = _separable_max_backward(xp, cache, dout)
            if cropped:
                return dx
        else:  # non-finite upstream gradients: routed whole to the window's winner
            arg = _window_arg(xp, cache)
            Ho, Wo = arg.shape[2], arg.shape[3]
            dx = xp.zeros(arg.shape[:2] + tuple(cache.padded_hw), dtype=dout.dtype)
            for k in range(kernel_size[0] * kernel_size[1]):
                view = offset_view(dx, k, Ho, Wo, kernel_size, stride, dilation)
                # where, not dout * (arg == k): an inf/NaN upstream gradient
                # must reach only its arg-max (0 * inf would leak NaN)
                view += xp.where(arg == k, dout, dout.dtype.type(0))
        if crop is not None:  # x was the padded input: strip the padding
            c = crop
            return dx[:, :, c.top:c.top + c.height, c.left:c.left + c.width].copy(order="K")
        return dx

    arg, x_shape, (Hp, Wp) = cache.arg, cache.x_shape, cache.padded_hw
    kernel_size, stride, padding, dilation = cache.kernel_size, cache.stride, cache.padding, cache.dilation
    N, C, H, W = x_shape
    Ho, Wo = arg.shape[2], arg.shape[3]
    ph, pw = padding
    dxp = xp.zeros((N, C, Hp, Wp), dtype=dout.dtype)
    for k in range(kernel_size[0] * kernel_size[1]):
        view = offset_view(dxp, k, Ho, Wo, kernel_size, stride, dilation)
        # where, not dout * (arg == k): an inf/NaN upstream gradient must reach
        # only its arg-max (0 * inf would leak NaN into the other positions).
        view += xp.where(arg == k, dout, dout.dtype.type(0))
    if (Hp, Wp, ph, pw) == (H, W, 0, 0):
        return dxp
    return xp.ascontiguousarray(dxp[:, :, ph:ph + H, pw:pw + W])


def _no_arg_error(what):
    return InvalidArgumentError(
        f"{what}: this max pool's forward ran with keep_arg=False (no gradient was wanted), so it kept no "
        "arg-max; run the forward with gradients enabled (or return_indices=True)")


def max_pool2d_indices(cache):
    """PyTorch's ``return_indices``: for each output the flat index ``r·W + c``
    into its input's ``(H, W)`` plane of the element it took (int64), read off
    a :func:`max_pool2d_forward` cache.

    Shape: (N, C, Ho, Wo), int64.
    """
    if isinstance(cache, MaxPoolOutputCache):
        raise _no_arg_error("max_pool2d_indices")
    (_, kw), (sh, sw), (dh, dw) = cache.kernel_size, cache.stride, cache.dilation
    if isinstance(cache, MaxPoolCache):
        crop = cache.crop
        arg = _window_arg(get_array_module(cache.argr), cache)
        if crop is None:
            x_shape, (ph, pw) = arg.shape[:2] + tuple(cache.padded_hw), (0, 0)
        else:
            ph, pw = crop.top, crop.left
            x_shape = arg.shape[:2] + (crop.height, crop.width)
    else:
        arg, x_shape, (ph, pw) = cache.arg, cache.x_shape, cache.padding
    xp = get_array_module(arg)
    W = x_shape[3]
    Ho, Wo = arg.shape[2], arg.shape[3]
    a = arg.astype(np.int64)
    rows = xp.arange(Ho, dtype=np.int64)[:, None] * sh - ph + (a // kw) * dh
    cols = xp.arange(Wo, dtype=np.int64)[None, :] * sw - pw + (a % kw) * dw
    return rows * W + cols


