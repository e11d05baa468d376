"""The frozen argument objects of the pool family: the one place that normalises and validates.

``nn.MaxPool2d`` & co. (at construction), ``F.max_pool2d`` & co. and the kernels all build a
:class:`PoolArgs` or :class:`AdaptivePoolArgs` from what the user gave; a bad value raises there,
naming the layer, the argument and the rule:

    >>> PoolArgs("max", 2.5, layer="MaxPool2d")
    Traceback (most recent call last):
    ...
    glassnet.errors.InvalidArgumentError: MaxPool2d: kernel_size must be an int >= 1 or a pair of them, got 2.5 (2.5 is not a whole number)
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from ...errors import InvalidArgumentError, InvalidTypeError, ShapeError
from ..int_pairs import int_pair as _pair
from .geometry import pool_output_size

__all__ = ["PoolArgs", "AdaptivePoolArgs"]

_OP_NAMES = {"max": "max_pool2d", "avg": "avg_pool2d", "lp": "lp_pool2d"}


@dataclass(frozen=True)
class PoolArgs:
    """A sliding-window pool's hyper-parameters, normalised and checked on construction.

    ``PoolArgs("max", 3, 2, padding=1)`` becomes ``kernel_size=(3, 3), stride=(2, 2),
    padding=(1, 1)``. Sizes must be whole numbers (``2.0`` is taken as 2, ``2.5`` raises
    :class:`~glassnet.errors.InvalidArgumentError`, a string :class:`~glassnet.errors.InvalidTypeError`).

    Attributes:
        kind: ``"max"``, ``"avg"`` or ``"lp"``.
        kernel_size: (kH, kW), each >= 1.
        stride: (sH, sW), each >= 1 (``kernel_size`` when the user gave ``None``).
        padding: (pH, pW), symmetric (PyTorch pools pad both sides alike), each
            at most half the kernel (``pH <= kH // 2``; 0 for ``"lp"``).
        dilation: (dH, dW), each >= 1 (max pooling only; 1 otherwise).
        ceil_mode: round the output size up (dropping a window that would start in the right padding).
        count_include_pad: average pooling: padding counts in the divisor.
        divisor_override: average pooling: the divisor, if given (non-zero).
        norm_type: Lp pooling's p (non-zero; ``None`` for other kinds).
        layer: the name errors give (``"MaxPool2d(kernel_size=2, ...)"``; default the op's
            name, ``"max_pool2d"``); not part of equality or ``repr``.

    Shape:
        output (Ho, Wo): Ho = floor((H + 2·pH − dH·(kH − 1) − 1)/sH) + 1
        (ceil with ``ceil_mode``), likewise Wo (:meth:`output_hw`).
    """

    kind: str
    kernel_size: tuple
    stride: tuple = None
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    norm_type: float | None = None
    layer: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.kind not in _OP_NAMES:
            raise InvalidArgumentError(f"PoolArgs: kind must be one of {sorted(_OP_NAMES)}, got {self.kind!r}")
        layer = self.layer or _OP_NAMES[self.kind]
        k = _pair(layer, "kernel_size", self.kernel_size, 1)
        stride = self.stride
        s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
            else _pair(layer, "stride", stride, 1)
        p = _pair(layer, "padding", self.padding, 0)
        d = _pair(layer, "dilation", self.dilation, 1)
        if self.kind != "max" and d != (1, 1):
            raise InvalidArgumentError(f"{layer}: only max pooling takes a dilation, got dilation={d}")
        if self.kind == "lp" and p != (0, 0):
            raise InvalidArgumentError(f"{layer}: Lp pooling takes no padding, got padding={p}")
        if p[0] > k[0] // 2 or p[1] > k[1] // 2:
            raise ShapeError(
                f"{layer}: padding={p} is more than half of kernel_size={k}; the rule (as in PyTorch) is "
                f"padding <= kernel_size // 2 (half the kernel size, rounded down) in each dimension, "
                f"so that every window overlaps the input")
        div = self.divisor_override
        if div is not None:
            if isinstance(div, bool) or not isinstance(div, numbers.Real):
                raise InvalidTypeError(f"{layer}: divisor_override must be a number or None, got {div!r}")
            if div == 0:
                raise InvalidArgumentError(f"{layer}: divisor_override must be non-zero")
        norm = self.norm_type
        if self.kind == "lp":
            if isinstance(norm, bool) or not isinstance(norm, numbers.Real):
                raise InvalidTypeError(f"{layer}: norm_type must be a number, got {norm!r}")
            norm = float(norm)
            if norm == 0:
                raise InvalidArgumentError(
                    f"{layer}: norm_type must be non-zero (y = (Σ x^p)^(1/p)), got {self.norm_type}")
        put = object.__setattr__  # frozen: normalise in place, once
        put(self, "kernel_size", k)
        put(self, "stride", s)
        put(self, "padding", p)
        put(self, "dilation", d)
        put(self, "ceil_mode", bool(self.ceil_mode))
        put(self, "count_include_pad", bool(self.count_include_pad))
        put(self, "norm_type", norm)
        put(self, "layer", layer)

    def output_hw(self, shape):
        """``(Ho, Wo)`` of an input of ``shape`` (``(..., H, W)``), exactly as PyTorch
        (:func:`~glassnet.ops.pool.geometry.pool_output_size`); a :class:`ShapeError`
        when no window fits.

        Shape: shape (N, C, H, W) or (C, H, W) -> (Ho, Wo).
        """
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        H, W = shape[-2], shape[-1]
        Ho = pool_output_size(H, kh, sh, ph, dh, self.ceil_mode)
        Wo = pool_output_size(W, kw, sw, pw, dw, self.ceil_mode)
        if Ho < 1 or Wo < 1:
            span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
            raise ShapeError(
                f"{self.layer}: a {kh}x{kw} window (dilation {self.dilation}, spanning {span[0]}x{span[1]}) "
                f"doesn't fit the input of shape {tuple(shape)} padded by {self.padding} to "
                f"{H + 2 * ph}x{W + 2 * pw} (the input is too small): "
                f"out = floor((in + 2*padding - dilation*(kernel-1) - 1) / stride) + 1 gives {Ho}x{Wo}, "
                f"which must be at least 1x1")
        return Ho, Wo


def _size(layer, v, given):
    """One adaptive output size: ``None`` (keep the input's) or a whole number >= 1."""
    if v is None:
        return None
    if type(v) is int and v >= 1:  # the common case skips the ABC checks below
        return v
    rule = f"{layer}: output_size must be an int >= 1, None or a pair of them, got {given!r}"
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise InvalidTypeError(f"{rule} (a {type(v).__name__}, not a number)")
    if not isinstance(v, numbers.Integral) and not (math.isfinite(v) and float(v).is_integer()):
        raise InvalidArgumentError(f"{rule} ({v!r} is not a whole number)")
    if v < 1:
        raise ShapeError(f"{layer}: output_size must be positive, got {given!r}")
    return int(v)


@dataclass(frozen=True)
class AdaptivePoolArgs:
    """An adaptive pool's target size, normalised and checked on construction.

    Attributes:
        kind: ``"max"`` or ``"avg"``.
        output_size: (Ho, Wo), each an int >= 1 or ``None`` (keep that input size; see
            :meth:`resolved`). Window i covers rows [floor(i·H/Ho), ceil((i+1)·H/Ho)).
        layer: the name errors give (default ``"adaptive_max_pool2d"`` /
            ``"adaptive_avg_pool2d"``); not part of equality or ``repr``.

    Shape:
        output (N, C, Ho, Wo).
    """

    kind: str
    output_size: tuple
    layer: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.kind not in ("max", "avg"):
            raise InvalidArgumentError(f"AdaptivePoolArgs: kind must be 'max' or 'avg', got {self.kind!r}")
        layer = self.layer or f"adaptive_{self.kind}_pool2d"
        given = self.output_size
        if isinstance(given, (tuple, list)):
            if len(given) != 2:
                raise InvalidArgumentError(f"{layer}: output_size must be an int or a pair, got {given!r}")
            items = tuple(given)
        else:
            items = (given, given)
        object.__setattr__(self, "output_size", tuple(_size(layer, v, given) for v in items))
        object.__setattr__(self, "layer", layer)

    def output_hw(self, shape):
        """``(Ho, Wo)`` for an input of ``shape`` (``(..., H, W)``): ``None`` sizes become the
        input's; a :class:`ShapeError` for an empty spatial dimension.

        Shape: shape (N, C, H, W) or (C, H, W) -> (Ho, Wo).
        """
        H, W = shape[-2], shape[-1]
        if H < 1 or W < 1:
            raise ShapeError(
                f"{self.layer}: input of shape {tuple(shape)} has an empty spatial dimension; "
                "adaptive pooling needs H, W >= 1")
        oh, ow = self.output_size
        return (H if oh is None else oh, W if ow is None else ow)

    def resolved(self, shape):
        """These arguments with the sizes of :meth:`output_hw` (no ``None`` left).

        Shape: shape (N, C, H, W) or (C, H, W).
        """
        return AdaptivePoolArgs(self.kind, self.output_hw(shape), layer=self.layer)
