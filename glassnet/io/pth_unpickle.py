"""The restricted unpickler of ``torch.save`` pickles: allow-list, stand-ins, tensor rebuild.

Both formats :func:`glassnet.io.load_pth` reads -- the zip archive (PyTorch >= 1.6,
:mod:`glassnet.io.pth`) and the legacy stream of pickles (:mod:`glassnet.io.pth_legacy`) --
pickle the same object graph: tensors rebuilt by ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, ...)`` from storages named by *persistent ids*. :class:`TorchUnpickler`
resolves only the globals a state dict needs (``OrderedDict``, the rebuild functions,
storage classes, dtypes: the table its ``__init__`` builds); anything else -- ``os.system``, ``builtins.eval``, a custom
class -- is refused with :class:`UnsafePickleError` *before* it can be called, so loading never
executes code from the file. Each format's subclass supplies ``persistent_load`` (where the
storage bytes come from); :meth:`TorchUnpickler.check_storage_id` holds the checks both share.

Every tensor is checked against its storage (rank, offset, strides, extent) and charged to the
read's :class:`~glassnet.limits.ReadBudget` before it is materialised as a C-contiguous NumPy
array; ``bfloat16`` is widened to ``float32`` exactly.
"""
from __future__ import annotations

import collections
import io
import pickle

import numpy as np

from ..errors import DataFormatError, LimitExceededError, StateDictError
from ..safe_pickle import OBJECT_BYTES
from .read_guard import array_nbytes, describe

__all__ = ["TorchUnpickler", "StateDictFileError", "UnsafePickleError", "StateDictLimitError"]


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
class TorchUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals a state dict needs (the module
    docstring); a subclass's ``persistent_load`` returns the storage a persistent id names.

    Shape:
        - data: the pickle's bytes; storages: 1-D uint8 arrays of their exact bytes
        - the tensors it rebuilds: C-contiguous arrays of the pickled size
    """

    def __init__(self, data, path, byteorder, budget):
        super().__init__(io.BytesIO(data))
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

    def check_storage_id(self, storage_type, key, numel):
        """The storage key (a str) of a persistent id ``(..., storage_type, key, ..., numel, ...)``,
        after checking its parts; :class:`_Bad` for a malformed one."""
        if not isinstance(storage_type, _StorageType):
            raise _Bad(f"persistent id names {describe(storage_type)}, not a torch storage type")
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < 1 << 63:
            key = str(key)
        if not isinstance(key, str) or not key or len(key) > 1000 or "/" in key or "\x00" in key \
                or key in (".", ".."):
            raise _Bad(f"bad storage key {describe(key)}")
        if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
            raise _Bad(f"storage {key!r}: bad element count {describe(numel)}")
        return key

    def persistent_load(self, pid):  # pragma: no cover - each format has its own
        raise _Bad(f"unsupported persistent id {describe(pid)}")
