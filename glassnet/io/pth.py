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

A hostile file cannot make the reader run code, allocate without bound or
overflow the C stack: the zip directory is checked and every member read
within one :class:`~glassnet.limits.ReadBudget` (:mod:`glassnet.io.safe_zip`),
the pickle's opcodes are checked before it is unpickled
(:mod:`glassnet.safe_pickle`), and every tensor is checked against its
storage and charged to the budget before it is materialised.
"""
from __future__ import annotations

import collections
import contextlib
import io
import os
import pickle
import zipfile

import numpy as np

from ..errors import DataFormatError, GlassnetError, LimitExceededError, StateDictError
from .read_guard import CORRUPT_FILE_ERRORS, array_nbytes, describe, read_budget
from ..safe_pickle import OBJECT_BYTES, scan_pickle
from .safe_zip import open_zip, read_member

__all__ = ["load_pth", "StateDictFileError", "UnsafePickleError", "StateDictLimitError"]


class StateDictFileError(StateDictError, DataFormatError):
    """A weights file is corrupt, truncated, of an unsupported kind, or holds
    something other than a state dict of tensors. The message names the file."""


class UnsafePickleError(StateDictFileError):
    """A ``.pth`` pickle references a global outside the state-dict allow-list."""


class StateDictLimitError(StateDictFileError, LimitExceededError):
    """Reading a weights file would need more memory or nesting than its limit
    (``max_bytes``, or the fixed depth limit); both a :class:`StateDictFileError`
    and a :class:`~glassnet.errors.LimitExceededError`."""


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


class _Sealed:
    """Base of the stand-ins a pickle can reach: a ``BUILD`` opcode cannot set their state."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Bad(f"the pickle tries to set the state of {self!r}")


class _StorageType(_Sealed):
    """Stands in for ``torch.FloatStorage`` & co. inside the pickle (never callable)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype  # np.dtype, _BF16, or None for UntypedStorage

    def __repr__(self):
        return f"torch.{self.name}"


class _TorchDtype(_Sealed):
    """Stands in for a ``torch.<dtype>`` object (argument of _rebuild_tensor_v3)."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage(_Sealed):
    """One storage read from ``data/<key>``: raw bytes plus the element dtype."""

    __slots__ = ("key", "raw", "dtype")

    def __init__(self, key, raw, dtype):
        self.key = key
        self.raw = raw      # 1-D uint8 array holding exactly the storage bytes
        self.dtype = dtype  # element dtype (np.dtype / _BF16) or None if untyped

    def __repr__(self):
        return f"storage {self.key!r}"


class _Bad(Exception):
    """Internal: a problem found while rebuilding; wrapped with the file name."""


