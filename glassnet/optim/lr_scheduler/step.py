"""Schedulers that multiply the rate by γ: every ``step_size`` epochs, at milestones, every epoch."""
from __future__ import annotations

import numbers
from bisect import bisect_right
from collections import Counter

from ..optimizer import Optimizer
from ...errors import InvalidArgumentError
from .base import LRScheduler

__all__ = ["StepLR", "MultiStepLR", "ExponentialLR"]


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

    Examples:
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> from glassnet.optim import SGD
        >>> from glassnet.optim.lr_scheduler import StepLR
        >>> opt = SGD([nn.Parameter(gn.zeros(1))], lr=1.0)
        >>> scheduler = StepLR(opt, step_size=2, gamma=0.1)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(round(opt.param_groups[0]["lr"], 6))
        ...     opt.step(); scheduler.step()
        >>> lrs
        [1.0, 1.0, 0.1, 0.1, 0.01]
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
