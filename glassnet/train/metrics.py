"""Classification metrics on NumPy arrays: correct count, softmax, top-k, confusion matrix, report.

    probs = softmax(logits)                       # (N, C) float64
    topk_accuracy(probs, labels, 5)               # the label among the 5 most probable classes
    metrics(probs, labels, class_names)           # top-1/top-5, loss, per class, confusion matrix
"""
from __future__ import annotations

import numpy as np

__all__ = ["count_correct", "softmax", "confusion_matrix", "topk_accuracy", "metrics"]


def count_correct(scores, labels) -> int:
    """How many rows of ``scores`` have their largest score at their label (ties: lower index).

    Shape:
        scores: (N, num_classes); labels: (N,) integers.
    """
    return int((np.asarray(scores).argmax(axis=1) == np.asarray(labels)).sum())


def softmax(logits) -> np.ndarray:
    """Row-wise softmax in float64 (the softmax kernel: max-subtracted, so no overflow).

    Shape:
        logits: (N, num_classes) -> (N, num_classes) float64, rows summing to 1.
    """
    from ..ops.softmax import softmax_forward

    return softmax_forward(np.asarray(logits, dtype=np.float64), axis=1)[0]


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class.

    Shape:
        labels, predictions: (N,) integers in ``[0, num_classes)`` -> (num_classes, num_classes) int64.
    """
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(predictions)), 1)
    return cm


def topk_accuracy(probs, labels, k: int) -> float:
    """Fraction of rows whose label is among their ``k`` most probable classes (ties: lower index first).

    Shape:
        probs: (N, num_classes); labels: (N,). ``nan`` for N = 0.
    """
    probs, labels = np.asarray(probs), np.asarray(labels)
    if not len(labels):
        return float("nan")
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def metrics(probs, labels, names) -> dict:
    """Top-1 (``accuracy``) and, with >= 5 classes, top-5 accuracy, mean cross-entropy,
    per-class accuracy and the confusion matrix of ``probs``.

    Shape:
        probs: (N, num_classes) probabilities; labels: (N,); names: class names (``str(c)`` past its end).
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    n = len(labels)
    num_classes = probs.shape[1]
    cm = confusion_matrix(labels, pred, num_classes)
    per_class = []
    for c in range(num_classes):
        count = int(cm[c].sum())
        per_class.append({"class": c, "name": names[c] if c < len(names) else str(c), "n": count,
                          "correct": int(cm[c, c]), "accuracy": (cm[c, c] / count) if count else None})
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(n), labels], 1e-300, None)))) if n else float("nan")
    acc = float((pred == labels).mean()) if n else float("nan")
    out = {"n": int(n), "accuracy": acc, "top1_accuracy": acc}
    if num_classes >= 5:
        out["top5_accuracy"] = topk_accuracy(probs, labels, 5)
    out.update({"loss": loss, "per_class": per_class, "confusion_matrix": cm.tolist()})
    return out
