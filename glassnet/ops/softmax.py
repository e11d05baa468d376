"""Softmax and log-softmax along one axis, numerically stable.

Stability: subtracting the row maximum m before exponentiating changes nothing
mathematically (e^(s−m) / Σ e^(s−m) = e^s / Σ e^s) and keeps e^(·) ≤ 1.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module


@dataclass(frozen=True, slots=True, eq=False)
class SoftmaxCache:
    """What :func:`softmax_backward` needs from :func:`softmax_forward` (the output by reference).

    Attributes:
        p: the softmax output.
        axis: the axis it normalised along.

    Shape:
        p: the input's shape.
    """

    p: object
    axis: int


@dataclass(frozen=True, slots=True, eq=False)
class LogSoftmaxCache:
    """What :func:`log_softmax_backward` needs from :func:`log_softmax_forward` (the output by reference).

    Attributes:
        out: the log-softmax output y = log p.
        axis: the axis it normalised along.

    Shape:
        out: the input's shape.
    """

    out: object
    axis: int


def softmax_forward(x, axis=-1):
    """p_j = e^(s_j) / Σ_k e^(s_k) along ``axis``.

    Shape: any; output has the input's shape.
    """
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    return p, SoftmaxCache(p, axis)


def softmax_backward(dout, cache):
    """dL/ds = p ⊙ (dL/dp − Σ_k dL/dp_k · p_k)   (the softmax Jacobian diag(p) − p pᵀ)."""
    p = cache.p
    return p * (dout - (dout * p).sum(axis=cache.axis, keepdims=True))


def log_softmax_forward(x, axis=-1):
    """log p_j = s_j − m − log Σ_k e^(s_k − m), with m = max_k s_k.

    Shape: any; output has the input's shape.
    """
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return out, LogSoftmaxCache(out, axis)


def log_softmax_backward(dout, cache):
    """dL/ds = dL/dy − p ⊙ Σ_k dL/dy_k, with p = e^y the softmax."""
    xp = get_array_module(cache.out)
    return dout - xp.exp(cache.out) * dout.sum(axis=cache.axis, keepdims=True)
