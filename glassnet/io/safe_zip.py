"""Zip archives (``torch.save`` files, ``.npz``) opened and read within a :class:`~glassnet.limits.ReadBudget`.

:func:`open_zip` opens an archive and checks its directory before any member
is decompressed: no encrypted members, no member names that are not valid
UTF-8 or that hold a NUL character (``zipfile`` would silently cut such a name
short), no duplicate names, only the stored and deflate methods (what
``torch.save`` and NumPy write; bzip2 and LZMA decompress without an output
bound), and declared sizes that fit the budget in total. :func:`read_member`
charges a member's declared size to the budget *before* reading it, then
reads it in bounded chunks into a buffer of exactly that size, so a member
whose header lies about its size can neither exceed the budget nor make the
reader allocate more than it declared.
"""
from __future__ import annotations

import collections
import zipfile

import numpy as np

from ..errors import DataFormatError, LimitExceededError

__all__ = ["open_zip", "read_member", "read_into", "CHUNK"]

#: bytes read (and decompressed) per call
CHUNK = 1 << 20
#: bytes charged per directory entry (a ZipInfo and its strings)
_ENTRY_BYTES = 512
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


def open_zip(path, budget) -> zipfile.ZipFile:
    """Open the zip archive at ``path`` and check its directory (see the module
    docstring); the directory itself is charged to ``budget``.

    Raises :class:`DataFormatError` (naming ``path``) for a member the rules
    refuse and :class:`LimitExceededError` when the members declare more bytes
    in total than ``budget`` has left. Other failures (a damaged archive) come
    out as the ``zipfile``/``OSError`` exceptions the caller maps.
    """
    try:
        zf = zipfile.ZipFile(path)
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: a zip member name is flagged UTF-8 but is not valid UTF-8 "
                              f"({exc.reason} at byte {exc.start})") from None
    try:
        _check_directory(zf, path, budget)
    except BaseException:
        zf.close()
        raise
    return zf


def _check_directory(zf, path, budget) -> None:
    infos = zf.infolist()
    budget.take(len(infos) * _ENTRY_BYTES, f"the zip directory ({len(infos)} members)")
    counts = collections.Counter(info.filename for info in infos)
    dups = [name for name, n in counts.items() if n > 1]
    if dups:
        raise DataFormatError(f"{path}: zip member {dups[0][:200]!r} appears {counts[dups[0]]} times; "
                              "an archive with duplicate members is ambiguous and is refused")
    total = 0
    for info in infos:
        name = info.filename[:200]
        if "\x00" in info.orig_filename:
            raise DataFormatError(f"{path}: zip member name {info.orig_filename[:200]!r} contains a NUL "
                                  "character (zipfile would read it as another name)")
        if info.flag_bits & 0x41:
            raise DataFormatError(f"{path}: zip member {name!r} is encrypted; weights files are never "
                                  "encrypted")
        if info.compress_type not in _METHODS:
            raise DataFormatError(f"{path}: zip member {name!r} uses compression method "
                                  f"{info.compress_type}; only stored and deflate members are read")
        total += info.file_size
    left = budget.max_bytes - budget.used
    if total > left:
        raise LimitExceededError(
            f"{path}: the zip members declare {total} bytes uncompressed in total, more than the "
            f"{left} bytes left of {budget.limit_name}={budget.max_bytes}; pass a larger "
            f"{budget.limit_name} if the file is trusted",
            limit_name=budget.limit_name, needed=budget.used + total, limit=budget.max_bytes)


def read_member(zf, name, budget, path) -> np.ndarray:
    """The bytes of member ``name`` as a 1-D ``uint8`` array that owns its memory.

    The declared size is charged to ``budget`` first; the member is then
    decompressed :data:`CHUNK` bytes at a time into a buffer of exactly that
    size, and a member shorter or longer than declared raises
    :class:`DataFormatError` naming ``path`` and the member.
    """
    info = zf.getinfo(name)
    budget.take(info.file_size, f"zip member {name!r}")
    out = np.empty(info.file_size, dtype=np.uint8)
    with zf.open(info) as fp:
        read_into(fp, memoryview(out), path, f"zip member {name!r}")
        if fp.read(1):
            raise DataFormatError(f"{path}: zip member {name!r} holds more than its declared "
                                  f"{info.file_size} bytes")
    return out


def read_into(fp, buf: memoryview, path, what: str) -> None:
    """Fill ``buf`` from the file object ``fp``, :data:`CHUNK` bytes per read;
    :class:`DataFormatError` naming ``path`` and ``what`` if ``fp`` ends first."""
    buf = buf.cast("B") if buf.format != "B" or buf.ndim != 1 else buf
    pos, size = 0, len(buf)
    while pos < size:
        n = fp.readinto(buf[pos:pos + CHUNK])
        if not n:
            raise DataFormatError(f"{path}: {what} is truncated: {pos} of its {size} bytes are there")
        pos += n
