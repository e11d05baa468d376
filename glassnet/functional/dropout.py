"""Functional dropout."""
from __future__ import annotations

from ..errors import ShapeError
from ..op_args import DropoutArgs
from ..op_record import OpRecord
from ..ops import dropout as K
from ..random import get_rng
from ..tensor import apply_kernel


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, rng=None):
    """Inverted dropout: zero each element with probability ``p`` and scale the
    rest by 1/(1−p) while ``training``; identity otherwise.

    Shape: any; the output has the input's shape.
    """
    return apply_kernel(
        OpRecord("dropout", DropoutArgs(p, training)), K.dropout_forward, K.dropout_backward, [input], p, rng or get_rng(), training
    )


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, rng=None,
              *, layer: str = "dropout2d"):
    """Channel-wise dropout: zero each whole channel ``input[n, c]`` with
    probability ``p`` and scale the rest by 1/(1−p) while ``training``;
    identity otherwise.

    Shape: (N, C, H, W), or (N, C, L) as PyTorch interprets a 3-D input.
    """
    if input.ndim not in (3, 4):
        raise ShapeError(
            f"{layer}: expected a 4-D input (N, C, H, W) or 3-D input (N, C, L), "
            f"got shape {tuple(input.shape)} ({input.ndim}-D)"
        )
    return apply_kernel(
        OpRecord("dropout2d", DropoutArgs(p, training)), K.dropout2d_forward, K.dropout2d_backward, [input], p, rng or get_rng(), training
    )
