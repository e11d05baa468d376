"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a header followed by a dense array, all big-endian:

======  ==========================================================
bytes   meaning
======  ==========================================================
0-1     two zero bytes
2       type code: 0x08 ubyte, 0x09 byte, 0x0B short (2 bytes),
        0x0C int (4 bytes), 0x0D float (4 bytes), 0x0E double (8 bytes)
3       number of dimensions ``d`` (1 to :data:`~glassnet.limits.MAX_DIMS`)
4..     ``d`` unsigned 32-bit dimension sizes
rest    the payload: ``prod(dims)`` items in C order
======  ==========================================================

Files may be gzip-compressed (``.gz``). :func:`read_idx` reads the header
first (from the decompressing stream for ``.gz``), charges the payload the
header promises to a :class:`~glassnet.limits.ReadBudget` *before*
allocating it, then reads exactly that many bytes in bounded chunks, so a
gzip bomb or a header promising terabytes costs nothing. Every problem is a
:class:`~glassnet.errors.DataFormatError` (or its subclass
:class:`~glassnet.errors.LimitExceededError`) naming the file and the rule, e.g.::

    /data/train-images-idx3-ubyte.gz: payload has 1000 bytes, header
    promises 60000x28x28 = 47040000 bytes (truncated: 47039000 bytes missing)
