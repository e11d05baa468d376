"""The epoch-based scheduler base class :class:`LRScheduler` and what all schedulers share."""
from __future__ import annotations

import copy
import warnings
from typing import Any

from ..optimizer import Optimizer
from ..scheduler_state import check_scheduler_state
from ...errors import GlassnetRuntimeError, InvalidTypeError, UnknownNameError

__all__ = ["LRScheduler"]

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
