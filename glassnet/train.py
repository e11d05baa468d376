"""The training loop: ``fit`` a classifier, ``evaluate`` it, keep its history.

    from glassnet.train import fit, evaluate
    history = fit(model, train_loader, optimizer, epochs=10,
                  val_loader=val_loader, out_dir="runs/mlp")
    print(evaluate(model, test_loader)["accuracy"])

One step is the lecture's loop: forward, loss, ``zero_grad``, backward,
optimizer ``step``. A tqdm progress bar shows the running loss, accuracy and
images per second; after each epoch the model is validated (if a validation
loader is given), the learning-rate scheduler steps, and a row of metrics is
added to the :class:`History` (saved as ``history.json`` and ``history.csv``
in ``out_dir`` after every epoch, so a killed run keeps what it measured).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from . import nn
from .autograd import no_grad
from .backend import device_of, to_device, to_numpy
from .optim.lr_scheduler import ReduceLROnPlateau
from .tensor import Tensor

__all__ = ["fit", "evaluate", "predict_logits", "History", "TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; training was stopped."""


class History:
    """Per-epoch metrics of a run: a list of dicts with the same keys.

    Keys: ``epoch`` (1-based), ``lr``, ``train_loss``, ``train_accuracy``,
    ``val_loss`` and ``val_accuracy`` (when validating), ``epoch_time_s``,
    ``images_per_s``.
    """

    def __init__(self, rows=None):
        self.rows: list[dict] = list(rows or [])

    def append(self, row: dict) -> None:
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def column(self, key: str) -> list:
        """The values of one metric over the epochs (``None`` where absent)."""
        return [row.get(key) for row in self.rows]

    def to_json(self, path) -> None:
        _atomic_write(path, json.dumps(self.rows, indent=2) + "\n")

    def to_csv(self, path) -> None:
        keys = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        lines = [",".join(keys)]
        for row in self.rows:
            lines.append(",".join("" if row.get(k) is None else _fmt(row[k]) for k in keys))
        _atomic_write(path, "\n".join(lines) + "\n")

    @classmethod
    def from_json(cls, path) -> "History":
        with open(path) as f:
            return cls(json.load(f))

    def save(self, out_dir) -> None:
        """Write ``history.json`` and ``history.csv`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.to_json(out / "history.json")
        self.to_csv(out / "history.csv")


def _fmt(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def _atomic_write(path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _model_device(model) -> str:
    for p in model.parameters():
        return device_of(p.data)
    return "cpu"


def _as_input(x, device: str) -> Tensor:
    return Tensor(to_device(x, device) if device != "cpu" else np.asarray(x))


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, unit="batch")


def predict_logits(model, loader, progress: bool = False):
    """Run ``model`` in eval mode over ``loader``; return (logits, labels) as NumPy arrays.

    Shape:
        logits: (N, num_classes); labels: (N,).
    """
    was_training = model.training
    model.eval()
    device = _model_device(model)
    outs, labels = [], []
    try:
        with no_grad():
            for x, y in _progress(loader, len(loader), "predict", progress):
                outs.append(to_numpy(model(_as_input(x, device)).data))
                labels.append(np.asarray(y))
    finally:
        model.train(was_training)
    return np.concatenate(outs), np.concatenate(labels)


def evaluate(model, loader, loss_fn=None, progress: bool = False) -> dict:
    """Loss and accuracy of a classifier over a whole loader (eval mode, no grad).

    Returns ``{"loss", "accuracy", "n"}``; the loss is the mean cross-entropy
    (or ``loss_fn`` with mean reduction) over all ``n`` samples.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    device = _model_device(model)
    total_loss, correct, n = 0.0, 0, 0
    try:
        with no_grad():
            for x, y in _progress(loader, len(loader), "eval", progress):
                logits = model(_as_input(x, device))
                target = _as_input(np.asarray(y), device)
                batch = len(y)
                total_loss += float(loss_fn(logits, target).item()) * batch
                correct += int((to_numpy(logits.data).argmax(axis=1) == np.asarray(y)).sum())
                n += batch
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return {"loss": total_loss / n, "accuracy": correct / n, "n": n}


