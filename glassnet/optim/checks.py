"""Checking an optimizer's hyperparameters: one clear error per bad value."""
from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidArgumentError, InvalidTypeError


def _check_number(opt: str, where: str, name: str, value, *, low=None, low_inclusive=True, high=None,
                  high_inclusive=False) -> None:
    """Raise a clear ``ValueError``/``TypeError`` unless ``low ≤ value < high`` (bounds optional)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{opt} ({where}): {name} must be a real number, got {value!r}")
    bad_low = low is not None and (value < low if low_inclusive else value <= low)
    bad_high = high is not None and (value > high if high_inclusive else value >= high)
    if bad_low or bad_high or not math.isfinite(value):
        lo = "" if low is None else f"{low} {'<=' if low_inclusive else '<'} "
        hi = "" if high is None else f" {'<=' if high_inclusive else '<'} {high}"
        raise InvalidArgumentError(f"{opt} ({where}): invalid {name} = {value!r}; it must satisfy {lo}{name}{hi}")
