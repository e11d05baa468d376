"""Learning-rate schedulers, with ``torch.optim.lr_scheduler``'s names and values.

A scheduler changes ``group["lr"]`` of its optimizer's param groups. Call
``scheduler.step()`` once per epoch, *after* ``optimizer.step()``
(``ReduceLROnPlateau.step(metric)`` takes the monitored value).

Epoch-based schedulers record each group's starting rate in
``group["initial_lr"]`` (as PyTorch does) and keep it in ``base_lrs``;
``last_epoch`` counts the calls to ``step()`` (0 right after construction).

Shape: schedulers touch only the scalar learning rates, never the
parameters, so parameters of any shape are accepted.
"""
from __future__ import annotations

import copy
import math
import numbers
import warnings
from bisect import bisect_right
from collections import Counter
from typing import Any

from .optimizer import Optimizer
from .scheduler_state import check_scheduler_state
from ..errors import GlassnetRuntimeError, InvalidArgumentError, InvalidTypeError, UnknownNameError

__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
]

_EPOCH_DEPRECATION = (
    "Passing an epoch to step() is deprecated (as in PyTorch); it sets last_epoch and uses the "
    "closed-form schedule. Call step() without arguments instead."
)


def _check_optimizer(scheduler: str, optimizer) -> None:
    if not isinstance(optimizer, Optimizer):
        raise InvalidTypeError(f"{scheduler}: expected a glassnet.optim.Optimizer, got {type(optimizer).__name__}")


class LRScheduler:
    """Base class of the epoch-based schedulers.

    Args:
        optimizer: the :class:`~glassnet.optim.Optimizer` whose ``lr`` to set.
        last_epoch: index of the last epoch; ``-1`` (default) starts afresh
            and sets ``group["initial_lr"] = group["lr"]``. A value ≥ 0 resumes
            and requires ``initial_lr`` in every group.

    Subclasses implement :meth:`get_lr` (the next rates, from the current
    ones: PyTorch's recursive form) and ``_get_closed_form_lr`` (the rates
    at ``last_epoch`` from ``base_lrs``).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise UnknownNameError(
                        f"{name}: param_groups[{i}] has no 'initial_lr', needed to resume with "
                        f"last_epoch={last_epoch}. Load the optimizer's state_dict first, or use last_epoch=-1 "
                        "for a fresh run"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._is_initial = False
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for the epoch ``last_epoch`` (called by :meth:`step`)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates most recently set, one per param group."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups."""
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
            self.last_epoch = epoch
            if hasattr(self, "_get_closed_form_lr"):
                values = self._get_closed_form_lr()
            else:
                values = self.get_lr()
        if len(values) != len(self.optimizer.param_groups):
            raise GlassnetRuntimeError(
                f"{type(self).__name__}: computed {len(values)} learning rates for "
                f"{len(self.optimizer.param_groups)} param groups (was a group added after the scheduler?)"
            )
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything in the scheduler except the optimizer (deep-copied)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a dict made by :meth:`state_dict`; an invalid one (a field missing or out of
        its range, e.g. ``step_size = 0``) raises and changes nothing."""
        self.prepare_load_state_dict(state_dict)()

    def prepare_load_state_dict(self, state_dict: dict[str, Any]):
        """Validate ``state_dict`` (:func:`~glassnet.optim.scheduler_state.check_scheduler_state`)
        and return a function that installs it; ``apply()`` cannot fail."""
        check_scheduler_state(self, state_dict, where=f"{type(self).__name__}.load_state_dict")
        fields = copy.deepcopy(state_dict)

        def apply():
            self.__dict__.update(fields)
            self._after_load()

        return apply

    def _after_load(self) -> None:
        """Recompute derived fields after a load (overridden where there are any)."""

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def __repr__(self) -> str:
        skip = {"optimizer", "base_lrs", "_last_lr", "_step_count", "_is_initial"}
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k not in skip)
        return f"{type(self).__name__}({fields})"


class StepLR(LRScheduler):
    """Multiply the learning rate by γ every ``step_size`` epochs.

    Rule (epoch t = ``last_epoch``)::

        lr_t = lr_{t−1} · γ     if t > 0 and t mod step_size = 0
        lr_t = lr_{t−1}         otherwise
        (closed form: lr_t = base_lr · γ^⌊t / step_size⌋)

    Args:
        optimizer: the wrapped optimizer.
        step_size: period of the decay, in epochs (a positive int).
        gamma: multiplicative factor γ. Default 0.1.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise InvalidArgumentError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by γ at each milestone epoch.

    Rule (epoch t; a milestone listed k times multiplies by γ^k)::

        lr_t = lr_{t−1} · γ^count(t in milestones)
        (closed form: lr_t = base_lr · γ^(number of milestones ≤ t))

    Args:
        optimizer: the wrapped optimizer.
        milestones: epoch indices (increasing).
        gamma: multiplicative factor γ. Default 0.1.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        if any(b < a for a, b in zip(milestones, milestones[1:])):
            raise InvalidArgumentError(f"MultiStepLR: milestones must be increasing, got {milestones}")
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch]
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by γ every epoch.

    Rule::

        lr_t = lr_{t−1} · γ      (closed form: lr_t = base_lr · γ^t)

    Args:
        optimizer: the wrapped optimizer.
        gamma: multiplicative factor γ.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the base rate down to ``eta_min`` over ``T_max`` epochs.

    Target schedule (SGDR without restarts)::

        η_t = η_min + ½(η_max − η_min)·(1 + cos(π·t / T_max))

    computed, exactly as PyTorch does, by the recursion (η_max = base_lr)::

        η_t = η_min + (η_{t−1} − η_min) · (1 + cos(π·t/T_max)) / (1 + cos(π·(t−1)/T_max))

    except at t − 1 − T_max ≡ 0 (mod 2·T_max), where the denominator is 0 and
    ``η_t = η_{t−1} + (η_max − η_min)·(1 − cos(π/T_max))/2``. Past ``T_max``
    the rate rises again (the cosine continues).

    Args:
        optimizer: the wrapped optimizer.
        T_max: half-period, in epochs (positive).
        eta_min: the minimum rate η_min. Default 0.
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Real) or T_max <= 0:
            raise InvalidArgumentError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (group["lr"] - eta_min) + eta_min
                for group in groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


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
