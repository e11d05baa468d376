"""Normalization kernels: batch normalization and local response normalization.

Contract (every kernel module): ``<op>_forward(x, ...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> grads``. Pure functions on raw arrays (NumPy
or CuPy); outputs keep the input's dtype.

The one deliberate side effect: :func:`batch_norm_forward` in training mode
updates the ``running_mean`` / ``running_var`` arrays it is given *in place*,
exactly as ``torch.nn.functional.batch_norm`` (and cuDNN) do. Those arrays
are a module's buffers; updating them in place keeps ``state_dict()`` (which
holds the live arrays) current without the kernel knowing about modules.

Notation: batch norm over the ``m`` values of one channel (all axes except
the channel axis 1): ``μ = (1/m) Σ x``, ``σ² = (1/m) Σ (x − μ)²`` (biased),
``σ = √(σ² + ε)``, ``x̂ = (x − μ)/σ``, ``y = γ x̂ + β``; ``dŷ`` is the
upstream gradient ``dL/dy``. Sums ``Σ`` run over the ``m`` values of a channel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from ..threads import parallel_for
from ..errors import InvalidArgumentError


@dataclass(frozen=True, slots=True, eq=False)
class BatchNormCache:
    """What :func:`batch_norm_backward` needs from :func:`batch_norm_forward` (arrays by reference).

    Attributes:
        x_centered: x − μ (μ: the batch mean in training, the running mean otherwise).
        inv_std: 1/σ per channel.
        gamma: γ, or ``None`` (affine=False).
        has_beta: whether β was given (then the backward returns dL/dβ).
        training: whether batch statistics were used (their gradient terms then apply).
        count: m, the values per channel.

    Shape:
        x_centered (N, C, *); inv_std, gamma (C,).
    """

    x_centered: object
    inv_std: object
    gamma: object
    has_beta: bool
    training: bool
    count: int


@dataclass(frozen=True, slots=True, eq=False)
class LocalResponseNormCache:
    """What :func:`local_response_norm_backward` needs from :func:`local_response_norm_forward`.

    Attributes:
        x: the input a.
        d: k + (α/n) Σ_window a² per position.
        d_pow: d^(−β).
        size, alpha, beta: the window n and the constants α, β.

    Shape:
        x, d, d_pow (N, C, *).
    """

    x: object
    d: object
    d_pow: object
    size: int
    alpha: float
    beta: float


def _channel_dot(a, b=None):
    """Σ over every axis but the channel axis 1 of ``a`` (or of ``a ⊙ b``), as (C,).

    One pass over memory and no temporary: ``einsum`` sums each (n, c) plane
    (contiguous in NCHW and in channel-major storage alike; the product is
    formed on the fly), then the N plane sums are added. Each channel's sum
    depends only on that channel's planes, so a block of channels gives the
    same bits as the whole array, whatever the memory order of ``a`` and ``b``.
    """
    xp = get_array_module(a)
    if a.ndim <= 2:
        return a.sum(axis=0) if b is None else xp.einsum("nc,nc->c", a, b)
    N, C = a.shape[:2]
    if b is None:
        planes = xp.einsum("ncp->nc", a.reshape(N, C, -1))
    else:
        planes = xp.einsum("ncp,ncp->nc", a.reshape(N, C, -1), b.reshape(N, C, -1))
    return planes.sum(axis=0)


def _channel_sum(a):
    """Σ over every axis but the channel axis 1 of an (N, C, *) array, as (C,)
    (see :func:`_channel_dot`)."""
    return _channel_dot(a)


CHANNEL_BLOCK_ELEMENTS = 1 << 18  # values per array in one block of channels (1 MiB of float32)


def _in_channel_blocks(xp, C, m, work):
    """``work(c0, c1)`` over the channels ``0..C`` split over the kernel threads
    and, within each thread's range, into blocks of about
    :data:`CHANNEL_BLOCK_ELEMENTS` values (``m`` per channel), so that all the
    passes over one block run while its arrays are still in the processor's caches (NumPy
    only; one block for CuPy). Channels are independent: the bits do not
    depend on the blocks."""
    step = C if xp is not np else max(1, CHANNEL_BLOCK_ELEMENTS // max(1, m))

    def blocks(c0, c1):
        for b0 in range(c0, c1, step):
            work(b0, min(c1, b0 + step))

    parallel_for(C, blocks, C * m, xp=xp)


def _channel_shape(x):
    """The per-channel broadcast shape ``(1, C, 1, ...)`` of an (N, C, *) array."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


