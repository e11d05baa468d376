"""Softmax and log-softmax along one axis, numerically stable.

Stability: subtracting the row maximum m before exponentiating changes nothing
mathematically (e^(s−m) / Σ e^(s−m) = e^s / Σ e^s) and keeps e^(·) ≤ 1.
"""
from __future__ import annotations

from ..backend import get_array_module


def softmax_forward(x, axis=-1):
    """p_j = e^(s_j) / Σ_k e^(s_k) along ``axis``.

    Shape: any; output has the input's shape.
    """
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    return p, (p, axis)


def softmax_backward(dout, cache):
    """dL/ds = p ⊙ (dL/dp − Σ_k dL/dp_k · p_k)   (the softmax Jacobian diag(p) − p pᵀ)."""
    p, axis = cache
    return p * (dout - (dout * p).sum(axis=axis, keepdims=True))


def log_softmax_forward(x, axis=-1):
    """log p_j = s_j − m − log Σ_k e^(s_k − m), with m = max_k s_k.

    Shape: any; output has the input's shape.
    """
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return out, (out, axis)


def log_softmax_backward(dout, cache):
    """dL/ds = dL/dy − p ⊙ Σ_k dL/dy_k, with p = e^y the softmax."""
    out, axis = cache
    xp = get_array_module(out)
    return dout - xp.exp(out) * dout.sum(axis=axis, keepdims=True)
