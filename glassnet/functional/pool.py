"""Functional pooling: ``max_pool2d``, ``avg_pool2d``, ``lp_pool2d``,
``adaptive_avg_pool2d``, ``adaptive_max_pool2d`` with PyTorch's signatures.

Each is a thin differentiable wrapper around a kernel pair in
:mod:`glassnet.kernels.pool`. Inputs are ``(N, C, H, W)`` or unbatched
``(C, H, W)`` (as PyTorch). Bad arguments raise :class:`ShapeError` naming the
layer (keyword ``layer=``), the shapes and the rule broken, before any array
math runs.
"""
from __future__ import annotations

from ..errors import InvalidArgumentError, ShapeError
from ..kernels import pool as K
from ..op_record import OpRecord
from ..ops.pool.args import AdaptivePoolArgs, PoolArgs
from ..tensor import Tensor, apply_kernel

__all__ = ["max_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]


def _pair(layer, name, v):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = (v[0], v[0])
        if len(v) != 2:
            raise InvalidArgumentError(f"{layer}: {name} must be an int or a pair of ints, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _as_4d(layer, input):
    """``(input as 4-D, unbatched?)``; 3-D input gets a batch axis of 1."""
    if input.ndim == 4:
        return input, False
    if input.ndim == 3:
        return input.reshape(1, *input.shape), True
    raise ShapeError(
        f"{layer}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {tuple(input.shape)} "
        f"({input.ndim}-D)")


def _window_args(layer, kernel_size, stride, padding, dilation):
    k = _pair(layer, "kernel_size", kernel_size)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _pair(layer, "stride", stride)
    p = _pair(layer, "padding", padding)
    d = _pair(layer, "dilation", dilation)
    if min(k) <= 0 or min(s) <= 0 or min(d) <= 0:
        raise InvalidArgumentError(
            f"{layer}: kernel_size, stride and dilation must be positive, got "
            f"kernel_size={k}, stride={s}, dilation={d}")
    if min(p) < 0:
        raise InvalidArgumentError(f"{layer}: padding must be non-negative, got padding={p}")
    return k, s, p, d


def _check_fit(layer, shape, k, s, p, d, ceil_mode):
    """PyTorch's rules: padding ≤ kernel_size // 2, and at least one window fits."""
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ShapeError(
            f"{layer}: padding={p} is more than half of kernel_size={k}; the rule (as in PyTorch) "
            f"is padding <= kernel_size // 2 in each dimension, so that every window overlaps the input")
    H, W = shape[-2], shape[-1]
    Ho = K.pool_output_size(H, k[0], s[0], p[0], d[0], ceil_mode)
    Wo = K.pool_output_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    if Ho < 1 or Wo < 1:
        eff = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
        raise ShapeError(
            f"{layer}: a {k[0]}x{k[1]} window (dilation {d}, spanning {eff[0]}x{eff[1]}) doesn't fit "
            f"the input of shape {tuple(shape)} padded by {p} to {H + 2 * p[0]}x{W + 2 * p[1]}: "
            f"out = floor((in + 2*padding - dilation*(kernel-1) - 1) / stride) + 1 gives {Ho}x{Wo}, "
            f"which must be at least 1x1")
    return Ho, Wo


def _finish(out, unbatched):
    return out.reshape(*out.shape[1:]) if unbatched else out


def _recording(forward, box):
    """``forward`` that also keeps its cache in ``box`` (for ``return_indices``)."""
    def run(*args):
        out, cache = forward(*args)
        box["cache"] = cache
        return out, cache
    return run


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, layer: str = "max_pool2d"):
    """2-D max pooling: ``y[i, j] = max over the window R(i, j) of x``.

    Backward routes each gradient to its window's arg-max (first on ties, as
    PyTorch). ``stride=None`` means ``stride = kernel_size``. Padding counts as
    ``−inf``. With ``return_indices`` also returns PyTorch's flat ``r·W + c``
    indices of the chosen elements (int64, not differentiable).

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``Ho = ⌊(H + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1``
    (``⌈ ⌉`` with ``ceil_mode``, dropping a last window that would start in
    the right padding), likewise ``Wo``.
    """
    k, s, p, d = _window_args(layer, kernel_size, stride, padding, dilation)
    x, unbatched = _as_4d(layer, input)
    _check_fit(layer, x.shape, k, s, p, d, ceil_mode)
    box = {}
    out = apply_kernel(OpRecord("max_pool2d", PoolArgs("max", k, s, p, d, bool(ceil_mode))), _recording(K.max_pool2d_forward, box), K.max_pool2d_backward,
                       [x], k, s, p, d, bool(ceil_mode))
    out = _finish(out, unbatched)
    if not return_indices:
        return out
    idx = K.max_pool2d_indices(box["cache"])
    return out, Tensor(idx[0] if unbatched else idx)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, layer: str = "avg_pool2d"):
    """2-D average pooling: ``y[i, j] = (Σ over R(i, j) of x) / D[i, j]``.

    ``D`` is ``divisor_override`` if given; else with ``count_include_pad`` the
    window size (padding included, clipped to the padded input in
    ``ceil_mode``), else the number of real input elements in the window.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``Ho = ⌊(H + 2·padding − kernel_size) / stride⌋ + 1`` (ceil with
    ``ceil_mode``), likewise ``Wo``.
    """
    k, s, p, d = _window_args(layer, kernel_size, stride, padding, 1)
    if divisor_override is not None and divisor_override == 0:
        raise InvalidArgumentError(f"{layer}: divisor_override must be non-zero")
    x, unbatched = _as_4d(layer, input)
    _check_fit(layer, x.shape, k, s, p, d, ceil_mode)
    out = apply_kernel(OpRecord("avg_pool2d", PoolArgs("avg", k, s, p, d, bool(ceil_mode),
                                                     bool(count_include_pad), divisor_override)), K.avg_pool2d_forward, K.avg_pool2d_backward, [x], k, s, p,
                       bool(ceil_mode), bool(count_include_pad), divisor_override)
    return _finish(out, unbatched)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, layer: str = "lp_pool2d"):
    """2-D power-average pooling: ``y = (Σ over R(i, j) of x^p)^(1/p)``, ``p = norm_type``.

    ``p = 2`` is L2-norm pooling; ``p = ∞`` is max pooling of ``|x|``. No
    padding. Computed as PyTorch does (``avg_pool2d(x^p)·kH·kW`` then the
    ``1/p`` power), so a ``ceil_mode`` window cut short by the edge is
    rescaled to the full window size.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``Ho = ⌊(H − kernel_size) / stride⌋ + 1`` (ceil with ``ceil_mode``).
    """
    k, s, p, d = _window_args(layer, kernel_size, stride, 0, 1)
    if float(norm_type) == 0:
        raise InvalidArgumentError(f"{layer}: norm_type must be non-zero, got {norm_type}")
    x, unbatched = _as_4d(layer, input)
    _check_fit(layer, x.shape, k, s, p, d, ceil_mode)
    out = apply_kernel(OpRecord("lp_pool2d", PoolArgs("lp", k, s, p, d, bool(ceil_mode),
                                                    norm_type=float(norm_type))), K.lp_pool2d_forward, K.lp_pool2d_backward, [x], norm_type, k, s,
                       bool(ceil_mode))
    return _finish(out, unbatched)


