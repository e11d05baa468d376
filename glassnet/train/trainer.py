"""The training loop: :func:`fit` a classifier with :class:`Trainer`, the lecture's loop in named steps.

    from glassnet.train import fit, evaluate
    history = fit(model, train_loader, optimizer, epochs=10,
                  val_loader=val_loader, out_dir="runs/mlp")
    print(evaluate(model, test_loader)["accuracy"])

:meth:`Trainer.train_step` is the lecture's loop body, one method per line of it::

    logits = self.forward(x)                 # forward
    loss = self.compute_loss(logits, y)      # loss
    self.backward(loss)                      # zero_grad, backward
    self.optimizer_step()                    # optimizer step

:meth:`Trainer.train_epoch` runs it over the epoch's batches, then :meth:`Trainer.end_epoch`
validates (if a validation loader is given), steps the learning-rate scheduler, adds a row of
metrics to the :class:`~glassnet.train.history.History` (saved as ``history.json`` and
``history.csv`` in ``out_dir`` after every epoch, so a killed run keeps what it measured) and
saves the checkpoints. A tqdm progress bar shows the running loss, accuracy and images per second.

With ``out_dir`` the trainer writes checkpoints -- ``out_dir/checkpoints/last`` every epoch and
every ``checkpoint_every`` steps, ``best`` by validation accuracy (:mod:`glassnet.train.checkpoints`)
-- and ``fit(..., resume=True)`` continues a killed run from the exact batch, ending with weights
bitwise equal to an uninterrupted run. Ctrl-C is handled by :mod:`glassnet.train.interrupts`.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from .. import nn
from ..backend import to_numpy
from ..errors import InvalidArgumentError, UnknownNameError
from ..optim.lr_scheduler import ReduceLROnPlateau
from ..random import get_rng_state
from .augment import BatchAugment
from .batches import epoch_batches
from .checkpoints import CheckpointSteps, TrainingDivergedError, empty_partial
from .evaluation import as_input, evaluate, model_device
from .history import History
from .interrupts import InterruptSteps
from .metrics import count_correct

__all__ = ["fit", "Trainer", "TrainingDivergedError"]


def fit(model, train_loader, optimizer, epochs: int, loss_fn=None, val_loader=None, scheduler=None,
        out_dir=None, progress: bool = True, log=print, on_epoch_end=None, *, checkpoint_every=None,
        resume: bool = False, augment=None, config=None, plateau_metric=None) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`~glassnet.train.history.History`.

    Args:
        model: a ``glassnet.nn.Module`` mapping a batch to logits.
        train_loader, val_loader: iterables of ``(x, y)`` NumPy batches with
            ``len()`` (e.g. :class:`glassnet.data.DataLoader`).
        optimizer: a ``glassnet.optim`` optimizer over ``model.parameters()``.
        loss_fn: default ``nn.CrossEntropyLoss()``.
        scheduler: stepped once per epoch; a ``ReduceLROnPlateau`` is given
            ``plateau_metric`` (default: the validation accuracy for
            ``mode="max"``, the validation loss for ``mode="min"``; the
            training metric without a val_loader).
        out_dir: if given, ``history.json``/``history.csv`` are rewritten
            there after every epoch and checkpoints go to
            ``out_dir/checkpoints/{last,best}.{safetensors,json}``.
        progress: show a tqdm bar per epoch (loss, accuracy, images/s).
        log: called with a one-line summary after each epoch (``None`` = silent).
        on_epoch_end: ``callback(epoch, row)`` after each epoch.
        checkpoint_every, resume, augment, config: see :class:`Trainer`.

    Shape:
        the loaders' batches: ``(x, y)`` with x (B, ...) the model's input and y (B,) class labels.
    """
    trainer = Trainer(model, train_loader, optimizer, epochs, loss_fn=loss_fn, val_loader=val_loader,
                      scheduler=scheduler, out_dir=out_dir, progress=progress, log=log,
                      on_epoch_end=on_epoch_end, checkpoint_every=checkpoint_every, augment=augment,
                      config=config, plateau_metric=plateau_metric)
    return trainer.fit(resume=resume)


