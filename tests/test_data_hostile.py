"""IDX files and MNIST-format datasets against hostile input.

Gzip bombs (built by repeating one stream-compressed member of zeros, so the
files stay a few MB), headers promising terabytes, zero-times-huge shapes,
bad CRCs, and a fuzz campaign of truncations and bit flips: each ends in a
correct load or a glassnet error naming the file. The memory-bounded cases
run in a subprocess whose address space is capped at 1.5 GiB over its
baseline (RLIMIT_AS), with a control showing the old read-everything
approach does not fit under that cap.
"""
import gzip
import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from glassnet.data import FashionMNIST, MNIST, DatasetNotFoundError, read_idx, write_idx
from glassnet.errors import DataFormatError, GlassnetError, LimitExceededError
from glassnet.limits import MAX_DIMS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLIT = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
CAP = 3 << 29  # 1.5 GiB over the child's baseline


def _header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _zero_members(total_bytes, member=16 << 20):
    """``total_bytes`` of zeros as concatenated gzip members (each ~16 KB compressed)."""
    one = gzip.compress(bytes(member), compresslevel=9, mtime=0)
    assert total_bytes % member == 0
    return one * (total_bytes // member)


def _write(path, data):
    path.write_bytes(data)
    return path


def _raises_naming(exc_type, path, match=None, **kw):
    with pytest.raises(exc_type, match=match) as e:
        read_idx(path, **kw)
    assert str(e.value).startswith(str(path) + ":"), str(e.value)
    return e.value


# --------------------------------------------------------------------------
# gzip bombs and lying headers


def test_header_promising_more_than_the_budget(tmp_path):
    # a 4 GiB payload announced by a 100-byte file: refused from the header, nothing decompressed
    p = _write(tmp_path / "bomb.gz", gzip.compress(_header(0x08, [4, 1 << 30]) + bytes(1000)))
    err = _raises_naming(LimitExceededError, p, "max_bytes")
    assert err.limit_name == "max_bytes" and err.needed == 4 << 30 and err.limit == 1 << 30
    raw = _write(tmp_path / "bomb.idx", _header(0x08, [4, 1 << 30]))
    _raises_naming(DataFormatError, raw, "truncated")  # a raw file's size is known: short, not big


def test_terabyte_shape(tmp_path):
    dims = [2**32 - 1] * 3
    p = _write(tmp_path / "tera.gz", gzip.compress(_header(0x0E, dims)))
    err = _raises_naming(LimitExceededError, p)
    assert err.needed == (2**32 - 1) ** 3 * 8


def test_zero_times_huge(tmp_path):
    for name, pack in (("z.gz", gzip.compress), ("z.idx", bytes)):
        ok = _write(tmp_path / ("ok-" + name), pack(_header(0x0C, [0, 2**32 - 1])))
        a = read_idx(ok)
        assert a.shape == (0, 2**32 - 1) and a.dtype == np.int32
        huge = _write(tmp_path / ("huge-" + name), pack(_header(0x08, [0, 2**32 - 1, 2**32 - 1])))
        _raises_naming(DataFormatError, huge, "cannot be represented")


def test_too_many_dimensions(tmp_path):
    p = _write(tmp_path / "deep.idx", _header(0x08, [1] * (MAX_DIMS + 1)) + b"\x07")
    _raises_naming(DataFormatError, p, f"65 dimensions; at most {MAX_DIMS}")
    ok = _write(tmp_path / "deep64.idx", _header(0x08, [1] * MAX_DIMS) + b"\x07")
    assert read_idx(ok).shape == (1,) * MAX_DIMS


def test_max_bytes_keyword(tmp_path):
    p = tmp_path / "a.idx.gz"
    write_idx(p, np.zeros((10, 28, 28), np.uint8))
    err = _raises_naming(LimitExceededError, p, "max_bytes=1000", max_bytes=1000)
    assert err.needed == 7840
    assert read_idx(p, max_bytes=7840).shape == (10, 28, 28)


def test_trailing_bomb_is_not_decompressed(tmp_path):
    # a valid file followed by 256 MiB of zeros in more gzip members: counted up to 1 MiB only
    payload = np.arange(40, dtype=np.uint8).reshape(2, 20)
    p = _write(tmp_path / "tail.gz", gzip.compress(_header(0x08, [2, 20]) + payload.tobytes())
               + _zero_members(256 << 20))
    _raises_naming(DataFormatError, p, r"at least \d+ extra bytes at the end")


@pytest.mark.parametrize("damage, match", [
    ("crc", "CRC check failed"),
    ("isize", "Incorrect length"),
    ("deflate", "corrupt gzip data"),
    ("header", "corrupt gzip data"),
    ("junk", "corrupt gzip data"),
])
def test_corrupt_gzip_kinds(tmp_path, damage, match):
    data = _header(0x0B, [50, 3]) + np.arange(150, dtype=">i2").tobytes()
    good = bytearray(gzip.compress(data, mtime=0))
    if damage == "crc":
        good[-8] ^= 0xFF
    elif damage == "isize":
        good[-1] ^= 0x01
    elif damage == "deflate":
        good[10] = 0xFF  # first deflate byte: BTYPE 11, reserved -> zlib.error
    elif damage == "header":
        good = good[:6]
    elif damage == "junk":
        good += b"trailing junk"
    p = _write(tmp_path / f"{damage}.gz", bytes(good))
    err = _raises_naming(DataFormatError, p, match)
    assert "corrupt gzip data" in str(err)


def test_gzip_padding_with_zeros_is_tolerated(tmp_path):
    a = np.arange(12, dtype=np.uint8)
    p = _write(tmp_path / "padded.gz", gzip.compress(_header(0x08, [12]) + a.tobytes()) + bytes(7))
    np.testing.assert_array_equal(read_idx(p), a)


def test_bombs_stay_bounded_in_memory(tmp_path):
    """Under RLIMIT_AS = baseline + 1.5 GiB: a gzip bomb of 2 GiB of zeros (a 2 MB file) with
    a header promising 2 GiB, the same bomb trailing a small valid payload, and a header
    promising 1,000,000,000 bytes the file does not hold, are all refused; the control (a
    buffer of the bomb's decompressed size, which the old reader -- ``gzip.decompress`` of
    the whole file -- had to hold) does not fit under the cap."""
    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_AS and /proc/self/status are Linux's")
    zeros = _zero_members(2 << 30)
    big = _write(tmp_path / "big-header.gz", gzip.compress(_header(0x08, [2, 1 << 30])) + zeros)
    tail = _write(tmp_path / "bomb-tail.gz", gzip.compress(_header(0x08, [3]) + b"abc") + zeros)
    lying = _write(tmp_path / "lying.gz", gzip.compress(_header(0x08, [1000, 1000, 1000]) + bytes(1 << 20)))
    assert max(p.stat().st_size for p in (big, tail, lying)) < 4 << 20
    script = textwrap.dedent(f"""
        import json, resource
        import numpy
        from glassnet.data.idx import read_idx
        from glassnet.errors import GlassnetError

        def vm():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

        resource.setrlimit(resource.RLIMIT_AS, (vm() + {CAP}, resource.RLIM_INFINITY))
        out = {{}}
        for name, path in (("big", {str(big)!r}), ("tail", {str(tail)!r}), ("lying", {str(lying)!r})):
            try:
                read_idx(path)
                out[name] = "loaded"
            except GlassnetError as exc:
                out[name] = type(exc).__name__ + ": " + str(exc)
            except MemoryError:
                out[name] = "MemoryError"
        try:
            bytearray({2 << 30})  # the decompressed size of the bomb
            out["control"] = "allocated"
        except MemoryError:
            out["control"] = "MemoryError"
        print(json.dumps(out))
    """)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["big"].startswith(f"LimitExceededError: {big}:"), out
    assert out["tail"].startswith(f"DataFormatError: {tail}:") and "extra bytes" in out["tail"], out
    assert out["lying"].startswith(f"DataFormatError: {lying}:") and "truncated" in out["lying"], out
    assert out["control"] == "MemoryError", out


# --------------------------------------------------------------------------
# fuzz: truncations and bit flips


def _fuzz_files():
    rng = np.random.default_rng(0)
    a8 = rng.integers(0, 256, (3, 5, 4), dtype=np.uint8)
    a32 = rng.standard_normal((4, 3)).astype(np.float32)
    out = []
    for a, code in ((a8, 0x08), (a32, 0x0D)):
        raw = _header(code, a.shape) + a.astype(a.dtype.newbyteorder(">")).tobytes()
        out.append((a, raw, False))
        out.append((a, gzip.compress(raw, mtime=0), True))
    return out


def test_truncated_at_every_offset(tmp_path):
    p = tmp_path / "cut"
    for a, data, compressed in _fuzz_files():
        for n in range(len(data)):
            p.write_bytes(data[:n])
            try:
                read_idx(p)
            except DataFormatError as exc:
                assert str(exc).startswith(f"{p}:"), exc
            else:
                raise AssertionError(f"{n} of {len(data)} bytes loaded without an error")
        p.write_bytes(data)
        np.testing.assert_array_equal(read_idx(p), a)


def test_random_bit_flips(tmp_path):
    """A flip gives the original array (a gzip header field such as the mtime), an array of
    the same byte size (raw payload or type code), or a glassnet error naming the file."""
    rng = np.random.default_rng(1)
    p = tmp_path / "flipped"
    outcomes = {"same": 0, "changed": 0, "error": 0}
    for a, data, compressed in _fuzz_files():
        for _ in range(80):
            blob = bytearray(data)
            for pos in rng.integers(0, len(blob), size=rng.integers(1, 4)):
                blob[pos] ^= 1 << int(rng.integers(0, 8))
            p.write_bytes(bytes(blob))
            try:
                got = read_idx(p)
            except GlassnetError as exc:
                assert str(exc).startswith(f"{p}:"), exc
                outcomes["error"] += 1
                continue
            assert isinstance(got, np.ndarray) and got.nbytes == a.nbytes
            if compressed:  # the CRC protects the payload
                assert got.tobytes() == a.tobytes() and got.shape == a.shape
            same = got.shape == a.shape and got.dtype == a.dtype and got.tobytes() == a.tobytes()
            outcomes["same" if same else "changed"] += 1
    assert outcomes["error"] > 60 and outcomes["changed"] > 5, outcomes


# --------------------------------------------------------------------------
# datasets


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setattr(FashionMNIST, "system_dir", str(tmp_path / "system" / "fashion-mnist"))
    monkeypatch.setattr(MNIST, "system_dir", str(tmp_path / "system" / "mnist"))
    return tmp_path


def _split(root, n=4):
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / SPLIT[0], np.zeros((n, 28, 28), np.uint8))
    write_idx(root / SPLIT[1], (np.arange(n) % 10).astype(np.uint8))


