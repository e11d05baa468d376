"""Functional activations (PyTorch's names and signatures)."""
from __future__ import annotations

from ..errors import InvalidArgumentError
from ..op_args import EluArgs, LeakyReluArgs
from ..op_record import OpRecord
from ..ops import activations as K
from ..tensor import apply_kernel


def relu(input, inplace: bool = False):
    """max(0, x). ``inplace`` is accepted for PyTorch compatibility and ignored.

    Shape: any; the output has the input's shape.
    """
    return input.relu()


def relu_(input):
    """max(0, x) in place, PyTorch's ``F.relu_``: ``input``'s array is overwritten and the
    result shares it. Only for an input nothing else reads afterwards (its producer's backward
    included): glassnet keeps no version counters to catch a misuse, so a leaf that requires
    grad is refused. ``nn.Sequential`` uses it on a ``Conv2d`` / ``Linear`` output that only
    its ``ReLU`` reads (:mod:`glassnet.nn.fusion`).

    Shape: any; the output has the input's shape (and memory).
    """
    if input.requires_grad and input.is_leaf:
        raise InvalidArgumentError("relu_: an in-place ReLU on a leaf tensor that requires grad would overwrite "
                                   f"it (shape {tuple(input.shape)}); use relu")
    return apply_kernel("relu", K.relu_inplace_forward, K.relu_backward, [input])


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """max(αx, x) with α = ``negative_slope``.

    Shape: any; the output has the input's shape.
    """
    return apply_kernel(OpRecord("leaky_relu", LeakyReluArgs(negative_slope)), K.leaky_relu_forward,
                        K.leaky_relu_backward, [input], negative_slope)


def elu(input, alpha: float = 1.0, inplace: bool = False):
    """x if x > 0 else α(eˣ − 1).

    Shape: any; the output has the input's shape.
    """
    return apply_kernel(OpRecord("elu", EluArgs(alpha)), K.elu_forward, K.elu_backward, [input], alpha)


def sigmoid(input):
    """1 / (1 + e^(−x)).

    Shape: any; the output has the input's shape.
    """
    return input.sigmoid()


def tanh(input):
    """tanh(x).

    Shape: any; the output has the input's shape.
    """
    return input.tanh()


def softmax(input, dim: int = -1):
    """e^(s_j) / Σ_k e^(s_k) along ``dim`` (numerically stable).

    Shape: any; the output has the input's shape, normalised along ``dim``.
    """
    return input.softmax(dim)


def log_softmax(input, dim: int = -1):
    """log softmax along ``dim`` (numerically stable).

    Shape: any; the output has the input's shape, normalised along ``dim``.
    """
    return input.log_softmax(dim)
