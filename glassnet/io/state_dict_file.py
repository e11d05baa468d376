"""Load and save state dicts as files: ``.safetensors``, ``.npz`` and ``.pth``.

* ``.safetensors`` is written here (8-byte little-endian header length, a
  JSON header of ``dtype``/``shape``/``data_offsets``, then the raw bytes) and
  read by :func:`glassnet.io.array_readers.load_safetensors`, so the
  ``safetensors`` package is not needed at runtime.
* ``.npz`` is written here (no pickle) and read by
  :func:`glassnet.io.array_readers.load_npz`.
* ``.pth`` / ``.pt`` / ``.bin`` (``torch.save`` zip archives) go through
  :func:`glassnet.io.pth.load_pth` -- no PyTorch needed either.

Every reader takes ``max_bytes`` and stays within it on any file, hostile
ones included. Every problem with a file raises :class:`StateDictFileError`
(a ``StateDictError`` and a ``DataFormatError``) naming the file and what is
wrong. Writes are atomic: a crash or error mid-write leaves any existing
file untouched and no temporary file behind.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile
from collections import OrderedDict

import numpy as np

from ..backend import to_numpy
from ..files import atomic_write as _atomic_write
from ..tensor import Tensor
from .array_readers import NP_TO_ST as _NP_TO_ST
from .array_readers import load_npz, load_safetensors
from .pth import StateDictFileError, file_errors, load_pth
from .read_guard import CORRUPT_FILE_ERRORS, describe

__all__ = ["load_state_dict_file", "save_state_dict_file"]

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_STRIP_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile


# ======================================================================= load
def load_state_dict_file(path, unwrap: bool = True, max_bytes=None) -> "OrderedDict[str, np.ndarray]":
    """Read a state dict file into ``OrderedDict[name, numpy.ndarray]``.

    The format is recognised from the file's content (the extension only
    serves error messages): a ``torch.save`` zip (``.pth``/``.pt``/``.bin``),
    a NumPy ``.npz`` zip, or ``.safetensors``. No PyTorch and no
    ``safetensors`` package is needed. ``bfloat16`` tensors come back as
    ``float32``; every array is C-contiguous and owns its memory.

    For ``torch.save`` files with ``unwrap=True`` (the default): a
    checkpoint dict holding exactly one of ``"state_dict"``,
    ``"model_state_dict"`` or ``"model"`` is unwrapped to that entry, and a
    ``"module."`` (DataParallel/DDP) or ``"_orig_mod."`` (``torch.compile``)
    prefix shared by *every* key is stripped.

    ``max_bytes`` bounds what reading may allocate, in any format (``None`` =
    :func:`glassnet.limits.default_max_bytes` of the file's size: 1 GiB, or
    16x the file); pass a larger value to read a bigger trusted file.

    Raises :class:`StateDictFileError` naming the file for a missing,
    corrupt, truncated or unsupported file, or one whose content is not a
    flat mapping of names to tensors (or has a key holding a NUL character),
    and :class:`~glassnet.io.pth.StateDictLimitError` (also a
    :class:`~glassnet.errors.LimitExceededError`) naming the file and
    ``max_bytes`` when the file asks for more than the limit.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise StateDictFileError(f"{path}: cannot read file: {exc}") from exc
    ext = os.path.splitext(path)[1].lower()
    # A safetensors header length can begin with b"PK" too, so ask zipfile as well.
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06") and (
            ext in (".pth", ".pt", ".bin", ".ckpt", ".npz") or _is_zip(path)):
        if ext == ".npz" or _is_npz(path):
            return load_npz(path, max_bytes)
        obj = load_pth(path, max_bytes)
        return _to_flat_state_dict(obj, path, unwrap)
    if (len(head) == 9 and head[8:9] == b"{") or ext == ".safetensors":
        return load_safetensors(path, max_bytes)
    if ext in (".pth", ".pt", ".bin", ".ckpt") or head.startswith(b"\x80"):
        obj = load_pth(path, max_bytes)  # a legacy (non-zip) file, or the precise error (corrupt zip...)
        return _to_flat_state_dict(obj, path, unwrap)
    raise StateDictFileError(
        f"{path}: unrecognised state dict file (starts with {head!r}); expected a "
        ".safetensors, .npz or torch.save (.pth/.pt/.bin) file")


def _is_zip(path):
    try:
        return zipfile.is_zipfile(path)
    except CORRUPT_FILE_ERRORS:
        return False


def _is_npz(path):
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except CORRUPT_FILE_ERRORS:
        return False  # let load_pth report the corruption
    return bool(names) and all(n.endswith(".npy") for n in names)


def _to_flat_state_dict(obj, path, unwrap):
    with file_errors(path, "torch.save archive"):
        return _flatten(obj, path, unwrap)


