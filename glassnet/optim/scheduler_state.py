"""The rules a learning-rate scheduler's saved state must satisfy before it is loaded.

A scheduler's ``state_dict()`` is its ``__dict__`` (less the optimizer).
Loading one blindly would accept ``step_size: 0`` (a ZeroDivisionError at
the next epoch), ``gamma: inf`` or a ``base_lrs`` list for another number of
param groups. :func:`check_scheduler_state` checks every field against the
rules below -- the same ranges the constructors enforce -- and names the
first field that breaks one.

Each rule is a function ``rule(value) -> str | None`` returning what is wrong.
"""
from __future__ import annotations

import math
import numbers
from collections import Counter

from ..errors import InvalidArgumentError

__all__ = ["check_scheduler_state", "FIELD_RULES"]


def _integer(low):
    def rule(v):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            return f"must be an integer >= {low}"
        return None
    return rule


def _real(low=None, high=None, *, low_open=False, high_open=True, allow_inf=False):
    def rule(v):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != v:
            return "must be a real number"
        if not allow_inf and not math.isfinite(v):
            return "must be finite"
        if low is not None and (v <= low if low_open else v < low):
            return f"must be {'>' if low_open else '>='} {low}"
        if high is not None and (v >= high if high_open else v > high):
            return f"must be {'<' if high_open else '<='} {high}"
        return None
    return rule


def _choice(*options):
    def rule(v):
        return None if v in options else f"must be one of {options}"
    return rule


def _boolean(v):
    return None if isinstance(v, bool) else "must be true or false"


def _per_group(item_rule):
    """A list with one entry per param group (the group count is checked by the caller)."""
    def rule(v):
        if not isinstance(v, list):
            return "must be a list with one entry per param group"
        for i, x in enumerate(v):
            problem = item_rule(x)
            if problem:
                return f"entry {i} ({x!r}) {problem}"
        return None
    rule.per_group = True
    return rule


def _milestones(v):
    if not isinstance(v, Counter):
        return "must be a Counter of epoch -> count"
    for epoch, count in v.items():
        if _integer(0)(epoch) or _integer(1)(count):
            return f"has the entry {epoch!r}: {count!r}; epochs must be integers >= 0 and counts >= 1"
    return None


def _optional(rule):
    return lambda v: None if v is None else rule(v)


_LR = _real(0)
_BASE = {"last_epoch": _integer(-1), "_step_count": _integer(0), "_is_initial": _boolean,
         "base_lrs": _per_group(_LR), "_last_lr": _per_group(_LR)}
_GAMMA = _real(0, low_open=True, high=None)

#: scheduler class name -> {field: rule}, on top of the base fields every epoch scheduler has
FIELD_RULES = {
    "StepLR": {**_BASE, "step_size": _integer(1), "gamma": _GAMMA},
    "MultiStepLR": {**_BASE, "milestones": _milestones, "gamma": _GAMMA},
    "ExponentialLR": {**_BASE, "gamma": _GAMMA},
    "CosineAnnealingLR": {**_BASE, "T_max": _real(0, low_open=True), "eta_min": _real(0)},
    "ReduceLROnPlateau": {
        "factor": _real(0, 1), "patience": _integer(0), "cooldown": _integer(0),
        "cooldown_counter": _integer(0), "num_bad_epochs": _integer(0), "eps": _real(0),
        "threshold": _real(0), "mode": _choice("min", "max"), "threshold_mode": _choice("rel", "abs"),
        "best": _real(allow_inf=True), "mode_worse": _real(allow_inf=True), "last_epoch": _integer(0),
        "min_lrs": _per_group(_LR), "default_min_lr": _optional(_LR), "_last_lr": _per_group(_LR),
    },
}


def check_scheduler_state(scheduler, state: dict, *, where: str) -> None:
    """Raise :class:`~glassnet.errors.InvalidArgumentError` unless ``state`` is a valid saved state
    of ``scheduler`` (same class, same fields, every field within its rule, one entry per param group).

    A scheduler class without rules here (a user's subclass) is checked for its field names only.
    """
    name = type(scheduler).__name__
    if not isinstance(state, dict):
        raise InvalidArgumentError(f"{where}: a {name} state must be a dict, got {type(state).__name__}")
    expected = set(scheduler.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(map(str, set(state) - expected))
    if missing or unexpected:
        raise InvalidArgumentError(f"{where}: not a {name} state (missing fields {missing}, "
                                   f"unexpected fields {unexpected})")
    groups = len(scheduler.optimizer.param_groups)
    for field, rule in FIELD_RULES.get(name, {}).items():
        if field not in state:
            continue
        value = state[field]
        problem = rule(value)
        if problem is None and getattr(rule, "per_group", False) and len(value) != groups:
            problem = f"has {len(value)} entries but the optimizer has {groups} param group(s)"
        if problem:
            raise InvalidArgumentError(f"{where}: {name}.{field} = {_short(value)} {problem}")


def _short(value, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."
