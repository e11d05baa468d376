"""Read files written by ``torch.save`` without importing PyTorch.

Since PyTorch 1.6, ``torch.save`` writes a zip archive (older files, and
``_use_new_zipfile_serialization=False``, are a stream of pickles:
:mod:`glassnet.io.pth_legacy`)::

    <archive>/data.pkl          the pickled object (a state dict, a checkpoint dict...)
    <archive>/data/<key>        one raw storage per key (the tensor bytes)
    <archive>/byteorder         "little" or "big" (absent in old files: little)
    <archive>/version           the format version

The pickle refers to each storage through a *persistent id*
``('storage', <StorageType>, key, location, numel)`` and rebuilds every
tensor with ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
...)``. :func:`load_pth` runs that pickle through a restricted unpickler whose
``find_class`` admits only the handful of names a state dict needs
(:mod:`glassnet.io.pth_unpickle`); anything else -- ``os.system``, ``builtins.eval``, a custom
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

import contextlib
import os
import zipfile

from ..errors import DataFormatError, GlassnetError, LimitExceededError
from .read_guard import CORRUPT_FILE_ERRORS, describe, read_budget
from ..safe_pickle import scan_pickle
from .pth_unpickle import (StateDictFileError, StateDictLimitError, TorchUnpickler, UnsafePickleError, _Bad,
                           _item_size, _Storage)
from .safe_zip import open_zip, read_member

__all__ = ["load_pth", "StateDictFileError", "UnsafePickleError", "StateDictLimitError"]

_LEGACY_MAGIC_PREFIX = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch < 1.6 magic number


class _StateDictUnpickler(TorchUnpickler):
    """The unpickler of a zip archive's ``data.pkl``: storage ``key`` is the member ``data/<key>``."""

    def __init__(self, data, zf, prefix, path, byteorder, budget):
        super().__init__(data, path, byteorder, budget)
        self._zf = zf
        self._prefix = prefix

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Bad(f"unsupported persistent id {describe(pid)} (expected a storage)")
        _, storage_type, key, _location, numel = pid
        key = self.check_storage_id(storage_type, key, numel)
        if key in self._storages:
            return self._storages[key]
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
    """Load a ``torch.save`` file without PyTorch: the zip format (PyTorch >= 1.6) or the
    legacy stream of pickles (:mod:`glassnet.io.pth_legacy`).

    Returns the unpickled object with every tensor replaced by a C-contiguous
    ``numpy.ndarray`` (``bfloat16`` becomes ``float32``); dicts, lists and
    plain values (an epoch number, a learning rate) stay what they were.
    Use :func:`glassnet.io.load_state_dict_file` to get a flat
    ``{name: array}`` state dict out of a checkpoint.

    Only the globals a state dict needs are resolved (``OrderedDict``, the
    torch tensor/parameter rebuild functions, storage classes and dtypes);
    any other global is refused with :class:`UnsafePickleError`, so loading
    never runs code from the file. A TorchScript archive, a corrupt zip, a
    corrupt or truncated legacy file, a tar-format one (PyTorch < 0.4), a
    missing or truncated storage, or a tensor that reaches past its storage
    raises :class:`StateDictFileError` naming the
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
            if head.startswith(_LEGACY_MAGIC_PREFIX) or (len(head) >= 4 and _LEGACY_MAGIC_PREFIX.startswith(head)):
                from .pth_legacy import load_legacy

                return load_legacy(path, budget)
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
