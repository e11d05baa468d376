"""Power-average (Lp) pooling: ``y = (Σ over R(i, j) of x^p)^(1/p)``, ``p = norm_type``.

Two algorithms (named by the cache, :mod:`.cache`):

* ``"power average"`` (:class:`~.cache.LpPoolCache`, finite ``p``): PyTorch's formula step by
  step, through :func:`~glassnet.ops.pool.avg_pool.avg_pool2d_forward`;
* ``"max of |x|"`` (:class:`~.cache.LpPoolInfCache`, ``p = ±∞``): max pooling of ``±|x|``,
  through :func:`~glassnet.ops.pool.max_pool.max_pool2d_forward`.

The lecture's loop version is :func:`glassnet.ops.pool.reference.lp_pool2d_forward`.
"""
from __future__ import annotations

import math

from ...backend import get_array_module
from .args import PoolArgs
from .avg_pool import avg_pool2d_backward, avg_pool2d_forward
from .cache import LpPoolInfCache, LpPoolCache
from .geometry import check_input
from .max_pool import max_pool2d_backward, max_pool2d_forward

__all__ = ["lp_pool2d_forward", "lp_pool2d_backward"]


def lp_pool2d_forward(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling ``y = (Σ over R(i, j) of x^p)^(1/p)`` (``F.lp_pool2d``).

    ``norm_type = p``; ``p = 2`` is the lecture's L2 pooling, ``p = ∞`` is max
    pooling of ``|x|`` (and ``−∞`` is ``−max(−|x|)``), as in PyTorch. No padding.
    The finite case replicates PyTorch's formula step by step:

        a = avg_pool2d(x^p, kernel, stride, ceil_mode)      # divisor as avg_pool2d
        t = sign(a) · relu(|a|) · (kH·kW)
        y = t^(1/p)

    so a ceil_mode window cut short by the input edge is scaled by
    ``kH·kW / (elements in it)``, and a negative ``a`` (odd ``p``) gives NaN,
    both exactly as PyTorch.

    Arguments are normalised and checked by :class:`~glassnet.ops.pool.args.PoolArgs`
    (``stride=None`` means ``kernel_size``; ``norm_type`` must be non-zero).

    Shape: x (N, C, H, W) -> out (N, C, Ho, Wo), sizes as
    :func:`~glassnet.ops.pool.geometry.pool_output_size` with padding 0.
    """
    xp = get_array_module(x)
    args = PoolArgs("lp", kernel_size, stride, 0, 1, ceil_mode, norm_type=norm_type)
    check_input(args.layer, x)
    args.output_hw(x.shape)
    kernel_size, stride, ceil_mode, p = args.kernel_size, args.stride, args.ceil_mode, args.norm_type
    if p == math.inf or p == -math.inf:
        sgn = 1 if p > 0 else -1
        out, mcache = max_pool2d_forward(sgn * xp.abs(x), kernel_size, stride, (0, 0), (1, 1), ceil_mode)
        return sgn * out, LpPoolInfCache(sgn, x, mcache)
    xp_pow = x ** x.dtype.type(p)
    a, acache = avg_pool2d_forward(xp_pow, kernel_size, stride, (0, 0), ceil_mode)
    area = kernel_size[0] * kernel_size[1]
    t = xp.sign(a) * xp.maximum(xp.abs(a), 0) * x.dtype.type(area)
    out = t ** x.dtype.type(1.0 / p)
    return out, LpPoolCache(p, x, a, t, area, acache)


def lp_pool2d_backward(dout, cache):
    """Chain rule through ``y = t^(1/p)``, ``t = kH·kW · a``, ``a = avgpool(x^p)``:

        dL/dt = dL/dy · (1/p) · t^(1/p − 1)     (0 where a = 0, as PyTorch: the
                                                 relu in its formula cuts it)
        dL/da = kH·kW · dL/dt
        dL/dx = avg_pool2d_backward(dL/da) ⊙ p · x^(p−1)

    For ``p = 2``: ``dL/dx = x ⊙ Σ_{windows ∋ x} dL/dy / y`` — the L2 norm's
    gradient ``x / ‖x‖`` per window. For ``p = ±∞`` the max-pool router on
    ``|x|`` times ``sign(x)``.

    Shape: dout (N, C, Ho, Wo) -> dx (N, C, H, W).
    """
    xp = get_array_module(dout)
    if isinstance(cache, LpPoolInfCache):
        sgn, x = cache.sign, cache.x
        g = max_pool2d_backward(sgn * dout, cache.max)
        return g * (sgn * xp.sign(x))
    p, x, a, t, area, acache = cache.p, cache.x, cache.a, cache.t, cache.area, cache.avg
    dt = dout.dtype.type
    nz = a != 0
    safe_t = xp.where(nz, t, dt(1))
    g_t = dout * dt(1.0 / p) * safe_t ** dt(1.0 / p - 1.0)
    g_a = xp.where(nz, g_t * dt(area), dt(0))
    g_xp = avg_pool2d_backward(g_a, acache)
    if p == 1.0:
        return g_xp
    return g_xp * (dt(p) * x ** dt(p - 1.0))