def test_dataset_with_a_gzip_bomb_as_images(isolated):
    root = isolated / "root"
    _split(root)
    bomb = _write(root / SPLIT[0], gzip.compress(_header(0x08, [10_000_000, 28, 28])) + _zero_members(16 << 20))
    with pytest.raises(LimitExceededError) as e:
        FashionMNIST(root=root)
    assert str(e.value).startswith(f"{bomb}:")


def test_dataset_max_bytes_reaches_the_reader(isolated):
    root = isolated / "root"
    _split(root, n=4)
    assert len(FashionMNIST(root=root, max_bytes=4 * 784)) == 4
    with pytest.raises(LimitExceededError, match="max_bytes=3000") as e:
        MNIST(root=root, max_bytes=3000)
    assert str(root / SPLIT[0]) in str(e.value)


def test_dataset_counts_and_labels_name_the_files(isolated):
    root = isolated / "root"
    _split(root, n=4)
    write_idx(root / SPLIT[1], np.arange(5, dtype=np.uint8))
    with pytest.raises(DataFormatError) as e:
        FashionMNIST(root=root)
    assert str(root / SPLIT[0]) in str(e.value) and str(root / SPLIT[1]) in str(e.value)
    write_idx(root / SPLIT[1], np.array([0, 1, 2, 255], np.uint8))
    with pytest.raises(DataFormatError, match="label 255 is outside 0..9") as e:
        FashionMNIST(root=root)
    assert str(e.value).startswith(str(root / SPLIT[1]))
    write_idx(root / SPLIT[1], np.array([0, -1, 2, 3], np.int32))
    with pytest.raises(DataFormatError, match="label -1 is outside"):
        FashionMNIST(root=root)


