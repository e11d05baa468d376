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

    Examples:
        >>> import numpy as np
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> logits = gn.tensor(np.zeros((2, 2)), requires_grad=True)
        >>> loss = nn.CrossEntropyLoss()(logits, gn.tensor(np.array([0, 1])))
        >>> round(loss.item(), 6)                   # −log(1/2)
        0.693147
        >>> loss.backward()
        >>> logits.grad                             # (softmax − onehot(y)) / N
        array([[-0.25,  0.25],
               [ 0.25, -0.25]])
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
