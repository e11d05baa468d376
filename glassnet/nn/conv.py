"""Convolution layers: ``Conv2d``."""
from __future__ import annotations

import numpy as np

from ..backend import get_default_dtype
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from ..errors import InvalidArgumentError
from ..ops.conv.args import ConvArgs

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


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
        padding: int or (pH, pW) zeros on each side (default 0),
            ``((top, bottom), (left, right))``, ``'valid'`` (none) or ``'same'`` (output as large as the input; stride 1 only;
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
        args = ConvArgs.from_user(kernel_size, stride, padding, dilation, groups, layer="Conv2d")
        in_channels, out_channels = args.check_channels(in_channels, out_channels)
        groups = args.groups
        self.kernel_size, self.stride, self.dilation = args.kernel_size, args.stride, args.dilation
        if isinstance(padding, str):
            self.padding = padding  # as PyTorch keeps it; F.conv2d resolves it the same way
        else:
            t, b, l, r = args.padding
            self.padding = (t, l) if (t, l) == (b, r) else args.padding_pairs
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
