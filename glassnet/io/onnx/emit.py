"""ONNX node patterns for glassnet's ops and layers, shared by the op
emitters (:mod:`.ops`) and the layer converters (:mod:`.modules`).

Each ``emit_*`` takes the :class:`~.graph.Graph`, the input value name(s),
the op's plain, normalised parameters and, where the ONNX attributes depend
on them, the probe's shapes; it appends the node(s) and returns the output's
value name. Spatial sizes are fixed at export: pooling pads are computed from
the probe's shapes so that PyTorch's ``ceil_mode`` rule (a last window that
would start in the right padding is dropped) is reproduced exactly with
explicit asymmetric pads instead of ONNX's own ``ceil_mode``.
"""
from __future__ import annotations

import math

import numpy as np


def pair(v):
    """``v`` as an int pair: an int repeats, a 1-tuple repeats, a pair stays.

    Shape: int or sequence -> (a, b).
    """
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _window_end_pads(in_hw, out_hw, k, s, p, d):
    """Bottom/right pads that make ONNX's floor rule give PyTorch's output size
    (covers ceil_mode without ONNX's own, subtly different, ceil_mode)."""
    ends = []
    for n, o, kk, ss, pp, dd in zip(in_hw, out_hw, k, s, p, d):
        needed = (o - 1) * ss + dd * (kk - 1) + 1
        ends.append(max(pp, needed - n - pp))
    return ends


def emit_max_pool(g, x, in_shape, out_shape, k, s, p, d, base):
    """MaxPool with PyTorch's pads (ceil_mode through explicit bottom/right pads).

    Shape: (N, C, H, W) -> out_shape (N, C, Ho, Wo).
    """
    k, s, p, d = pair(k), pair(s), pair(p), pair(d)
    ends = _window_end_pads(in_shape[-2:], out_shape[-2:], k, s, p, d)
    return g.node("MaxPool", [x], base, kernel_shape=list(k), strides=list(s),
                  pads=[p[0], p[1], ends[0], ends[1]], dilations=list(d))


def emit_avg_pool(g, x, in_shape, out_shape, k, s, p, count_include_pad, divisor_override, base):
    """AveragePool with PyTorch's divisor rules (count_include_pad, divisor_override, ceil_mode).

    Shape: (N, C, H, W) -> out_shape (N, C, Ho, Wo).
    """
    k, s, p = pair(k), pair(s), pair(p)
    ends = _window_end_pads(in_shape[-2:], out_shape[-2:], k, s, p, (1, 1))
    if divisor_override is not None:
        # every window lies inside the (explicitly) padded input: average × k·k = window sum
        y = g.node("AveragePool", [x], base, kernel_shape=list(k), strides=list(s),
                   pads=[p[0], p[1], ends[0], ends[1]], count_include_pad=1)
        dtype = np.dtype(g.trace.input.dtype)
        return g.node("Mul", [y, g.scalar(k[0] * k[1] / float(divisor_override), dtype)], base)
    if count_include_pad and (p[0] or p[1]):
        # PyTorch counts the zero padding but not the extra ceil_mode overhang:
        # pad explicitly with zeros, then average over real (now padded) elements only
        x = g.node("Pad", [x, g.ints([0, 0, p[0], p[1], 0, 0, p[0], p[1]])], base, mode="constant")
        return g.node("AveragePool", [x], base, kernel_shape=list(k), strides=list(s),
                      pads=[0, 0, ends[0] - p[0], ends[1] - p[1]], count_include_pad=0)
    return g.node("AveragePool", [x], base, kernel_shape=list(k), strides=list(s),
                  pads=[p[0], p[1], ends[0], ends[1]], count_include_pad=0)


def emit_lp_pool(g, x, in_shape, out_shape, norm_type, k, s, base):
    """glassnet's (= PyTorch's) lp_pool2d, step by step: (avg_pool(x^p)·kH·kW)^(1/p).

    Shape: (N, C, H, W) -> out_shape (N, C, Ho, Wo).
    """
    k = pair(k)
    s = k if s is None else pair(s)
    p = float(norm_type)
    dtype = np.dtype(g.trace.input.dtype)
    if math.isinf(p):
        sgn = 1 if p > 0 else -1
        a = g.node("Abs", [x], base)
        if sgn < 0:
            a = g.node("Neg", [a], base)
        y = emit_max_pool(g, a, in_shape, out_shape, k, s, 0, 1, base)
        return y if sgn > 0 else g.node("Neg", [y], base)
    xp = g.node("Pow", [x, g.scalar(p, dtype)], base)
    a = emit_avg_pool(g, xp, in_shape, out_shape, k, s, 0, True, None, base)
    t = g.node("Mul", [a, g.scalar(k[0] * k[1], dtype)], base)
    return g.node("Pow", [t, g.scalar(1.0 / p, dtype)], base)


