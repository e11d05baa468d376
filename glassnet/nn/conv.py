"""Convolution layers: ``Conv2d``."""
from __future__ import annotations

import numpy as np

from ..backend import get_default_dtype
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from ..errors import InvalidArgumentError

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(value, name, low):
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or any(isinstance(v, bool) or int(v) != v or v < low for v in pair):
        raise InvalidArgumentError(f"Conv2d: {name} must be an int >= {low} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _positive(value, name):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise InvalidArgumentError(f"Conv2d: {name} must be a positive integer, got {value!r}")
    return int(value)


class Conv2d(Module):
    """2-D convolution over an NCHW batch (cross-correlation, as in PyTorch).

    Each output pixel is one filter's dot product with one kH×kW×(C_in/groups)
    patch of the zero-padded input. glassnet lowers the whole layer to one
    matrix multiply (im2col)::

        X_col = im2col(X)                     (N, C_in/groups·kH·kW, H_out·W_out) per group
        W_row = weight.reshape(C_out, C_in/groups·kH·kW)
        O     = W_row · X_col + b             (N, C_out, H_out·W_out) -> (N, C_out, H_out, W_out)

    and the backward is dW = Σ_n dO_n·X_col,nᵀ, db = Σ dO, dX = col2im(W_rowᵀ·dO)
    (see :mod:`glassnet.ops.conv`).

    Args:
        in_channels, out_channels: C_in and C_out; both divisible by ``groups``.
        kernel_size: int or (kH, kW).
        stride: int or (sH, sW) (default 1).
        padding: int or (pH, pW) zeros on each side (default 0), ``'valid'``
            (none) or ``'same'`` (output as large as the input; stride 1 only;
            an even effective kernel pads one extra row/column bottom/right,
            as PyTorch does).
        dilation: int or (dH, dW): spacing between kernel taps (default 1).
        groups: split the channels into ``groups`` independent convolutions
            (``groups = in_channels``: depthwise). Default 1.
        bias: learn an additive bias per output channel (default True).
        padding_mode: only ``'zeros'`` is implemented.
        dtype: parameter dtype (float32 default).

    Shape:
        Input: (N, C_in, H, W) or unbatched (C_in, H, W).
        Output: (N, C_out, H_out, W_out) or (C_out, H_out, W_out), where

            H_out = floor((H + 2p − d·(k − 1) − 1)/s) + 1

        with k, s, p, d the kernel size, stride, padding and dilation along
        the height (likewise W_out along the width). This is the lecture's
        (N − F + 2P)/S + 1 for d = 1, floored as PyTorch does.

    Attributes:
        weight: (out_channels, in_channels/groups, kH, kW), PyTorch's layout,
            init kaiming_uniform(a=√5) = U(−1/√fan_in, 1/√fan_in) with
            fan_in = in_channels/groups·kH·kW.
        bias: (out_channels,), init U(−1/√fan_in, 1/√fan_in).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype=None,
    ):
        super().__init__()
        in_channels = _positive(in_channels, "in_channels")
        out_channels = _positive(out_channels, "out_channels")
        groups = _positive(groups, "groups")
        if in_channels % groups:
            raise InvalidArgumentError(f"Conv2d: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise InvalidArgumentError(f"Conv2d: out_channels ({out_channels}) must be divisible by groups ({groups})")
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.dilation = _pair(dilation, "dilation", 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise InvalidArgumentError(f"Conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise InvalidArgumentError(
                    f"Conv2d: padding='same' is not supported for strided convolutions (stride={self.stride})"
                )
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding", 0)
        if padding_mode not in _PADDING_MODES:
            raise InvalidArgumentError(f"Conv2d: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"Conv2d: padding_mode={padding_mode!r} is not implemented in glassnet; only 'zeros' is"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode = padding_mode
        dtype = np.dtype(dtype or get_default_dtype())
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size, dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dtype)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
            layer=f"Conv2d({self.extra_repr()})",
        )

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
