"""Functional pooling: ``max_pool2d``, ``avg_pool2d``, ``lp_pool2d``,
``adaptive_avg_pool2d``, ``adaptive_max_pool2d`` with PyTorch's signatures.

Each is a thin differentiable wrapper around a kernel pair in
:mod:`glassnet.ops.pool`. Inputs are ``(N, C, H, W)`` or unbatched
``(C, H, W)`` (as PyTorch). The arguments are normalised and checked by
:class:`~glassnet.ops.pool.args.PoolArgs` / ``AdaptivePoolArgs`` (the same
objects the kernels and ``nn`` use): a bad one raises a
:mod:`glassnet.errors` error naming the layer (keyword ``layer=``), the
argument or shapes and the rule broken, before any array math runs.
"""
from __future__ import annotations

from .. import autograd
from ..errors import ShapeError
from ..ops import pool as K
from ..op_record import OpRecord
from ..ops.pool.args import AdaptivePoolArgs, PoolArgs
from ..tensor import Tensor, apply_kernel

__all__ = ["max_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]


def _as_4d(layer, input):
    """``(input as 4-D, unbatched?)``; 3-D input gets a batch axis of 1."""
    if input.ndim == 4:
        return input, False
    if input.ndim == 3:
        return input.reshape(1, *input.shape), True
    raise ShapeError(
        f"{layer}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {tuple(input.shape)} "
        f"({input.ndim}-D)")


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
    a = PoolArgs("max", kernel_size, stride, padding, dilation, ceil_mode, layer=layer)
    x, unbatched = _as_4d(layer, input)
    a.output_hw(x.shape)
    box = {}
    keep_arg = return_indices or (autograd.is_grad_enabled() and x.requires_grad)  # else no arg-max is found
    out = apply_kernel(OpRecord("max_pool2d", a), _recording(K.max_pool2d_forward, box), K.max_pool2d_backward,
                       [x], a.kernel_size, a.stride, a.padding, a.dilation, a.ceil_mode, keep_arg)
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
    a = PoolArgs("avg", kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override,
                 layer=layer)
    x, unbatched = _as_4d(layer, input)
    a.output_hw(x.shape)
    out = apply_kernel(OpRecord("avg_pool2d", a), K.avg_pool2d_forward, K.avg_pool2d_backward, [x],
                       a.kernel_size, a.stride, a.padding, a.ceil_mode, a.count_include_pad, a.divisor_override)
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
    a = PoolArgs("lp", kernel_size, stride, 0, 1, ceil_mode, norm_type=norm_type, layer=layer)
    x, unbatched = _as_4d(layer, input)
    a.output_hw(x.shape)
    out = apply_kernel(OpRecord("lp_pool2d", a), K.lp_pool2d_forward, K.lp_pool2d_backward, [x],
                       norm_type, a.kernel_size, a.stride, a.ceil_mode)
    return _finish(out, unbatched)


def adaptive_avg_pool2d(input, output_size, *, layer: str = "adaptive_avg_pool2d"):
    """Adaptive average pooling to ``output_size``: window ``i`` covers rows
    ``[⌊i·H/Ho⌋, ⌈(i+1)·H/Ho⌉)`` (columns alike); ``y`` is its mean.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``(Ho, Wo) = output_size`` (an int means square; ``None`` keeps that size).
    """
    given = AdaptivePoolArgs("avg", output_size, layer=layer)
    x, unbatched = _as_4d(layer, input)
    a = given.resolved(x.shape)
    out = apply_kernel(OpRecord("adaptive_avg_pool2d", a), K.adaptive_avg_pool2d_forward,
                       K.adaptive_avg_pool2d_backward, [x], a.output_size)
    return _finish(out, unbatched)


def adaptive_max_pool2d(input, output_size, return_indices=False, *, layer: str = "adaptive_max_pool2d"):
    """Adaptive max pooling to ``output_size`` (windows as
    :func:`adaptive_avg_pool2d`); backward routes to the arg-max, first on ties.
    With ``return_indices`` also returns the flat ``r·W + c`` indices (int64).

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, Ho, Wo) with
    ``(Ho, Wo) = output_size`` (an int means square; ``None`` keeps that size).
    """
    given = AdaptivePoolArgs("max", output_size, layer=layer)
    x, unbatched = _as_4d(layer, input)
    a = given.resolved(x.shape)
    box = {}
    out = apply_kernel(OpRecord("adaptive_max_pool2d", a), _recording(K.adaptive_max_pool2d_forward, box),
                       K.adaptive_max_pool2d_backward, [x], a.output_size)
    out = _finish(out, unbatched)
    if not return_indices:
        return out
    idx = K.adaptive_max_pool2d_indices(box["cache"])
    return out, Tensor(idx[0] if unbatched else idx)

