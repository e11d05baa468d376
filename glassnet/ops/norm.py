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

from ..backend import get_array_module, is_channel_major
from ..threads import parallel_for
from ..errors import InvalidArgumentError


def _channel_sum(a):
    """Σ over every axis but the channel axis 1 of an (N, C, *) array, as (C,).

    For a channel-major array (stored as (C, N, *), as convolutions return
    them) one contiguous reduction per channel; otherwise the trailing axes
    first (one fast inner reduction per (n, c) plane), then the batch axis."""
    if a.ndim > 2 and is_channel_major(a):
        return a.swapaxes(0, 1).reshape(a.shape[1], -1).sum(axis=1)
    if a.ndim > 2:
        return a.sum(axis=tuple(range(2, a.ndim))).sum(axis=0)
    return a.sum(axis=0)


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
    xp = get_array_module(x)
    dt = x.dtype
    m = x.size // x.shape[1]
    if training and m <= 1:
        raise InvalidArgumentError(
            f"batch_norm: expected more than 1 value per channel when training, "
            f"got input of shape {tuple(x.shape)}"
        )
    if not training and (running_mean is None or running_var is None):
        raise InvalidArgumentError("batch_norm: running_mean and running_var are required when not training")
    out = xp.empty_like(x)
    x_hat = xp.empty_like(x)
    inv_std = xp.empty(x.shape[1], dtype=dt)

    def normalise(c0, c1):
        sl = (slice(None), slice(c0, c1))
        _batch_norm_channels(xp, x[sl], x_hat[sl], out[sl], inv_std[c0:c1], _channels(gamma, c0, c1),
                             _channels(beta, c0, c1), _channels(running_mean, c0, c1),
                             _channels(running_var, c0, c1), training, momentum, eps, m)

    parallel_for(x.shape[1], normalise, x.size, xp=xp)  # channels are independent
    cache = (x_hat, inv_std, gamma, beta is not None, bool(training), m)
    return out, cache


def _batch_norm_channels(xp, x, x_hat, out, inv_std, gamma, beta, running_mean, running_var,
                         training, momentum, eps, m):
    """The forward for a block of channels, writing ``x_hat``, ``out`` and
    ``inv_std`` (and the running statistics, in place)."""
    dt = x.dtype
    shape = _channel_shape(x)
    if training:
        mean = _channel_sum(x) / dt.type(m)
        xp.subtract(x, mean.reshape(shape), out=x_hat)  # x − μ
        xp.multiply(x_hat, x_hat, out=out)  # (x − μ)², out as scratch
        var = _channel_sum(out) / dt.type(m)
        mom = float(momentum)
        if running_mean is not None:
            running_mean[...] = (1 - mom) * running_mean + mom * mean.astype(running_mean.dtype)
        if running_var is not None:
            unbiased = var * dt.type(m / (m - 1))
            running_var[...] = (1 - mom) * running_var + mom * unbiased.astype(running_var.dtype)
    else:
        mean = running_mean.astype(dt, copy=False)
        var = running_var.astype(dt, copy=False)
        xp.subtract(x, mean.reshape(shape), out=x_hat)
    inv_std[...] = 1 / xp.sqrt(var + dt.type(eps))  # 1/σ
    x_hat *= inv_std.reshape(shape)
    if gamma is not None:
        xp.multiply(x_hat, gamma.reshape(shape), out=out)
        if beta is not None:
            out += beta.reshape(shape)
    elif beta is not None:
        xp.add(x_hat, beta.reshape(shape), out=out)
    else:
        out[...] = x_hat  # x_hat stays in the cache; the output is the caller's


def batch_norm_backward(dout, cache):
    """Gradients of y = γ x̂ + β.

    dL/dβ = Σ dŷ,   dL/dγ = Σ dŷ ⊙ x̂   (sums over the m values of each channel).

    Training (μ, σ depend on x), the compact form::

        dL/dx = (γ/σ)/m · (m·dŷ − Σ dŷ − x̂ ⊙ Σ(dŷ ⊙ x̂))

    Evaluation (μ, σ are constants from the running statistics), a plain
    per-channel scaling::

        dL/dx = (γ/σ) · dŷ

    (γ = 1 when there is no affine weight). Returns ``(dx, dgamma, dbeta)``;
    ``dgamma`` / ``dbeta`` are ``None`` when the layer has no γ / β. Split by
    channel over the kernel threads, like the forward.
    """
    x_hat, inv_std, gamma, has_beta, training, m = cache
    xp = get_array_module(dout)
    dx = xp.empty_like(x_hat, dtype=dout.dtype)
    sum_d = xp.empty(dout.shape[1], dtype=dout.dtype)
    sum_dx = xp.empty(dout.shape[1], dtype=dout.dtype)

    def gradients(c0, c1):
        sl = (slice(None), slice(c0, c1))
        _batch_norm_backward_channels(xp, dout[sl], x_hat[sl], dx[sl], sum_d[c0:c1], sum_dx[c0:c1],
                                      inv_std[c0:c1], _channels(gamma, c0, c1), training, m)

    parallel_for(dout.shape[1], gradients, dout.size, xp=xp)
    dgamma = sum_dx if gamma is not None else None
    dbeta = sum_d if has_beta else None
    return dx, dgamma, dbeta


def _batch_norm_backward_channels(xp, dout, x_hat, dx, sum_d, sum_dx, inv_std, gamma, training, m):
    """The backward for a block of channels, writing ``dx``, Σ dŷ and Σ dŷ ⊙ x̂."""
    shape = _channel_shape(dout)
    sum_d[...] = _channel_sum(dout)                 # Σ dŷ
    xp.multiply(dout, x_hat, out=dx)                # dŷ ⊙ x̂, dx as scratch
    sum_dx[...] = _channel_sum(dx)                  # Σ dŷ ⊙ x̂
    scale = inv_std if gamma is None else gamma * inv_std  # γ/σ
    if training:
        # (γ/σ)/m · (m·dŷ − Σdŷ − x̂·Σ(dŷ⊙x̂)), in place on dx
        xp.multiply(x_hat, sum_dx.reshape(shape), out=dx)
        dx += sum_d.reshape(shape)
        dx -= dout * dout.dtype.type(m)
        dx *= (-scale / m).reshape(shape).astype(dout.dtype, copy=False)
    else:
        xp.multiply(dout, scale.reshape(shape).astype(dout.dtype, copy=False), out=dx)


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
    return out, (x, d, d_pow, size, alpha, beta)


def local_response_norm_backward(dout, cache):
    """dL/da_j = g_j d_j^(−β) − (2αβ/n) a_j Σ_{c : j ∈ W(c)} g_c a_c d_c^(−β−1)

    where g = dL/db. ``j ∈ W(c)`` ⟺ c ∈ {j − ⌊(n−1)/2⌋, …, j + ⌊n/2⌋}: the
    window transposed (its padding swapped).
    """
    x, d, d_pow, size, alpha, beta = cache
    dt = dout.dtype
    t = dout * x * d_pow / d                     # g_c a_c d_c^(−β−1)
    back = _channel_window_sum(t, (size - 1) // 2, size // 2)
    dx = dout * d_pow - dt.type(2 * alpha * beta / size) * x * back
    return dx.astype(dt, copy=False)
