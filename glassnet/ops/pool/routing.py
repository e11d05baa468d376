"""Gradient routing for the separable max pool (:mod:`.max_pool`): the backward's two stages send
each upstream gradient along one axis to the kernel offset the forward's arg-max names.

Both stages add in the order of the kernel offsets, starting from +0, exactly as the earlier
comparison-based routing did, so the gradients are the same bit for bit (signed zeros included).
"""
from __future__ import annotations

import numpy as np

from ...backend import is_channel_major
from .geometry import column_views, covers, disjoint, row_views

__all__ = ["new_in_order_of", "in_order_of", "route_plan", "route_by_arg", "needs_zeros", "route_tile_into_crop"]


def new_in_order_of(xp, like, shape, dtype, zero=False):
    """An empty (or zeroed) (N, C, h, w) array of ``dtype`` stored in the memory
    order of ``like`` (NCHW, or a convolution output's channel-major order).

    Shape: ``shape`` = (N, C, h, w), in the memory order of ``like``.
    """
    make = xp.zeros if zero else xp.empty
    if is_channel_major(like):
        return make((shape[1], shape[0]) + tuple(shape[2:]), dtype=dtype).transpose(1, 0, 2, 3)
    return make(shape, dtype=dtype)


def in_order_of(xp, a, like):
    """``a`` itself when it is stored in the memory order of ``like`` (NCHW, or a convolution
    output's channel-major order), else a copy of it in that order.

    An upstream gradient can arrive in another order than the forward's arrays (a Flatten's
    backward reshapes to NCHW while the pooled convolution output was channel-major); every
    pass of the backward then runs against the grain (a 2×2 max pool's backward measured
    6× slower on 128×64×7×7), so it is copied once into the cache's order first.

    Shape: a (N, C, h, w) -> the same, in ``like``'s memory order.
    """
    if a.ndim != 4 or is_channel_major(a) == is_channel_major(like):
        return a
    if is_channel_major(like):
        return xp.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1)
    return xp.ascontiguousarray(a)


def route_plan(size, n, kernel, stride, dilation):
    """How one axis's offsets route into a gradient of length ``size`` from
    ``n`` windows: ``"direct"`` (disjoint offsets, each share written once),
    ``"tile"`` (dilation 1 and overlapping: the first ``stride`` offsets tile
    ``[0, stride·n)`` and are written, the rest added), ``"add"`` (every share
    added into zeros).

    Shape: scalars (one axis).
    """
    if disjoint(kernel, stride, dilation):
        return "direct"
    return "tile" if dilation == 1 else "add"


