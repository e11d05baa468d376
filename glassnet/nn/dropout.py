"""Dropout layers."""
from __future__ import annotations

from . import functional as F
from .module import Module
from ..errors import InvalidArgumentError


class Dropout(Module):
    """Inverted dropout: while training, zero each element with probability
    ``p`` and scale the survivors by 1/(1−p); identity in ``eval()`` mode.

    Shape: any; output has the input's shape.

    Examples:
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> drop = nn.Dropout(0.5)
        >>> sorted(set(drop(gn.ones(100)).numpy().tolist()))   # zeroed, or scaled by 1/(1 − p)
        [0.0, 2.0]
        >>> drop.eval()(gn.ones(3))                 # the identity at test time
        tensor([1., 1., 1.], dtype=float32)
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise InvalidArgumentError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout2d(Module):
    """Channel-wise dropout: while training, zero each whole channel
    ``x[n, c]`` with probability ``p`` and scale the survivors by 1/(1−p);
    identity in ``eval()`` mode. Dropping whole feature maps suits conv
    layers, whose neighbouring activations are strongly correlated.

    Shape: (N, C, H, W), or (N, C, L) as PyTorch interprets a 3-D input;
    output has the input's shape.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise InvalidArgumentError(f"Dropout2d: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training, layer=f"Dropout2d(p={self.p})")

    def extra_repr(self):
        return f"p={self.p}"
