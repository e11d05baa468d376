"""Functional losses."""
from __future__ import annotations

from ..backend import get_array_module
from ..errors import ShapeError
from ..op_args import LossArgs
from ..op_record import OpRecord
from ..ops import losses as K
from ..tensor import Tensor, apply_kernel, tensor


def mse_loss(input, target, reduction: str = "mean"):
    """L2 regression loss: mean (or sum) of (input − target)².

    Shape: input and target the same shape; output () for ``mean``/``sum``,
    the input's shape for ``none``.
    """
    if not isinstance(target, Tensor):
        target = tensor(target, dtype=input.dtype)
    if input.shape != target.shape:
        raise ShapeError(
            f"mse_loss: input shape {input.shape} and target shape {target.shape} must be equal "
            "(glassnet does not broadcast losses)"
        )
    return apply_kernel(OpRecord("mse_loss", LossArgs(reduction)), K.mse_loss_forward, K.mse_loss_backward,
                        [input, target], reduction)


def cross_entropy(input, target, reduction: str = "mean"):
    """Softmax cross-entropy between logits ``input`` (N, C) and integer class
    labels ``target`` (N,) in [0, C).

    Shape: input (N, C), target (N,) int; output () for ``mean``/``sum``, (N,) for ``none``.
    """
    labels = target.data if isinstance(target, Tensor) else tensor(target).data
    return apply_kernel(
        OpRecord("cross_entropy", LossArgs(reduction)),
        lambda x: K.cross_entropy_forward(x, labels, reduction),
        lambda g, cache: K.cross_entropy_backward(g, cache),
        [input],
    )


def nll_loss(input, target, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C) at labels ``target``.

    Shape: input (N, C), target (N,) int; output () for ``mean``/``sum``, (N,) for ``none``.
    """
    labels = target.data if isinstance(target, Tensor) else tensor(target).data
    if input.ndim != 2 or labels.shape != (input.shape[0],):
        raise ShapeError(f"nll_loss: expected input (N, C) and target (N,), got {input.shape} and {labels.shape}")
    xp = get_array_module(input.data)
    picked = -input[xp.arange(input.shape[0]), labels]
    if reduction == "mean":
        return picked.mean()
    if reduction == "sum":
        return picked.sum()
    return picked
