"""Fully connected layers: ``Linear``, ``Maxout``, ``Identity``, ``Flatten``."""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_default_dtype
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter
from ..errors import InvalidArgumentError


class Linear(Module):
    """y = x Wᵀ + b  (the lecture's f = Wx + b for each row x).

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias (default True).
        dtype: parameter dtype (float32 default).

    Shape:
        Input: (*, in_features). Output: (*, out_features).

    Attributes:
        weight: (out_features, in_features), PyTorch's layout, init
            U(−1/√in_features, 1/√in_features).
        bias: (out_features,), same init.

    Examples:
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> fc = nn.Linear(3, 2)
        >>> fc.weight.shape, fc.bias.shape          # PyTorch's layout: (out_features, in_features)
        ((2, 3), (2,))
        >>> fc(gn.zeros(4, 3)).shape
        (4, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        dtype = np.dtype(dtype or get_default_dtype())
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise InvalidArgumentError(f"Linear: {name} must be an int >= 0, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dtype)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias, layer=f"Linear({self.in_features}, {self.out_features})")

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Maxout(Module):
    """Maxout (Goodfellow et al. 2013): y = max_k (x W_kᵀ + b_k) over ``num_pieces`` linear pieces.

    Generalises ReLU and leaky ReLU (both are maxouts of two pieces); it does
    not saturate but doubles (k×) the parameters.

    Shape:
        Input: (N, in_features). Output: (N, out_features).

    Attributes:
        weight: (num_pieces, out_features, in_features); bias: (num_pieces, out_features).
    """

    def __init__(self, in_features: int, out_features: int, num_pieces: int = 2, bias: bool = True, dtype=None):
        super().__init__()
        if num_pieces < 1:
            raise InvalidArgumentError(f"Maxout: num_pieces must be >= 1, got {num_pieces}")
        dtype = np.dtype(dtype or get_default_dtype())
        self.in_features, self.out_features, self.num_pieces = in_features, out_features, num_pieces
        self.weight = Parameter(np.empty((num_pieces, out_features, in_features), dtype=dtype))
        self.register_parameter(
            "bias", Parameter(np.empty((num_pieces, out_features), dtype=dtype)) if bias else None
        )
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.maxout(x, self.weight, self.bias, layer=f"Maxout({self.in_features}, {self.out_features})")

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, num_pieces={self.num_pieces}"


class Identity(Module):
    """Returns its input unchanged.  Shape: any."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` (default: all but the batch dim).

    Shape:
        Input: (N, *). Output: (N, ∏ *) for the defaults.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
