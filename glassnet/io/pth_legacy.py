"""Legacy ``torch.save`` files (PyTorch < 1.6, or ``_use_new_zipfile_serialization=False``), without PyTorch.

The format (``torch/serialization.py``: ``_legacy_save`` writes it, ``_legacy_load`` reads it)
is one stream of pickles followed by the raw storages:

1. pickle: the magic number ``0x1950A86A20F9469CFC6C`` (:data:`MAGIC_NUMBER`);
2. pickle: the protocol version, ``1001`` (:data:`PROTOCOL_VERSION`);
3. pickle: the saver's sys info, ``{"protocol_version": 1001, "little_endian": True,
   "type_sizes": {"short": 2, "int": 4, "long": 8}}``;
4. pickle: the object. Each storage is a persistent id ``("storage", <StorageType>, key,
   location, numel, view)``, ``numel`` counting elements of the storage's type and ``view``
   ``None`` -- or, in files of PyTorch < 1.0 that saved storage views, ``(view_key, offset,
   size)`` in elements of the storage ``key``; tensors are rebuilt by
   ``torch._utils._rebuild_tensor_v2`` as in the zip format;
5. pickle: the list of the storage keys, sorted as strings;
6. for each key of that list in turn: its element count as an 8-byte little-endian integer,
   then that many elements, little-endian.

How it is read, so that nothing in the file is executed and nothing is allocated unchecked: the
whole file is charged to the read's budget and read; pickles 1-3 and 5 are scanned
(:func:`glassnet.safe_pickle.scan_pickle`) and unpickled with no global allowed at all; the end
of pickle 4 is found by walking its opcodes (:func:`pickletools.genops` builds nothing). Since
the element size of each storage is only known from pickle 4, that pickle is unpickled twice
with the state-dict allow-list of :class:`~glassnet.io.pth_unpickle.TorchUnpickler`: first with
the tensor rebuilds stubbed out, which collects each key's storage type and count; then the
storage section (6) is walked and checked against it (every key present, each count the one
the pickle gives, the file long enough), and the second pass rebuilds the tensors from views
of the file's bytes. Extra bytes after the last storage are ignored, as by ``torch.load``.
A file whose storages were written by a big-endian machine and the older tar format (PyTorch
< 0.4: a tar archive of ``storages``, ``tensors`` and ``pickle``) are refused, naming the file.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import struct

import numpy as np

from ..errors import DataFormatError
from ..safe_pickle import scan_pickle
from .pth_unpickle import TorchUnpickler, UnsafePickleError, _Bad, _item_size, _Storage
from .read_guard import describe

__all__ = ["load_legacy", "MAGIC_NUMBER", "PROTOCOL_VERSION"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_REBUILDERS = ("_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter", "_rebuild_parameter_with_state")


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles ints, strings, lists and dicts only: every global and persistent id is refused."""

    def __init__(self, data, path, what):
        super().__init__(io.BytesIO(data))
        self._path, self._what = path, what

    def find_class(self, module, name):
        raise UnsafePickleError(f"{self._path}: refusing to load global '{str(module)[:200]}.{str(name)[:200]}' "
                                f"from the {self._what} of a legacy torch.save file (it holds plain values only)")

    def persistent_load(self, pid):
        raise _Bad(f"the {self._what} holds a persistent id {describe(pid)}; it holds plain values only")


def _storage_pid(pid):
    """``(storage_type, key, numel, view)`` of a legacy storage persistent id, else :class:`_Bad`."""
    if isinstance(pid, tuple) and pid and pid[0] in ("module", b"module"):
        raise _Bad("the file holds a pickled nn.Module (torch.save(model)), whose class would have to be "
                   "imported and run; save model.state_dict() instead")
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] in ("storage", b"storage")):
        raise _Bad(f"unsupported persistent id {describe(pid)} (expected a legacy storage id of 6 fields)")
    _, storage_type, key, _location, numel, view = pid
    return storage_type, key, numel, view


class _Survey(TorchUnpickler):
    """First pass over the object pickle: records each storage's type and element count;
    tensors are not rebuilt."""

    def __init__(self, data, path, budget):
        super().__init__(data, path, "little", budget)
        for name in _REBUILDERS:
            self._allowed[("torch._utils", name)] = _stub
        self.found = {}

    def persistent_load(self, pid):
        storage_type, key, numel, view = _storage_pid(pid)
        key = self.check_storage_id(storage_type, key, numel)
        seen = self.found.setdefault(key, (storage_type, numel))
        if seen[0].name != storage_type.name or seen[1] != numel:
            raise _Bad(f"storage {key!r} is named as {seen[0]!r} of {seen[1]} elements and as "
                       f"{storage_type!r} of {numel}")
        return None


def _stub(*args, **kwargs):
    return None


class _LegacyUnpickler(TorchUnpickler):
    """Second pass: persistent ids resolve to the storages read from the file (views sliced)."""

    def __init__(self, data, path, budget, raws):
        super().__init__(data, path, "little", budget)
        self._raws = raws

    def persistent_load(self, pid):
        storage_type, key, numel, view = _storage_pid(pid)
        key = self.check_storage_id(storage_type, key, numel)
        root = self._storages.get(key)
        if root is None:
            root = self._storages[key] = _Storage(key, self._raws[key], storage_type.dtype)
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3):
            raise _Bad(f"storage {key!r}: bad view {describe(view)} (expected (key, offset, size))")
        view_key, offset, size = view
        view_key = self.check_storage_id(storage_type, view_key, size)
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= numel - size:
            raise _Bad(f"storage {key!r}: the view {view_key!r} of {size} elements at offset {describe(offset)} "
                       f"does not lie inside its {numel} elements")
        cached = self._storages.get("view:" + view_key)
        if cached is None:
            item = 1 if storage_type.dtype is None else _item_size(storage_type.dtype)
            cached = _Storage(view_key, root.raw[offset * item:(offset + size) * item], storage_type.dtype)
            self._storages["view:" + view_key] = cached
        return cached


