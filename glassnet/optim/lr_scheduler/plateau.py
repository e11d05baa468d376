"""Reducing the learning rate when a metric stops improving (:class:`ReduceLROnPlateau`)."""
from __future__ import annotations

import math
import warnings

from ..optimizer import Optimizer
from ...errors import GlassnetRuntimeError, InvalidArgumentError
from .base import LRScheduler, _EPOCH_DEPRECATION, _check_optimizer

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(LRScheduler):
    """Reduce the learning rate when a monitored metric stops improving.

    Call ``step(metric)`` once per epoch. Rule, per call::

        improved = metric < best·(1 − threshold)   (mode 'min', threshold_mode 'rel')
                   metric < best − threshold       (mode 'min', 'abs')
                   metric > best·(1 + threshold)   (mode 'max', 'rel')
                   metric > best + threshold       (mode 'max', 'abs')
        if improved: best ← metric; bad ← 0  else: bad ← bad + 1
        if in cooldown: cooldown_counter ← cooldown_counter − 1; bad ← 0
        if bad > patience:
            lr ← max(lr·factor, min_lr)   (skipped when the change is ≤ eps)
            cooldown_counter ← cooldown; bad ← 0

    ``best`` starts at +∞ ('min') or −∞ ('max'). Unlike the epoch-based
    schedulers it does not set ``initial_lr`` (as in PyTorch).

    Args:
        optimizer: the wrapped optimizer.
        mode: ``'min'`` or ``'max'``. Default ``'min'``.
        factor: new_lr = lr·factor, with factor < 1. Default 0.1.
        patience: number of bad epochs tolerated before reducing. Default 10.
        threshold: how much better counts as an improvement. Default 1e-4.
        threshold_mode: ``'rel'`` or ``'abs'``. Default ``'rel'``.
        cooldown: epochs to wait after a reduction before counting bad
            epochs again. Default 0.
        min_lr: lower bound on the rate, one number or one per group.
        eps: reductions smaller than this are skipped. Default 1e-8.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0,
                 eps: float = 1e-8):
        name = "ReduceLROnPlateau"
        if factor >= 1.0:
            raise InvalidArgumentError(f"{name}: factor must be < 1.0 (new_lr = lr * factor), got {factor}")
        if patience < 0:
            raise InvalidArgumentError(f"{name}: patience must be >= 0, got {patience}")
        if cooldown < 0:
            raise InvalidArgumentError(f"{name}: cooldown must be >= 0, got {cooldown}")
        self.factor = factor
        _check_optimizer(name, optimizer)
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise InvalidArgumentError(
                    f"{name}: expected {len(optimizer.param_groups)} min_lrs (one per param group), got {len(min_lr)}"
                )
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record this epoch's metric and reduce the rates if it has plateaued."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self.last_epoch = epoch

        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1

        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown are ignored

        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise GlassnetRuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} param groups but min_lrs has "
                    f"{len(self.min_lrs)} entries (was a group added?); set the min_lrs attribute to match"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for i, group in enumerate(groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min" and self.threshold_mode == "abs":
            return a < best - self.threshold
        if self.mode == "max" and self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise InvalidArgumentError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise InvalidArgumentError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def _after_load(self) -> None:
        self._init_is_better(mode=self.mode, threshold=self.threshold, threshold_mode=self.threshold_mode)
