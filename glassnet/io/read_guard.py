"""Guards the state-dict readers share against corrupt and hostile files.

* :data:`CORRUPT_FILE_ERRORS` -- every builtin exception ``zipfile``,
  ``zlib``, ``struct``, ``json``, ``pickle`` and NumPy raise on a damaged
  file. A reader catches these around its parsing and re-raises one glassnet
  error naming the file, so no raw ``BadZipFile``, ``struct.error`` or
  ``RecursionError`` reaches a user.
* :func:`array_nbytes` -- the bytes an array of a shape read from a file
  will take, checked by :func:`glassnet.limits.nbytes_of` (rank, negative
  sizes, exact products) *and* for an extent NumPy can represent (a shape
  like ``(0, 2**62)`` holds no bytes but cannot be allocated either).
* :func:`describe` -- a short, bounded description of a value from a file
  for error messages (``repr`` of a hostile value can be huge or recurse).
* :func:`read_budget` -- the :class:`~glassnet.limits.ReadBudget` of one read,
  with ``max_bytes`` checked to be an int or ``None``.
"""
from __future__ import annotations

import json
import math
import numbers
import pickle
import struct
import tokenize
import zipfile
import zlib

from ..errors import DataFormatError, InvalidTypeError
from ..limits import ReadBudget, nbytes_of

__all__ = ["CORRUPT_FILE_ERRORS", "array_nbytes", "describe", "read_budget"]

#: what parsing a damaged file can raise (RecursionError and MemoryError included:
#: the readers bound what they allocate and how deep they nest, but a library
#: underneath may still hit them first)
CORRUPT_FILE_ERRORS = (
    zipfile.BadZipFile, zlib.error, struct.error, json.JSONDecodeError, pickle.UnpicklingError,
    tokenize.TokenError,  # NumPy tokenizes a .npy header before it literal_evals it
    EOFError, OSError, NotImplementedError, ValueError, TypeError, LookupError, IndexError,
    AttributeError, ArithmeticError, BufferError, SyntaxError, RuntimeError, MemoryError,
)

#: NumPy cannot represent an array whose byte extent exceeds the largest intp
_MAX_EXTENT = 2 ** 63 - 1


def array_nbytes(shape, itemsize: int, source, what: str) -> int:
    """Bytes of an array of ``shape`` with ``itemsize``-byte elements, as
    :func:`glassnet.limits.nbytes_of` computes them, also refusing (with
    :class:`DataFormatError`) a shape whose non-zero sizes multiply past what
    NumPy can index, even when another size is 0."""
    nbytes = nbytes_of(shape, itemsize, source, what)
    extent = math.prod(int(d) for d in shape if int(d) != 0) * max(int(itemsize), 1)
    if extent > _MAX_EXTENT:
        raise DataFormatError(f"{source}: {what} has the shape {describe(tuple(shape))}, whose "
                              f"non-zero sizes multiply past 2**63 bytes: no array can have it")
    return nbytes


def describe(value, limit: int = 60) -> str:
    """A short description of ``value`` for an error message, never more than
    about ``limit`` characters and never recursing into a nested value."""
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10 ** 18 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, (str, bytes, bytearray)):
        text = repr(value[:limit])
        return text if len(value) <= limit else f"{text}... ({len(value)} long)"
    if isinstance(value, tuple) and len(value) <= 8 and all(
            v is None or isinstance(v, (bool, int, float)) for v in value):
        return "(" + ", ".join(describe(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    try:
        size = f" of {len(value)} items"
    except Exception:  # noqa: BLE001 - any object from a file: its len() may fail any way
        size = ""
    return f"a {type(value).__name__}{size}"


def read_budget(path, max_bytes, file_size: int) -> ReadBudget:
    """The budget of one read of ``path`` (``file_size`` bytes): ``max_bytes`` bytes,
    or for ``None`` :func:`glassnet.limits.default_max_bytes` of ``file_size``.

    Raises :class:`InvalidTypeError` if ``max_bytes`` is not an int or ``None``,
    and :class:`~glassnet.errors.LimitExceededError` if it is negative.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral)):
        raise InvalidTypeError(f"{path}: max_bytes must be an int (bytes) or None, "
                               f"got {type(max_bytes).__name__}")
    return ReadBudget(path, max_bytes, file_size=file_size)
