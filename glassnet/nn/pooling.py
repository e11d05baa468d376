"""Pooling layers: ``MaxPool2d``, ``AvgPool2d``, ``LPPool2d``,
``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d`` (PyTorch's names, constructor
arguments, attributes and ``repr``). No parameters.

Pooling downsamples each channel on its own: a ``k×k`` window slides with
``stride``, and each window is reduced to one number (max, mean, or the
``p``-norm). The lecture's POOL layer is ``MaxPool2d(2)`` (2×2, stride 2).

The arguments are checked on construction by the pool family's argument
objects (:class:`~glassnet.ops.pool.args.PoolArgs`, ``AdaptivePoolArgs``),
the same ones ``F.max_pool2d`` & co. and the kernels use; the attributes keep
what the user gave, as PyTorch's.
"""
from __future__ import annotations

from ..ops.pool.args import AdaptivePoolArgs, PoolArgs
from . import functional as F
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "LPPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


class _Pool(Module):
    def _name(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class MaxPool2d(_Pool):
    """2-D max pooling: each output is the maximum of its window.

    Backward routes each gradient to its window's arg-max (first element on
    ties, as PyTorch); every other input gets 0.

    Args:
        kernel_size: window size, int or (kH, kW).
        stride: window step (default: ``kernel_size``).
        padding: implicit ``−inf`` padding on both sides, at most
            ``kernel_size // 2``.
        dilation: spacing between window elements.
        return_indices: also return the flat arg-max indices (as PyTorch).
        ceil_mode: use ceil instead of floor for the output size.

    Shape:
        Input: (N, C, H_in, W_in) or (C, H_in, W_in).
        Output: (N, C, H_out, W_out) or (C, H_out, W_out), where
        ``H_out = ⌊(H_in + 2·padding[0] − dilation[0]·(kernel_size[0] − 1) − 1) / stride[0] + 1⌋``
        and likewise ``W_out`` (with ``ceil_mode``: ⌈ ⌉, dropping a last
        window that would start in the right padding).

    Examples:
        >>> import numpy as np
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> x = gn.tensor(np.arange(16.0).reshape(1, 1, 4, 4))
        >>> nn.MaxPool2d(2, stride=2)(x).numpy()[0, 0]
        array([[ 5.,  7.],
               [13., 15.]])
        >>> nn.MaxPool2d(3, stride=2)(gn.zeros(1, 96, 55, 55)).shape     # AlexNet's POOL1: (55 − 3)/2 + 1
        (1, 96, 27, 27)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode
        PoolArgs("max", kernel_size, stride, padding, dilation, ceil_mode, layer=type(self).__name__)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
                            layer=self._name())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool):
    """2-D average pooling: each output is the mean of its window.

    Args:
        kernel_size, stride (default ``kernel_size``), padding (zeros, at
        most ``kernel_size // 2``), ceil_mode: as :class:`MaxPool2d`.
        count_include_pad: divide by the whole window, padding included
            (default), or only by the real input elements in it.
        divisor_override: divide by this number instead.

    Shape:
        Input: (N, C, H_in, W_in) or (C, H_in, W_in).
        Output: (N, C, H_out, W_out) or (C, H_out, W_out), where
        ``H_out = ⌊(H_in + 2·padding[0] − kernel_size[0]) / stride[0] + 1⌋``
        and likewise ``W_out`` (ceil with ``ceil_mode``).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        PoolArgs("avg", kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override,
                 layer=type(self).__name__)

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override, layer=self._name())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class LPPool2d(_Pool):
    """2-D power-average pooling, ``y = (Σ over the window of x^p)^(1/p)``.

    ``norm_type = 2`` is the lecture's L2-norm pooling; ``p = 1`` is sum
    pooling; ``p = ∞`` is max pooling of ``|x|``. No padding.

    Args:
        norm_type: the power ``p``.
        kernel_size, stride (default ``kernel_size``; kept as ``None`` in
            the attribute, as PyTorch), ceil_mode: as :class:`MaxPool2d`.

    Shape:
        Input: (N, C, H_in, W_in) or (C, H_in, W_in).
        Output: (N, C, H_out, W_out) or (C, H_out, W_out), where
        ``H_out = ⌊(H_in − kernel_size[0]) / stride[0] + 1⌋`` and likewise
        ``W_out`` (ceil with ``ceil_mode``).
    """

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode
        PoolArgs("lp", kernel_size, stride, 0, 1, ceil_mode, norm_type=norm_type, layer=type(self).__name__)

    def forward(self, x):
        return F.lp_pool2d(x, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode,
                           layer=self._name())

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class AdaptiveAvgPool2d(_Pool):
    """Adaptive average pooling to a fixed output size, whatever the input size.

    Output ``(i, j)`` averages rows ``[⌊i·H_in/H_out⌋, ⌈(i+1)·H_in/H_out⌉)``
    × the same rule on columns. ``AdaptiveAvgPool2d(1)`` is global average
    pooling (GoogLeNet, ResNet).

    Args:
        output_size: ``H_out`` (square) or ``(H_out, W_out)``; ``None``
            keeps that input size.

    Shape:
        Input: (N, C, H_in, W_in) or (C, H_in, W_in).
        Output: (N, C, H_out, W_out) or (C, H_out, W_out), ``(H_out, W_out) = output_size``.
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size
        AdaptivePoolArgs("avg", output_size, layer=type(self).__name__)

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size, layer=self._name())

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(_Pool):
    """Adaptive max pooling to a fixed output size (windows as
    :class:`AdaptiveAvgPool2d`); backward routes to the arg-max, first on ties.

    Args:
        output_size: ``H_out`` or ``(H_out, W_out)``; ``None`` keeps that size.
        return_indices: also return the flat arg-max indices (as PyTorch).

    Shape:
        Input: (N, C, H_in, W_in) or (C, H_in, W_in).
        Output: (N, C, H_out, W_out) or (C, H_out, W_out), ``(H_out, W_out) = output_size``.
    """

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices
        AdaptivePoolArgs("max", output_size, layer=type(self).__name__)

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices, layer=self._name())

    def extra_repr(self):
        return f"output_size={self.output_size}"
