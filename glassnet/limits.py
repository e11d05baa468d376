"""Limits every file reader checks *before* it allocates, decompresses or recurses.

A hostile or corrupt file must not make glassnet allocate gigabytes, run for
minutes or overflow the C stack. Each reader takes a ``max_bytes`` keyword
(``None`` = :func:`default_max_bytes` of the file's size) and charges every
array, decompressed member and string it is about to create to one
:class:`ReadBudget`; the first charge over the limit raises
:class:`~glassnet.errors.LimitExceededError` naming the file, what was being
read, how many bytes it asked for and which keyword raises the limit.

    budget = ReadBudget("model.pth", max_bytes=None, file_size=os.path.getsize("model.pth"))
    budget.take(nbytes_of((64, 3, 7, 7), 4, "model.pth", "tensor conv1.weight"), "tensor conv1.weight")

Shapes go through :func:`nbytes_of` (rank at most :data:`MAX_DIMS`, no
negative sizes, the product computed in Python integers so ``0 x 2**62`` or
``2**40 x 2**40`` cannot wrap around), and nested text formats through
:func:`check_json_depth` (at most :data:`MAX_DEPTH` levels).
"""
from __future__ import annotations

import math
import operator
import re

from .errors import DataFormatError, LimitExceededError

__all__ = ["MAX_DIMS", "MAX_DEPTH", "DEFAULT_MIN_BYTES", "DEFAULT_SIZE_FACTOR", "default_max_bytes",
           "ReadBudget", "nbytes_of", "check_json_depth"]

#: the most dimensions an array read from a file may have (NumPy's own limit is 64)
MAX_DIMS = 64
#: the deepest nesting of lists/dicts/tuples a reader accepts (JSON, pickles)
MAX_DEPTH = 100
#: a file may always decode to at least this many bytes ...
DEFAULT_MIN_BYTES = 1 << 30
#: ... and to this many times its own size (compressed data sets, fp16 widened to fp32)
DEFAULT_SIZE_FACTOR = 16


def default_max_bytes(file_size: int | None) -> int:
    """The default ``max_bytes`` for a file of ``file_size`` bytes:
    ``max(DEFAULT_MIN_BYTES, DEFAULT_SIZE_FACTOR * file_size)`` (1 GiB, or 16x the file)."""
    return max(DEFAULT_MIN_BYTES, DEFAULT_SIZE_FACTOR * int(file_size or 0))


class ReadBudget:
    """The bytes one read of ``source`` may still allocate.

    Args:
        source: the file (or URL) being read, used in error messages.
        max_bytes: the limit; ``None`` = :func:`default_max_bytes` of ``file_size``.
        file_size: the file's size in bytes (for the default).
        limit_name: the keyword a caller passes to raise the limit (named in the error).
    """

    def __init__(self, source, max_bytes: int | None = None, *, file_size: int | None = None,
                 limit_name: str = "max_bytes"):
        self.source = str(source)
        self.limit_name = limit_name
        self.max_bytes = default_max_bytes(file_size) if max_bytes is None else int(max_bytes)
        if self.max_bytes < 0:
            raise LimitExceededError(f"{self.source}: {limit_name} must be >= 0, got {max_bytes}",
                                     limit_name=limit_name, limit=max_bytes)
        self.used = 0

    def take(self, nbytes: int, what: str) -> int:
        """Charge ``nbytes`` for ``what``; raise :class:`LimitExceededError` past the limit."""
        nbytes = int(nbytes)
        if nbytes < 0:
            raise DataFormatError(f"{self.source}: {what} has a negative size ({nbytes} bytes)")
        if self.used + nbytes > self.max_bytes:
            raise LimitExceededError(
                f"{self.source}: {what} needs {_human(nbytes)} ({nbytes} bytes), which with the "
                f"{_human(self.used)} read so far exceeds {self.limit_name}={self.max_bytes} "
                f"({_human(self.max_bytes)}); pass a larger {self.limit_name} if the file is trusted",
                limit_name=self.limit_name, needed=self.used + nbytes, limit=self.max_bytes)
        self.used += nbytes
        return nbytes


def nbytes_of(shape, itemsize: int, source, what: str) -> int:
    """Bytes of an array of ``shape`` with ``itemsize``-byte elements, checked:
    at most :data:`MAX_DIMS` dimensions, every size a non-negative integer.

    Shape: any sequence of ints; the product is exact (Python integers).
    """
    try:
        dims = [_exact_int(d) for d in shape]
    except TypeError:
        dims = None
    if dims is None:
        raise DataFormatError(f"{source}: {what} has a shape that is not a list of integers: {_short(shape)}")
    if len(dims) > MAX_DIMS:
        raise DataFormatError(f"{source}: {what} has {len(dims)} dimensions; at most {MAX_DIMS} are allowed")
    if any(d < 0 for d in dims):
        raise DataFormatError(f"{source}: {what} has a negative size in its shape {tuple(dims)}")
    return math.prod(dims) * int(itemsize)


def _exact_int(value) -> int:
    """``value`` as an exact int; ``TypeError`` for bools, floats and non-numbers."""
    if isinstance(value, bool):
        return operator.index(None)  # bool is not a size: raises TypeError like any non-integer
    return operator.index(value)


#: the tokens that matter for nesting: an escape (backslash + the character it escapes), a quote, a bracket
_JSON_TOKEN = re.compile(r'\\.|["\[\]{}]', re.S)


def check_json_depth(text: str, source, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`LimitExceededError` if the JSON ``text`` nests lists/objects deeper than
    ``max_depth`` (checked on the raw text, before any parser recurses).

    One forward pass over the tokens that matter (escapes, quotes, brackets), so the
    time is linear in the text's length whatever it holds.
    """
    depth = 0
    in_string = False
    for token in _JSON_TOKEN.finditer(text):
        ch = token.group()
        if ch == '"':
            in_string = not in_string
        elif in_string or len(ch) == 2:
            continue
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                raise LimitExceededError(f"{source}: JSON nested more than {max_depth} levels deep",
                                         limit_name="max_depth", needed=None, limit=max_depth)
        else:
            depth -= 1


def _human(n: int) -> str:
    """``n`` bytes in the largest binary unit up to PiB (integer arithmetic: any size prints)."""
    n = int(n)
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    i = 0
    while i < len(units) - 1 and abs(n) >= 1024 ** (i + 1):
        i += 1
    if i == 0:
        return f"{n} B"
    whole, rest = divmod(abs(n), 1024 ** i)
    sign = "-" if n < 0 else ""
    return f"{sign}{whole}.{rest * 10 // 1024 ** i} {units[i]}"


def _short(obj, n: int = 80) -> str:
    text = repr(obj)
    return text if len(text) <= n else text[: n - 3] + "..."
