"""The lecture's pooling, written plainly: a loop over the output positions and, inside, over the
elements of each window. The oracle of the fast kernels (tests/test_pool_reference.py); slow.

Notation: window ``R(i, j)`` of the input feeds output ``y[i, j]``; for kernel ``(kH, kW)``,
stride ``(sH, sW)``, padding ``(pH, pW)`` and dilation ``(dH, dW)`` it holds the input elements
``x[i·sH − pH + a·dH, j·sW − pW + b·dW]`` for ``a < kH``, ``b < kW`` that lie inside the input
(padding holds nothing: −∞ for max, and for average it only counts in the divisor). Each loop
body works on all ``(n, c)`` planes at once (``x[:, :, r, q]``), which is the only vectorisation.

Same signatures and ``(out, cache)`` / ``backward(dout, cache)`` contract as the fast kernels;
NumPy arrays, any float dtype (kept). Arguments go through the same
:class:`~glassnet.ops.pool.args.PoolArgs` / ``AdaptivePoolArgs``; the cache is a
:class:`~glassnet.ops.pool.cache.ReferenceCache`.

    >>> import numpy as np
    >>> x = np.array([[[[1., 3., 2., 0.], [4., 2., 1., 5.]]]])
    >>> y, cache = max_pool2d_forward(x, 2)
    >>> y
    array([[[[4., 5.]]]])
    >>> max_pool2d_backward(np.ones_like(y), cache)
    array([[[[0., 0., 0., 0.],
             [1., 0., 0., 1.]]]])
"""
from __future__ import annotations

import math

import numpy as np

from .args import AdaptivePoolArgs, PoolArgs
from .cache import ReferenceCache
from .geometry import check_input

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "max_pool2d_indices",
           "avg_pool2d_forward", "avg_pool2d_backward", "lp_pool2d_forward", "lp_pool2d_backward",
           "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
           "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward", "adaptive_max_pool2d_indices"]


def _first_max(x, elements):
    """Max over ``elements`` (``(r, q)`` positions, row-major) of every plane of ``x``, and the flat
    index ``r·W + q`` of the winner: a later element wins only when strictly greater, or NaN
    (PyTorch's ``val > max || isnan(val)``), so ties go to the first maximum and NaN to the last
    NaN. No elements: −inf and index −1."""
    N, C, H, W = x.shape
    best = np.full((N, C), -np.inf, dtype=x.dtype)
    arg = np.full((N, C), -1, dtype=np.int64)
    for t, (r, q) in enumerate(elements):
        v = x[:, :, r, q]
        take = np.ones((N, C), dtype=bool) if t == 0 else (v > best) | np.isnan(v)
        best[take] = v[take]
        arg[take] = r * W + q
    return best, arg


def _route(dout, argmax, x_shape):
    """dL/dx[p] = Σ over outputs (i, j) whose arg-max is p of dL/dy[i, j] (index −1: nowhere)."""
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W), dtype=dout.dtype)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            idx = argmax[:, :, i, j]
            ok = idx >= 0
            dx[n[ok], c[ok], idx[ok]] += dout[:, :, i, j][ok]  # one element per plane: no repeats
    return dx.reshape(x_shape)


def _max_pool(x, args):
    N, C, H, W = x.shape
    Ho, Wo = args.output_hw(x.shape)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = args.kernel_size, args.stride, args.padding, args.dilation
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for i in range(Ho):
        for j in range(Wo):
            elements = [(i * sh - ph + a * dh, j * sw - pw + b * dw) for a in range(kh) for b in range(kw)]
            elements = [(r, q) for r, q in elements if 0 <= r < H and 0 <= q < W]
            out[:, :, i, j], argmax[:, :, i, j] = _first_max(x, elements)
    return out, argmax


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """``y[i, j] = max over R(i, j) of x``; the winner is the first maximum in row-major order.

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo),
    ``Ho = ⌊(H + 2·pH − dH·(kH−1) − 1) / sH⌋ + 1`` (ceil with ``ceil_mode``), likewise ``Wo``.
    """
    args = PoolArgs("max", kernel_size, stride, padding, dilation, ceil_mode)
    check_input(args.layer, x)
    out, argmax = _max_pool(x, args)
    return out, ReferenceCache("max", x, args, out, argmax)


