"""Loss modules."""
from __future__ import annotations

from . import functional as F
from .module import Module


class MSELoss(Module):
    """L2 regression loss ℓ = reduce((ŷ − y)²), reduction 'mean' | 'sum' | 'none'.

    Shape: input and target the same shape; output scalar (or input's shape for 'none').
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(Module):
    """Softmax cross-entropy: ℓ_i = −log softmax(s_i)[y_i] with integer labels.

    Shape: input (N, C) logits; target (N,) integers in [0, C); output scalar
    (or (N,) for 'none').
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
