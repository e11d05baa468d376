"""IDX reader/writer: round trips, the on-disk format, and every corruption."""
import gzip
import os
import struct

import numpy as np
import pytest

from glassnet.data import read_idx, write_idx
from glassnet.errors import DataFormatError

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def _raw(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def _gz(path, data: bytes):
    return _raw(path, gzip.compress(data))


def _header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / name
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    assert b.flags.writeable
    assert (open(path, "rb").read(2) == b"\x1f\x8b") == name.endswith(".gz")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_on_disk_format_is_big_endian(tmp_path):
    path = tmp_path / "s.idx"
    write_idx(path, np.array([1, 258], dtype=np.int16))
    assert open(path, "rb").read() == bytes.fromhex("00000B01" "00000002" "0001" "0102")


def test_reads_hand_built_file(tmp_path):
    payload = struct.pack(">3f", 1.5, -2.0, 3.25)
    a = read_idx(_raw(tmp_path / "f.idx", _header(0x0D, [3, 1]) + payload))
    assert a.dtype == np.float32 and a.shape == (3, 1)
    np.testing.assert_array_equal(a[:, 0], [1.5, -2.0, 3.25])
    b = read_idx(_gz(tmp_path / "u.gz", _header(0x08, [2, 2]) + bytes([0, 1, 254, 255])))
    np.testing.assert_array_equal(b, [[0, 1], [254, 255]])


def test_wrong_magic(tmp_path):
    path = _raw(tmp_path / "bad-magic", b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataFormatError, match="bad magic number 0x01000801") as e:
        read_idx(path)
    assert str(e.value).startswith(path + ":")
    assert "two zero bytes" in str(e.value)


def test_wrong_dtype_code(tmp_path):
    path = _raw(tmp_path / "bad-type", _header(0x07, [1]) + b"\x00")
    with pytest.raises(DataFormatError) as e:
        read_idx(path)
    msg = str(e.value)
    assert msg.startswith(path + ":")
    assert "unknown data type code 0x07" in msg and "0x08 ubyte" in msg and "0x0E double" in msg


def test_truncated_payload_message(tmp_path):
    # The exact scenario of a cut-off download of the Fashion-MNIST images.
    path = _gz(tmp_path / "train-images-idx3-ubyte.gz", _header(0x08, [60000, 28, 28]) + bytes(1000))
    with pytest.raises(DataFormatError) as e:
        read_idx(path)
    assert str(e.value) == (
        f"{path}: payload has 1000 bytes, header promises 60000x28x28 = 47040000 bytes "
        "(truncated: 47039000 bytes missing)"
    )


def test_truncated_multibyte_payload(tmp_path):
    path = _raw(tmp_path / "ints.idx", _header(0x0C, [2, 3]) + bytes(20))
    with pytest.raises(DataFormatError, match=r"payload has 20 bytes, header promises 2x3 ints x 4 bytes = 24 bytes"):
        read_idx(path)


def test_extra_bytes(tmp_path):
    path = _raw(tmp_path / "extra.idx", _header(0x08, [2, 2]) + bytes(7))
    with pytest.raises(DataFormatError) as e:
        read_idx(path)
    assert str(e.value).startswith(path + ": payload has 7 bytes, header promises 2x2 = 4 bytes")
    assert "3 extra bytes" in str(e.value)


@pytest.mark.parametrize("data, what", [
    (b"\x00\x00", "too short for the 4-byte IDX magic number"),
    (b"", "file has 0 bytes"),
    (bytes([0, 0, 8, 3]) + struct.pack(">I", 5), "declares 3 dimensions (16-byte header) but the file has only 8 bytes"),
    (bytes([0, 0, 8, 0]), "declares 0 dimensions"),
])
def test_short_or_empty_header(tmp_path, data, what):
    path = _raw(tmp_path / "short.idx", data)
    with pytest.raises(DataFormatError, match=r"^" + str(path).replace(".", r"\.") + ":") as e:
        read_idx(path)
    assert what in str(e.value)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(_header(0x08, [100, 28, 28]) + np.random.default_rng(1).integers(0, 256, 78400, dtype=np.uint8).tobytes())
    bad = bytearray(good)
    bad[len(bad) // 2:len(bad) // 2 + 64] = bytes(64)
    path = _raw(tmp_path / "corrupt.gz", bytes(bad))
    with pytest.raises(DataFormatError, match="corrupt gzip data") as e:
        read_idx(path)
    assert str(e.value).startswith(path + ":")


def test_truncated_gzip(tmp_path):
    good = gzip.compress(_header(0x08, [10, 28, 28]) + bytes(7840))
    path = _raw(tmp_path / "cut.gz", good[: len(good) // 2])
    with pytest.raises(DataFormatError, match="corrupt gzip data") as e:
        read_idx(path)
    assert path in str(e.value)


def test_gz_name_with_uncompressed_content(tmp_path):
    # Some HTTP clients decompress on the fly but keep the .gz name.
    path = _raw(tmp_path / "x.gz", _header(0x08, [3]) + b"\x01\x02\x03")
    np.testing.assert_array_equal(read_idx(path), [1, 2, 3])
    junk = _raw(tmp_path / "junk.gz", b"<html>not found</html>")
    with pytest.raises(DataFormatError, match=r"bad magic number.*name ends in \.gz but the file is not gzip"):
        read_idx(junk)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


def test_write_rejects_unsupported(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store dtype int64"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="1 to 64 dimensions"):
        write_idx(tmp_path / "a.idx", np.uint8(3))


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_label_file():
    a = read_idx(os.path.join(FASHION_DIR, "t10k-labels-idx1-ubyte.gz"))
    assert a.shape == (10000,) and a.dtype == np.uint8
    assert np.bincount(a).tolist() == [1000] * 10
