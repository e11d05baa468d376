"""Cosine annealing of the learning rate (:class:`CosineAnnealingLR`)."""
from __future__ import annotations

import math
import numbers

from ..optimizer import Optimizer
from ...errors import InvalidArgumentError
from .base import LRScheduler

__all__ = ["CosineAnnealingLR"]


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
