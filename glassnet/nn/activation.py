"""Activation layers (wrappers around :mod:`glassnet.nn.functional`). Shape: any → same."""
from __future__ import annotations

from . import functional as F
from .module import Module


class ReLU(Module):
    """max(0, x).  Shape: any; output has the input's shape.

    Examples:
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> nn.ReLU()(gn.tensor([-1.0, 0.0, 2.0]))
        tensor([0., 0., 2.], dtype=float32)
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """max(αx, x), α = ``negative_slope`` (PyTorch default 0.01; the lecture uses 0.1).

    Shape: any; output has the input's shape.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x if x > 0 else α(eˣ − 1).  Shape: any; output has the input's shape."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Sigmoid(Module):
    """1 / (1 + e^(−x)).  Shape: any; output has the input's shape."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x).  Shape: any; output has the input's shape."""

    def forward(self, x):
        return F.tanh(x)


class Softmax(Module):
    """Softmax along ``dim``.  Shape: any; output has the input's shape."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """Log-softmax along ``dim``.  Shape: any; output has the input's shape."""

    def forward(self, x):
        return F.log_softmax(x, self.dim)