def _adaptive_bounds(n, o):
    """PyTorch's adaptive windows along one axis: [⌊i·n/o⌋, ⌈(i+1)·n/o⌉)."""
    return [((i * n) // o, -((-(i + 1) * n) // o)) for i in range(o)]


def emit_adaptive(g, x, in_shape, out_shape, kind, base):
    """Adaptive pooling with fixed sizes: Global*Pool for 1×1, *Pool when the
    windows tile evenly, else exactly by separability (a rectangle's mean/max
    is the mean/max over rows of the mean/max over columns): averaging matrices
    (MatMul) for avg, per-window Slice+ReduceMax+Concat for max.

    Shape: (N, C, H, W) -> out_shape (N, C, Ho, Wo).
    """
    H, W = in_shape[-2:]
    out_hw = tuple(out_shape[-2:])
    oh, ow = out_hw
    if (H, W) == out_hw:
        return g.node("Identity", [x], base)
    if out_hw == (1, 1):
        return g.node("GlobalAveragePool" if kind == "avg" else "GlobalMaxPool", [x], base)
    if H % oh == 0 and W % ow == 0:
        k = [H // oh, W // ow]
        return g.node("AveragePool" if kind == "avg" else "MaxPool", [x], base, kernel_shape=k, strides=k)
    if kind == "avg":
        dtype = np.dtype(g.trace.input.dtype)
        A_h = np.zeros((oh, H), dtype)
        for i, (a, b) in enumerate(_adaptive_bounds(H, oh)):
            A_h[i, a:b] = 1.0 / (b - a)
        A_w = np.zeros((W, ow), dtype)
        for j, (a, b) in enumerate(_adaptive_bounds(W, ow)):
            A_w[a:b, j] = 1.0 / (b - a)
        y = x if ow == W else g.node("MatMul", [x, g.const(A_w, base + ".cols")], base)
        return y if oh == H else g.node("MatMul", [g.const(A_h, base + ".rows"), y], base)
    y = x
    for axis, n, o in ((3, W, ow), (2, H, oh)):
        if n == o:
            continue
        parts = [g.reduce("ReduceMax", g.node("Slice", [y, g.ints([a]), g.ints([b]), g.ints([axis])], base),
                          [axis], 1, base) for a, b in _adaptive_bounds(n, o)]
        y = g.node("Concat", parts, base, axis=axis)
    return y


def emit_lrn(g, x, in_shape, size, alpha, beta, k, base):
    """LRN across channels: ONNX's LRN for an odd ``size``, by hand for an even one.

    Shape: (N, C, *) -> the same.
    """
    size = int(size)
    if size % 2 == 1:  # same window as PyTorch; ONNX's alpha is also divided by size
        return g.node("LRN", [x], base, size=size, alpha=float(alpha), beta=float(beta), bias=float(k))
    # even size: PyTorch's window is c − n/2 … c + n/2 − 1, ONNX's is the other way round;
    # do it by hand: mean of squares over the window with AveragePool on a (N, 1, C, rest) view
    dtype = np.dtype(g.trace.input.dtype)
    C = in_shape[1]
    sq = g.node("Mul", [x, x], base)
    v = g.node("Reshape", [sq, g.ints([0, 1, C, -1])], base)
    m = g.node("AveragePool", [v], base, kernel_shape=[size, 1], strides=[1, 1],
               pads=[size // 2, 0, (size - 1) // 2, 0], count_include_pad=1)
    shape = g.node("Shape", [x], base)
    m = g.node("Reshape", [m, shape], base)
    den = g.node("Add", [g.node("Mul", [m, g.scalar(alpha, dtype)], base), g.scalar(k, dtype)], base)
    den = g.node("Pow", [den, g.scalar(beta, dtype)], base)
    return g.node("Div", [x, den], base)


def emit_conv(g, x, w, b, stride, pads, dilation, groups, kshape, base):
    """Conv; ``pads`` is (pH, pW) or ((top, bottom), (left, right)).

    Shape: x (N, C_in, H, W), w (C_out, C_in/groups, kH, kW), b (C_out,) -> (N, C_out, Ho, Wo).
    """
    if isinstance(pads, str):
        raise NotImplementedError(f"ONNX export: unresolved conv padding {pads!r} in {base}")
    if isinstance(pads[0], (tuple, list)):
        (t, bo), (le, r) = pads
    else:
        t = bo = int(pads[0])
        le = r = int(pads[1])
    ins = [x, w] + ([b] if b is not None else [])
    return g.node("Conv", ins, base, kernel_shape=list(kshape), strides=list(pair(stride)),
                  pads=[int(t), int(le), int(bo), int(r)], dilations=list(pair(dilation)), group=int(groups))


def emit_linear(g, x, w, b, x_ndim, base):
    """y = x Wᵀ + b: Gemm for a 2-D input, else Transpose + MatMul (+ Add).

    Shape: x (*, in), w (out, in), b (out,) -> (*, out).
    """
    if x_ndim == 2:
        return g.node("Gemm", [x, w] + ([b] if b is not None else []), base, transB=1)
    wt = g.node("Transpose", [w], base, perm=[1, 0])
    y = g.node("MatMul", [x, wt], base)
    return g.node("Add", [y, b], base) if b is not None else y


def emit_maxout(g, x, w, b, wshape, base):
    """max over k pieces of x W_kᵀ + b_k: one Gemm, Reshape, Add, ReduceMax.

    Shape: x (N, in), w (k, out, in), b (k, out) -> (N, out).
    """
    k, out_f, in_f = wshape
    w2 = g.node("Reshape", [w, g.ints([k * out_f, in_f])], base)
    z = g.node("Gemm", [x, w2], base, transB=1)
    z = g.node("Reshape", [z, g.ints([-1, k, out_f])], base)
    if b is not None:
        z = g.node("Add", [z, b], base)
    return g.reduce("ReduceMax", z, [1], 0, base)


def emit_batch_norm(g, x, scale, bias, mean, var, eps, base):
    """BatchNormalization with running statistics.

    Shape: x (N, C, *), scale/bias/mean/var (C,) -> x's shape.
    """
    return g.node("BatchNormalization", [x, scale, bias, mean, var], base, epsilon=float(eps))


def emit_reshape(g, x, in_shape, out_shape, base):
    """Flatten when it is one; otherwise Reshape keeping the batch dim symbolic (0 = copy).

    Shape: in_shape -> out_shape (same number of elements).
    """
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if len(in_shape) >= 2 and len(out_shape) == 2 and out_shape[0] == in_shape[0] \
            and out_shape[1] == int(np.prod(in_shape[1:])):
        return g.node("Flatten", [x], base, axis=1)
    if in_shape and out_shape and out_shape[0] == in_shape[0]:
        return g.node("Reshape", [x, g.ints((0,) + out_shape[1:])], base)
    return g.node("Reshape", [x, g.ints(out_shape)], base)


def emit_index(g, x, in_shape, index, base):
    """Basic indexing (ints, slices, ``...``) as Slice (+ Squeeze); other indices are refused.

    Shape: NumPy's basic-indexing rule.
    """
    if index is None:
        raise NotImplementedError(f"ONNX export: {base}: could not recover the index of a slicing op")
    items = list(index) if isinstance(index, tuple) else [index]
    if any(i is Ellipsis for i in items):
        pos = items.index(Ellipsis)
        fill = len(in_shape) - (len(items) - 1)
        items = items[:pos] + [slice(None)] * fill + items[pos + 1:]
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, it in enumerate(items):
        if isinstance(it, slice):
            if it == slice(None):
                continue
            start, stop, step = it.indices(in_shape[axis])
            if step < 0 and stop < 0:
                stop = -in_shape[axis] - 1  # run past the beginning
            starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
        elif isinstance(it, (int, np.integer)):
            i = int(it) % in_shape[axis]
            starts.append(i), ends.append(i + 1), axes.append(axis), steps.append(1)
            squeeze.append(axis)
        else:
            raise NotImplementedError(
                f"ONNX export: {base}: indexing with {type(it).__name__} is not exported "
                "(only ints, slices and ...)")
    y = x
    if axes:
        y = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)], base)
    if squeeze:
        y = g.squeeze(y, squeeze, base)
    if y is x:
        y = g.node("Identity", [x], base)
    return y
