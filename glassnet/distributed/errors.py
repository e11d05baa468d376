"""Errors of :mod:`glassnet.distributed`, under :class:`glassnet.errors.GlassnetRuntimeError`."""
from __future__ import annotations

from ..errors import GlassnetRuntimeError

__all__ = ["DistributedError", "RankMismatchError", "DistributedTimeoutError"]


class DistributedError(GlassnetRuntimeError):
    """Data-parallel training cannot go on (ranks disagree, a collective is stuck, wrong use)."""


class RankMismatchError(DistributedError):
    """The ranks hold different models or data (parameter names, shapes, dtypes, dataset
    length), found by the start-of-training check; raised on every rank with the same message."""


class DistributedTimeoutError(DistributedError):
    """A collective did not finish within the time allowed: another rank is stuck or skipped it."""
