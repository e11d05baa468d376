"""Dropout layers."""
from __future__ import annotations

from . import functional as F
from .module import Module


class Dropout(Module):
    """Inverted dropout: while training, zero each element with probability
    ``p`` and scale the survivors by 1/(1−p); identity in ``eval()`` mode.

    Shape: any; output has the input's shape.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