def _flatten(obj, path, unwrap):
    if unwrap:
        for _ in range(3):  # e.g. {"model": {"state_dict": {...}}}
            if not isinstance(obj, dict) or _all_arrays(obj):
                break
            found = [k for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)]
            if len(found) > 1:
                raise StateDictFileError(
                    f"{path}: checkpoint holds several candidate state dicts {found}; "
                    "load it with glassnet.io.load_pth and pick one")
            if not found:
                break
            obj = obj[found[0]]
    if not isinstance(obj, dict):
        raise StateDictFileError(
            f"{path}: holds a {type(obj).__name__}, not a state dict (a dict of name -> tensor)")
    out = OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str):
            raise StateDictFileError(f"{path}: state dict key {describe(k)} is not a string")
        if "\x00" in k:
            raise StateDictFileError(f"{path}: state dict key {describe(k)} contains a NUL character")
        if not isinstance(v, np.ndarray):
            raise StateDictFileError(
                f"{path}: entry {describe(k)} is {describe(v)}, not a tensor; expected a state "
                f"dict (name -> tensor) or a checkpoint with one of the keys {list(_WRAPPER_KEYS)}"
                f" (top-level keys: {[describe(key, 40) for key in list(obj)[:10]]})")
        out[k] = v
    if unwrap and out:
        for prefix in _STRIP_PREFIXES:
            if all(k.startswith(prefix) for k in out):
                out = OrderedDict((k[len(prefix):], v) for k, v in out.items())
    return out


def _all_arrays(d):
    return bool(d) and all(isinstance(v, np.ndarray) for v in d.values())


# ======================================================================= save
def save_state_dict_file(state_dict, path, metadata=None) -> None:
    """Write ``state_dict`` (name -> array) to ``path`` atomically.

    The format follows the extension: ``.safetensors`` (written here; every
    array is made C-contiguous and little-endian first, so views and
    transposed arrays are stored with their logical values) or ``.npz``.
    Values may be NumPy arrays, CuPy arrays, or glassnet Tensors/Parameters
    (e.g. a Module's ``state_dict()``). ``metadata`` (str -> str) goes into
    the safetensors ``__metadata__`` header; it is refused for ``.npz``.

    The file is written to a temporary file in the same folder, flushed,
    fsynced and moved into place with ``os.replace``: an error or crash
    leaves any previous file at ``path`` unchanged and no temporary behind.
    Raises :class:`StateDictFileError` for an unsupported extension, a
    non-string key or an array dtype the format cannot store (before any
    file is touched).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".safetensors", ".npz"):
        raise StateDictFileError(
            f"{path}: save_state_dict_file writes .safetensors or .npz, not {ext or 'no extension'!r}")
    arrays = _prepare_arrays(state_dict, path, ext)
    if metadata is not None:
        if ext != ".safetensors":
            raise StateDictFileError(f"{path}: metadata is only supported for .safetensors")
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise StateDictFileError(f"{path}: metadata must be a dict of str -> str")
    writer = _write_safetensors if ext == ".safetensors" else _write_npz
    _atomic_write(path, lambda f: writer(f, arrays, metadata))


def _prepare_arrays(state_dict, path, ext):
    if not hasattr(state_dict, "items"):
        raise StateDictFileError(
            f"{path}: expected a state dict (name -> array), got {type(state_dict).__name__}")
    arrays = OrderedDict()
    for name, value in state_dict.items():
        if not isinstance(name, str) or not name:
            raise StateDictFileError(f"{path}: state dict key {name!r} is not a non-empty string")
        if "\x00" in name:
            raise StateDictFileError(f"{path}: state dict key {name!r} contains a NUL character, "
                                     "which a reader would cut short (and so confuse with another key)")
        if ext == ".safetensors" and name == "__metadata__":
            raise StateDictFileError(f"{path}: key '__metadata__' is reserved in .safetensors")
        if isinstance(value, Tensor):  # glassnet Tensor / Parameter
            value = value.data
        arr = np.asarray(to_numpy(value), order="C")
        if ext == ".safetensors":
            key = arr.dtype.newbyteorder("=")
            if key not in _NP_TO_ST:
                raise StateDictFileError(
                    f"{path}: entry {name!r} has dtype {arr.dtype}, which .safetensors cannot store")
            arr = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
        elif arr.dtype.kind not in "biufc":
            raise StateDictFileError(
                f"{path}: entry {name!r} has dtype {arr.dtype}, which .npz cannot store "
                "without pickle")
        arrays[name] = arr
    return arrays


def _write_safetensors(f, arrays, metadata):
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, arr in arrays.items():
        header[name] = {"dtype": _NP_TO_ST[arr.dtype.newbyteorder("=")],
                        "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # align the data section to 8 bytes, as safetensors does
    f.write(struct.pack("<Q", len(blob)))
    f.write(blob)
    for arr in arrays.values():
        f.write(memoryview(arr.reshape(-1).view(np.uint8)))


def _write_npz(f, arrays, metadata):
    # zipfile + write_array directly (what np.savez does) so that keys like
    # "file" cannot collide with np.savez's own parameters.
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)