# ----------------------------------------------------------------- batch norm
def _channels(a, c0, c1):
    """Channels ``c0:c1`` of a per-channel (C,) array, or None."""
    return None if a is None else a[c0:c1]


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """y = γ (x − μ)/√(σ² + ε) + β, per channel (axis 1).

    ``training=True``: μ and σ² are the batch's (biased σ² to normalise). If
    ``running_mean`` / ``running_var`` are given they are updated **in place**
    as PyTorch does::

        running_mean ← (1 − momentum)·running_mean + momentum·μ
        running_var  ← (1 − momentum)·running_var  + momentum·σ²·m/(m − 1)

    (the running variance takes the *unbiased* batch variance). ``momentum``
    is a number here; PyTorch's ``momentum=None`` (cumulative average) is the
    module's business: it passes ``1/num_batches_tracked``.

    ``training=False``: μ, σ² are ``running_mean``, ``running_var`` (required).

    ``gamma`` / ``beta`` may be ``None`` (``affine=False``: γ = 1, β = 0).
    Channels are independent, so large inputs are split by channel over the
    kernel threads.

    Shape: x (N, C), (N, C, L) or (N, C, H, W) — any (N, C, *);
    gamma, beta, running_mean, running_var (C,). Output: x's shape and dtype
    (and its memory order).
    """
    return batch_norm_forward_in_blocks(x, gamma, beta, running_mean, running_var, training, momentum, eps)


def batch_norm_forward_in_blocks(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                                 finish_block=None):
    """:func:`batch_norm_forward`, with ``finish_block(sl, out)`` called on each block of channels
    right after it is normalised, while it is in cache (``sl`` indexes the block: ``out[sl]``):
    how :mod:`.norm_relu` adds a residual and applies the ReLU in the same pass.

    Shape: as :func:`batch_norm_forward`'s; returns ``(out, BatchNormCache)``.
    """
    xp = get_array_module(x)
    m = x.size // x.shape[1]
    if training and m <= 1:
        raise InvalidArgumentError(
            f"batch_norm: expected more than 1 value per channel when training, "
            f"got input of shape {tuple(x.shape)}"
        )
    if not training and (running_mean is None or running_var is None):
        raise InvalidArgumentError("batch_norm: running_mean and running_var are required when not training")
    out = xp.empty_like(x)
    x_c = xp.empty_like(x)  # x − μ, the cache's one activation-sized array
    inv_std = xp.empty(x.shape[1], dtype=x.dtype)

    def normalise(c0, c1):
        sl = (slice(None), slice(c0, c1))
        _batch_norm_channels(xp, x[sl], x_c[sl], out[sl], inv_std[c0:c1], _channels(gamma, c0, c1),
                             _channels(beta, c0, c1), _channels(running_mean, c0, c1),
                             _channels(running_var, c0, c1), training, momentum, eps, m)
        if finish_block is not None:
            finish_block(sl, out)

    _in_channel_blocks(xp, x.shape[1], m, normalise)  # channels are independent
    return out, BatchNormCache(x_c, inv_std, gamma, beta is not None, bool(training), m)


def _batch_norm_channels(xp, x, x_c, out, inv_std, gamma, beta, running_mean, running_var,
                         training, momentum, eps, m):
    """The forward for a block of channels, writing ``x_c = x − μ``, ``out``
    and ``inv_std`` (and the running statistics, in place), in four passes
    over memory: Σ x; x − μ; Σ (x − μ)² (einsum, no temporary);
    ``out = (x − μ)·(γ/σ)``, ``+= β``."""
    dt = x.dtype
    shape = _channel_shape(x)
    if training:
        mean = _channel_sum(x) / dt.type(m)
        xp.subtract(x, mean.reshape(shape), out=x_c)  # x − μ
        var = _channel_dot(x_c, x_c) / dt.type(m)
        mom = float(momentum)
        if running_mean is not None:
            running_mean[...] = (1 - mom) * running_mean + mom * mean.astype(running_mean.dtype)
        if running_var is not None:
            unbiased = var * dt.type(m / (m - 1))
            running_var[...] = (1 - mom) * running_var + mom * unbiased.astype(running_var.dtype)
    else:
        mean = running_mean.astype(dt, copy=False)
        var = running_var.astype(dt, copy=False)
        xp.subtract(x, mean.reshape(shape), out=x_c)
    inv_std[...] = 1 / xp.sqrt(var + dt.type(eps))  # 1/σ
    scale = inv_std if gamma is None else gamma * inv_std  # γ/σ
    xp.multiply(x_c, scale.reshape(shape), out=out)
    if beta is not None:
        out += beta.reshape(shape)


def batch_norm_backward(dout, cache):
    """Gradients of y = γ x̂ + β, from the cache's ``x − μ`` and ``1/σ``.

    dL/dβ = Σ dŷ,   dL/dγ = Σ dŷ ⊙ x̂ = (1/σ) Σ dŷ ⊙ (x − μ)   (sums over the m values of each channel).

    Training (μ, σ depend on x), the compact form::

        dL/dx = (γ/σ) · (dŷ − Σ dŷ / m − (x − μ) ⊙ (1/σ) Σ(dŷ ⊙ x̂) / m)

    Evaluation (μ, σ are constants from the running statistics), a plain
    per-channel scaling::

        dL/dx = (γ/σ) · dŷ

    (γ = 1 when there is no affine weight). Returns ``(dx, dgamma, dbeta)``;
    ``dgamma`` / ``dbeta`` are ``None`` when the layer has no γ / β. Split by
    channel over the kernel threads, like the forward.

    Shape: dout (N, C, *) -> dx (N, C, *) (in the memory order of the forward's
    input); dgamma, dbeta (C,).
    """
    return batch_norm_backward_in_blocks(dout, cache)


