"""The typed caches of the pool family: one frozen dataclass per algorithm.

Each forward returns one of these as its ``cache``; the backward reads it by field name. The
``algorithm`` class attribute names the strategy the forward took (it lands on the tape's
:class:`~glassnet.op_record.OpRecord`):

==============================  =====================  ==================================================
cache                           ``algorithm``          strategy
==============================  =====================  ==================================================
:class:`MaxPoolCache`           ``"separable"``        row-segment max then window max, keeping both
                                                       stages' arg-max; backward routes with them
:class:`MaxPoolOutputCache`     ``"separable"``        the same, output only (no gradient wanted): no arg-max
:class:`MaxPoolArgCache`        ``"running max"``      running max over the kernel offsets, tracking the
                                                       arg-max (windows that are all −inf with padding)
:class:`AvgPoolTileCache`       ``"tiles"``            windows tile the input: one reshape and a sum
:class:`AvgPoolCache`           ``"offset views"``     a sum of the kH·kW strided offset views
:class:`LpPoolCache`            ``"power average"``    ``(kH·kW · avg_pool2d(x^p))^(1/p)``
:class:`LpPoolInfCache`         ``"max of |x|"``       ``p = ±∞``: max pooling of ``±|x|``
:class:`AdaptiveTileCache`      ``"tiles"``            windows tile: a plain pool with kernel = stride
:class:`AdaptiveAvgCache`       ``"separable matmul"`` ``y = A_H · x · A_Wᵀ``
:class:`AdaptiveMaxCache`       ``"separable"``        max over column windows, then over row windows
:class:`ReferenceCache`         ``"reference"``        the lecture's loops (:mod:`.reference`)
==============================  =====================  ==================================================

Arrays are kept by reference (no copies); ``eq=False`` because arrays have no single truth value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["Crop", "MaxPoolCache", "MaxPoolOutputCache", "MaxPoolArgCache", "AvgPoolTileCache", "AvgPoolCache", "LpPoolCache",
           "LpPoolInfCache", "AdaptiveTileCache", "AdaptiveAvgCache", "AdaptiveMaxCache", "ReferenceCache"]


@dataclass(frozen=True)
class Crop:
    """Where the real input lies inside a padded array: rows ``top : top + height``,
    columns ``left : left + width``.

    Shape:
        not applicable (four ints).
    """

    top: int
    left: int
    height: int
    width: int


@dataclass(frozen=True, eq=False)
class MaxPoolCache:
    """Separable max pooling, with the arg-max of both stages.

    Attributes:
        argc: per row-segment maximum ``m1[r, j] = max_b x[r, j·sW + b·dW]`` of the
            (padded) input, the first column offset ``b`` holding it (smallest int dtype).
        argr: per output ``y[i, j] = max_a m1[i·sH + a·dH, j]``, the first row offset ``a``
            holding it (smallest int dtype). Together: the window's first maximum in
            row-major order.
        padded_hw: (Hp, Wp) of the input the windows read (the padded one when ``crop`` is set).
        kernel_size, stride, dilation: (h, w) pairs.
        crop: where the real input lies in the padded one; ``None`` when nothing was padded.

    Shape:
        argc (N, C, Hp, Wo), argr (N, C, Ho, Wo), both in the input's memory order.
    """

    algorithm: ClassVar[str] = "separable"
    argc: object
    argr: object
    padded_hw: tuple
    kernel_size: tuple
    stride: tuple
    dilation: tuple
    crop: Crop | None


@dataclass(frozen=True, eq=False)
class MaxPoolOutputCache:
    """Separable max pooling run for its output only (no gradient wanted): no arg-max was kept,
    so there is nothing to route a gradient with.

    Shape:
        not applicable (no fields).
    """

    algorithm: ClassVar[str] = "separable"


@dataclass(frozen=True, eq=False)
class MaxPoolArgCache:
    """Max pooling with the tracked arg-max.

    Attributes:
        arg: per output, the winning kernel offset ``a·kW + b`` (smallest int dtype) (N, C, Ho, Wo).
        x_shape: the input's shape (N, C, H, W).
        padded_hw: (Hp, Wp) of the padded input.
        kernel_size, stride, padding, dilation: (h, w) pairs.
        dtype: the input's dtype.

    Shape:
        arg (N, C, Ho, Wo).
    """

    algorithm: ClassVar[str] = "running max"
    arg: object
    x_shape: tuple
    padded_hw: tuple
    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    dtype: object


@dataclass(frozen=True, eq=False)
class AvgPoolTileCache:
    """Average pooling whose windows tile the input (stride = kernel, no padding).

    Attributes:
        divisor: ``D`` — a scalar or an (Ho, Wo) array.
        x_shape: the input's shape (N, C, H, W).
        kernel_size: (kH, kW).
        channel_major: the input was a convolution output's channel-major (C, N, H, W) block;
            the backward returns dx in that order too.

    Shape:
        divisor () or (Ho, Wo).
    """

    algorithm: ClassVar[str] = "tiles"
    divisor: object
    x_shape: tuple
    kernel_size: tuple
    channel_major: bool = False


@dataclass(frozen=True, eq=False)
class AvgPoolCache:
    """Average pooling as a sum of offset views.

    Attributes:
        divisor: ``D`` — a scalar or an (Ho, Wo) array.
        x_shape: the input's shape (N, C, H, W).
        padded_hw: (Hp, Wp) of the zero-padded input.
        kernel_size, stride, padding: (h, w) pairs.

    Shape:
        divisor () or (Ho, Wo).
    """

    algorithm: ClassVar[str] = "offset views"
    divisor: object
    x_shape: tuple
    padded_hw: tuple
    kernel_size: tuple
    stride: tuple
    padding: tuple


@dataclass(frozen=True, eq=False)
class LpPoolCache:
    """Finite-``p`` power-average pooling.

    Attributes:
        p: the power (float).
        x: the input (N, C, H, W).
        a: ``avg_pool2d(x^p)`` (N, C, Ho, Wo).
        t: ``sign(a)·relu(|a|)·kH·kW`` (N, C, Ho, Wo); ``y = t^(1/p)``.
        area: ``kH·kW``.
        avg: the inner average pool's cache.

    Shape:
        x (N, C, H, W); a, t (N, C, Ho, Wo).
    """

    algorithm: ClassVar[str] = "power average"
    p: float
    x: object
    a: object
    t: object
    area: int
    avg: object


@dataclass(frozen=True, eq=False)
class LpPoolInfCache:
    """``p = ±∞`` power-average pooling: ``y = sign · max_pool2d(sign·|x|)``.

    Attributes:
        sign: +1 for ``p = ∞``, −1 for ``p = −∞``.
        x: the input (N, C, H, W).
        max: the inner max pool's cache.

    Shape:
        x (N, C, H, W).
    """

    algorithm: ClassVar[str] = "max of |x|"
    sign: int
    x: object
    max: object


@dataclass(frozen=True, eq=False)
class AdaptiveTileCache:
    """Adaptive pooling whose windows tile (``Ho | H``, ``Wo | W``): a plain pool.

    Attributes:
        pool: the cache of ``avg_pool2d`` / ``max_pool2d`` with kernel = stride = (H/Ho, W/Wo).

    Shape:
        as the inner pool's cache.
    """

    algorithm: ClassVar[str] = "tiles"
    pool: object


@dataclass(frozen=True, eq=False)
class AdaptiveAvgCache:
    """Adaptive average pooling as two matrix products.

    Attributes:
        Ah: (Ho, H) with ``Ah[i, h] = 1/len_i`` on row window i.
        Aw: (Wo, W), likewise for columns.

    Shape:
        Ah (Ho, H), Aw (Wo, W).
    """

    algorithm: ClassVar[str] = "separable matmul"
    Ah: object
    Aw: object


@dataclass(frozen=True, eq=False)
class AdaptiveMaxCache:
    """Separable adaptive max pooling.

    Attributes:
        argc: per row and column window, the winning offset in the column window (N, C, H, Wo).
        argr: per output, the winning offset in the row window (N, C, Ho, Wo).
        x_shape: the input's shape (N, C, H, W).
        dtype: the input's dtype.

    Shape:
        argc (N, C, H, Wo), argr (N, C, Ho, Wo).
    """

    algorithm: ClassVar[str] = "separable"
    argc: object
    argr: object
    x_shape: tuple
    dtype: object


@dataclass(frozen=True, eq=False)
class ReferenceCache:
    """What the lecture's reference loops (:mod:`glassnet.ops.pool.reference`) keep.

    Attributes:
        op: ``"max"``, ``"avg"``, ``"lp"``, ``"adaptive_avg"`` or ``"adaptive_max"``.
        x: the input (N, C, H, W).
        args: the op's :class:`~glassnet.ops.pool.args.PoolArgs` / ``AdaptivePoolArgs``.
        out: the output (N, C, Ho, Wo).
        argmax: max pools: the flat ``r·W + c`` index of each output's winner (int64), else ``None``.

    Shape:
        x (N, C, H, W); out, argmax (N, C, Ho, Wo).
    """

    algorithm: ClassVar[str] = "reference"
    op: str
    x: object
    args: object
    out: object
    argmax: object = None
