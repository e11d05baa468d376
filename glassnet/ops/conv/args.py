"""The one frozen argument object of the conv family: the one place that normalises and validates.

``nn.Conv2d`` (at construction), ``F.conv2d`` and the kernels (``conv2d_forward``, ``im2col``,
``col2im``, :func:`conv2d_output_shape`, :func:`same_padding`) all build a :class:`ConvArgs`
with :meth:`ConvArgs.from_user`; a bad value raises there, naming the layer, the argument and the
rule:

    >>> ConvArgs.from_user(3, stride=0, layer="Conv2d")
    Traceback (most recent call last):
    ...
    glassnet.errors.InvalidArgumentError: Conv2d: stride must be an int >= 1 or a pair of them, got 0
    >>> ConvArgs.from_user(4, padding="same")
    ConvArgs(kernel_size=(4, 4), stride=(1, 1), padding=(1, 2, 1, 2), dilation=(1, 1), groups=1)
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from ...errors import InvalidArgumentError, ShapeError
# the sizes' rule is the pool family's, word for word: one implementation for both
from ..int_pairs import int_pair as _pair
from .geometry import output_shape, same_pads

__all__ = ["ConvArgs", "conv2d_output_shape", "same_padding", "positive_int"]


def positive_int(layer, name, value):
    """``value`` as an int if it is a whole number >= 1 (bool is not a number here).

    Shape: not applicable (one int).
    """
    if type(value) is int and value >= 1:  # the common case skips the checks below
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or int(value) != value or value < 1:
        raise InvalidArgumentError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _user_padding(layer, padding, kernel_size, stride, dilation):
    """What a user may give as ``padding`` -> (top, bottom, left, right): an int, a pair (pH, pW),
    ``((top, bottom), (left, right))``, ``'valid'`` (none) or ``'same'`` (stride 1 only)."""
    if type(padding) is tuple and len(padding) == 2 and type(padding[0]) is int and type(padding[1]) is int \
            and padding[0] >= 0 and padding[1] >= 0:  # the common case first
        return padding[0], padding[0], padding[1], padding[1]
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise InvalidArgumentError(
                    f"{layer}: padding='same' is not supported for strided convolutions "
                    f"(stride={stride}); PyTorch allows it only with stride 1"
                )
            (t, b), (l, r) = same_pads(*kernel_size, *dilation)
            return t, b, l, r
        raise InvalidArgumentError(f"{layer}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    if type(padding) is tuple and len(padding) == 2 and type(padding[0]) is tuple and type(padding[1]) is tuple \
            and len(padding[0]) == 2 and len(padding[1]) == 2:  # the kernels' form, as F.conv2d passes it
        (t, b), (l, r) = padding
        if type(t) is int and type(b) is int and type(l) is int and type(r) is int and min(t, b, l, r) >= 0:
            return t, b, l, r
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and any(isinstance(p, (tuple, list)) for p in padding):
        (t, b), (l, r) = (_pair(layer, "padding", p, 0) for p in padding)
        return t, b, l, r
    ph, pw = _pair(layer, "padding", padding, 0)
    return ph, ph, pw, pw


@dataclass(frozen=True)
class ConvArgs:
    """A 2-D convolution's hyper-parameters, normalised and checked on construction.

    Build it from what a user gives with :meth:`from_user`; the constructor itself takes the
    normalised form (``padding`` as four ints) and checks it.

    Attributes:
        kernel_size: (kH, kW), each >= 1.
        stride: (sH, sW), each >= 1.
        padding: (top, bottom, left, right) zero padding, each >= 0.
        dilation: (dH, dW), each >= 1.
        groups: number of channel groups, >= 1.
        layer: the name errors give (``"Conv2d(3, 8, kernel_size=(3, 3), ...)"``; default
            ``"conv2d"``); not part of equality or ``repr``.

    Shape:
        output (Ho, Wo) of an (H, W) input (:meth:`output_hw`):
        Ho = floor((H + top + bottom − dH·(kH − 1) − 1)/sH) + 1, likewise Wo.
    """

    kernel_size: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    layer: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        layer = self.layer or "conv2d"
        p = self.padding
        if not (type(p) is tuple and len(p) == 4 and all(type(v) is int and v >= 0 for v in p)):
            if not isinstance(p, (tuple, list)) or len(p) != 4:
                raise InvalidArgumentError(f"{layer}: ConvArgs.padding must be (top, bottom, left, right), got {p!r}")
            p = _pair(layer, "padding", p[:2], 0) + _pair(layer, "padding", p[2:], 0)
        put = object.__setattr__  # frozen: normalise in place, once
        put(self, "kernel_size", _pair(layer, "kernel_size", self.kernel_size, 1))
        put(self, "stride", _pair(layer, "stride", self.stride, 1))
        put(self, "padding", p)
        put(self, "dilation", _pair(layer, "dilation", self.dilation, 1))
        put(self, "groups", positive_int(layer, "groups", self.groups))
        put(self, "layer", layer)

    @classmethod
    def from_user(cls, kernel_size, stride=1, padding=0, dilation=1, groups=1, *, layer="conv2d"):
        """Normalise and check a convolution's arguments as ``nn.Conv2d`` / ``F.conv2d`` take them.

        ``kernel_size``, ``stride``, ``dilation``: an int or a pair; ``padding``: an int, a pair
        (pH, pW), ``((top, bottom), (left, right))``, ``'valid'`` or ``'same'`` (stride 1 only;
        an even effective kernel pads one more bottom/right, as PyTorch); ``groups``: an int >= 1.

        Shape: not applicable (returns a :class:`ConvArgs`).
        """
        k = _pair(layer, "kernel_size", kernel_size, 1)
        s = _pair(layer, "stride", stride, 1)
        d = _pair(layer, "dilation", dilation, 1)
        return cls(k, s, _user_padding(layer, padding, k, s, d), d, positive_int(layer, "groups", groups),
                   layer=layer)

    @property
    def padding_pairs(self):
        """The padding as ``((top, bottom), (left, right))``, the form the kernels take.

        Shape: ((top, bottom), (left, right)).
        """
        t, b, l, r = self.padding
        return (t, b), (l, r)

    def output_hw(self, h, w):
        """``(Ho, Wo)`` of an (h, w) input, exactly as PyTorch; a :class:`ShapeError` showing the
        arithmetic when a side would be < 1.

        Shape: ints -> (Ho, Wo).
        """
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        return output_shape(int(h), int(w), kh, kw, sh, sw, self.padding, dh, dw)

    def check_channels(self, in_channels, out_channels):
        """``in_channels`` and ``out_channels`` positive and divisible by ``groups``
        (``nn.Conv2d``'s constructor); returns them as ints.

        Shape: not applicable (two ints).
        """
        layer, groups = self.layer, self.groups
        in_channels = positive_int(layer, "in_channels", in_channels)
        out_channels = positive_int(layer, "out_channels", out_channels)
        if in_channels % groups:
            raise InvalidArgumentError(f"{layer}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise InvalidArgumentError(f"{layer}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        return in_channels, out_channels

    def check_shapes(self, x_shape, w_shape, b_shape):
        """The input's channels match the filters' (C_in = C_in/groups · groups), C_out divides
        by groups and the bias is (C_out,).

        Shape: x_shape (N, C_in, H, W); w_shape (C_out, C_in/groups, kH, kW); b_shape (C_out,) or None.
        """
        layer, groups = self.layer, self.groups
        c_out, c_per_group = w_shape[:2]
        if c_out % groups:
            raise ShapeError(
                f"{layer}: weight of shape {w_shape} has {c_out} output channels, "
                f"which groups={groups} does not divide"
            )
        if x_shape[1] != c_per_group * groups:
            raise ShapeError(
                f"{layer}: input of shape {x_shape} has {x_shape[1]} channels, but weight of shape {w_shape} "
                f"with groups={groups} expects in_channels = {c_per_group}*{groups} = {c_per_group * groups} "
                f"(weight is (out_channels, in_channels/groups, kH, kW))"
            )
        if b_shape is not None and b_shape != (c_out,):
            raise ShapeError(f"{layer}: bias must have shape ({c_out},) to match weight {w_shape}, got {b_shape}")

    def check_fit(self, x_shape, w_shape):
        """The (dilated) kernel fits inside the padded input on both axes, ``H + 2P >= d·(k − 1) + 1``
        (the arithmetic in the message).

        Shape: x_shape (N, C_in, H, W); w_shape (C_out, C_in/groups, kH, kW) (named in the message).
        """
        layer = self.layer
        t, b, l, r = self.padding
        for axis, size, k, d, before, after in (
            ("height", x_shape[2], self.kernel_size[0], self.dilation[0], t, b),
            ("width", x_shape[3], self.kernel_size[1], self.dilation[1], l, r),
        ):
            eff = d * (k - 1) + 1
            if eff > size + before + after:
                kernel = f"kernel {k}" + (f" with dilation {d} (effective size {d}*({k} - 1) + 1 = {eff})" if d > 1 else "")
                raise ShapeError(
                    f"{layer}: {kernel} is larger than the padded input {axis}: "
                    f"{size} + {before} + {after} = {size + before + after} < {eff} "
                    f"(input {x_shape}, weight {w_shape}); the rule is H + 2P >= d*(k - 1) + 1"
                )


def same_padding(kernel_size, dilation=1):
    """The padding PyTorch applies for ``padding='same'`` (stride 1).

    The total per axis is ``d·(k − 1)``; PyTorch puts ``total // 2`` before
    and the rest after, so an even effective kernel pads one more at the
    bottom/right. Returns ``((top, bottom), (left, right))``, which
    :func:`~glassnet.ops.conv.forward.conv2d_forward` accepts as ``padding``.

    Shape:
        kernel_size, dilation: int or (kH, kW) / (dH, dW).
        returns: ((top, bottom), (left, right)).
    """
    return ConvArgs.from_user(kernel_size, padding="same", dilation=dilation).padding_pairs


def conv2d_output_shape(h, w, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """(Ho, Wo) exactly as PyTorch: ``floor((H + pads − d·(k − 1) − 1) / s) + 1``.

    Raises :class:`~glassnet.errors.ShapeError` when an output side would be < 1.

    Shape:
        h, w, kh, kw: ints; stride, dilation: int or pair; padding: int,
        pair, or ((top, bottom), (left, right)). returns: (Ho, Wo).
    """
    return ConvArgs.from_user((kh, kw), stride, padding, dilation).output_hw(h, w)