def batch_norm_backward_in_blocks(dout, cache, upstream_block=None):
    """:func:`batch_norm_backward`, with the upstream gradient of each block of channels given by
    ``upstream_block(sl)`` (default ``dout[sl]``) just before the block's backward, while it is in
    cache: how :mod:`.norm_relu` routes the gradient through the ReLU in the same pass.

    Shape: as :func:`batch_norm_backward`'s; returns ``(dx, dgamma, dbeta)``.
    """
    x_c, inv_std, gamma, has_beta = cache.x_centered, cache.inv_std, cache.gamma, cache.has_beta
    training, m = cache.training, cache.count
    xp = get_array_module(dout)
    dx = xp.empty_like(x_c, dtype=dout.dtype)
    sum_d = xp.empty(dout.shape[1], dtype=dout.dtype)
    sum_dx = xp.empty(dout.shape[1], dtype=dout.dtype)

    def gradients(c0, c1):
        sl = (slice(None), slice(c0, c1))
        d = dout[sl] if upstream_block is None else upstream_block(sl)
        _batch_norm_backward_channels(xp, d, x_c[sl], dx[sl], sum_d[c0:c1], sum_dx[c0:c1],
                                      inv_std[c0:c1], _channels(gamma, c0, c1), training, m)

    _in_channel_blocks(xp, dout.shape[1], dout.size // dout.shape[1], gradients)
    dgamma = sum_dx if gamma is not None else None
    dbeta = sum_d if has_beta else None
    return dx, dgamma, dbeta


def _batch_norm_backward_channels(xp, dout, x_c, dx, sum_d, sum_dx, inv_std, gamma, training, m):
    """The backward for a block of channels, writing ``dx``, Σ dŷ and Σ dŷ ⊙ x̂:
    two reductions (einsum, no temporary) and four in-place passes on ``dx``."""
    dt = dout.dtype
    shape = _channel_shape(dout)
    sum_d[...] = _channel_sum(dout)                      # Σ dŷ
    sum_dx[...] = _channel_dot(dout, x_c) * inv_std      # Σ dŷ ⊙ x̂ = (1/σ) Σ dŷ ⊙ (x − μ)
    scale = (inv_std if gamma is None else gamma * inv_std).reshape(shape).astype(dt, copy=False)  # γ/σ
    if training:
        xp.multiply(x_c, (inv_std * sum_dx / m).reshape(shape).astype(dt, copy=False), out=dx)
        dx += (sum_d / m).reshape(shape).astype(dt, copy=False)  # Σdŷ/m + x̂·Σ(dŷ⊙x̂)/m
        xp.subtract(dout, dx, out=dx)
        dx *= scale
    else:
        xp.multiply(dout, scale, out=dx)


# ------------------------------------------------- local response normalization
def _channel_window_sum(a, before, after):
    """s[:, c] = Σ_{c'=c−before}^{c+after} a[:, c'], channels outside [0, C) count as 0."""
    xp = get_array_module(a)
    C = a.shape[1]
    pad = [(0, 0)] * a.ndim
    pad[1] = (before, after)
    padded = xp.pad(a, pad)
    s = padded[:, 0:C].copy()
    for o in range(1, before + after + 1):
        s += padded[:, o:o + C]
    return s


def local_response_norm_forward(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """PyTorch's local response normalization across channels (axis 1)::

        b_c = a_c · d_c^(−β),   d_c = k + (α/n) Σ_{c' ∈ W(c)} a_{c'}²

    with n = ``size`` and the window W(c) = {c − ⌊n/2⌋, …, c + ⌊(n−1)/2⌋}
    (channels outside [0, C) count as zero; the sum is still divided by n).

    Shape: x (N, C, *) with at least 3 dims; output x's shape and dtype.
    """
    xp = get_array_module(x)
    dt = x.dtype
    before, after = size // 2, (size - 1) // 2
    s = _channel_window_sum(x * x, before, after)
    d = dt.type(k) + dt.type(alpha / size) * s
    d_pow = xp.power(d, dt.type(-beta))          # d^(−β)
    out = x * d_pow
    return out, LocalResponseNormCache(x, d, d_pow, size, alpha, beta)


def local_response_norm_backward(dout, cache):
    """dL/da_j = g_j d_j^(−β) − (2αβ/n) a_j Σ_{c : j ∈ W(c)} g_c a_c d_c^(−β−1)

    where g = dL/db. ``j ∈ W(c)`` ⟺ c ∈ {j − ⌊(n−1)/2⌋, …, j + ⌊n/2⌋}: the
    window transposed (its padding swapped).
    """
    x, d, d_pow = cache.x, cache.d, cache.d_pow
    size, alpha, beta = cache.size, cache.alpha, cache.beta
    dt = dout.dtype
    t = dout * x * d_pow / d                     # g_c a_c d_c^(−β−1)
    back = _channel_window_sum(t, (size - 1) // 2, size // 2)
    dx = dout * d_pow - dt.type(2 * alpha * beta / size) * x * back
    return dx.astype(dt, copy=False)
