"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a header followed by a dense array, all big-endian:

======  ==========================================================
bytes   meaning
======  ==========================================================
0-1     two zero bytes
2       type code: 0x08 ubyte, 0x09 byte, 0x0B short (2 bytes),
        0x0C int (4 bytes), 0x0D float (4 bytes), 0x0E double (8 bytes)
3       number of dimensions ``d``
4..     ``d`` unsigned 32-bit dimension sizes
rest    the payload: ``prod(dims)`` items in C order
======  ==========================================================

Files may be gzip-compressed (``.gz``). :func:`read_idx` checks every part
of this and raises :class:`~glassnet.errors.DataFormatError` naming the file
and what is wrong, e.g.::

    /data/train-images-idx3-ubyte.gz: payload has 1000 bytes, header
    promises 60000x28x28 = 47040000 bytes (truncated: 47039000 bytes missing)
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import tempfile
import zlib

import numpy as np

from ..errors import DataFormatError, InvalidArgumentError, InvalidTypeError

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


def _read_bytes(path: str) -> tuple[bytes, str]:
    """The file's (decompressed) bytes and a note to append to errors."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw), ""
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise DataFormatError(
                f"{path}: corrupt gzip data ({exc}); delete the file and fetch it again"
            ) from exc
    # Some HTTP clients decompress on the fly but keep the .gz name: read the
    # bytes as raw IDX, and say so if they turn out not to be IDX either.
    note = " (the name ends in .gz but the file is not gzip-compressed)" if path.endswith(".gz") else ""
    return raw, note


def _parse(buf: bytes, path: str, note: str = "") -> np.ndarray:
    n = len(buf)
    if n < 4:
        raise DataFormatError(
            f"{path}: file has {n} bytes, too short for the 4-byte IDX magic number{note}"
        )
    magic = int.from_bytes(buf[:4], "big")
    if buf[0] != 0 or buf[1] != 0:
        raise DataFormatError(
            f"{path}: bad magic number 0x{magic:08X}: an IDX file starts with two zero bytes{note}"
        )
    code, ndim = buf[2], buf[3]
    if code not in IDX_TYPES:
        raise DataFormatError(
            f"{path}: unknown data type code 0x{code:02X} in magic number 0x{magic:08X}; "
            f"IDX defines {_KNOWN}{note}"
        )
    if ndim == 0:
        raise DataFormatError(f"{path}: magic number 0x{magic:08X} declares 0 dimensions{note}")
    header = 4 + 4 * ndim
    if n < header:
        raise DataFormatError(
            f"{path}: magic number declares {ndim} dimensions ({header}-byte header) "
            f"but the file has only {n} bytes{note}"
        )
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    name, dtype = IDX_TYPES[code]
    count = math.prod(dims)
    expected = count * dtype.itemsize
    got = n - header
    if got != expected:
        shape = "x".join(str(d) for d in dims)
        if dtype.itemsize == 1:
            promise = f"{shape} = {expected} bytes"
        else:
            promise = f"{shape} {name}s x {dtype.itemsize} bytes = {expected} bytes"
        what = (f"truncated: {expected - got} bytes missing" if got < expected
                else f"{got - expected} extra bytes at the end")
        raise DataFormatError(f"{path}: payload has {got} bytes, header promises {promise} ({what}){note}")
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=header).reshape(dims)
    # Native byte order, writable, owning its memory.
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Compression is detected from the content (gzip magic bytes), so both
    ``train-images-idx3-ubyte`` and ``train-images-idx3-ubyte.gz`` work.

    Returns a writable array in native byte order with the header's shape and
    type (``uint8`` for MNIST images and labels).

    Raises :class:`~glassnet.errors.DataFormatError` (naming the file) for a
    bad magic number, an unknown type code, a short header, a payload whose
    length is not ``prod(dims) * itemsize`` (truncated or extra bytes), or
    corrupt gzip data. A missing file raises ``FileNotFoundError``.

    Shape:
        - Output: the header's dimensions, e.g. (60000, 28, 28) uint8 for
          ``train-images-idx3-ubyte`` and (60000,) uint8 for the labels.
    """
    path = os.fspath(path)
    buf, note = _read_bytes(path)
    return _parse(buf, path, note)


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (stored
    big-endian). The file is written atomically (temporary file, then
    ``os.replace``); gzip output is reproducible (mtime 0).

    Shape:
        - Input: any shape with 1 to 255 dimensions, each < 2**32; it is
          stored as the header's dimensions, so :func:`read_idx` returns
          the same shape.
    """
    path = os.fspath(path)
    a = np.asarray(array)
    code = _CODE_FOR.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        raise InvalidTypeError(
            f"write_idx({path!r}): IDX cannot store dtype {a.dtype}; "
            "supported: uint8, int8, int16, int32, float32, float64 (convert with .astype first)"
        )
    if a.ndim == 0 or a.ndim > 255:
        raise InvalidArgumentError(f"write_idx({path!r}): IDX needs 1 to 255 dimensions, got shape {a.shape}")
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
