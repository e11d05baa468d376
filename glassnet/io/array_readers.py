"""Readers of ``.npz`` and ``.safetensors`` state dicts, bounded against hostile files.

Both take ``max_bytes`` (``None`` = :func:`glassnet.limits.default_max_bytes`
of the file's size) and charge every member they decompress and every array
they allocate to one :class:`~glassnet.limits.ReadBudget` *before* doing so;
both read arrays straight into their final buffer, in bounded chunks. Every
problem raises a :class:`~glassnet.io.pth.StateDictFileError` naming the file
(a :class:`~glassnet.io.pth.StateDictLimitError` for a limit).

* ``.npz``: the zip directory is checked by :func:`glassnet.io.safe_zip.open_zip`;
  each ``.npy`` header is parsed with NumPy's own header reader (bounded to
  10 000 bytes), its dtype must be a plain number or bool, and its shape must
  need exactly the bytes the member holds -- NumPy's ``np.load`` would
  allocate whatever the header claims first.
* ``.safetensors``: the header length must be at most 100 MiB and inside the
  file; the JSON must be UTF-8, nest at most :data:`glassnet.limits.MAX_DEPTH`
  levels, hold no duplicate keys, and give every tensor a known ``dtype``
  string, a ``shape`` list of at most 64 non-negative ints and
  ``data_offsets`` of two ints that span exactly the tensor's bytes.

Keys holding a NUL character are refused (a NUL-truncated name would
silently replace another tensor).
"""
from __future__ import annotations

import json
import os
import struct
from collections import OrderedDict

import numpy as np

from ..errors import DataFormatError, LimitExceededError
from ..limits import MAX_DEPTH, check_json_depth
from .pth import StateDictFileError, file_errors
from .read_guard import array_nbytes, describe, read_budget
from .safe_zip import open_zip, read_into

__all__ = ["load_npz", "load_safetensors", "ST_TO_NP", "NP_TO_ST", "MAX_HEADER"]

# safetensors dtype tag <-> NumPy dtype (little-endian). BF16 is widened to float32.
ST_TO_NP = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    "BF16": np.dtype("<u2"),  # raw bits; converted to float32 after reading
}
NP_TO_ST = {np.dtype(v).newbyteorder("="): k for k, v in ST_TO_NP.items() if k != "BF16"}
#: the longest safetensors JSON header read (the safetensors reference limit)
MAX_HEADER = 100 * 1024 * 1024
_NPY_MAX_HEADER = 10000  # NumPy's own default bound on a .npy header


def _budget(path, max_bytes):
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise StateDictFileError(f"{path}: cannot read file: {exc}") from exc
    with file_errors(path, "file"):
        return read_budget(path, max_bytes, size)


# ======================================================================= npz
def load_npz(path, max_bytes=None) -> "OrderedDict[str, np.ndarray]":
    """Read a ``.npz`` archive (no pickle) into ``OrderedDict[name, ndarray]``,
    every array C-contiguous and owning its memory; see the module docstring."""
    path = os.fspath(path)
    budget = _budget(path, max_bytes)
    out = OrderedDict()
    with file_errors(path, ".npz file"):
        with open_zip(path, budget) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise StateDictFileError(f"{path}: .npz member {info.filename[:200]!r} is not a "
                                             ".npy array")
                name = info.filename[:-len(".npy")]
                if name in out:
                    raise StateDictFileError(f"{path}: .npz holds entry {name[:200]!r} twice")
                out[name] = _read_npy(zf, info, name, budget, path)
    return out


class _HeaderReader:
    """What NumPy's header parser reads through: at most ``limit`` bytes in all, so a
    header length of 4 GiB can neither be read nor make the zip reader allocate it."""

    def __init__(self, fp, limit):
        self.fp, self.left, self.consumed = fp, limit, 0

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.fp.read(n)
        self.left -= len(data)
        self.consumed += len(data)
        return data


