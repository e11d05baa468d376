"""Inverted dropout: drop each unit with probability p at train time and scale
the survivors by 1/(1−p), so evaluation needs no rescaling."""
from __future__ import annotations

from ..backend import get_array_module
from ..errors import InvalidArgumentError


def dropout_forward(x, p, rng, training=True):
    """f = x ⊙ m / (1 − p), with m_i ~ Bernoulli(1 − p); identity when not training.

    ``rng`` is a ``numpy.random.Generator`` (or CuPy's) used to draw the mask.
    A NumPy generator's mask is drawn on the CPU and copied to a CuPy input's
    device, so one seed gives the same mask on either backend.

    Shape: any; output has the input's shape.
    """
    if not 0 <= p <= 1:
        raise InvalidArgumentError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x, None
    xp = get_array_module(x)
    if p == 1:
        mask = xp.zeros_like(x)
    else:
        keep = rng.random(x.shape, dtype=x.dtype) >= x.dtype.type(p)
        mask = xp.asarray(keep.astype(x.dtype) * x.dtype.type(1 / (1 - p)))
    return x * mask, mask


def dropout_backward(dout, cache):
    """dL/dx = dL/df ⊙ m / (1 − p)  (the same scaled mask as the forward pass)."""
    mask = cache
    return dout if mask is None else dout * mask


def dropout2d_forward(x, p, rng, training=True):
    """Channel-wise inverted dropout: f[n, c] = x[n, c] · m[n, c] / (1 − p),
    with one m[n, c] ~ Bernoulli(1 − p) per (sample, channel) — whole feature
    maps are zeroed. Identity when not training.

    ``rng`` is a ``numpy.random.Generator`` (or CuPy's) used to draw the mask.
    Argument order matches :func:`dropout_forward`.

    Shape: (N, C, *) (PyTorch's Dropout2d takes (N, C, H, W), and a 3-D input
    as (N, C, L)); output has the input's shape.
    """
    if not 0 <= p <= 1:
        raise InvalidArgumentError(f"dropout2d: probability p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x, None
    xp = get_array_module(x)
    mask_shape = tuple(x.shape[:2]) + (1,) * (x.ndim - 2)
    if p == 1:
        mask = xp.zeros(mask_shape, dtype=x.dtype)
    else:
        keep = rng.random(tuple(x.shape[:2]), dtype=x.dtype) >= x.dtype.type(p)
        mask = xp.asarray((keep.astype(x.dtype) * x.dtype.type(1 / (1 - p))).reshape(mask_shape))
    return x * mask, mask


def dropout2d_backward(dout, cache):
    """dL/dx[n, c] = dL/df[n, c] · m[n, c] / (1 − p)  (the forward's channel mask,
    broadcast over the spatial axes)."""
    mask = cache
    return dout if mask is None else dout * mask
