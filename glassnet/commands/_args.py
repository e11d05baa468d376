"""Argument parsing and checking shared by the subcommands.

Each check raises :class:`~glassnet.errors.UsageError` (``glassnet`` exits
with status 2) naming the option, the rule and the value given, e.g.
``--lr must be a finite number > 0, got nan``. With ``source`` (a saved
``config.json`` a resumed run reads its options from) the error is a
:class:`~glassnet.errors.DataFormatError` naming that file instead.
"""
from __future__ import annotations

import argparse
import math
import numbers

from ..errors import DataFormatError, UsageError

__all__ = ["parse_input_size", "input_size_type", "check_int", "check_float", "check_choice",
           "check_model_name", "option_name"]


def option_name(key: str) -> str:
    """``"batch_size"`` -> ``"--batch-size"``."""
    return "--" + key.replace("_", "-")


def parse_input_size(text: str, option: str = "--input", example: str = "1x28x28") -> tuple:
    """``"3x224x224"`` -> ``(3, 224, 224)``; anything else raises :class:`UsageError` naming ``option``."""
    try:
        dims = tuple(int(v) for v in str(text).lower().replace("×", "x").split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise UsageError(f"{option} {_size_rule(text, example)}")
    return dims


def _size_rule(text, example) -> str:
    return f"must look like {example} (C x H x W, each >= 1), got {text!r}"


def input_size_type(example: str = "1x28x28"):
    """An argparse ``type=`` that parses ``CxHxW`` (a bad value is argparse's one-line usage error)."""
    def input_size(text):
        try:
            return parse_input_size(text, example=example)
        except UsageError:
            raise argparse.ArgumentTypeError(_size_rule(text, example)) from None
    return input_size


def _fail(key: str, rule: str, value, source) -> None:
    if source is not None:
        raise DataFormatError(f"{source}: \"{key}\" must be {rule}, got {value!r}")
    raise UsageError(f"{option_name(key)} must be {rule}, got {value!r}")


def check_int(key: str, value, minimum: int | None = None, *, optional: bool = False, source=None) -> None:
    """``value`` must be an int (not a bool), ``>= minimum`` if given; ``None`` passes when ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(key, "an integer" + (f" >= {minimum}" if minimum is not None else ""), value, source)
    if minimum is not None and value < minimum:
        _fail(key, f">= {minimum}", value, source)


def check_float(key: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
                source=None) -> None:
    """``value`` must be a finite real number within ``[low, high]`` (``(`` / ``)`` when open)."""
    parts = []
    if low is not None:
        parts.append(f"> {low}" if low_open else f">= {low}")
    if high is not None:
        parts.append(f"< {high}" if high_open else f"<= {high}")
    if low is not None and high is not None:
        rule = f"a finite number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    else:
        rule = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(key, rule, value, source)
    if low is not None and (value <= low if low_open else value < low):
        _fail(key, rule, value, source)
    if high is not None and (value >= high if high_open else value > high):
        _fail(key, rule, value, source)


def check_choice(key: str, value, choices, source=None) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        _fail(key, "one of " + ", ".join(map(str, choices)), value, source)


def check_model_name(name, option: str | None = "--model", source=None) -> str:
    """The zoo's spelling of model ``name``; an unknown name raises :class:`UsageError` (naming
    ``option`` if given) listing the known ones."""
    from ..models import list_models

    known = list_models()
    key = str(name).replace("-", "_").lower() if isinstance(name, str) else None
    if key not in known:
        text = f"unknown model {name!r}; known: {', '.join(known)} (see glassnet models)"
        if source is not None:
            raise DataFormatError(f"{source}: \"model\": {text}")
        raise UsageError(f"{option} {name}: {text}" if option else text)
    return key