def train_one_epoch(model, loader, optimizer, loss_fn=None, progress: bool = True, desc: str = "train") -> dict:
    """One pass over ``loader``: forward, loss, zero_grad, backward, step per batch.

    Raises :class:`TrainingDivergedError` as soon as a batch's loss is NaN or
    infinite (the parameters are left as they were before that step).
    Returns ``{"loss", "accuracy", "n", "time_s", "images_per_s"}``.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.train()
    device = _model_device(model)
    total_loss, correct, n = 0.0, 0, 0
    start = time.perf_counter()
    bar = _progress(loader, len(loader), desc, progress)
    for step, (x, y) in enumerate(bar):
        logits = model(_as_input(x, device))
        loss = loss_fn(logits, _as_input(np.asarray(y), device))
        value = float(loss.item())
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"the training loss became {value} at batch {step} of {desc}; stopped before the "
                "optimizer step. Try a smaller learning rate."
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        batch = len(y)
        total_loss += value * batch
        correct += int((to_numpy(logits.data).argmax(axis=1) == np.asarray(y)).sum())
        n += batch
        if progress and hasattr(bar, "set_postfix"):
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{total_loss / n:.4f}", acc=f"{correct / n:.4f}",
                            img_s=f"{n / max(elapsed, 1e-9):.0f}", refresh=False)
    elapsed = time.perf_counter() - start
    if n == 0:
        raise ValueError("train_one_epoch: the loader yielded no samples")
    return {"loss": total_loss / n, "accuracy": correct / n, "n": n, "time_s": elapsed,
            "images_per_s": n / max(elapsed, 1e-9)}


def fit(model, train_loader, optimizer, epochs: int, loss_fn=None, val_loader=None, scheduler=None,
        out_dir=None, progress: bool = True, log=print, on_epoch_end=None) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    Args:
        model: a ``glassnet.nn.Module`` mapping a batch to logits.
        train_loader, val_loader: iterables of ``(x, y)`` NumPy batches with
            ``len()`` (e.g. :class:`glassnet.data.DataLoader`).
        optimizer: a ``glassnet.optim`` optimizer over ``model.parameters()``.
        loss_fn: default ``nn.CrossEntropyLoss()``.
        scheduler: stepped once per epoch; a ``ReduceLROnPlateau`` is given
            the validation loss (the training loss without a val_loader).
        out_dir: if given, ``history.json``/``history.csv`` are rewritten
            there after every epoch.
        progress: show a tqdm bar per epoch (loss, accuracy, images/s).
        log: called with a one-line summary after each epoch (``None`` = silent).
        on_epoch_end: ``callback(epoch, row)`` after each epoch.
    """
    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    history = History()
    for epoch in range(1, epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        train = train_one_epoch(model, train_loader, optimizer, loss_fn, progress, desc=f"epoch {epoch}/{epochs}")
        row = {"epoch": epoch, "lr": lr, "train_loss": train["loss"], "train_accuracy": train["accuracy"]}
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn)
            row.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
        row.update(epoch_time_s=train["time_s"], images_per_s=train["images_per_s"])
        if scheduler is not None:
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(row.get("val_loss", row["train_loss"]))
            else:
                scheduler.step()
        history.append(row)
        if out_dir is not None:
            history.save(out_dir)
        if log is not None:
            log(_summary_line(row, epochs))
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    return history


def _summary_line(row: dict, epochs: int) -> str:
    text = (f"epoch {row['epoch']}/{epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_accuracy']:.4f}")
    if "val_loss" in row:
        text += f"  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}"
    return text + f"  {row['epoch_time_s']:.1f}s ({row['images_per_s']:.0f} img/s)"
