"""Fully connected (affine) kernels: the lecture's ``f = Wx + b`` and Maxout.

Weights use PyTorch's layout: ``W`` is (out_features, in_features), so for a
batch of row vectors ``X`` (N, D) the layer computes ``F = X Wᵀ + b``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from ..gemm import matmul


@dataclass(frozen=True, slots=True, eq=False)
class LinearCache:
    """What :func:`linear_backward` needs from :func:`linear_forward` (arrays by reference).

    Attributes:
        x: the input X.
        weight: the weight W.
        has_bias: whether the forward added a bias (then the backward returns dL/db).
        need_dx: whether the backward computes dL/dX.

    Shape:
        x (*, in_features), weight (out_features, in_features).
    """

    x: object
    weight: object
    has_bias: bool
    need_dx: bool


@dataclass(frozen=True, slots=True, eq=False)
class MaxoutCache:
    """What :func:`maxout_backward` needs from :func:`maxout_forward` (arrays by reference).

    Attributes:
        x: the input X.
        weight: the pieces' weights W_k.
        has_bias: whether the forward added biases b_k.
        arg: the winning piece k* per output (first on ties).

    Shape:
        x (N, in_features), weight (k, out_features, in_features), arg (N, out_features).
    """

    x: object
    weight: object
    has_bias: bool
    arg: object


def linear_forward(x, weight, bias=None, need_dx=True):
    """f = W x + b for every row x of the batch (F = X Wᵀ + b).

    ``need_dx=False`` (the input needs no gradient, e.g. the data batch into
    the first layer) makes the backward skip dL/dX.

    Shape:
        x: (*, in_features); weight: (out_features, in_features);
        bias: (out_features,) or None; out: (*, out_features).
    """
    xp = get_array_module(x)
    x2 = x.reshape(-1, x.shape[-1])
    # (W · Xᵀ)ᵀ, not X · Wᵀ: OpenBLAS copies a transposed weight for the
    # latter, 7× slower for small batches through big layers (VGG's FC6).
    # The product is written straight into the transposed view of a
    # row-major output, so no transposing copy follows.
    out = xp.empty((x2.shape[0], weight.shape[0]), dtype=x.dtype)
    matmul(weight, x2.T, out=out.T)
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], weight.shape[0]), LinearCache(x, weight, bias is not None, need_dx)


def linear_backward(dout, cache):
    """Gradients of F = X Wᵀ + b:

        dL/dX = dL/dF · W           (*, in)
        dL/dW = (dL/dF)ᵀ · X        (out, in)   summed over all leading dims
        dL/db = Σ_rows dL/dF        (out,)

    Returns ``(dx, dweight, dbias)``; ``dbias`` is None when there was no
    bias, ``dx`` is None when the forward was told ``need_dx=False``.
    """
    x = cache.x
    dx = matmul(dout, cache.weight) if cache.need_dx else None
    d2 = dout.reshape(-1, dout.shape[-1])
    x2 = x.reshape(-1, x.shape[-1])
    dweight = matmul(d2.T, x2)  # lands in W's own (out, in) layout: no transposing copy of a big weight
    dbias = d2.sum(axis=0) if cache.has_bias else None
    return dx, dweight, dbias


def maxout_forward(x, weight, bias=None):
    """Maxout: f = max_k (W_k x + b_k) over ``k`` linear pieces.

    Shape:
        x: (N, in_features); weight: (k, out_features, in_features);
        bias: (k, out_features) or None; out: (N, out_features).
    """
    xp = get_array_module(x)
    k, out_f, in_f = weight.shape
    z = matmul(x, weight.reshape(k * out_f, in_f).T)  # (N, k*out)
    z = z.reshape(x.shape[0], k, out_f)
    if bias is not None:
        z += bias
    arg = xp.argmax(z, axis=1)  # (N, out): the winning piece, first on ties
    out = xp.take_along_axis(z, arg[:, None, :], axis=1)[:, 0, :]
    return out, MaxoutCache(x, weight, bias is not None, arg)


def maxout_backward(dout, cache):
    """Only the winning piece k* = argmax_k(W_k x + b_k) receives gradient:

        dL/dz_k = dL/df ⊙ 1[k = k*]
        dL/dW_k = (dL/dz_k)ᵀ · X,   dL/db_k = Σ_rows dL/dz_k,   dL/dX = Σ_k dL/dz_k · W_k

    Returns ``(dx, dweight, dbias)``.
    """
    x, weight, arg = cache.x, cache.weight, cache.arg
    xp = get_array_module(x)
    k, out_f, in_f = weight.shape
    mask = arg[:, None, :] == xp.arange(k)[None, :, None]  # (N, k, out)
    dz = (mask * dout[:, None, :]).astype(dout.dtype, copy=False)
    dz2 = dz.reshape(x.shape[0], k * out_f)
    dx = matmul(dz2, weight.reshape(k * out_f, in_f))
    dweight = matmul(dz2.T, x).reshape(k, out_f, in_f)
    dbias = dz.sum(axis=0) if cache.has_bias else None
    return dx, dweight, dbias
