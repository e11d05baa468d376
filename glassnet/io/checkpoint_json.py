"""The JSON half of a checkpoint: everything that is not an array, stored exactly.

JSON has no tuples, no non-finite floats and only string keys; a checkpoint
must give back exactly what was saved (Adam's ``betas`` tuple, a plateau
scheduler's ``best = inf``, a ``Counter`` of milestones). :func:`encode` tags
those values, :func:`decode` undoes the tags:

    {"__float__": "inf"}                  float("inf")
    {"__tuple__": [...]}                  a tuple
    {"__counter__": [[key, count], ...]}  collections.Counter
    {"__items__": [[key, value], ...]}    a dict with non-string keys

:func:`decode_text` parses untrusted text: nesting is bounded
(:data:`glassnet.limits.MAX_DEPTH`) before the parser recurses, and any
malformed tag raises :class:`~glassnet.errors.DataFormatError` naming the file.
"""
from __future__ import annotations

import collections
import json
import math

import numpy as np

from ..errors import DataFormatError, InvalidTypeError
from ..limits import check_json_depth

__all__ = ["encode", "decode", "decode_text", "TAGS"]

TAGS = ("__float__", "__tuple__", "__counter__", "__items__")


def encode(obj):
    """JSON-safe copy of ``obj``; tuples, Counters, non-finite floats and non-string-keyed dicts are tagged."""
    if isinstance(obj, (bool, str)) or obj is None:
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, collections.Counter):
        return {"__counter__": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k in TAGS for k in obj):
            return {k: encode(v) for k, v in obj.items()}
        return {"__items__": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, np.ndarray) and obj.ndim == 0:
        return encode(obj.item())
    raise InvalidTypeError(f"cannot store a {type(obj).__name__} in checkpoint JSON: {obj!r}")


def decode(obj):
    """Undo :func:`encode`'s tags (``ValueError`` on a malformed tag)."""
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1:
            (k, v), = obj.items()
            if k == "__float__":
                if not isinstance(v, str):
                    raise _MalformedTag(f"__float__ holds a {type(v).__name__}, not a string")
                return float(v)
            if k == "__tuple__":
                return tuple(decode(x) for x in _as_list(k, v))
            if k == "__counter__":
                return collections.Counter({decode(a): decode(b) for a, b in _pairs(k, v)})
            if k == "__items__":
                return {decode(a): decode(b) for a, b in _pairs(k, v)}
        return {k: decode(v) for k, v in obj.items()}
    return obj


def decode_text(text: str, source):
    """Parse untrusted checkpoint JSON ``text`` (from ``source``) and :func:`decode` it.

    Raises :class:`~glassnet.errors.DataFormatError` (naming ``source``) for text
    that is not JSON, nests deeper than :data:`~glassnet.limits.MAX_DEPTH`, or
    holds a malformed tag.
    """
    check_json_depth(text, source)
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an integer past Python's digit limit
        raise DataFormatError(f"{source}: checkpoint metadata is not valid JSON: {exc}") from None
    try:
        return decode(raw)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise DataFormatError(f"{source}: checkpoint metadata holds a malformed tagged value: {exc}") from None


class _MalformedTag(ValueError):
    """A tagged value that is not what its tag says (caught by :func:`decode_text`)."""


def _as_list(tag, v):
    if not isinstance(v, list):
        raise _MalformedTag(f"{tag} holds a {type(v).__name__}, not a list")
    return v


def _pairs(tag, v):
    for item in _as_list(tag, v):
        if not isinstance(item, list) or len(item) != 2:
            raise _MalformedTag(f"{tag} holds {item!r}, not a [key, value] pair")
        yield item
