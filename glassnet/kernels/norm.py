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

from ..backend import get_array_module


def _channel_sum(a):
    """Σ over every axis but the channel axis 1 of an (N, C, *) array, as (C,).

    Sums the contiguous trailing axes first (one fast inner reduction per
    (n, c) row), then the batch axis; for a channel-major array (stored as
    (C, N, *), as convolutions return them) one reduction per channel."""
    n, c = a.shape[0], a.shape[1]
    if a.ndim > 2 and a.flags.c_contiguous:
        return a.reshape(n, c, -1).sum(axis=2).sum(axis=0)
    channel_major = a.swapaxes(0, 1)  # a convolution output: stored (C, N, *)
    if a.ndim > 2 and channel_major.flags.c_contiguous:
        return channel_major.reshape(c, -1).sum(axis=1)
    return a.sum(axis=(0,) + tuple(range(2, a.ndim)))


def _channel_layout(x):
    """Reduction axes (all but the channel axis 1) and the per-channel
    broadcast shape ``(1, C, 1, ...)`` for an (N, C, *) array."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return axes, shape


# ----------------------------------------------------------------- batch norm
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

    Shape: x (N, C), (N, C, L) or (N, C, H, W) — any (N, C, *);
    gamma, beta, running_mean, running_var (C,). Output: x's shape and dtype.
    """
    xp = get_array_module(x)
    dt = x.dtype
    axes, shape = _channel_layout(x)
    m = x.size // x.shape[1]
    if training:
        if m <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, "
                f"got input of shape {tuple(x.shape)}"
            )
        mean = _channel_sum(x) / dt.type(m)
        xc = x - mean.reshape(shape)
        sq = xc * xc
        var = _channel_sum(sq) / dt.type(m)
        del sq
        if running_mean is not None:
            mom = float(momentum)
            running_mean[...] = (1 - mom) * running_mean + mom * mean.astype(running_mean.dtype)
        if running_var is not None:
            mom = float(momentum)
            unbiased = var * dt.type(m / (m - 1))
            running_var[...] = (1 - mom) * running_var + mom * unbiased.astype(running_var.dtype)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are required when not training")
        mean = running_mean.astype(dt, copy=False)
        var = running_var.astype(dt, copy=False)
        xc = x - mean.reshape(shape)
    inv_std = (1 / xp.sqrt(var + dt.type(eps))).astype(dt, copy=False)  # 1/σ, shape (C,)
    x_hat = xc
    x_hat *= inv_std.reshape(shape)  # xc is ours: normalise in place
    if gamma is not None:
        out = x_hat * gamma.reshape(shape)
        if beta is not None:
            out += beta.reshape(shape)
    elif beta is not None:
        out = x_hat + beta.reshape(shape)
    else:
        out = x_hat.copy()  # x_hat stays in the cache; the output is the caller's
    cache = (x_hat, inv_std, gamma, beta is not None, bool(training), m)
    return out, cache


def batch_norm_backward(dout, cache):
    """Gradients of y = γ x̂ + β.

    dL/dβ = Σ dŷ,   dL/dγ = Σ dŷ ⊙ x̂   (sums over the m values of each channel).

    Training (μ, σ depend on x), the compact form::

        dL/dx = (γ/σ)/m · (m·dŷ − Σ dŷ − x̂ ⊙ Σ(dŷ ⊙ x̂))

    Evaluation (μ, σ are constants from the running statistics), a plain
    per-channel scaling::

        dL/dx = (γ/σ) · dŷ

    (γ = 1 when there is no affine weight). Returns ``(dx, dgamma, dbeta)``;
    ``dgamma`` / ``dbeta`` are ``None`` when the layer has no γ / β.
    """
    x_hat, inv_std, gamma, has_beta, training, m = cache
    axes, shape = _channel_layout(dout)
    sum_d = _channel_sum(dout)                  # Σ dŷ
    prod = dout * x_hat
    sum_dx = _channel_sum(prod)                 # Σ dŷ ⊙ x̂
    del prod
    scale = inv_std if gamma is None else gamma * inv_std  # γ/σ
    if training:
        # (γ/σ)/m · (m·dŷ − Σdŷ − x̂·Σ(dŷ⊙x̂)), in place on one buffer
        dx = x_hat * sum_dx.reshape(shape)
        dx += sum_d.reshape(shape)
        dx -= dout * dout.dtype.type(m)
        dx *= (-scale / m).reshape(shape).astype(dout.dtype, copy=False)
    else:
        dx = dout * scale.reshape(shape)
    dgamma = sum_dx if gamma is not None else None
    dbeta = sum_d if has_beta else None
    return dx.astype(dout.dtype, copy=False), dgamma, dbeta


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
