"""Batch norm followed by ReLU, in one pass per block of channels: ``f = max(0, γ x̂ + β)``.

The two layers run back to back in every ResNet block, GoogLeNet's convolutions and VGG-BN.
Apart, each is one more trip through memory: the forward writes y = γ x̂ + β, then reads it
back for max(0, y) into a second array; the backward writes dL/dy = dL/df ⊙ 1[f > 0] and the
batch norm backward reads it back. Here each block of channels (about a MiB per array, the
blocks of :mod:`.norm`) runs both layers while it is still in the processor's caches:

    forward    y = γ x̂ + β  (the batch norm's passes)  →  f = max(0, y)  in place
    backward   g = dL/df ⊙ 1[f > 0]  (a block-sized buffer)  →  the batch norm backward on g

The arithmetic is the separate layers', operation for operation, so the results are bitwise
those of :func:`~glassnet.ops.norm.batch_norm_forward` followed by
:func:`~glassnet.ops.activations.relu_forward` (and their backwards in reverse). Measured on a
ResNet-18 stem (8 × 64 × 112 × 112, 2 threads): forward 17.7 → 13.7 ms, backward 18.3 → 8.8 ms
(BENCHMARKS.md).

The end of a residual block, ``f = max(0, γ x̂ + β + r)`` (ResNet's ``relu(bn2(conv2(…)) +
identity)``), runs the same way with the residual r added in the block
(:func:`batch_norm_add_relu_forward`); its backward hands r the routed gradient g itself.

Contract (every kernel module): ``batch_norm_relu_forward(x, ...) -> (out, cache)`` and
``batch_norm_relu_backward(dout, cache) -> (dx, dgamma, dbeta)``; likewise
``batch_norm_add_relu_forward(x, residual, ...)`` and ``batch_norm_add_relu_backward(dout,
cache) -> (dx, dresidual, dgamma, dbeta)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from ..errors import ShapeError
from .norm import BatchNormCache, batch_norm_backward_in_blocks, batch_norm_forward_in_blocks

__all__ = ["BatchNormReluCache", "batch_norm_relu_forward", "batch_norm_relu_backward",
           "batch_norm_add_relu_forward", "batch_norm_add_relu_backward"]


@dataclass(frozen=True, slots=True, eq=False)
class BatchNormReluCache:
    """What :func:`batch_norm_relu_backward` needs: the batch norm's cache and the output f
    (``f > 0`` exactly where the ReLU passed its input).

    Shape: ``out`` (N, C, *) like the input; ``norm`` as :class:`~glassnet.ops.norm.BatchNormCache`.
    """

    norm: BatchNormCache
    out: object


def batch_norm_relu_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """f = max(0, γ (x − μ)/√(σ² + ε) + β) per channel (axis 1), one block of channels at a time.

    The arguments and the in-place update of the running statistics are
    :func:`~glassnet.ops.norm.batch_norm_forward`'s.

    Shape: x (N, C, *); gamma, beta, running_mean, running_var (C,). Output: x's shape, dtype
    and memory order.
    """
    return _forward(x, None, gamma, beta, running_mean, running_var, training, momentum, eps)


def batch_norm_add_relu_forward(x, residual, gamma, beta, running_mean, running_var, training, momentum, eps):
    """f = max(0, γ (x − μ)/√(σ² + ε) + β + r) per channel: a residual block's end, one block of
    channels at a time (``r`` = ``residual``, added while the block is in cache).

    Shape: x, residual (N, C, *) of one shape and dtype; gamma, beta, running_mean, running_var
    (C,). Output: x's shape, dtype and memory order.
    """
    if residual.shape != x.shape or residual.dtype != x.dtype:
        raise ShapeError(f"batch_norm_add_relu: the residual {tuple(residual.shape)} {residual.dtype} must have "
                         f"the input's shape and dtype, {tuple(x.shape)} {x.dtype}")
    return _forward(x, residual, gamma, beta, running_mean, running_var, training, momentum, eps)


def _forward(x, residual, gamma, beta, running_mean, running_var, training, momentum, eps):
    xp = get_array_module(x)
    zero = x.dtype.type(0)

    def add_and_clip(sl, out):  # on each normalised block, while it is in cache
        if residual is not None:
            out[sl] += residual[sl]  # the residual connection's add
        xp.maximum(out[sl], zero, out=out[sl])  # the ReLU

    out, norm = batch_norm_forward_in_blocks(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                             add_and_clip)
    return out, BatchNormReluCache(norm, out)


def batch_norm_relu_backward(dout, cache):
    """Gradients of f = max(0, γ x̂ + β): the ReLU's router, then batch norm's backward::

        g      = dL/df ⊙ 1[f > 0]
        dL/dβ  = Σ g,   dL/dγ = Σ g ⊙ x̂
        dL/dx  = (γ/σ) · (g − Σ g / m − x̂ · Σ(g ⊙ x̂) / m)      (training; (γ/σ)·g in evaluation)

    g lives only in a block-sized buffer. Returns ``(dx, dgamma, dbeta)``; ``dgamma`` /
    ``dbeta`` are ``None`` when the layer has no γ / β.

    Shape: dout (N, C, *) -> dx (N, C, *) (in the memory order of the forward's input);
    dgamma, dbeta (C,).
    """
    dx, _, dgamma, dbeta = _backward(dout, cache, keep_routed=False)
    return dx, dgamma, dbeta


def batch_norm_add_relu_backward(dout, cache):
    """Gradients of f = max(0, γ x̂ + β + r): g = dL/df ⊙ 1[f > 0] is dL/dr, and batch norm's
    backward runs on g as in :func:`batch_norm_relu_backward`.

    Shape: dout (N, C, *) -> (dx, dresidual) (N, C, *), dgamma, dbeta (C,) or None.
    """
    return _backward(dout, cache, keep_routed=True)


def _backward(dout, cache, keep_routed):
    out = cache.out
    xp = get_array_module(dout)
    dtype = xp.result_type(dout, out)
    routed_all = xp.empty_like(out, dtype=dtype) if keep_routed else None

    def routed(sl):  # relu_backward's product, on one block; kept whole when it is dL/dr
        block = routed_all[sl] if keep_routed else xp.empty_like(dout[sl], dtype=dtype)
        return xp.multiply(dout[sl], out[sl] > 0, out=block)

    dx, dgamma, dbeta = batch_norm_backward_in_blocks(dout, cache.norm, routed)
    return dx, routed_all, dgamma, dbeta