def test_dataset_files_swapped(isolated):
    root = isolated / "root"
    _split(root, n=4)
    images, labels = (root / s for s in SPLIT)
    tmp = root / "swap"
    images.rename(tmp)
    labels.rename(images)
    tmp.rename(labels)
    with pytest.raises(DataFormatError, match=r"expected uint8 images of shape \(N, 28, 28\), got uint8 \(4,\)") as e:
        FashionMNIST(root=root)
    assert str(e.value).startswith(str(images))


def test_dataset_not_found_lists_places_even_without_mirrors(isolated, monkeypatch):
    class NoMirrors(FashionMNIST):
        mirrors = ()

    with pytest.raises(DatasetNotFoundError) as e:
        NoMirrors(root=isolated / "nowhere")
    msg = str(e.value)
    for folder, _ in NoMirrors.search_dirs(isolated / "nowhere"):
        assert str(folder) in msg
    assert "download=True" not in msg


def test_dataset_file_vanishing_before_the_read(isolated, monkeypatch):
    root = isolated / "root"
    _split(root)

    def vanished(path, **kw):
        raise FileNotFoundError(2, "No such file or directory", str(path))

    monkeypatch.setattr("glassnet.data.datasets.read_idx", vanished)
    with pytest.raises(DatasetNotFoundError, match="disappeared") as e:
        FashionMNIST(root=root)
    assert str(root / SPLIT[0]) in str(e.value)


def test_dataset_path_that_cannot_be_examined(isolated, monkeypatch):
    # $GLASSNET_DATA pointing below a regular file: every lookup fails with ENOTDIR/ENAMETOOLONG
    blocker = isolated / "file"
    blocker.write_bytes(b"x")
    monkeypatch.setenv("GLASSNET_DATA", str(blocker / ("x" * 300)))
    with pytest.raises(DatasetNotFoundError) as e:
        FashionMNIST()
    assert str(blocker) in str(e.value)
