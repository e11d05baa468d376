"""Loss kernels: L2 regression (MSE) and softmax cross-entropy.

``reduction`` is ``'mean'`` (default, as PyTorch), ``'sum'`` or ``'none'``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError

REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True, slots=True, eq=False)
class MseLossCache:
    """What :func:`mse_loss_backward` needs from :func:`mse_loss_forward` (arrays by reference).

    Attributes:
        diff: ŷ − y.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.

    Shape:
        diff: the prediction's shape.
    """

    diff: object
    reduction: str


@dataclass(frozen=True, slots=True, eq=False)
class CrossEntropyCache:
    """What :func:`cross_entropy_backward` needs from :func:`cross_entropy_forward`
    (arrays by reference).

    Attributes:
        log_probs: log softmax of the logits, log p.
        labels: the integer class labels y.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.

    Shape:
        log_probs (N, C), labels (N,).
    """

    log_probs: object
    labels: object
    reduction: str


def _check_reduction(name, reduction):
    if reduction not in REDUCTIONS:
        raise InvalidArgumentError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(values, reduction):
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def mse_loss_forward(pred, target, reduction="mean"):
    """L2 loss: L = Σ_i (ŷ_i − y_i)²  (``sum``), divided by the element count for ``mean``.

    Shape: pred and target the same shape; out: scalar, or pred's shape for ``none``.
    """
    _check_reduction("mse_loss", reduction)
    if pred.shape != target.shape:
        raise ShapeError(
            f"mse_loss: prediction shape {tuple(pred.shape)} and target shape "
            f"{tuple(target.shape)} must be equal"
        )
    diff = pred - target
    return _reduce(diff * diff, reduction), MseLossCache(diff, reduction)


def mse_loss_backward(dout, cache):
    """dL/dŷ = 2(ŷ − y) · dout  (÷ element count for ``mean``); dL/dy = −dL/dŷ."""
    diff = cache.diff
    g = 2 * diff * dout
    if cache.reduction == "mean":
        g = g / diff.size
    return g, -g


def cross_entropy_forward(logits, labels, reduction="mean"):
    """Softmax cross-entropy with integer labels:
    L_i = −log( e^(s_{y_i}) / Σ_j e^(s_j) ) = −s_{y_i} + log Σ_j e^(s_j).

    Shape:
        logits: (N, C); labels: (N,) integers in [0, C);
        out: scalar, or (N,) for ``none``.
    """
    _check_reduction("cross_entropy", reduction)
    xp = get_array_module(logits)
    if logits.ndim != 2:
        raise ShapeError(
            f"cross_entropy: expected logits of shape (N, C), got {tuple(logits.shape)}"
        )
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ShapeError(
            f"cross_entropy: labels must have shape (N,) = ({logits.shape[0]},) "
            f"to match logits {tuple(logits.shape)}, got {tuple(labels.shape)}"
        )
    if labels.dtype.kind not in "iu":
        raise InvalidTypeError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
    n, c = logits.shape
    if n and (int(labels.min()) < 0 or int(labels.max()) >= c):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise InvalidArgumentError(
            f"cross_entropy: label {bad} is out of range for {c} classes "
            f"(labels must lie in [0, {c - 1}])"
        )
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm
    rows = xp.arange(n)
    losses = -log_probs[rows, labels]
    return _reduce(losses, reduction), CrossEntropyCache(log_probs, labels, reduction)


def cross_entropy_backward(dout, cache):
    """dL/ds_j = (p_j − 1[j = y_i]) · dout_i   (÷ N for ``mean``), p = softmax(s)."""
    log_probs, labels, reduction = cache.log_probs, cache.labels, cache.reduction
    xp = get_array_module(log_probs)
    n = log_probs.shape[0]
    g = xp.exp(log_probs)
    g[xp.arange(n), labels] -= 1
    if reduction == "none":
        g *= dout[:, None]
    else:
        g *= dout
        if reduction == "mean" and n:
            g /= n
    return g