"""
from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib

import numpy as np

from ..errors import DataFormatError, InvalidArgumentError, InvalidTypeError
from ..limits import MAX_DIMS, ReadBudget, nbytes_of

__all__ = ["IDX_TYPES", "read_idx", "write_idx"]

#: type code -> (IDX name, big-endian NumPy dtype)
IDX_TYPES = {
    0x08: ("ubyte", np.dtype("u1")),
    0x09: ("byte", np.dtype("i1")),
    0x0B: ("short", np.dtype(">i2")),
    0x0C: ("int", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}
_KNOWN = ", ".join(f"0x{c:02X} {name}" for c, (name, _) in IDX_TYPES.items())
_CODE_FOR = {(dt.kind, dt.itemsize): code for code, (_, dt) in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
#: payload bytes read per call (bounds each read, whatever the header says)
_CHUNK = 1 << 20
#: how many bytes after a gzip payload are decompressed to count them in the message
_TRAILING_COUNT_LIMIT = 1 << 20
# What a corrupt gzip stream raises: BadGzipFile (an OSError), EOFError for a
# cut stream, zlib.error for bad deflate data, struct.error for a cut header.
_GZIP_ERRORS = (OSError, EOFError, zlib.error, struct.error)


class _Stream:
    """The file's (decompressed) bytes, read in bounded pieces; every gzip or
    I/O failure becomes a :class:`DataFormatError` naming the file."""

    def __init__(self, path: str, f, compressed: bool):
        self.path = path
        self.compressed = compressed
        self.src = gzip.GzipFile(fileobj=f, mode="rb") if compressed else f

    def _fail(self, exc):
        if self.compressed:
            return DataFormatError(
                f"{self.path}: corrupt gzip data ({type(exc).__name__}: {exc}); "
                "delete the file and fetch it again")
        return DataFormatError(f"{self.path}: cannot read the file ({type(exc).__name__}: {exc})")

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the data)."""
        parts, left = [], n
        try:
            while left > 0:
                block = self.src.read(min(left, _CHUNK))
                if not block:
                    break
                parts.append(block)
                left -= len(block)
        except _GZIP_ERRORS as exc:
            raise self._fail(exc) from exc
        return b"".join(parts)

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` in bounded chunks; the number of bytes read (short only at the end)."""
        got = 0
        try:
            while got < len(view):
                n = self.src.readinto(view[got:got + _CHUNK])
                if not n:
                    break
                got += n
        except _GZIP_ERRORS as exc:
            raise self._fail(exc) from exc
        return got

    def count_rest(self, limit: int) -> tuple[int, bool]:
        """How many bytes are left, counting at most ``limit``: ``(count, more)``.
        Reading on to the end of a gzip member also checks its CRC and length."""
        count = 0
        while count <= limit:
            block = self.read(min(_CHUNK, limit + 1 - count))
            if not block:
                return count, False
            count += len(block)
        return limit, True


def _promise(dims, name: str, itemsize: int, expected: int) -> str:
    shape = "x".join(str(d) for d in dims)
    if itemsize == 1:
        return f"{shape} = {expected} bytes"
    return f"{shape} {name}s x {itemsize} bytes = {expected} bytes"


def _read_header(stream: _Stream, path: str, note: str):
    """``(dims, name, dtype, header_bytes)`` from the start of ``stream``."""
    head = stream.read(4)
    if len(head) < 4:
        raise DataFormatError(
            f"{path}: file has {len(head)} bytes, too short for the 4-byte IDX magic number{note}")
    magic = int.from_bytes(head, "big")
    if head[0] != 0 or head[1] != 0:
        raise DataFormatError(
            f"{path}: bad magic number 0x{magic:08X}: an IDX file starts with two zero bytes{note}")
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        raise DataFormatError(
            f"{path}: unknown data type code 0x{code:02X} in magic number 0x{magic:08X}; "
            f"IDX defines {_KNOWN}{note}")
    if ndim == 0:
        raise DataFormatError(f"{path}: magic number 0x{magic:08X} declares 0 dimensions{note}")
    if ndim > MAX_DIMS:
        raise DataFormatError(
            f"{path}: magic number 0x{magic:08X} declares {ndim} dimensions; "
            f"at most {MAX_DIMS} are allowed{note}")
    header = 4 + 4 * ndim
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataFormatError(
            f"{path}: magic number declares {ndim} dimensions ({header}-byte header) "
            f"but the file has only {4 + len(raw_dims)} bytes{note}")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    name, dtype = IDX_TYPES[code]
    return dims, name, dtype, header


def _size_error(path, dims, name, dtype, expected, got, note, at_least=False) -> DataFormatError:
    promise = _promise(dims, name, dtype.itemsize, expected)
    if got < expected:
        what = f"truncated: {expected - got} bytes missing"
    else:
        what = f"{'at least ' if at_least else ''}{got - expected} extra bytes at the end"
    shown = f"at least {got}" if at_least else str(got)
    return DataFormatError(f"{path}: payload has {shown} bytes, header promises {promise} ({what}){note}")


def read_idx(path, *, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Compression is detected from the content (gzip magic bytes), so both
    ``train-images-idx3-ubyte`` and ``train-images-idx3-ubyte.gz`` work.

    The header is read and checked first; the payload it promises is charged
    to a :class:`~glassnet.limits.ReadBudget` of ``max_bytes`` (``None`` =
    :func:`~glassnet.limits.default_max_bytes` of the file's size: 1 GiB or
    16x the file) before it is allocated, and then exactly that many bytes
    are read (decompressed) in bounded chunks.

    Returns a writable array in native byte order with the header's shape and
    type (``uint8`` for MNIST images and labels).

    Raises :class:`~glassnet.errors.DataFormatError` (naming the file) for a
    bad magic number, an unknown type code, more than
    :data:`~glassnet.limits.MAX_DIMS` dimensions, a short header, a payload
    whose length is not ``prod(dims) * itemsize`` (truncated or extra bytes),
    corrupt gzip data (bad CRC, cut stream, bad deflate data) or an unreadable
    file; :class:`~glassnet.errors.LimitExceededError` when the payload is
    larger than ``max_bytes``. A missing file raises ``FileNotFoundError``.

    Shape:
        - Output: the header's dimensions, e.g. (60000, 28, 28) uint8 for
          ``train-images-idx3-ubyte`` and (60000,) uint8 for the labels.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise InvalidTypeError(f"read_idx: path must be a str or os.PathLike, got {type(path).__name__}") from None
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise
    except OSError as exc:  # a folder, no permission, an I/O error
        raise DataFormatError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from exc
    with f:
        try:
            file_size = os.fstat(f.fileno()).st_size
            compressed = f.read(2) == _GZIP_MAGIC
            f.seek(0)
        except OSError as exc:
            raise DataFormatError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from exc
        # Some HTTP clients decompress on the fly but keep the .gz name: read the
        # bytes as raw IDX, and say so if they turn out not to be IDX either.
        note = " (the name ends in .gz but the file is not gzip-compressed)" \
            if path.endswith(".gz") and not compressed else ""
        return _read_payload(_Stream(path, f, compressed), path, file_size, max_bytes, note)


def _read_payload(stream: _Stream, path: str, file_size: int, max_bytes, note: str) -> np.ndarray:
    dims, name, dtype, header = _read_header(stream, path, note)
    expected = nbytes_of(dims, dtype.itemsize, path, "IDX payload")
    if not stream.compressed and file_size - header != expected:
        raise _size_error(path, dims, name, dtype, expected, file_size - header, note)
    budget = ReadBudget(path, max_bytes, file_size=file_size)
    budget.take(expected, f"IDX payload ({_promise(dims, name, dtype.itemsize, expected)})")
    try:
        arr = np.empty(dims, dtype=dtype)
    except ValueError as exc:  # e.g. 0 x 2**32-1 x 2**32-1: zero bytes, but too many items for NumPy
        raise DataFormatError(
            f"{path}: header shape {'x'.join(map(str, dims))} cannot be represented as an array ({exc}){note}"
        ) from exc
    got = stream.readinto(memoryview(arr.reshape(-1).view(np.uint8))) if expected else 0
    if got < expected:
        raise _size_error(path, dims, name, dtype, expected, got, note)
    extra, more = stream.count_rest(_TRAILING_COUNT_LIMIT)
    if extra:
        raise _size_error(path, dims, name, dtype, expected, expected + extra, note, at_least=more)
    if not dtype.isnative:  # swap in place: no second copy of the payload
        arr = arr.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return arr


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (stored
    big-endian). The file is written atomically (temporary file, then
    ``os.replace``); gzip output is reproducible (mtime 0).

    Shape:
        - Input: any shape with 1 to :data:`~glassnet.limits.MAX_DIMS`
          dimensions, each < 2**32; it is stored as the header's dimensions,
          so :func:`read_idx` returns the same shape.
    """
    path = os.fspath(path)
    a = np.asarray(array)
    code = _CODE_FOR.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        raise InvalidTypeError(
            f"write_idx({path!r}): IDX cannot store dtype {a.dtype}; "
            "supported: uint8, int8, int16, int32, float32, float64 (convert with .astype first)"
        )
    if a.ndim == 0 or a.ndim > MAX_DIMS:
        raise InvalidArgumentError(
            f"write_idx({path!r}): IDX needs 1 to {MAX_DIMS} dimensions, got shape {a.shape}")
    if any(d >= 2**32 for d in a.shape):
        raise InvalidArgumentError(f"write_idx({path!r}): dimension sizes must be < 2**32, got shape {a.shape}")
    _, dtype = IDX_TYPES[code]
    data = (bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
            + np.ascontiguousarray(a, dtype=dtype).tobytes())
    if path.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
