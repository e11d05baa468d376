"""Functional dropout."""
from __future__ import annotations

from ...kernels import dropout as K
from ...random import get_rng
from ...tensor import apply_kernel


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, rng=None):
    """Inverted dropout: zero each element with probability ``p`` and scale the
    rest by 1/(1−p) while ``training``; identity otherwise."""
    return apply_kernel(
        "dropout", K.dropout_forward, K.dropout_backward, [input], p, rng or get_rng(), training
    )
