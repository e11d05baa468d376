"""Elementwise activation kernels: sigmoid, tanh, ReLU, LeakyReLU, ELU.

Contract (every kernel module): ``<op>_forward(x, ...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> dx``. Pure functions on raw arrays (NumPy or
CuPy); no state, no Tensor. Outputs keep the input's dtype. Caches: the
output array itself (sigmoid, tanh, ReLU: one array, nothing to name) or a
small frozen dataclass with named fields (LeakyReLU, ELU).

Notation: ``x`` is the input, ``f`` the output, ``dL/df`` the upstream
gradient (``dout``); ``⊙`` is the elementwise product.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from ..threads import elementwise


@dataclass(frozen=True, slots=True, eq=False)
class LeakyReluCache:
    """What :func:`leaky_relu_backward` needs: the input and α.  Shape: x any."""

    x: object
    negative_slope: float


@dataclass(frozen=True, slots=True, eq=False)
class EluCache:
    """What :func:`elu_backward` needs: the input, the output f and α.  Shape: x, out of one shape."""

    x: object
    out: object
    alpha: float


def sigmoid_forward(x):
    """σ(x) = 1 / (1 + e^(−x)), computed without overflow for large |x|.

    Shape: any; output has the input's shape and dtype.
    """
    xp = get_array_module(x)
    # e^(−|x|) never overflows; pick the algebraically equal form per sign.
    e = xp.exp(-xp.abs(x))
    out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return out, out


def sigmoid_backward(dout, cache):
    """dL/dx = dL/df ⊙ σ(x) ⊙ (1 − σ(x))  — the lecture's "(1 − σ)σ" gate."""
    s = cache
    return dout * s * (1 - s)


def tanh_forward(x):
    """f = tanh(x).  Shape: any."""
    xp = get_array_module(x)
    out = xp.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """dL/dx = dL/df ⊙ (1 − tanh²(x))."""
    t = cache
    return dout * (1 - t * t)


def relu_forward(x):
    """f = max(0, x).  Shape: any (split over the kernel threads when large)."""
    xp = get_array_module(x)
    out = xp.empty_like(x)  # keeps x's memory order (e.g. a conv output's)
    elementwise(xp.maximum, out, x, x.dtype.type(0))
    return out, out


def relu_inplace_forward(x):
    """f = max(0, x) written over ``x`` itself (no new array): for an input that nothing else
    reads afterwards, such as a convolution's output inside ``nn.Sequential``
    (:mod:`glassnet.nn.fusion`). The backward is :func:`relu_backward` (its cache is f).

    Shape: any; returns ``x`` (now f) and the cache f.
    """
    xp = get_array_module(x)
    elementwise(xp.maximum, x, x, x.dtype.type(0))
    return x, x


def _masked(dout, f, out):
    """out = dout ⊙ 1[f > 0]."""
    return get_array_module(dout).multiply(dout, f > 0, out=out)


def relu_backward(dout, cache):
    """dL/dx = dL/df ⊙ 1[x > 0]  (the "gradient router": 0 where x ≤ 0;
    ``x > 0`` exactly where ``f > 0``, so the cache is the output)."""
    out = cache
    xp = get_array_module(dout)
    dx = xp.empty_like(dout, dtype=xp.result_type(dout, out))
    elementwise(_masked, dx, dout, out)
    return dx


def leaky_relu_forward(x, negative_slope=0.01):
    """f = max(αx, x) with α = ``negative_slope`` (the lecture's 0.1).

    Shape: any.
    """
    xp = get_array_module(x)
    out = xp.where(x > 0, x, x * x.dtype.type(negative_slope))
    return out, LeakyReluCache(x, negative_slope)


def leaky_relu_backward(dout, cache):
    """dL/dx = dL/df ⊙ (1 if x > 0 else α)."""
    x, slope = cache.x, cache.negative_slope
    xp = get_array_module(x)
    return xp.where(x > 0, dout, dout * dout.dtype.type(slope))


def elu_forward(x, alpha=1.0):
    """f = x if x > 0 else α(eˣ − 1).  Shape: any."""
    xp = get_array_module(x)
    neg = alpha * xp.expm1(xp.minimum(x, 0))
    out = xp.where(x > 0, x, neg.astype(x.dtype, copy=False))
    return out, EluCache(x, out, alpha)


def elu_backward(dout, cache):
    """dL/dx = dL/df ⊙ (1 if x > 0 else f + α)   (since d/dx α(eˣ−1) = αeˣ = f + α)."""
    x, out, alpha = cache.x, cache.out, cache.alpha
    xp = get_array_module(x)
    return xp.where(x > 0, dout, dout * (out + out.dtype.type(alpha)))