def _pickle_end(buf, start, path, what) -> int:
    """The offset just past the STOP of the pickle starting at ``start`` (its opcodes walked, nothing built)."""
    stream = io.BytesIO(buf)
    stream.seek(start)
    try:
        for _ in pickletools.genops(stream):
            pass
    except (ValueError, TypeError, OverflowError, struct.error, EOFError) as exc:
        raise DataFormatError(f"{path}: the {what} of the legacy torch.save file is not a valid pickle "
                              f"({exc}; truncated?)") from None
    return stream.tell()


def _next_pickle(buf, start, path, budget, what, plain=True):
    """``(value or the pickle's bytes, end)`` of the pickle at ``start``: scanned, and unpickled
    with no global allowed when ``plain``."""
    end = _pickle_end(buf, start, path, what)
    data = buf[start:end]
    scan_pickle(data, path, budget, what=what)
    return (_PlainUnpickler(data, path, what).load() if plain else data), end


def _read_storages(buf, start, keys, found, path, budget) -> dict:
    """``{key: 1-D uint8 view of its bytes}`` from the storage section at ``start``."""
    raws, pos = {}, start
    for n, key in enumerate(keys):
        storage_type, numel = found[key]
        item = 1 if storage_type.dtype is None else _item_size(storage_type.dtype)
        if pos + 8 > len(buf):
            raise _Bad(f"the file ends after {n} of its {len(keys)} storages (truncated?): storage {key!r} "
                       f"should start at byte {pos} of {len(buf)}")
        count = int.from_bytes(buf[pos:pos + 8], "little", signed=True)
        pos += 8
        if count != numel:
            raise _Bad(f"storage {key!r}: the storage section holds {count} elements at byte {pos - 8} but "
                       f"the pickle says {storage_type!r} of {numel} (corrupt file?)")
        nbytes = count * item
        if pos + nbytes > len(buf):
            raise _Bad(f"storage {key!r} ({storage_type!r} of {count} elements) needs {nbytes} bytes from "
                       f"byte {pos}, but the file ends at {len(buf)} (truncated?)")
        raws[key] = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=pos)
        pos += nbytes
    return raws


def load_legacy(path, budget):
    """The object a legacy ``torch.save`` file at ``path`` holds, its tensors as NumPy arrays
    (see the module docstring); what :func:`glassnet.io.load_pth` returns for such a file.

    ``budget`` (a :class:`~glassnet.limits.ReadBudget`) is charged for the file's bytes, the
    unpickled values and every tensor before it is allocated. Raises :class:`_Bad`,
    :class:`~glassnet.errors.DataFormatError` or :class:`UnsafePickleError` for a corrupt,
    truncated or unsafe file (``load_pth`` names the file in each).

    Shape:
        - each tensor: a C-contiguous array of its size, its storage's dtype
    """
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        budget.take(size, "the legacy torch.save file")
        f.seek(0)
        buf = f.read()
    if len(buf) > 262 and buf[257:262] == b"ustar":
        raise _Bad("this is the tar-based torch.save format of PyTorch < 0.4, which glassnet does not read; "
                   "re-save it with a recent PyTorch: torch.save(torch.load(path), new_path)")
    magic, pos = _next_pickle(buf, 0, path, budget, "magic number")
    if magic != MAGIC_NUMBER:
        raise _Bad(f"invalid magic number {describe(magic)}; not a legacy torch.save file (corrupt?)")
    version, pos = _next_pickle(buf, pos, path, budget, "protocol version")
    if version != PROTOCOL_VERSION:
        raise _Bad(f"legacy torch.save protocol version {describe(version)}; glassnet reads {PROTOCOL_VERSION}")
    sys_info, pos = _next_pickle(buf, pos, path, budget, "sys info")
    if not isinstance(sys_info, dict):
        raise _Bad(f"the sys info is {describe(sys_info)}, not a dict")
    if sys_info.get("little_endian") is False:
        raise _Bad("the file was written on a big-endian machine, which glassnet does not read; re-save it on a "
                   "little-endian one")
    data, pos = _next_pickle(buf, pos, path, budget, "object pickle", plain=False)
    survey = _Survey(data, path, budget)
    survey.load()
    keys, pos = _next_pickle(buf, pos, path, budget, "storage key list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise _Bad(f"the storage key list is {describe(keys)}, not a list of distinct strings")
    missing = sorted(set(survey.found) - set(keys))
    if missing or len(keys) != len(survey.found):
        extra = sorted(set(keys) - set(survey.found))
        raise _Bad(f"the storage key list does not match the pickle's storages (missing {missing[:5]}, "
                   f"unused {extra[:5]}; corrupt file?)")
    raws = _read_storages(buf, pos, keys, survey.found, path, budget)
    return _LegacyUnpickler(data, path, budget, raws).load()
