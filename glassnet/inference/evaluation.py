"""Measuring a trained run on its test set: class probabilities (optionally over ten crops),
:func:`evaluate_run`'s accuracy report, and an ensemble's mean probabilities.

    result = evaluate_run("runs/alexnet", ten_crop=True)     # what ``glassnet evaluate`` prints
    print(result["accuracy"], result.get("top5_accuracy"))
    probs = ensemble_probabilities([evaluate_run(r)["probs"] for r in ("runs/a", "runs/b")])

Top-5 accuracy (the label is among the 5 most probable classes; ties go to the lower class
index, as ``argmax`` does for top-1) is reported when the run has at least 5 classes. Ten-crop
testing classifies each test image by the mean softmax over its 10 crops -- the four corners
and the centre of the resized image, and the same of its mirror image -- as AlexNet's paper
does; the crops come from the run's own evaluation pipeline with its centre crop replaced by
``TenCrop`` (:func:`~glassnet.inference.run_inputs.ten_crop_transform`). An ensemble averages
the members' softmax probabilities: independently trained networks make partly different
mistakes, so the ensemble is usually a little more accurate than its best member (the lecture's
"model ensembles" effect).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError
from ..train.metrics import metrics, softmax
from .run_inputs import default_batch_size, run_test_set, ten_crop_transform

__all__ = ["predict_probabilities", "evaluate_run", "ensemble_probabilities"]


def _crop_average(model):
    """A module running ``model`` on (N, K, C, h, w) crops and returning log(mean softmax over K),
    so that softmax of its output is the crops' mean probability."""
    from ..nn import Module

    class CropAverage(Module):
        """log(mean softmax over the K crops) of ``inner``."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            """(N, K, C, h, w) crops -> (N, num_classes) log mean probabilities."""
            n, k = x.shape[:2]
            p = self.inner(x.reshape(n * k, *x.shape[2:])).softmax(-1)
            return p.reshape(n, k, p.shape[-1]).mean(axis=1).log()

    return CropAverage(model)


def predict_probabilities(model, dataset, batch_size: int = 500, progress: bool = False, desc: str = "evaluate",
                          *, crops: bool = False):
    """The model's class probabilities on every sample of ``dataset`` (eval mode, no grad).

    With ``crops=True`` each sample is a stack of K crops (K, C, h, w) and its probability the
    mean of the crops' softmax outputs. Returns ``(probs, labels)``.

    Shape:
        probs: (N, num_classes) float64; labels: (N,) int64.
    """
    from ..data import DataLoader
    from ..train.evaluation import predict_logits

    net = _crop_average(model) if crops else model
    logits, labels = predict_logits(net, DataLoader(dataset, batch_size=batch_size), progress, desc)
    return softmax(logits), labels.astype(np.int64)


def evaluate_run(run_dir, which: str = "best", data_root=None, limit=None, batch_size=None,
                 progress: bool = False, log=print, *, ten_crop: bool = False) -> dict:
    """Load a run (:func:`glassnet.io.load_run`) and measure it on its test set.

    Returns :func:`~glassnet.train.metrics.metrics` plus ``run``, ``weights_file``, ``which``,
    ``dataset``, ``split``, ``ten_crop``, and ``probs``/``labels`` arrays. ``batch_size=None``:
    :func:`~glassnet.inference.run_inputs.default_batch_size` (a tenth of it with ``ten_crop``,
    whose batches hold 10 crops per image).

    Shape:
        probs: (N, num_classes); labels: (N,).
    """
    from ..io.run_dir import class_names, load_run

    model, config = load_run(run_dir, which=which, log=log)
    if batch_size is None:
        batch_size = max(1, default_batch_size(config) // (10 if ten_crop else 1))
    transform = ten_crop_transform(config) if ten_crop else None
    test = run_test_set(config, data_root=data_root, limit=limit, transform=transform)
    probs, labels = predict_probabilities(model, test, batch_size, progress, desc=f"evaluate {Path(run_dir).name}",
                                          crops=ten_crop)
    if len(labels) and labels.max() >= probs.shape[1]:
        raise InvalidArgumentError(f"{run_dir}: the model has {probs.shape[1]} outputs but the "
                         f"{config.get('dataset', 'fashion-mnist')} test set has labels up to {int(labels.max())}")
    result = {"run": str(run_dir), "weights_file": config["weights_file"], "which": which,
              "model": config["model"], "dataset": config.get("dataset", "fashion-mnist"), "split": "test",
              "ten_crop": bool(ten_crop)}
    result.update(metrics(probs, labels, class_names(config)))
    result["probs"], result["labels"] = probs, labels
    return result


def ensemble_probabilities(member_probs) -> np.ndarray:
    """The ensemble's prediction: the mean of the members' softmax outputs.

    Shape:
        member_probs: M arrays (N, C) -> (N, C) float64.
    """
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in member_probs])
    return stack.mean(axis=0)
