"""Reading the CIFAR python-format pickles without trusting them.

The official files (``cifar-10-batches-py/data_batch_1`` ...) are Python 2 pickles of one dict:
``data`` a uint8 NumPy array (N, 3072), ``labels`` / ``fine_labels`` / ``coarse_labels`` lists
of ints, ``batch_label`` and ``filenames`` strings; the meta files hold lists of class names.
``pickle.load`` on such a file would call any global the file names (``os.system``...).
:func:`load_cifar_pickle` instead

1. reads at most ``max_bytes`` of the file (:class:`~glassnet.limits.ReadBudget`),
2. runs :func:`glassnet.safe_pickle.scan_pickle` over the opcodes (memo abuse, deep nesting,
   oversized strings are refused before anything is built),
3. unpickles with an allow-list ``find_class``: only the NumPy array reconstruction the
   official files use (``numpy.core.multiarray._reconstruct`` -- or ``numpy._core`` as NumPy 2
   writes it -- ``numpy.ndarray``, ``numpy.dtype``), replaced by stand-ins that accept nothing
   but a C-order uint8 array of at most 2 dimensions whose bytes are all there, plus
   ``_codecs.encode(text, "latin1")`` (how Python 3 pickles bytes at protocol 2). Any other
   global -- ``os.system``, ``builtins.eval``, any class -- raises :class:`UnsafePickleError`
   before it is looked up, so nothing in the file is ever called.

Keys may be bytes (the official files read with ``encoding="bytes"``) or str (files re-pickled
in Python 3); they come back as str.
"""
from __future__ import annotations

import io
import math
import os
import pickle

import numpy as np

from ..errors import DataFormatError, GlassnetError
from ..limits import ReadBudget
from ..safe_pickle import scan_pickle

__all__ = ["UnsafePickleError", "load_cifar_pickle"]


class UnsafePickleError(DataFormatError):
    """A CIFAR pickle names a global outside the allow-list (it is refused, never called)."""


class _Bad(Exception):
    """A stand-in refused its arguments (turned into a DataFormatError naming the file)."""


class _NdarrayType:
    """Stands in for ``numpy.ndarray`` (only ever passed to ``_reconstruct``)."""


_NDARRAY = _NdarrayType()


class _Dtype:
    """Stands in for ``numpy.dtype("u1")``; accepts only uint8's pickled state."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) >= 2 and state[1] in ("|", b"|")):
            raise _Bad(f"unexpected dtype state {_short(state)}")


def _dtype(name, align=False, copy=True):
    if name not in ("u1", b"u1", "uint8", b"uint8"):
        raise _Bad(f"arrays must be uint8, the file asks for dtype {_short(name)}")
    return _Dtype()


class _Array:
    """Stands in for an ndarray being unpickled; ``array`` is set by ``__setstate__``."""

    array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise _Bad(f"unexpected ndarray state {_short(state)}")
        version, shape, dtype, fortran, raw = state
        if version != 1 or not isinstance(dtype, _Dtype) or fortran not in (False, 0):
            raise _Bad("only C-order uint8 arrays are accepted")
        if not (isinstance(shape, tuple) and len(shape) <= 2
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise _Bad(f"bad array shape {_short(shape)} (at most 2 non-negative sizes)")
        if isinstance(raw, str):
            raw = raw.encode("latin1")
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != math.prod(shape):
            n = len(raw) if isinstance(raw, (bytes, bytearray, str)) else _short(raw)
            raise _Bad(f"array of shape {shape} needs {math.prod(shape)} bytes, the file holds {n}")
        self.array = np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def _reconstruct(cls, shape, typecode):
    if cls is not _NDARRAY or shape != (0,) or typecode not in ("b", b"b"):
        raise _Bad("unexpected arguments to numpy's _reconstruct")
    return _Array()


def _latin1(text, encoding="latin1"):
    if not isinstance(text, str) or encoding != "latin1":
        raise _Bad("_codecs.encode is accepted only as encode(text, 'latin1')")
    return text.encode("latin1")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, path):
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._path = path

    def find_class(self, module, name):
        fn = _ALLOWED.get((module, name)) if isinstance(module, str) and isinstance(name, str) else None
        if fn is None:
            raise UnsafePickleError(
                f"{self._path}: refusing to load global '{str(module)[:100]}.{str(name)[:100]}' from the pickle; "
                "a CIFAR file holds only dicts, lists, strings, ints and uint8 arrays, and glassnet never "
                "executes code from a data file (re-download it with download=True)")
        return fn

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self._path}: the pickle uses persistent ids, which a CIFAR file never does")


def _plain(value, path, depth=0):
    """The unpickled value with stand-ins replaced by arrays and bytes keys by str; anything
    outside dict/list/tuple/bytes/str/int/bool/None/float raises."""
    if isinstance(value, _Array):
        if value.array is None:
            raise _Bad("an array was never filled in")
        return value.array
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, bytes):
                try:
                    k = k.decode("ascii")
                except UnicodeDecodeError:
                    raise _Bad(f"a key is not ASCII: {_short(k)}") from None
            if not isinstance(k, str):
                raise _Bad(f"a key is a {type(k).__name__}, not a string")
            out[k] = _plain(v, path, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, path, depth + 1) for v in value]
    if value is None or isinstance(value, (bytes, str, int, float)):
        return value
    raise _Bad(f"the file holds a {type(value).__name__}")


def _short(obj, n=60):
    text = repr(obj)
    return text if len(text) <= n else text[: n - 3] + "..."


def load_cifar_pickle(path, max_bytes: int | None = None) -> dict:
    """The dict pickled in the CIFAR file ``path``, read safely (see the module docstring).

    Raises :class:`UnsafePickleError` for a global outside the allow-list,
    :class:`~glassnet.errors.LimitExceededError` for a file over ``max_bytes`` (``None``:
    1 GiB or 16x the file) or nested too deep, :class:`~glassnet.errors.DataFormatError` for
    anything else that is not a CIFAR-style dict; each names the file.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
        budget = ReadBudget(path, max_bytes, file_size=size)
        budget.take(size, "the file")
        with open(path, "rb") as f:
            data = f.read(size + 1)
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    scan_pickle(data, path, budget, what="the pickle")
    try:
        value = _Unpickler(data, path).load()
        value = _plain(value, path)
    except GlassnetError:
        raise
    except RecursionError:
        raise DataFormatError(f"{path}: the pickle nests too deeply") from None
    except MemoryError:
        raise
    except _Bad as exc:
        raise DataFormatError(f"{path}: not a CIFAR python-format file: {exc}") from None
    except Exception as exc:  # the unpickler raises many kinds for a malformed pickle
        raise DataFormatError(f"{path}: not a valid pickle: {type(exc).__name__}: {exc}") from None
    if not isinstance(value, dict):
        raise DataFormatError(f"{path}: expected a pickled dict, got a {type(value).__name__}")
    return value