def route_by_arg(xp, g, arg, target, axis, n, kernel, stride, dilation):
    """Route ``g`` along ``axis`` (2: rows, 3: columns) of ``target`` by offset,
    for each kernel offset ``k`` in turn (``g`` finite)::

        target[k·d + i·s] += g[i] ⊙ [arg[i] = k]

    Bit for bit what the comparison-based routing of earlier versions gave,
    signed zeros included:

    * disjoint offsets (``"direct"``): the running remainder
      ``share_k = rest·[arg = k]``, ``rest ← rest − share_k``, the last
      offset taking ``rest``, each share written into its target;
    * overlapping offsets: the sums start from +0, so every share enters as
      ``g + 0`` masked to +0 (a bitwise AND with the all-ones / zero mask);
      the first ``stride`` offsets tile ``[0, stride·n)`` (dilation 1,
      ``"tile"``) and are written instead of added into zeros, the tail past
      them zeroed; otherwise (``"add"``) every share is added into zeros.

    ``target`` must be zero beforehand only where :func:`needs_zeros` says.

    Shape: g, arg (N, C, …, n) along ``axis`` -> target (N, C, …) along ``axis``,
    written in place.
    """
    views = (row_views if axis == 2 else column_views)(target, n, kernel, stride, dilation)
    plan = route_plan(target.shape[axis], n, kernel, stride, dilation)
    mask = xp.empty_like(arg, dtype=bool)
    if plan == "direct":
        last = kernel - 1
        if last == 0:
            views[0][...] = g
            return
        rest = g
        for k in range(last):
            xp.equal(arg, k, out=mask)
            share = xp.multiply(rest, mask, out=views[k])
            if k == last - 1:  # the last offset takes what is left
                xp.subtract(rest, share, out=views[last])
                return
            if rest is g:  # the first subtraction makes rest our own array
                rest = rest - share
            else:
                xp.subtract(rest, share, out=rest)
    bits = np.dtype(f"i{g.dtype.itemsize}")
    g0 = xp.add(g, g.dtype.type(0))  # g + 0: −0 becomes +0, as in a sum started from +0
    g0_bits = g0.view(bits)
    ones = mask.view(np.int8)  # 1 where arg = k; negated: all bits set
    written = stride if plan == "tile" else 0
    if plan == "tile":  # the tail past the tiled part is reached only by the added shares
        target[(slice(None),) * axis + (slice(stride * n, None),)] = 0
    share = None if written == kernel else xp.empty_like(g0)
    for k, view in enumerate(views):
        xp.equal(arg, k, out=mask)
        xp.negative(ones, out=ones)
        if k < written:
            xp.bitwise_and(g0_bits, ones, out=view.view(bits))
        else:
            xp.bitwise_and(g0_bits, ones, out=share.view(bits))
            view += share


def needs_zeros(size, n, kernel, stride, dilation):
    """Whether :func:`route_by_arg` needs its target zeroed first.

    Shape: scalars (one axis).
    """
    plan = route_plan(size, n, kernel, stride, dilation)
    return plan == "add" or (plan == "direct" and not covers(size, n, kernel, stride, dilation))


def route_tile_into_crop(xp, g, arg, target, n, kernel, stride, left):
    """The column stage of :func:`route_by_arg`'s ``"tile"`` plan (dilation 1),
    written into the unpadded ``target`` (the input's ``W`` columns, which
    start at padded column ``left``): each offset's view is cut to the windows
    whose column ``k + s·j`` lies inside, the tail past the tiled part zeroed.
    The same values, bit for bit, as routing into the padded array and
    cropping; padding columns would only receive +0.

    Shape: g, arg (N, C, H, Wo) (the real rows of the row-stage gradient and of
    ``argc``) -> target (N, C, H, W), written in place.
    """
    W = target.shape[3]
    bits = np.dtype(f"i{g.dtype.itemsize}")
    g0 = xp.add(g, g.dtype.type(0))  # g + 0: −0 becomes +0, as in a sum started from +0
    g0_bits = g0.view(bits)
    mask = xp.empty_like(arg, dtype=bool)
    ones = mask.view(np.int8)
    share = xp.empty_like(g0)
    tail = max(0, stride * n - left)
    if tail < W:
        target[:, :, :, tail:] = 0
    for k in range(kernel):
        j_lo = max(0, -((k - left) // stride))  # first window whose column k + s·j − left ≥ 0
        j_hi = min(n, (W - 1 + left - k) // stride + 1)
        if j_hi <= j_lo:
            continue
        c0 = k - left + stride * j_lo
        view = target[:, :, :, c0:c0 + (j_hi - j_lo - 1) * stride + 1:stride]
        xp.equal(arg[..., j_lo:j_hi], k, out=mask[..., j_lo:j_hi])
        xp.negative(ones[..., j_lo:j_hi], out=ones[..., j_lo:j_hi])
        if k < stride:
            xp.bitwise_and(g0_bits[..., j_lo:j_hi], ones[..., j_lo:j_hi], out=view.view(bits))
        else:
            part = share[..., j_lo:j_hi]
            xp.bitwise_and(g0_bits[..., j_lo:j_hi], ones[..., j_lo:j_hi], out=part.view(bits))
            view += part