# ------------------------------------------------------------- tensor rebuild
def _index(value, what, key):
    """``value`` as an exact int (no bool, no float), else :class:`_Bad`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"storage {key!r}: the tensor's {what} is {describe(value)}, not an integer")
    return value


def _ints(value, what, key):
    if not isinstance(value, (tuple, list)):
        raise _Bad(f"storage {key!r}: the tensor's {what} is {describe(value)}, not a tuple of integers")
    return tuple(_index(v, what, key) for v in value)


def _rebuild(storage, storage_offset, size, stride, dtype, byteorder, budget, path):
    if not isinstance(storage, _Storage):
        raise _Bad(f"tensor rebuilt from {describe(storage)}, not from a storage")
    if dtype is None:
        raise _Bad(f"storage {storage.key!r} is untyped and no dtype was given")
    key = storage.key
    offset = _index(storage_offset, "storage offset", key)
    size = _ints(size, "size", key)
    stride = _ints(stride, "stride", key)
    itemsize = _item_size(dtype)
    what = f"the tensor on storage {key!r}"
    nbytes = array_nbytes(size, itemsize, path, what)  # <= 64 dims, no negative size, a real extent
    if len(size) != len(stride):
        raise _Bad(f"storage {key!r}: size {size} and stride "
                   f"{stride if len(stride) <= 64 else describe(stride)} differ in rank")
    if offset < 0 or any(s < 0 for s in stride):
        raise _Bad(f"storage {key!r}: negative offset/stride (offset {offset}, stride {stride})")
    if storage.raw.size % itemsize:
        raise _Bad(f"storage {key!r} holds {storage.raw.size} bytes, "
                   f"not a whole number of {itemsize}-byte elements")
    numel_storage = storage.raw.size // itemsize
    if offset > numel_storage:
        raise _Bad(f"storage {key!r} has {numel_storage} elements but the tensor's storage offset "
                   f"{offset} lies past its end")
    numel = nbytes // itemsize
    if numel:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= numel_storage:
            raise _Bad(f"storage {key!r} has {numel_storage} elements but the tensor "
                       f"(offset {offset}, size {size}, stride {stride}) reaches element {last}")
    # what this tensor allocates: the copy, a byte-swapped copy, bfloat16's float32 widening
    per_element = itemsize * (2 if byteorder != "little" else 1) + (4 if dtype is _BF16 else 0)
    budget.take(numel * per_element, f"{what} of size {size}")
    if dtype is _BF16:
        base = storage.raw.view(np.dtype("<u2") if byteorder == "little" else np.dtype(">u2"))
    else:
        base = storage.raw.view(dtype if byteorder == "little" else dtype.newbyteorder(">"))
    if numel == 0:
        out = np.empty(size, dtype=base.dtype)
    else:
        # a size-1 dimension never moves: its stride may be anything, so use 0
        strides = tuple(s * base.itemsize if n > 1 else 0 for n, s in zip(size, stride))
        view = np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=strides,
                                               writeable=False)
        out = np.array(view, order="C", copy=True)
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    if dtype is _BF16:
        wide = out.astype(np.uint32)
        wide <<= 16
        out = wide.view(np.float32)
    return out


def _make_rebuilders(byteorder, budget, path):
    def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                           backward_hooks=None, metadata=None):
        dtype = storage.dtype if isinstance(storage, _Storage) else None
        return _rebuild(storage, storage_offset, size, stride, dtype, byteorder, budget, path)

    def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad=False,
                           backward_hooks=None, dtype=None, metadata=None):
        if not isinstance(dtype, _TorchDtype):
            raise _Bad(f"_rebuild_tensor_v3 got dtype {describe(dtype)}, not a torch dtype")
        return _rebuild(storage, storage_offset, size, stride, dtype.dtype, byteorder, budget, path)

    def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, *state):
        if not isinstance(data, np.ndarray):
            raise _Bad(f"_rebuild_parameter got {describe(data)}, not a tensor")
        return data

    return {
        "_rebuild_tensor_v2": _rebuild_tensor_v2,
        "_rebuild_tensor_v3": _rebuild_tensor_v3,
        "_rebuild_parameter": _rebuild_parameter,
        "_rebuild_parameter_with_state": _rebuild_parameter,
    }


def _copying(make, budget, name, per_item):
    """``make`` (a constructor that copies its argument: ``set``, ``OrderedDict``...)
    charging ``per_item`` bytes per item of its argument to ``budget`` first, so
    a pickle that rebuilds one big memoised value many times is bounded too."""
    def build(*args):
        for arg in args:
            try:
                n = len(arg)
            except TypeError:
                raise _Bad(f"{name} called on {describe(arg)}, which has no length") from None
            budget.take(n * per_item, f"a {name} of {n} items")
        return make(*args)

    build.__name__ = name
    return build


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """Protocol 2 pickles ``bytes`` as ``_codecs.encode(str, 'latin1')``; allow only that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _Bad(f"_codecs.encode is only allowed as the protocol-2 bytes encoding, "
                   f"got encoding {describe(encoding)}")
    return text.encode("latin1")


def _torch_size(*args):
    return tuple(*args)