def max_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over outputs (i, j) whose arg-max is p of dL/dy[i, j] (the max routes the
    gradient, whole, to its window's winner; the others get 0).

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    return _route(dout, cache.argmax, cache.x.shape)


def max_pool2d_indices(cache):
    """The flat ``r·W + c`` index of each output's winner (PyTorch's ``return_indices``).

    Shape: (N, C, Ho, Wo), int64.
    """
    return cache.argmax


def _avg_windows(x_shape, args):
    """Per output ``(i, j)``: the input rows ``h0:h1``, columns ``w0:w1`` of the window and its
    divisor ``D``: ``divisor_override`` if given; else with ``count_include_pad`` the window
    clipped to the padded input, ``(min(hs + kH, H + pH) − hs) · (…)`` with ``hs = i·sH − pH``,
    else the number of input elements in it."""
    H, W = x_shape[2], x_shape[3]
    Ho, Wo = args.output_hw(x_shape)
    (kh, kw), (sh, sw), (ph, pw) = args.kernel_size, args.stride, args.padding
    for i in range(Ho):
        for j in range(Wo):
            hs, ws = i * sh - ph, j * sw - pw
            he, we = min(hs + kh, H + ph), min(ws + kw, W + pw)
            h0, h1, w0, w1 = max(hs, 0), min(he, H), max(ws, 0), min(we, W)
            if args.divisor_override is not None:
                div = args.divisor_override
            elif args.count_include_pad:
                div = (he - hs) * (we - ws)
            else:
                div = (h1 - h0) * (w1 - w0)
            yield i, j, (h0, h1, w0, w1), div


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """``y[i, j] = (Σ over R(i, j) of x) / D[i, j]`` (``D`` as in PyTorch, see :func:`_avg_windows`).

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo), ``Ho = ⌊(H + 2·pH − kH) / sH⌋ + 1`` (ceil with
    ``ceil_mode``), likewise ``Wo``.
    """
    args = PoolArgs("avg", kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override)
    check_input(args.layer, x)
    Ho, Wo = args.output_hw(x.shape)
    out = np.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    for i, j, (h0, h1, w0, w1), div in _avg_windows(x.shape, args):
        out[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / x.dtype.type(div)
    return out, ReferenceCache("avg", x, args, out)


def avg_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over windows R(i, j) ∋ p of dL/dy[i, j] / D[i, j].

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    dx = np.zeros(cache.x.shape, dtype=dout.dtype)
    for i, j, (h0, h1, w0, w1), div in _avg_windows(cache.x.shape, cache.args):
        dx[:, :, h0:h1, w0:w1] += (dout[:, :, i, j] / dout.dtype.type(div))[:, :, None, None]
    return dx


def lp_pool2d_forward(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """``y[i, j] = (kH·kW / |R(i, j)| · Σ over R(i, j) of x^p)^(1/p)``, ``p = norm_type`` — PyTorch's
    formula (``avg_pool2d(x^p) · kH·kW``, then the 1/p power), so the factor is 1 for a whole window
    and rescales one that ``ceil_mode`` cut short. ``p = ±∞``: ``±max over R(i, j) of ±|x|``.

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo), ``Ho = ⌊(H − kH) / sH⌋ + 1`` (ceil with ``ceil_mode``).
    """
    args = PoolArgs("lp", kernel_size, stride, 0, 1, ceil_mode, norm_type=norm_type)
    check_input(args.layer, x)
    p = args.norm_type
    if math.isinf(p):
        sgn = 1 if p > 0 else -1
        m, argmax = _max_pool(sgn * np.abs(x), args)
        out = sgn * m
        return out, ReferenceCache("lp", x, args, out, argmax)
    Ho, Wo = args.output_hw(x.shape)
    area = args.kernel_size[0] * args.kernel_size[1]
    out = np.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    for i, j, (h0, h1, w0, w1), count in _avg_windows(x.shape, args):
        t = (x[:, :, h0:h1, w0:w1] ** p).sum(axis=(2, 3)) * area / count
        out[:, :, i, j] = t ** (1.0 / p)
    return out, ReferenceCache("lp", x, args, out)


def lp_pool2d_backward(dout, cache):
    """With ``t = kH·kW / |R| · Σ_R x^p`` and ``y = t^(1/p)``:

        dL/dx[p] = Σ over windows R ∋ p of dL/dy · (1/p) · t^(1/p − 1) · kH·kW / |R| · p · x[p]^(p−1)

    (0 for a window with ``t = 0``, as PyTorch). ``p = ±∞``: the max's router on ``±|x|`` times
    ``sign(x)``.

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    x, args = cache.x, cache.args
    p = args.norm_type
    if math.isinf(p):
        return _route(dout * (1 if p > 0 else -1), cache.argmax, x.shape) * ((1 if p > 0 else -1) * np.sign(x))
    area = args.kernel_size[0] * args.kernel_size[1]
    dx = np.zeros(x.shape, dtype=dout.dtype)
    for i, j, (h0, h1, w0, w1), count in _avg_windows(x.shape, args):
        win = x[:, :, h0:h1, w0:w1]
        t = (win ** p).sum(axis=(2, 3)) * area / count
        safe = np.where(t != 0, t, 1)
        dt = np.where(t != 0, dout[:, :, i, j] * (1.0 / p) * safe ** (1.0 / p - 1.0), 0)
        dx[:, :, h0:h1, w0:w1] += (dt * area / count)[:, :, None, None] * p * win ** (p - 1.0)
    return dx


def _adaptive_windows(x_shape, output_size):
    """Per output ``(i, j)``: rows ``⌊i·H/Ho⌋ : ⌈(i+1)·H/Ho⌉`` and columns likewise."""
    H, W = x_shape[2], x_shape[3]
    Ho, Wo = output_size
    for i in range(Ho):
        h0, h1 = (i * H) // Ho, -(-((i + 1) * H) // Ho)
        for j in range(Wo):
            w0, w1 = (j * W) // Wo, -(-((j + 1) * W) // Wo)
            yield i, j, (h0, h1, w0, w1)


def adaptive_avg_pool2d_forward(x, output_size):
    """``y[i, j]`` = the mean of rows ``⌊i·H/Ho⌋ : ⌈(i+1)·H/Ho⌉`` × columns alike (``None`` in
    ``output_size`` keeps that size).

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo).
    """
    args = AdaptivePoolArgs("avg", output_size)
    check_input(args.layer, x)
    args = args.resolved(x.shape)
    out = np.empty(x.shape[:2] + args.output_size, dtype=x.dtype)
    for i, j, (h0, h1, w0, w1) in _adaptive_windows(x.shape, args.output_size):
        out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out, ReferenceCache("adaptive_avg", x, args, out)


def adaptive_avg_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over windows R(i, j) ∋ p of dL/dy[i, j] / |R(i, j)| (adaptive windows may overlap).

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    dx = np.zeros(cache.x.shape, dtype=dout.dtype)
    for i, j, (h0, h1, w0, w1) in _adaptive_windows(cache.x.shape, cache.args.output_size):
        dx[:, :, h0:h1, w0:w1] += (dout[:, :, i, j] / dout.dtype.type((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return dx


def adaptive_max_pool2d_forward(x, output_size):
    """``y[i, j]`` = the max of the adaptive window (as :func:`adaptive_avg_pool2d_forward`), the
    winner the first maximum in row-major order.

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo).
    """
    args = AdaptivePoolArgs("max", output_size)
    check_input(args.layer, x)
    args = args.resolved(x.shape)
    out = np.empty(x.shape[:2] + args.output_size, dtype=x.dtype)
    argmax = np.empty(x.shape[:2] + args.output_size, dtype=np.int64)
    for i, j, (h0, h1, w0, w1) in _adaptive_windows(x.shape, args.output_size):
        elements = [(r, q) for r in range(h0, h1) for q in range(w0, w1)]
        out[:, :, i, j], argmax[:, :, i, j] = _first_max(x, elements)
    return out, ReferenceCache("adaptive_max", x, args, out, argmax)


def adaptive_max_pool2d_backward(dout, cache):
    """dL/dx[p] = Σ over windows whose arg-max is p of dL/dy[i, j].

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    return _route(dout, cache.argmax, cache.x.shape)


def adaptive_max_pool2d_indices(cache):
    """The flat ``r·W + c`` index of each output's winner.

    Shape: (N, C, Ho, Wo), int64.
    """
    return cache.argmax