def _read_npy(zf, info, name, budget, path):
    what = f"entry {name[:200]!r}"
    with zf.open(info) as fp:
        head = _HeaderReader(fp, 16 + _NPY_MAX_HEADER)
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(head, _NPY_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(head, _NPY_MAX_HEADER)
        else:
            raise DataFormatError(f"{path}: {what} is .npy format version {version}; "
                                  "versions 1.0 and 2.0 are read")
        if dtype.hasobject:
            raise DataFormatError(f"{path}: .npz {what} holds object arrays (needs pickle), refused")
        if dtype.kind not in "biufc" or dtype.subdtype is not None:
            raise DataFormatError(f"{path}: {what} has unsupported dtype {describe(str(dtype))}")
        nbytes = array_nbytes(shape, dtype.itemsize, path, what)
        held = info.file_size - head.consumed
        if held != nbytes:
            raise DataFormatError(f"{path}: {what} of dtype {dtype} and shape {describe(tuple(shape))} "
                                  f"needs {nbytes} bytes but its member holds {held} after the header")
        shape = tuple(shape)
        stored = shape[::-1] if fortran else shape  # Fortran order = C order of the reversed shape
        budget.take(nbytes * (2 if fortran and len(shape) > 1 else 1), f"{what} of shape {shape}")
        arr = np.empty(stored, dtype=dtype)
        read_into(fp, memoryview(arr.reshape(-1).view(np.uint8)), path, f".npz {what}")
        if fp.read(1):
            raise DataFormatError(f"{path}: .npz {what} holds more than its {nbytes} bytes")
    if fortran and len(shape) > 1:
        arr = np.ascontiguousarray(arr.T)
    return arr


# =============================================================== safetensors
class _DuplicateKey(Exception):
    """Internal: a JSON object repeats a key."""


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def load_safetensors(path, max_bytes=None) -> "OrderedDict[str, np.ndarray]":
    """Read a ``.safetensors`` file into ``OrderedDict[name, ndarray]`` (``BF16``
    widened to ``float32``), in data order; see the module docstring."""
    path = os.fspath(path)
    budget = _budget(path, max_bytes)

    def bad(msg):
        return StateDictFileError(f"{path}: corrupt .safetensors file: {msg}")

    try:
        with open(path, "rb") as f, file_errors(path, ".safetensors file"):
            f.seek(0, os.SEEK_END)
            file_size = f.tell()
            f.seek(0)
            raw_len = f.read(8)
            if len(raw_len) < 8:
                raise bad(f"file is {file_size} bytes, too short for the 8-byte header length")
            (n,) = struct.unpack("<Q", raw_len)
            if n > MAX_HEADER:
                raise bad(f"header length {n} is more than the {MAX_HEADER} bytes a header may have")
            if 8 + n > file_size:
                raise bad(f"header length {n} runs past the end of the {file_size}-byte file")
            budget.take(4 * n, "the JSON header (its bytes, its text and the values parsed from it)")
            header = _parse_header(f.read(n), path, bad)
            data_start = 8 + n
            entries = _entries(header, file_size - data_start, bad, path)
            out = OrderedDict()
            for name, tag, shape, (begin, end) in entries:
                nbytes = end - begin
                budget.take(nbytes * (3 if tag == "BF16" else 1), f"tensor {name!r} of shape {shape}")
                arr = np.empty(shape, dtype=ST_TO_NP[tag])
                f.seek(data_start + begin)
                read_into(f, memoryview(arr.reshape(-1).view(np.uint8)), path, f"tensor {name!r}")
                if not arr.dtype.isnative:
                    arr = arr.astype(arr.dtype.newbyteorder("="))
                if tag == "BF16":
                    wide = arr.astype(np.uint32)
                    wide <<= 16
                    arr = wide.view(np.float32)
                out[name] = arr
            return out
    except OSError as exc:
        raise StateDictFileError(f"{path}: cannot read file: {exc}") from exc


def _parse_header(raw, path, bad):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"header is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise bad(f"header repeats the key {describe(exc.args[0])}") from None
    except RecursionError:  # the parser's limit (~1000 levels) is far past MAX_DEPTH
        raise LimitExceededError(f"{path}: corrupt .safetensors file: header JSON nested more than "
                                 f"{MAX_DEPTH} levels deep", limit_name="max_depth",
                                 limit=MAX_DEPTH) from None
    except ValueError as exc:  # json.JSONDecodeError, or an integer of too many digits
        raise bad(f"header is not valid JSON: {str(exc)[:200]}") from None
    try:
        check_json_depth(text, path)  # linear on text json.loads accepted (every string closed)
    except LimitExceededError as exc:
        raise LimitExceededError(f"{path}: corrupt .safetensors file: header {str(exc)[len(path) + 2:]}",
                                 limit_name=exc.limit_name, limit=exc.limit) from None
    if not isinstance(header, dict):
        raise bad(f"header is a JSON {type(header).__name__}, not an object")
    return header


def _entries(header, data_len, bad, path):
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise bad("__metadata__ is not an object of strings")
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if "\x00" in name:
            raise bad(f"tensor name {describe(name)} contains a NUL character")
        entries.append((name,) + _check_entry(name, info, data_len, bad, path))
    entries.sort(key=lambda e: e[3][0])
    prev_end = 0
    for name, _, _, (begin, end) in entries:
        if begin < prev_end:
            raise bad(f"tensor {name!r} bytes [{begin}, {end}) overlap the previous tensor")
        prev_end = end
    return entries


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(name, info, data_len, bad, path):
    if not isinstance(info, dict):
        raise bad(f"entry {name!r} is not an object")
    tag = info.get("dtype")
    if not isinstance(tag, str) or tag not in ST_TO_NP:
        raise bad(f"tensor {name!r} has unsupported dtype {describe(tag)}")
    shape = info.get("shape")
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
        raise bad(f"tensor {name!r} has invalid shape {describe(shape)}")
    try:
        need = array_nbytes(shape, ST_TO_NP[tag].itemsize, path, f"tensor {name!r}")
    except DataFormatError as exc:
        raise bad(str(exc)[len(path) + 2:]) from None
    offsets = info.get("data_offsets")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        raise bad(f"tensor {name!r} has invalid data_offsets {describe(offsets)}")
    begin, end = offsets
    if not 0 <= begin <= end:
        raise bad(f"tensor {name!r} has data_offsets [{begin}, {end}] out of order")
    if end > data_len:
        raise bad(f"tensor {name!r} data_offsets [{begin}, {end}] run past the end of "
                  f"the {data_len}-byte data section (file truncated?)")
    if end - begin != need:
        raise bad(f"tensor {name!r} of dtype {tag} and shape {shape} needs {need} bytes "
                  f"but data_offsets [{begin}, {end}] span {end - begin}")
    return tag, tuple(shape), (begin, end)