class _EpochClock:
    """Training time of the current epoch: what earlier runs of it measured plus this run's."""

    def __init__(self, before: float):
        self.before = before
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds of training in this epoch so far."""
        return self.before + time.perf_counter() - self.t0


class Trainer(CheckpointSteps, InterruptSteps):
    """The training loop with checkpoints, exact resume and failure handling.

        trainer = Trainer(model, train_loader, optimizer, epochs=10, val_loader=val_loader,
                          scheduler=scheduler, out_dir="runs/x", checkpoint_every=200)
        history = trainer.fit()              # or trainer.fit(resume=True) after a kill

    The loop (:meth:`fit` -> :meth:`train_epoch` -> :meth:`train_step`) is made of small
    named steps; everything a run writes goes through :meth:`_save` (checkpoints),
    :meth:`write_history` (history files) and :meth:`report` (log lines).

    Checkpoints (``out_dir/checkpoints``, see :mod:`glassnet.io.checkpoint`):
    ``last`` after every epoch and every ``checkpoint_every`` optimizer steps
    (so a killed run loses at most that many steps), ``best`` after an epoch
    whose validation accuracy is the best so far. Each holds the complete
    state needed to continue: weights, optimizer and scheduler state, the
    global RNG (dropout), position (epoch, step within the epoch, global
    step), history, the running sums of the current epoch and the best
    validation accuracy.

    Exact resume: epoch ``e`` visits the batches ``loader.iter_epoch(offset + e, start)``
    gives (the DataLoader's order and per-sample augmentation depend only on its seed, the
    epoch and the sample; its worker processes, if any, build them);
    augmentation is a :class:`~glassnet.train.augment.BatchAugment` whose draws depend only on
    ``(seed, e, step)``; the global RNG is restored. So ``fit(resume=True)``
    skips the batches already done (without fetching or running them) and
    ends with weights bitwise equal to those of an uninterrupted run.

    Failures: a NaN/inf loss raises :class:`TrainingDivergedError` before the
    optimizer step, naming the last good checkpoint (checkpoints are never
    written with non-finite weights). Ctrl-C (SIGINT) is deferred to the end
    of the current step; then ``last`` is saved, a message says where and
    how to resume, and ``KeyboardInterrupt`` is re-raised. A second Ctrl-C
    stops at once.

    Args:
        model, train_loader, optimizer, epochs, loss_fn, val_loader, scheduler,
        progress, log, on_epoch_end, plateau_metric: as for :func:`fit`.
        out_dir: run folder (history files and ``checkpoints/``); ``None``
            disables both.
        checkpoint_every: also save ``last`` every this many steps (``None``/0:
            only at epoch ends).
        augment: a :class:`~glassnet.train.augment.BatchAugment` (or a plain transform, wrapped
            with seed 0) applied to each training batch.
        config: the run's config (saved in every checkpoint).
        resume_hint: how to resume, printed after Ctrl-C.
    """

    def __init__(self, model, train_loader, optimizer, epochs: int, *, loss_fn=None, val_loader=None,
                 scheduler=None, out_dir=None, checkpoint_every=None, augment=None, config=None,
                 progress: bool = True, log=print, on_epoch_end=None, plateau_metric=None,
                 resume_hint=None):
        if epochs < 1:
            raise InvalidArgumentError(f"fit: epochs must be >= 1, got {epochs}")
        if checkpoint_every is not None and checkpoint_every < 0:
            raise InvalidArgumentError(f"Trainer: checkpoint_every must be >= 0, got {checkpoint_every}")
        self.model = model
        self.train_loader = train_loader
        self.optimizer = optimizer
        self.epochs = int(epochs)
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()
        self.val_loader = val_loader
        self.scheduler = scheduler
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.checkpoint_every = int(checkpoint_every or 0)
        if augment is not None and not isinstance(augment, BatchAugment):
            augment = BatchAugment(augment, seed=0)
        self.augment = augment
        self.config = config
        self.progress = progress
        self.log = log
        self.on_epoch_end = on_epoch_end
        self.plateau_metric = plateau_metric
        self.resume_hint = resume_hint or (
            f"Trainer(..., out_dir={str(self.out_dir)!r}).fit(resume=True)" if self.out_dir else None)
        # position and running state
        self.history = History()
        self.epoch = 0            # completed epochs
        self.step = 0             # completed steps of epoch `self.epoch`
        self.global_step = 0
        self.best_val_accuracy = None
        self._partial = empty_partial()
        self._offset = int(getattr(train_loader, "epoch", 0) or 0)
        self._interrupted = False
        self._phase = None
        self._rng_at_step = None
        self._last_saved = None
        self._device = "cpu"

    # --------------------------------------------------------------- fit
    def fit(self, resume: bool = False) -> History:
        """Train to ``epochs`` (continuing from the newest valid checkpoint with ``resume``)."""
        if resume:
            self._resume()
            # The checkpoint's history is the run's: a kill between saving "last" and rewriting the
            # history files (at the final epoch, nothing would rewrite them) must not leave them behind.
            self.write_history()
        with self._sigint_deferred():
            try:
                while self.epoch < self.epochs:
                    self.train_epoch()
            except KeyboardInterrupt:
                if not self._interrupted:  # raised directly (no handler): save if consistent
                    self._save_on_interrupt()
                raise
        return self.history

    def train_epoch(self) -> None:
        """One epoch: :meth:`train_step` on each batch not yet done, then :meth:`end_epoch`."""
        e, start, n_batches = self.epoch, self.step, len(self.train_loader)
        bar = self._progress_bar(e, start, n_batches)
        clock = self._start_epoch()
        batches = epoch_batches(self.train_loader, self._offset + e, start)
        try:
            for k in range(start, n_batches):
                self._check_interrupt()
                x, y = next(batches)
                logits, loss = self.train_step(x, y, e, k)
                self._count_step(k, logits, y, loss, clock)
                self._show_progress(bar)
                self._checkpoint_within_epoch(n_batches)
        finally:
            batches.close()  # stops the epoch's worker processes when it ends early
            if bar is not None:
                bar.close()
        self._check_interrupt()
        self.end_epoch(e)

    def train_step(self, x, y, epoch: int, k: int):
        """The lecture's loop body on batch ``k``: forward, loss, backward, optimizer step.

        Returns ``(logits, loss value)``; a non-finite loss raises :class:`TrainingDivergedError`
        before the weights change.

        Shape:
            x: (B, ...) the model's input; y: (B,) class labels; logits: (B, num_classes).
        """
        self._phase = "forward"
        self._rng_at_step = get_rng_state()
        x = self.augment_batch(x, epoch, k)
        logits = self.forward(x)
        loss = self.compute_loss(logits, y)
        value = self._finite_loss(loss, epoch, k)
        self.backward(loss)
        self.optimizer_step()
        return logits, value

    # ------------------------------------------------- the loop's steps
    def augment_batch(self, x, epoch: int, k: int):
        """The batch through the seeded :class:`~glassnet.train.augment.BatchAugment` (if any)."""
        return x if self.augment is None else self.augment(x, epoch, k)

    def forward(self, x):
        """``logits = model(x)``."""
        return self.model(as_input(x, self._device))

    def compute_loss(self, logits, y):
        """``loss = loss_fn(logits, y)``."""
        return self.loss_fn(logits, as_input(np.asarray(y), self._device))

    def backward(self, loss) -> None:
        """``optimizer.zero_grad(); loss.backward()``."""
        self.optimizer.zero_grad()
        loss.backward()

    def optimizer_step(self) -> None:
        """``optimizer.step()``: the only place the weights change."""
        self._phase = "update"
        self.optimizer.step()
        self._phase = None

    def _finite_loss(self, loss, epoch: int, k: int) -> float:
        value = float(loss.item())
        if not math.isfinite(value):
            self._phase = None
            raise TrainingDivergedError(
                f"the training loss became {value} at batch {k} of epoch {epoch + 1}/{self.epochs}; stopped "
                f"before the optimizer step. {self._last_good()}Try a smaller learning rate."
            )
        return value

    # ------------------------------------------- bookkeeping of an epoch
    def _start_epoch(self) -> _EpochClock:
        part = self._partial
        if part["lr"] is None:
            part["lr"] = self.optimizer.param_groups[0]["lr"]
        clock = _EpochClock(part["time_s"])
        self._device = model_device(self.model)
        self.model.train()
        return clock

    def _count_step(self, k: int, logits, y, loss: float, clock: _EpochClock) -> None:
        """Add batch ``k`` to the epoch's running sums and move the position past it."""
        part = self._partial
        batch = len(y)
        part["loss_sum"] += loss * batch
        part["correct"] += count_correct(to_numpy(logits.data), y)
        part["n"] += batch
        part["time_s"] = clock.elapsed()
        self.step = k + 1
        self.global_step += 1

    def _checkpoint_within_epoch(self, n_batches: int) -> None:
        if self.checkpoint_every and self.global_step % self.checkpoint_every == 0 and self.step < n_batches:
            self._save("last")

    def _progress_bar(self, e: int, start: int, n_batches: int):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=n_batches, initial=start, desc=f"epoch {e + 1}/{self.epochs}", leave=False,
                    dynamic_ncols=True, unit="batch")

    def _show_progress(self, bar) -> None:
        if bar is None:
            return
        part = self._partial
        bar.update(1)
        bar.set_postfix(loss=f"{part['loss_sum'] / part['n']:.4f}", acc=f"{part['correct'] / part['n']:.4f}",
                        img_s=f"{part['n'] / max(part['time_s'], 1e-9):.0f}", refresh=False)

    # ------------------------------------------------------- epoch end
    def end_epoch(self, e: int) -> None:
        """After epoch ``e``'s last batch: validate, step the schedule, record the row, save, report."""
        self._phase = "epoch_end"
        row = self.epoch_row(e)
        self._phase = "scheduler"
        self.step_scheduler(row)
        improved = "val_accuracy" in row and (self.best_val_accuracy is None
                                              or row["val_accuracy"] > self.best_val_accuracy)
        if improved:
            self.best_val_accuracy = row["val_accuracy"]
        self.history.append(row)
        self.epoch, self.step = e + 1, 0
        self._partial = empty_partial()
        self._phase = None
        self._save("last")
        if improved:
            self._save("best")
        self.write_history()
        self.report(_summary_line(row, self.epochs))
        if self.on_epoch_end is not None:
            self.on_epoch_end(e + 1, row)
        self._check_interrupt()

    def epoch_row(self, e: int) -> dict:
        """The epoch's metrics: its training loss and accuracy, :meth:`validate`'s, time and speed."""
        part = self._partial
        if part["n"] == 0:
            raise InvalidArgumentError(f"Trainer: the training loader yielded no samples in epoch {e + 1}/{self.epochs}")
        row = {"epoch": e + 1, "lr": part["lr"],
               "train_loss": part["loss_sum"] / part["n"], "train_accuracy": part["correct"] / part["n"]}
        row.update(self.validate())
        row.update(epoch_time_s=part["time_s"], images_per_s=part["n"] / max(part["time_s"], 1e-9))
        return row

    def validate(self) -> dict:
        """``{"val_loss", "val_accuracy"}`` on the validation loader (``{}`` without one)."""
        if self.val_loader is None:
            return {}
        val = evaluate(self.model, self.val_loader, self.loss_fn)
        return {"val_loss": val["loss"], "val_accuracy": val["accuracy"]}

    def step_scheduler(self, row: dict) -> None:
        """Step the learning-rate schedule once (a ``ReduceLROnPlateau`` with the epoch's metric)."""
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(row[self._plateau_key(row)])
        else:
            self.scheduler.step()

    def write_history(self) -> None:
        """Rewrite ``history.json`` and ``history.csv`` in the run folder (none without ``out_dir``)."""
        if self.out_dir is not None:
            self.history.save(self.out_dir)

    def report(self, text: str) -> None:
        """One line to ``log`` (nothing when ``log`` is ``None``)."""
        if self.log is not None:
            self.log(text)

    def _plateau_key(self, row) -> str:
        key = self.plateau_metric
        if key is None:
            key = "val_accuracy" if getattr(self.scheduler, "mode", "min") == "max" else "val_loss"
        if key not in row and key.startswith("val_"):
            key = "train_" + key[len("val_"):]
        if key not in row:
            raise UnknownNameError(f"ReduceLROnPlateau: metric {key!r} is not among this epoch's metrics {sorted(row)}")
        return key


def _summary_line(row: dict, epochs: int) -> str:
    text = (f"epoch {row['epoch']}/{epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_accuracy']:.4f}")
    if "val_loss" in row:
        text += f"  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}"
    return text + f"  {row['epoch_time_s']:.1f}s ({row['images_per_s']:.0f} img/s)"
