"""Read files written by ``torch.save`` without importing PyTorch.

Since PyTorch 1.6, ``torch.save`` writes a zip archive::

    <archive>/data.pkl          the pickled object (a state dict, a checkpoint dict...)
    <archive>/data/<key>        one raw storage per key (the tensor bytes)
    <archive>/byteorder         "little" or "big" (absent in old files: little)
    <archive>/version           the format version

The pickle refers to each storage through a *persistent id*
``('storage', <StorageType>, key, location, numel)`` and rebuilds every
tensor with ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
...)``. :func:`load_pth` runs that pickle through a restricted unpickler whose
``find_class`` admits only the handful of names a state dict needs (see
``_ALLOWED``); anything else -- ``os.system``, ``builtins.eval``, a custom
class -- is refused with :class:`UnsafePickleError` *before* it can be called,
so loading a file never executes code from it.

Tensors come back as C-contiguous NumPy arrays (views and transposed tensors
are materialised through ``as_strided`` + copy, so two tensors that shared one
storage become two independent arrays). ``bfloat16`` has no NumPy dtype and is
converted to ``float32`` exactly.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
import zlib

import numpy as np

from ..errors import DataFormatError, StateDictError

__all__ = ["load_pth", "StateDictFileError", "UnsafePickleError"]


class StateDictFileError(StateDictError, DataFormatError):
    """A weights file is corrupt, truncated, of an unsupported kind, or holds
    something other than a state dict of tensors. The message names the file."""


class UnsafePickleError(StateDictFileError):
    """A ``.pth`` pickle references a global outside the state-dict allow-list."""


# --------------------------------------------------------------------- dtypes
# torch storage class name -> NumPy dtype of one element (little-endian).
# "bfloat16" is read as its raw 16 bits and widened to float32 on rebuild.
_BF16 = "bfloat16"
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": _BF16,
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
    "ComplexFloatStorage": np.dtype("<c8"),
    "ComplexDoubleStorage": np.dtype("<c16"),
}
_UNTYPED = "UntypedStorage"  # torch >= 2 for dtypes without a legacy storage class

# torch dtype objects (``torch.float32`` ...) as they appear in _rebuild_tensor_v3.
_TORCH_DTYPES = {
    "float64": np.dtype("<f8"), "double": np.dtype("<f8"),
    "float32": np.dtype("<f4"), "float": np.dtype("<f4"),
    "float16": np.dtype("<f2"), "half": np.dtype("<f2"),
    "bfloat16": _BF16,
    "int64": np.dtype("<i8"), "long": np.dtype("<i8"),
    "int32": np.dtype("<i4"), "int": np.dtype("<i4"),
    "int16": np.dtype("<i2"), "short": np.dtype("<i2"),
    "int8": np.dtype("i1"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
    "bool": np.dtype("?"),
    "complex64": np.dtype("<c8"), "cfloat": np.dtype("<c8"),
    "complex128": np.dtype("<c16"), "cdouble": np.dtype("<c16"),
}

_LEGACY_MAGIC_PREFIX = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch < 1.6 magic number


def _item_size(dtype) -> int:
    return 2 if dtype is _BF16 else dtype.itemsize


class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co. inside the pickle (never callable)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype  # np.dtype, _BF16, or None for UntypedStorage

    def __repr__(self):
        return f"torch.{self.name}"


class _TorchDtype:
    """Stands in for a ``torch.<dtype>`` object (argument of _rebuild_tensor_v3)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    """One storage read from ``data/<key>``: raw bytes plus the element dtype."""

    __slots__ = ("key", "raw", "dtype")

    def __init__(self, key, raw, dtype):
        self.key = key
        self.raw = raw      # 1-D uint8 array holding exactly the storage bytes
        self.dtype = dtype  # element dtype (np.dtype / _BF16) or None if untyped


class _Bad(Exception):
    """Internal: a problem found while rebuilding; wrapped with the file name."""


