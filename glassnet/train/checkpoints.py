"""The :class:`~glassnet.train.trainer.Trainer`'s checkpoints: saving ``last``/``best``, and resuming exactly.

A checkpoint (:mod:`glassnet.io.checkpoint`) holds the weights, optimizer and scheduler state,
the global RNG, the position (epoch, step within the epoch, global step), the history, the
running sums of the current epoch (``partial_epoch``) and the best validation accuracy.
:class:`CheckpointSteps` holds the trainer's methods that write and read them;
:func:`resume_problems` lists what stops a checkpoint from being resumed exactly.
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..errors import GlassnetRuntimeError, InvalidArgumentError
from ..io.checkpoint import (CheckpointError, CheckpointWriteError, checkpoint_path, load_checkpoint, read_checkpoint_info,
                             remove_stale_temporaries, save_checkpoint)
from ..random import check_rng_state, get_rng_state, set_rng_state
from .history import History

__all__ = ["CheckpointSteps", "TrainingDivergedError", "resume_problems", "empty_partial"]


class TrainingDivergedError(GlassnetRuntimeError):
    """The loss became NaN or infinite; training was stopped."""


def empty_partial() -> dict:
    """The running sums of an epoch before its first step."""
    return {"loss_sum": 0.0, "correct": 0, "n": 0, "time_s": 0.0, "lr": None}


class CheckpointSteps:
    """The checkpoint methods of :class:`~glassnet.train.trainer.Trainer` (it inherits them).

    They read the trainer's ``model``, ``optimizer``, ``scheduler``, ``train_loader``,
    ``augment``, ``out_dir``, ``config`` and position, and set the position on resume.
    """

    @property
    def checkpoint_dir(self):
        """``out_dir/checkpoints`` (``None`` without ``out_dir``)."""
        return None if self.out_dir is None else self.out_dir / "checkpoints"

    def checkpoint_stem(self, which: str = "last"):
        """The path (without suffix) of checkpoint ``which`` (``"last"`` or ``"best"``), or ``None``."""
        return None if self.out_dir is None else self.checkpoint_dir / which

    def _rng_states(self, glassnet_state=None) -> dict:
        loader = self.train_loader
        return {"glassnet": glassnet_state if glassnet_state is not None else get_rng_state(),
                "loader": {"seed": getattr(loader, "seed", None), "epoch_offset": self._offset,
                           "batches_per_epoch": len(loader)},
                "augment": None if self.augment is None else self.augment.state()}

    def _save(self, which: str, glassnet_state=None):
        """Write checkpoint ``which`` of the current state; return its stem (``None`` without ``out_dir``).

        ``glassnet_state``: the global RNG state to record instead of the current one. Non-finite
        weights raise :class:`TrainingDivergedError` and leave the previous checkpoint in place.
        """
        stem = self.checkpoint_stem(which)
        if stem is None:
            return None
        for p in self.model.parameters():
            if not np.isfinite(to_numpy(p.data)).all():
                raise TrainingDivergedError(
                    f"the model's weights are not finite at epoch {self.epoch + 1}, step {self.step}; "
                    f"not overwriting checkpoint {stem}. {self._last_good()}")
        try:
            save_checkpoint(stem, self.model, self.optimizer, self.scheduler, epoch=self.epoch, step=self.step,
                            global_step=self.global_step,
                            metrics={"history": self.history.rows, "best_val_accuracy": self.best_val_accuracy},
                            config=self.config, rng_states=self._rng_states(glassnet_state),
                            extra={"partial_epoch": dict(self._partial), "epochs": self.epochs,
                                   "checkpoint_every": self.checkpoint_every})
        except CheckpointWriteError as exc:
            raise CheckpointWriteError(exc.errno, f"{exc.strerror} {self._last_good()}".strip()) from exc
        self._last_saved = (stem, self.epoch, self.step, self.global_step)
        return stem

    def _last_good(self) -> str:
        saved = self._last_saved
        if saved is None:
            if self.out_dir is None:
                return ""
            return "No checkpoint of this run was written before. "
        stem, epoch, step, gstep = saved
        return (f"The last good checkpoint is {stem}.safetensors (epoch {epoch} done + {step} steps, "
                f"global step {gstep}); it was not overwritten. ")

    def adapt_checkpoint_meta(self, meta: dict) -> dict:
        """The loaded checkpoint's metadata as this run continues from it (here unchanged; a rank of a
        data-parallel run moves the position: :class:`glassnet.train.distributed_run.DistributedTrainer`)."""
        return meta

    def _newest_checkpoint(self):
        """``(which, stem, meta)`` of the valid checkpoint with the highest global step (``last`` on a tie)."""
        if self.checkpoint_dir.is_dir():
            remove_stale_temporaries(self.checkpoint_dir)
        candidates, errors = [], []
        for which in ("last", "best"):
            stem = self.checkpoint_stem(which)
            if not checkpoint_path(stem).exists():
                continue
            try:
                meta = read_checkpoint_info(stem)
            except CheckpointError as exc:
                errors.append(str(exc))
                continue
            candidates.append((meta.get("global_step") or 0, which, stem, meta))
        if not candidates:
            detail = ("\n  " + "\n  ".join(errors)) if errors else ""
            raise CheckpointError(f"{self.checkpoint_dir}: no valid checkpoint to resume from{detail}")
        if errors:
            self.report("warning: skipping an unusable checkpoint: " + "; ".join(errors))
        candidates.sort(key=lambda c: (c[0], c[1] == "last"))
        return candidates[-1][1:]

    def _resume(self) -> None:
        if self.out_dir is None:
            raise CheckpointError("resume=True needs out_dir (the run folder holding checkpoints/)")
        which, stem, meta = self._newest_checkpoint()
        problems = resume_problems(meta, self)
        if problems:
            raise CheckpointError(f"{checkpoint_path(stem)}: cannot resume exactly: " + "; ".join(problems))
        loader_state = meta["rng_states"].get("loader") or {}
        meta = self.adapt_checkpoint_meta(load_checkpoint(stem, self.model, self.optimizer, self.scheduler))
        set_rng_state(meta["rng_states"]["glassnet"])
        self._offset = int(loader_state.get("epoch_offset") or 0)
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.global_step = int(meta.get("global_step") or 0)
        metrics = meta.get("metrics") or {}
        self.history = History(metrics.get("history") or [])
        self.best_val_accuracy = metrics.get("best_val_accuracy")
        self._partial = {**empty_partial(), **((meta.get("extra") or {}).get("partial_epoch") or {})}
        self._last_saved = (stem, self.epoch, self.step, self.global_step)
        where = (f"epoch {self.epoch + 1}/{self.epochs}, step {self.step}/{len(self.train_loader)}"
                 if self.epoch < self.epochs else f"the end of epoch {self.epoch} (training complete)")
        self.report(f"resumed from {stem}.safetensors ({which}): continuing at {where}, "
                    f"global step {self.global_step}")


def resume_problems(meta: dict, trainer) -> list:
    """What stops ``trainer`` from resuming exactly from checkpoint metadata ``meta`` (read-only checks)."""
    problems = []
    rng = meta.get("rng_states")
    if not isinstance(rng, dict):
        return ["the checkpoint holds no RNG states"]
    try:
        check_rng_state(rng.get("glassnet"), where="the checkpoint's glassnet RNG state")
    except InvalidArgumentError as exc:
        problems.append(str(exc))
    loader_state = rng.get("loader") or {}
    if not isinstance(loader_state, dict):
        return problems + ["the checkpoint's loader state is not an object"]
    n_batches = len(trainer.train_loader)
    if loader_state.get("batches_per_epoch") not in (None, n_batches):
        problems.append(f"the checkpoint's epochs have {loader_state['batches_per_epoch']} batches, "
                        f"this train loader has {n_batches}")
    offset = loader_state.get("epoch_offset") or 0
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        problems.append(f"the checkpoint's loader epoch_offset {offset!r} is not an integer >= 0")
    if meta["step"] >= max(n_batches, 1):
        problems.append(f"the checkpoint's step {meta['step']} is not within an epoch of {n_batches} batches")
    seed = getattr(trainer.train_loader, "seed", None)
    if loader_state.get("seed") is not None and seed is not None and loader_state["seed"] != seed:
        problems.append(f"the checkpoint's loader seed is {loader_state['seed']}, this loader's is {seed}")
    aug = rng.get("augment")
    if aug is not None and not isinstance(aug, dict):
        problems.append("the checkpoint's augmentation state is not an object")
    elif (aug is None) != (trainer.augment is None) or (aug and aug.get("seed") != trainer.augment.seed):
        problems.append("augmentation differs from the checkpointed run's")
    metrics = meta.get("metrics") or {}
    history = metrics.get("history") if isinstance(metrics, dict) else None
    if not isinstance(history, (list, type(None))) or not all(isinstance(r, dict) for r in history or []):
        problems.append("the checkpoint's history is not a list of per-epoch objects")
    best = metrics.get("best_val_accuracy") if isinstance(metrics, dict) else None
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        problems.append(f"the checkpoint's best_val_accuracy {best!r} is not a number")
    partial = (meta.get("extra") or {}).get("partial_epoch") or {}
    if not isinstance(partial, dict) or any(
            k in partial and (isinstance(partial[k], bool) or not isinstance(partial[k], (int, float))
                              or partial[k] < 0 or partial[k] != partial[k])
            for k in ("loss_sum", "correct", "n", "time_s")):
        problems.append("the checkpoint's partial-epoch sums are malformed")
    return problems
