"""The one rule for "an int, or a pair of ints" arguments of the ops families (conv, pool).

``kernel_size``, ``stride``, ``padding`` and ``dilation`` take an int or a sequence of one or
two ints; :func:`int_pair` turns them into an ``(h, w)`` pair or raises naming the layer,
the argument and the rule. :class:`~glassnet.ops.conv.args.ConvArgs` and
:class:`~glassnet.ops.pool.args.PoolArgs` both use it, so the families agree
(``MaxPool2d(2.5)`` and ``Conv2d(1, 1, 2.5)`` raise alike).
"""
from __future__ import annotations

import math
import numbers

from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = ["int_pair"]


def _rule(layer, name, low, given):
    return f"{layer}: {name} must be an int >= {low} or a pair of them, got {given!r}"


def _whole(layer, name, v, low, given):
    """``v`` as an int, if it is a whole number ``>= low`` (bool is not a number here)."""
    if type(v) is not int:  # the common case skips the ABC checks below
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise InvalidTypeError(f"{_rule(layer, name, low, given)} (a {type(v).__name__}, not a number)")
        if isinstance(v, numbers.Integral) or (math.isfinite(v) and float(v).is_integer()):
            v = int(v)
        else:
            raise InvalidArgumentError(f"{_rule(layer, name, low, given)} ({v!r} is not a whole number)")
    if v < low:
        raise InvalidArgumentError(_rule(layer, name, low, given))
    return v


def int_pair(layer, name, value, low):
    """An int or a sequence of one or two ints as an ``(h, w)`` pair of ints ``>= low``.

    Shape: not applicable (ints).
    """
    if type(value) is int and value >= low:  # the common cases first: no checks to run
        return value, value
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and value[0] >= low and value[1] >= low:
        return value
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 2):
            raise InvalidArgumentError(f"{_rule(layer, name, low, value)} ({len(value)} values)")
        h, w = value[0], value[-1]
    else:
        h = w = value
    return _whole(layer, name, h, low, value), _whole(layer, name, w, low, value)