# ------------------------------------------------------------- tensor rebuild
def _rebuild(storage, storage_offset, size, stride, dtype, byteorder):
    if not isinstance(storage, _Storage):
        raise _Bad(f"tensor rebuilt from {type(storage).__name__}, not from a storage")
    if dtype is None:
        raise _Bad(f"storage {storage.key!r} is untyped and no dtype was given")
    try:
        offset = int(storage_offset)
        size = tuple(int(s) for s in size)
        stride = tuple(int(s) for s in stride)
    except (TypeError, ValueError):
        raise _Bad(f"storage {storage.key!r}: bad offset/size/stride "
                   f"{storage_offset!r}/{size!r}/{stride!r}") from None
    if len(size) != len(stride):
        raise _Bad(f"storage {storage.key!r}: size {size} and stride {stride} differ in rank")
    if offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise _Bad(f"storage {storage.key!r}: negative offset/size/stride "
                   f"(offset {offset}, size {size}, stride {stride})")
    itemsize = _item_size(dtype)
    if storage.raw.size % itemsize:
        raise _Bad(f"storage {storage.key!r} holds {storage.raw.size} bytes, "
                   f"not a whole number of {itemsize}-byte elements")
    numel_storage = storage.raw.size // itemsize
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= numel_storage:
            raise _Bad(f"storage {storage.key!r} has {numel_storage} elements but the tensor "
                       f"(offset {offset}, size {size}, stride {stride}) reaches element {last}")
    if dtype is _BF16:
        base = storage.raw.view(np.dtype("<u2") if byteorder == "little" else np.dtype(">u2"))
    else:
        base = storage.raw.view(dtype if byteorder == "little" else dtype.newbyteorder(">"))
    if 0 in size:
        out = np.empty(size, dtype=base.dtype)
    else:
        view = np.lib.stride_tricks.as_strided(
            base[offset:], shape=size, strides=tuple(s * base.itemsize for s in stride),
            writeable=False)
        out = np.array(view, order="C", copy=True)
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    if dtype is _BF16:
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _make_rebuilders(byteorder):
    def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                           backward_hooks=None, metadata=None):
        dtype = storage.dtype if isinstance(storage, _Storage) else None
        return _rebuild(storage, storage_offset, size, stride, dtype, byteorder)

    def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad=False,
                           backward_hooks=None, dtype=None, metadata=None):
        if not isinstance(dtype, _TorchDtype):
            raise _Bad(f"_rebuild_tensor_v3 got dtype {dtype!r}, not a torch dtype")
        return _rebuild(storage, storage_offset, size, stride, dtype.dtype, byteorder)

    def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, *state):
        if not isinstance(data, np.ndarray):
            raise _Bad(f"_rebuild_parameter got {type(data).__name__}, not a tensor")
        return data

    return {
        "_rebuild_tensor_v2": _rebuild_tensor_v2,
        "_rebuild_tensor_v3": _rebuild_tensor_v3,
        "_rebuild_parameter": _rebuild_parameter,
        "_rebuild_parameter_with_state": _rebuild_parameter,
    }


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """Protocol 2 pickles ``bytes`` as ``_codecs.encode(str, 'latin1')``; allow only that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _Bad(f"_codecs.encode is only allowed as the protocol-2 bytes encoding, "
                   f"got encoding {encoding!r}")
    return text.encode("latin1")


def _torch_size(*args):
    return tuple(*args)


# ------------------------------------------------------------------ unpickler
class _StateDictUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals a state dict needs."""

    def __init__(self, data, zf, prefix, path, byteorder):
        super().__init__(io.BytesIO(data))
        self._zf = zf
        self._prefix = prefix
        self._path = path
        self._byteorder = byteorder
        self._storages = {}
        rebuilders = _make_rebuilders(byteorder)
        self._allowed = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("_codecs", "encode"): _latin1_encode,
            ("torch", "Size"): _torch_size,
            ("torch.storage", _UNTYPED): _StorageType(_UNTYPED, None),
            ("torch", _UNTYPED): _StorageType(_UNTYPED, None),
        }
        for name, fn in rebuilders.items():
            self._allowed[("torch._utils", name)] = fn
        for name, dt in _STORAGE_DTYPES.items():
            self._allowed[("torch", name)] = _StorageType(name, dt)
        for name, dt in _TORCH_DTYPES.items():
            self._allowed[("torch", name)] = _TorchDtype(name, dt)

    def find_class(self, module, name):
        if module == "__builtin__":  # protocol-2 pickles name builtins the Python 2 way
            module = "builtins"
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(
                f"{self._path}: refusing to load global '{module}.{name}' from the pickle. "
                "Only state dicts of tensors (and checkpoint dicts of plain values wrapping "
                "them) are supported; glassnet never executes code from a weights file. "
                "Re-save with torch.save(model.state_dict(), path)."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Bad(f"unsupported persistent id {pid!r} (expected a storage)")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise _Bad(f"persistent id names {storage_type!r}, not a torch storage type")
        key = str(key)
        if key in self._storages:
            return self._storages[key]
        if "/" in key or key in ("", ".", ".."):
            raise _Bad(f"bad storage key {key!r}")
        member = f"{self._prefix}data/{key}"
        try:
            raw = self._zf.read(member)
        except KeyError:
            raise _Bad(f"storage file '{member}' is missing from the archive") from None
        try:
            numel = int(numel)
        except (TypeError, ValueError):
            raise _Bad(f"storage {key!r}: bad element count {numel!r}") from None
        dtype = storage_type.dtype
        # An untyped storage counts bytes; a typed one counts elements.
        expected = numel if dtype is None else numel * _item_size(dtype)
        if len(raw) != expected:
            raise _Bad(f"storage file '{member}' holds {len(raw)} bytes but "
                       f"{storage_type!r} of {numel} elements needs {expected} (truncated?)")
        storage = _Storage(key, np.frombuffer(raw, dtype=np.uint8), dtype)
        self._storages[key] = storage
        return storage


# ---------------------------------------------------------------------- load
def _find_archive_prefix(zf, path):
    names = zf.namelist()
    pkls = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
    if not pkls:
        hint = ""
        if any(n.endswith(".npy") for n in names):
            hint = " (it looks like a NumPy .npz archive; use load_state_dict_file)"
        raise StateDictFileError(
            f"{path}: zip archive has no data.pkl, so it is not a torch.save file{hint}")
    if len(pkls) > 1:
        raise StateDictFileError(f"{path}: zip archive holds several data.pkl files: {pkls}")
    pkl = pkls[0]
    prefix = pkl[: -len("data.pkl")]
    if any(n.startswith(prefix + "code/") for n in names) or (prefix + "constants.pkl") in names:
        raise StateDictFileError(
            f"{path}: this is a TorchScript archive (torch.jit.save), not a state dict. "
            "Save the weights with torch.save(model.state_dict(), path) instead.")
    return prefix


def load_pth(path):
    """Load a ``torch.save`` file (zip format, PyTorch >= 1.6) without PyTorch.

    Returns the unpickled object with every tensor replaced by a C-contiguous
    ``numpy.ndarray`` (``bfloat16`` becomes ``float32``); dicts, lists and
    plain values (an epoch number, a learning rate) stay what they were.
    Use :func:`glassnet.io.load_state_dict_file` to get a flat
    ``{name: array}`` state dict out of a checkpoint.

    Only the globals a state dict needs are resolved (``OrderedDict``, the
    torch tensor/parameter rebuild functions, storage classes and dtypes);
    any other global is refused with :class:`UnsafePickleError`, so loading
    never runs code from the file. A legacy (pre-1.6) file, a TorchScript
    archive, a corrupt zip, a missing or truncated storage, or a tensor that
    reaches past its storage raises :class:`StateDictFileError` naming the
    file -- never a half-built result.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_MAGIC_PREFIX))
    except OSError as exc:
        raise StateDictFileError(f"{path}: cannot read file: {exc}") from exc
    if not zipfile.is_zipfile(path):
        if head.startswith(_LEGACY_MAGIC_PREFIX):
            raise StateDictFileError(
                f"{path}: legacy (pre-1.6, non-zip) torch.save format is not supported. "
                "Re-save it with PyTorch: torch.save(torch.load(path), new_path, "
                "_use_new_zipfile_serialization=True).")
        raise StateDictFileError(
            f"{path}: not a torch.save zip archive (bad or truncated zip; the file starts "
            f"with {head[:8]!r}).")
    try:
        with zipfile.ZipFile(path) as zf:
            prefix = _find_archive_prefix(zf, path)
            byteorder = "little"
            if prefix + "byteorder" in zf.namelist():
                byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
                if byteorder not in ("little", "big"):
                    raise StateDictFileError(
                        f"{path}: unknown byteorder {byteorder!r} (expected 'little' or 'big')")
            data = zf.read(prefix + "data.pkl")
            unpickler = _StateDictUnpickler(data, zf, prefix, path, byteorder)
            return unpickler.load()
    except StateDictFileError:
        raise
    except _Bad as exc:
        raise StateDictFileError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise StateDictFileError(f"{path}: corrupt torch.save archive: {exc}") from exc
    except (pickle.UnpicklingError, AttributeError, TypeError, ValueError, IndexError,
            KeyError, RecursionError, MemoryError) as exc:
        raise StateDictFileError(
            f"{path}: cannot unpickle data.pkl ({type(exc).__name__}: {exc}); the file is "
            "corrupt or holds something other than a state dict of tensors") from exc