def _adaptive_size(layer, shape, output_size):
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise InvalidArgumentError(f"{layer}: output_size must be an int or a pair, got {output_size!r}")
        oh, ow = output_size
    else:
        oh = ow = output_size
    H, W = shape[-2], shape[-1]
    oh = H if oh is None else int(oh)
    ow = W if ow is None else int(ow)
    if oh < 1 or ow < 1:
        raise ShapeError(f"{layer}: output_size must be positive, got {output_size!r}")
    if H < 1 or W < 1:
        raise ShapeError(
            f"{layer}: input of shape {tuple(shape)} has an empty spatial dimension; "
            "adaptive pooling needs H, W >= 1")
    return oh, ow


def adaptive_avg_pool2d(input, output_size, *, layer: str = "adaptive_avg_pool2d"):
    """Adaptive average pooling to ``output_size``: window ``i`` covers rows
    ``[⌊i·H/Ho⌋, ⌈(i+1)·H/Ho⌉)`` (columns alike); ``y`` is its mean.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``(Ho, Wo) = output_size`` (an int means square; ``None`` keeps that size).
    """
    x, unbatched = _as_4d(layer, input)
    out_hw = _adaptive_size(layer, x.shape, output_size)
    out = apply_kernel(OpRecord("adaptive_avg_pool2d", AdaptivePoolArgs("avg", out_hw)), K.adaptive_avg_pool2d_forward,
                       K.adaptive_avg_pool2d_backward, [x], out_hw)
    return _finish(out, unbatched)


def adaptive_max_pool2d(input, output_size, return_indices=False, *, layer: str = "adaptive_max_pool2d"):
    """Adaptive max pooling to ``output_size`` (windows as
    :func:`adaptive_avg_pool2d`); backward routes to the arg-max, first on ties.
    With ``return_indices`` also returns the flat ``r·W + c`` indices (int64).

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``(Ho, Wo) = output_size`` (an int means square; ``None`` keeps that size).
    """
    x, unbatched = _as_4d(layer, input)
    out_hw = _adaptive_size(layer, x.shape, output_size)
    box = {}
    out = apply_kernel(OpRecord("adaptive_max_pool2d", AdaptivePoolArgs("max", out_hw)), _recording(K.adaptive_max_pool2d_forward, box),
                       K.adaptive_max_pool2d_backward, [x], out_hw)
    out = _finish(out, unbatched)
    if not return_indices:
        return out
    idx = K.adaptive_max_pool2d_indices(box["cache"])
    return out, Tensor(idx[0] if unbatched else idx)