# ------------------------------------------------------------------ unpickler
class _StateDictUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals a state dict needs."""

    def __init__(self, data, zf, prefix, path, byteorder, budget):
        super().__init__(io.BytesIO(data))
        self._zf = zf
        self._prefix = prefix
        self._path = path
        self._byteorder = byteorder
        self._budget = budget
        self._storages = {}
        rebuilders = _make_rebuilders(byteorder, budget, path)
        self._allowed = {
            ("collections", "OrderedDict"): _copying(collections.OrderedDict, budget, "OrderedDict",
                                                     OBJECT_BYTES),
            ("builtins", "set"): _copying(set, budget, "set", OBJECT_BYTES),
            ("builtins", "frozenset"): _copying(frozenset, budget, "frozenset", OBJECT_BYTES),
            ("_codecs", "encode"): _copying(_latin1_encode, budget, "_codecs.encode", 1),
            ("torch", "Size"): _copying(_torch_size, budget, "torch.Size", 8),
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
                f"{self._path}: refusing to load global '{str(module)[:200]}.{str(name)[:200]}' from "
                "the pickle. Only state dicts of tensors (and checkpoint dicts of plain values "
                "wrapping them) are supported; glassnet never executes code from a weights file. "
                "Re-save with torch.save(model.state_dict(), path)."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Bad(f"unsupported persistent id {describe(pid)} (expected a storage)")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise _Bad(f"persistent id names {describe(storage_type)}, not a torch storage type")
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < 1 << 63:
            key = str(key)
        if not isinstance(key, str) or not key or len(key) > 1000 or "/" in key or "\x00" in key \
                or key in (".", ".."):
            raise _Bad(f"bad storage key {describe(key)}")
        if key in self._storages:
            return self._storages[key]
        if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
            raise _Bad(f"storage {key!r}: bad element count {describe(numel)}")
        member = f"{self._prefix}data/{key}"
        try:
            info = self._zf.getinfo(member)
        except KeyError:
            raise _Bad(f"storage file '{member}' is missing from the archive") from None
        dtype = storage_type.dtype
        # An untyped storage counts bytes; a typed one counts elements.
        expected = numel if dtype is None else numel * _item_size(dtype)
        if info.file_size != expected:
            raise _Bad(f"storage file '{member}' holds {info.file_size} bytes but "
                       f"{storage_type!r} of {numel} elements needs {expected} (truncated?)")
        storage = _Storage(key, read_member(self._zf, member, self._budget, self._path), dtype)
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
        raise StateDictFileError(f"{path}: zip archive holds several data.pkl files: "
                                 f"{[p[:100] for p in pkls[:5]]}")
    pkl = pkls[0]
    prefix = pkl[: -len("data.pkl")]
    if any(n.startswith(prefix + "code/") for n in names) or (prefix + "constants.pkl") in names:
        raise StateDictFileError(
            f"{path}: this is a TorchScript archive (torch.jit.save), not a state dict. "
            "Save the weights with torch.save(model.state_dict(), path) instead.")
    return prefix


def _with_path(path, message):
    return message if message.startswith(path) else f"{path}: {message}"


@contextlib.contextmanager
def file_errors(path, kind):
    """Turn whatever reading ``path`` (a ``kind`` file) raises into one glassnet error:
    a limit into :class:`StateDictLimitError`, a format problem or any exception of
    :data:`~glassnet.io.read_guard.CORRUPT_FILE_ERRORS` into :class:`StateDictFileError`,
    each naming the file."""
    try:
        yield
    except StateDictFileError:
        raise
    except LimitExceededError as exc:
        raise StateDictLimitError(_with_path(path, str(exc)), limit_name=exc.limit_name,
                                  needed=exc.needed, limit=exc.limit) from None
    except DataFormatError as exc:
        raise StateDictFileError(_with_path(path, str(exc))) from None
    except GlassnetError:
        raise
    except _Bad as exc:
        raise StateDictFileError(f"{path}: {exc}") from None
    except (RecursionError, MemoryError) as exc:
        raise StateDictFileError(f"{path}: corrupt {kind}: reading it ran out of "
                                 f"{'stack' if isinstance(exc, RecursionError) else 'memory'}") from None
    except CORRUPT_FILE_ERRORS as exc:
        raise StateDictFileError(f"{path}: corrupt {kind} ({type(exc).__name__}: "
                                 f"{str(exc)[:300]})") from exc


def load_pth(path, max_bytes=None):
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

    ``max_bytes`` bounds what the read may allocate (decompressed members,
    tensors, the unpickled objects); ``None`` means
    :func:`glassnet.limits.default_max_bytes` of the file's size (1 GiB, or 16x
    the file). Going past it raises :class:`StateDictLimitError` (a
    :class:`~glassnet.errors.LimitExceededError`) naming the file and
    ``max_bytes`` before the memory is allocated; so does a pickle nested
    deeper than :data:`glassnet.limits.MAX_DEPTH`.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_MAGIC_PREFIX))
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise StateDictFileError(f"{path}: cannot read file: {exc}") from exc
    with file_errors(path, "torch.save archive"):
        budget = read_budget(path, max_bytes, size)
    with file_errors(path, "torch.save archive"):
        try:
            zf = open_zip(path, budget)
        except zipfile.BadZipFile:
            zf = None
        if zf is None:
            if head.startswith(_LEGACY_MAGIC_PREFIX):
                raise StateDictFileError(
                    f"{path}: legacy (pre-1.6, non-zip) torch.save format is not supported. "
                    "Re-save it with PyTorch: torch.save(torch.load(path), new_path, "
                    "_use_new_zipfile_serialization=True).")
            raise StateDictFileError(
                f"{path}: not a torch.save zip archive (bad or truncated zip; the file starts "
                f"with {head[:8]!r}).")
        with zf:
            prefix = _find_archive_prefix(zf, path)
            byteorder = "little"
            if prefix + "byteorder" in zf.namelist():
                raw = read_member(zf, prefix + "byteorder", budget, path).tobytes()
                byteorder = raw.decode("ascii", "replace").strip()
                if byteorder not in ("little", "big"):
                    raise StateDictFileError(
                        f"{path}: unknown byteorder {describe(byteorder)} (expected 'little' or 'big')")
            data = read_member(zf, prefix + "data.pkl", budget, path).tobytes()
            scan_pickle(data, path, budget, what=f"{prefix}data.pkl")
            unpickler = _StateDictUnpickler(data, zf, prefix, path, byteorder, budget)
            return unpickler.load()
