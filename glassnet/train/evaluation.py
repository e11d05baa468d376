"""Running a classifier over a loader without gradients: :func:`evaluate` (loss, accuracy) and
:func:`predict_logits`.

    print(evaluate(model, test_loader)["accuracy"])
    logits, labels = predict_logits(model, test_loader)
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..backend import device_of, to_device, to_numpy
from ..errors import InvalidArgumentError
from ..tensor import Tensor
from .metrics import count_correct

__all__ = ["evaluate", "predict_logits", "model_device", "as_input"]


def model_device(model) -> str:
    """The device of ``model``'s first parameter (``"cpu"`` for a model without parameters)."""
    for p in model.parameters():
        return device_of(p.data)
    return "cpu"


def as_input(x, device: str) -> Tensor:
    """A NumPy batch as a Tensor on ``device`` (copied there unless it is the CPU)."""
    return Tensor(to_device(x, device) if device != "cpu" else np.asarray(x))


def progress_bar(iterable, total, desc, enabled):
    """``iterable`` wrapped in a tqdm bar of ``total`` batches when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, unit="batch")


def predict_logits(model, loader, progress: bool = False, desc: str = "predict"):
    """Run ``model`` in eval mode over ``loader``; return (logits, labels) as NumPy arrays.

    Shape:
        logits: (N, num_classes); labels: (N,).
    """
    was_training = model.training
    model.eval()
    device = model_device(model)
    outs, labels = [], []
    try:
        with no_grad():
            for x, y in progress_bar(loader, len(loader), desc, progress):
                outs.append(to_numpy(model(as_input(x, device)).data))
                labels.append(np.asarray(y))
    finally:
        model.train(was_training)
    return np.concatenate(outs), np.concatenate(labels)


def evaluate(model, loader, loss_fn=None, progress: bool = False) -> dict:
    """Loss and accuracy of a classifier over a whole loader (eval mode, no grad).

    Returns ``{"loss", "accuracy", "n"}``; the loss is the mean cross-entropy
    (or ``loss_fn`` with mean reduction) over all ``n`` samples.

    Shape:
        the loader's batches: ``(x, y)`` with x (B, ...) the model's input and y (B,) labels.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    device = model_device(model)
    total_loss, correct, n = 0.0, 0, 0
    try:
        with no_grad():
            for x, y in progress_bar(loader, len(loader), "eval", progress):
                logits = model(as_input(x, device))
                target = as_input(np.asarray(y), device)
                batch = len(y)
                total_loss += float(loss_fn(logits, target).item()) * batch
                correct += count_correct(to_numpy(logits.data), y)
                n += batch
    finally:
        model.train(was_training)
    if n == 0:
        raise InvalidArgumentError("evaluate: the loader yielded no samples")
    return {"loss": total_loss / n, "accuracy": correct / n, "n": n}
