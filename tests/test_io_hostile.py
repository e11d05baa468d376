"""Hostile and damaged weights files: every reader stays bounded and answers with a glassnet error.

Each hostile input is built here, byte by byte (hand-written pickle opcodes,
a hand-written zip directory, a deflate stream of zeros that declares 2 GiB
but is 2 MiB on disk). The memory-hungry ones run in one subprocess whose
address space is capped at its baseline + 1.5 GiB, so a reader that tried to
allocate what the file asks for would fail there -- and a C-stack overflow
would show up as a dead subprocess instead of killing the test run.
"""
import json
import os
import pickle
import pickletools
import random
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from glassnet.errors import DataFormatError, GlassnetError, LimitExceededError
from glassnet.io import StateDictFileError, UnsafePickleError, load_pth, load_state_dict_file, save_state_dict_file
from glassnet.io.pth import StateDictLimitError
from tests.torch_oracle import require_torch

REPO = Path(__file__).resolve().parents[1]
GiB = 1 << 30
MEMORY_CAP = 3 * GiB // 2  # over the subprocess's baseline address space
ZEROS_2GIB_CRC = 1304293916  # zlib.crc32(bytes(2**31))


# ------------------------------------------------------------ pickle opcodes
def _v(value) -> bytes:
    """Opcodes pushing a plain value (no PROTO, no STOP, no memo)."""
    return pickletools.optimize(pickle.dumps(value, protocol=2))[2:-1]


def _tensor(size, stride, offset=0, numel=4, stype=b"FloatStorage", key="0") -> bytes:
    """Opcodes pushing torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""
    return (b"ctorch._utils\n_rebuild_tensor_v2\n("
            + b"(" + _v("storage") + b"ctorch\n" + stype + b"\n" + _v(key) + _v("cpu") + _v(numel) + b"tQ"
            + _v(offset) + _v(tuple(size)) + _v(tuple(stride)) + b"\x89ccollections\nOrderedDict\n)RtR")


def _state_dict_pickle(**tensors) -> bytes:
    body = b"".join(_v(name) + t + b"s" for name, t in tensors.items())
    return b"\x80\x02ccollections\nOrderedDict\n)R" + body + b"."


def _pth(path, payload: bytes, storages=None):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")
        for k, v in (storages or {}).items():
            z.writestr(f"archive/data/{k}", v)
    return path


# --------------------------------------------------------------- raw zips
def _member(name, payload, size=None, crc=None, method=zipfile.ZIP_STORED, flags=0, csize=None):
    name = name.encode() if isinstance(name, str) else name
    if size is None:
        size = len(payload)
        crc = zlib.crc32(payload)
        if method == zipfile.ZIP_DEFLATED:
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = co.compress(payload) + co.flush()
    return dict(name=name, payload=payload, size=size, crc=crc, method=method, flags=flags,
                csize=len(payload) if csize is None else csize)


def _zip_bytes(members) -> bytes:
    """A zip archive written by hand, so every header field can say what a test needs."""
    out, central = bytearray(), bytearray()
    for m in members:
        offset = len(out)
        fields = (m["flags"], m["method"], 0, 0x21, m["crc"], m["csize"], m["size"], len(m["name"]))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, *fields, 0) + m["name"] + m["payload"]
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, *fields, 0, 0, 0, 0, 0, offset)
        central += m["name"]
    n = len(members)
    return bytes(out + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(out), 0))


def _deflated_zeros(prefix: bytes, mib: int) -> bytes:
    """Raw deflate of ``prefix`` + ``mib`` MiB of zeros, built from one repeated flushed block
    (about 1 KiB per MiB), so a 2 GiB member costs milliseconds and 2 MiB of disk."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(bytes(1 << 20)) + co.flush(zlib.Z_FULL_FLUSH)
    again = co.compress(bytes(1 << 20)) + co.flush(zlib.Z_FULL_FLUSH)
    assert block == again  # after a full flush every block of zeros compresses the same
    return head + block * mib + co.flush()


def test_deflated_zeros_helper_is_a_real_stream():
    data = zlib.decompress(_deflated_zeros(b"head", 3), -15)
    assert data == b"head" + bytes(3 << 20)


def _npy_header(shape, descr="<f4") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _safetensors(path, header, data=b"", length=None):
    header = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(header) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + header + data)
    return path


# ----------------------------------------------- the memory-capped subprocess
_CAPPED = r"""
import json, re, sys
from glassnet.errors import GlassnetError
from glassnet.io import load_pth, load_state_dict_file
try:  # Linux: cap the address space at what is mapped now + the allowance
    import resource
    base = int(re.search(r"VmSize:\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024
except (ImportError, OSError):
    resource = None
if resource is not None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = base + int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
results = {}
for name, loader, path, kwargs in json.loads(sys.argv[1]):
    fn = load_pth if loader == "load_pth" else load_state_dict_file
    try:
        got = fn(path, **kwargs)
        results[name] = {"ok": {k: [list(v.shape), float(v.sum())] for k, v in got.items()}}
    except GlassnetError as exc:
        results[name] = {"mro": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}
    except BaseException as exc:
        results[name] = {"escaped": type(exc).__name__, "message": str(exc)[:300]}
print(json.dumps(results))
"""


def _memo_bombs(d):
    return {
        # PROTO 2, NONE, LONG_BINPUT 2**31, STOP: 9 bytes, a memo table of 2**32 slots
        "memo_put": _pth(d / "memo_put.pth", b"\x80\x02Nr\x00\x00\x00\x80."),
        "memo_get": _pth(d / "memo_get.pth", b"\x80\x02j\x00\x00\x00\x80."),
        # BINBYTES / BYTEARRAY8 that claim 2 GiB / 1 TiB: allocated before they are read
        "binbytes": _pth(d / "binbytes.pth", b"\x80\x03B\x00\x00\x00\x80" + b"x" * 10 + b"."),
        "bytearray8": _pth(d / "bytearray8.pth", b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b"x."),
    }


def _geometry_bombs(d):
    one = np.ones(1, "<f4").tobytes()
    return {
        # a 1-element storage viewed as 65536 x 65536 through stride 0: 16 GiB from 4 bytes
        "stride_zero": _pth(d / "stride0.pth", _state_dict_pickle(w=_tensor((65536, 65536), (0, 0), numel=1)),
                            {"0": one}),
        # overlapping stride 1: 4 Gi elements from a 2**17-element storage
        "stride_tiny": _pth(d / "stride1.pth", _state_dict_pickle(w=_tensor((65536, 65536), (1, 1), numel=1 << 17)),
                            {"0": bytes(4 << 17)}),
    }


def _zip_bombs(d):
    pkl = _state_dict_pickle(w=_tensor((1 << 29,), (1,), numel=1 << 29))
    bomb = _deflated_zeros(b"", 2048)
    out = {
        # data/0 declares (and really inflates to) 2 GiB of zeros; 2 MiB on disk
        "pth_bomb": _zip_bytes([_member("archive/data.pkl", pkl), _member("archive/byteorder", b"little"),
                                _member("archive/data/0", bomb, size=1 << 31, crc=ZEROS_2GIB_CRC,
                                        method=zipfile.ZIP_DEFLATED)]),
        # a.npy declares a (2**29,) float32 array and inflates to it
        "npz_bomb": _zip_bytes([_member("a.npy", _deflated_zeros(_npy_header((1 << 29,)), 2048),
                                        size=len(_npy_header((1 << 29,))) + (1 << 31), crc=0,
                                        method=zipfile.ZIP_DEFLATED)]),
        # headers that lie: declare 4 KiB, inflate to 2 GiB -- the read stops at 4 KiB
        "pth_lying": _zip_bytes([_member("archive/data.pkl", _state_dict_pickle(w=_tensor((1024,), (1,), numel=1024))),
                                 _member("archive/data/0", bomb, size=4096, crc=zlib.crc32(bytes(4096)),
                                         method=zipfile.ZIP_DEFLATED)]),
        "npz_lying": _zip_bytes([_member("a.npy", _deflated_zeros(_npy_header((1024,)), 2048),
                                         size=len(_npy_header((1024,))) + 4096,
                                         crc=zlib.crc32(_npy_header((1024,)) + bytes(4096)),
                                         method=zipfile.ZIP_DEFLATED)]),
        # a stored .npy whose header claims 8 GiB but holds 16 bytes (np.load allocates first)
        "npz_shape": _zip_bytes([_member("a.npy", _npy_header((1 << 31,)) + bytes(16))]),
        # a version-2 .npy header that claims to be 4 GiB long, in a member whose compressed size
        # claims 4 GiB too (np.load would read -- and allocate -- the whole header first)
        "npz_header": _zip_bytes([_member("a.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFF00) + b"{",
                                          size=64, crc=0, csize=0xFFFFFFF0)]),
    }
    paths = {}
    for name, raw in out.items():
        paths[name] = d / (name + (".npz" if name.startswith("npz") else ".pth"))
        paths[name].write_bytes(raw)
    return paths


def _nesting_bombs(d):
    return {
        # a ~1 MB pickle whose dict key is a tuple nested a million deep: hashing it overflowed the C stack
        "deep_tuple": _pth(d / "deep_tuple.pth", b"\x80\x02})" + b"\x85" * 1_000_000 + b"Ns."),
        # 80 levels of T = (T, T): shallow, but hashing it takes 2**80 steps
        "dag": _pth(d / "dag.pth", b"\x80\x02})" + b"2\x86" * 80 + b"Ns."),
        # a list nested 100 000 deep, one level per [memo it, new list, append it] (repr/compare recursion)
        "deep_list": _pth(d / "deep_list.pth", b"\x80\x02]" + b"q\x000]h\x00a" * 100_000 + b"."),
    }


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    """Load every memory-hungry hostile file in one subprocess capped at baseline + MEMORY_CAP."""
    d = tmp_path_factory.mktemp("hostile")
    files = {**_memo_bombs(d), **_geometry_bombs(d), **_zip_bombs(d), **_nesting_bombs(d)}
    cases = [[name, "load_state_dict_file", str(p), {}] for name, p in files.items()]
    cases += [[name + "@load_pth", "load_pth", str(p), {}] for name, p in files.items() if p.suffix == ".pth"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _CAPPED, json.dumps(cases), str(MEMORY_CAP)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, f"reader subprocess died (rc {res.returncode}): {res.stderr[-2000:]}"
    results = json.loads(res.stdout)
    return {name: (results[name], files[name.split("@")[0]]) for name in results}


def _refused(capped, name, cls, pattern):
    for key in (name, name + "@load_pth"):
        if key not in capped:
            continue
        got, path = capped[key]
        assert "mro" in got, f"{key}: {got}"
        assert cls.__name__ in got["mro"], f"{key}: {got}"
        assert str(path) in got["message"], got["message"]
        assert "ran out of memory" not in got["message"]
        assert re.search(pattern, got["message"]), f"{key}: {got['message']}"


def test_memo_index_bomb_is_refused_before_unpickling(capped):
    _refused(capped, "memo_put", DataFormatError, r"memo index 2147483648 is larger than the 2 opcodes")
    _refused(capped, "memo_get", DataFormatError, r"memo index 2147483648 is fetched but was never stored")


def test_counted_strings_longer_than_the_pickle_are_refused(capped):
    _refused(capped, "binbytes", DataFormatError, r"data\.pkl is not a valid pickle")
    _refused(capped, "bytearray8", DataFormatError, r"data\.pkl is not a valid pickle")


def test_stride_zero_and_overlapping_tensors_are_charged_before_materialising(capped):
    _refused(capped, "stride_zero", StateDictLimitError, r"tensor on storage '0'.*exceeds max_bytes=.*pass a larger max_bytes")
    _refused(capped, "stride_tiny", LimitExceededError, r"needs 16\.0 GiB.*max_bytes")


def test_zip_bombs_are_refused_on_their_declared_size(capped):
    _refused(capped, "pth_bomb", StateDictLimitError, r"declare 2147\d+ bytes uncompressed.*max_bytes")
    _refused(capped, "npz_bomb", StateDictLimitError, r"declare 2147\d+ bytes uncompressed.*max_bytes")


def test_lying_zip_headers_cannot_inflate_past_their_declared_size(capped):
    for name in ("pth_lying", "npz_lying", "pth_lying@load_pth"):
        got, _ = capped[name]
        assert "ok" in got, got
        assert list(got["ok"].values()) == [[[1024], 0.0]], got


def test_npy_header_claiming_more_than_its_member_holds(capped):
    _refused(capped, "npz_shape", StateDictFileError, r"entry 'a'.*needs 8589934592 bytes but its member holds 16")
    _refused(capped, "npz_header", StateDictFileError, r"corrupt \.npz file")


def test_deep_and_exponential_nesting_is_refused_not_a_crash_or_hang(capped):
    _refused(capped, "deep_tuple", StateDictLimitError, r"more than 100 levels deep")
    _refused(capped, "deep_list", LimitExceededError, r"more than 100 levels deep")
    _refused(capped, "dag", StateDictLimitError, r"expands to more than \d+ values")


# --------------------------------------------------------- pickle structure
def test_depth_hidden_by_filling_a_list_after_nesting_it(tmp_path):
    # T_k = torch.Size(*A) where A = (L,) was built while L was still empty and L got T_{k-1}
    # afterwards: a scanner that forgot A holds L would see depth 3 at every step.
    def put(i):
        return b"r" + struct.pack("<I", i)

    def get(i):
        return b"j" + struct.pack("<I", i)

    body = b"\x80\x02}ctorch\nSize\n" + put(0) + b"0)"
    for k in range(200):
        a, b, c = 3 * k + 1, 3 * k + 2, 3 * k + 3
        body += put(c) + b"0]" + put(a) + b"\x85" + put(b) + b"0" + get(a) + get(c) + b"a0" + get(0) + get(b) + b"R"
    p = _pth(tmp_path / "hidden.pth", body + b"Ns.")
    with pytest.raises(StateDictLimitError, match=r"hidden\.pth.*more than 100 levels deep"):
        load_pth(p)
    # 20 steps are fine: the same construction, shallow enough, loads
    body = b"\x80\x02ctorch\nSize\n" + put(0) + b"0)"
    for k in range(20):
        a, b, c = 3 * k + 1, 3 * k + 2, 3 * k + 3
        body += put(c) + b"0]" + put(a) + b"\x85" + put(b) + b"0" + get(a) + get(c) + b"a0" + get(0) + get(b) + b"R"
    got = load_pth(_pth(tmp_path / "shallow.pth", body + b"."))
    for _ in range(20):
        assert isinstance(got, tuple) and len(got) == 1
        got = got[0]
    assert got == ()


def test_a_list_holding_itself_is_refused(tmp_path):
    p = _pth(tmp_path / "cycle.pth", b"\x80\x02]q\x00h\x00a.")
    with pytest.raises(LimitExceededError, match=r"cycle\.pth.*holds a value inside itself"):
        load_pth(p)


def test_rebuilding_one_memoised_value_many_times_is_charged(tmp_path):
    # set(L) for one 1000-item list L, rebuilt 20 000 times: 20 M set entries from a 100 KB pickle
    items = b"".join(_v(i) for i in range(1000))
    body = b"\x80\x02]q\x00(" + items + b"ec__builtin__\nset\nq\x01"
    body += b"0" + b"h\x01h\x00\x85R0" * 20000
    p = _pth(tmp_path / "copies.pth", body + b"N.")
    with pytest.raises(StateDictLimitError, match=r"copies\.pth.*a set of 1000 items.*max_bytes=10000000"):
        load_pth(p, max_bytes=10_000_000)


def test_pickle_cannot_set_the_state_of_storage_stand_ins(tmp_path):
    # BUILD on the FloatStorage stand-in (slot state {"dtype": ...}) would retype every storage
    p = _pth(tmp_path / "build.pth", b"\x80\x02ctorch\nFloatStorage\nN}X\x05\x00\x00\x00dtypeK\x01s\x86b.")
    with pytest.raises(StateDictFileError, match=r"build\.pth.*set the state of torch\.FloatStorage"):
        load_pth(p)


def test_unsafe_globals_are_still_refused_after_the_scan(tmp_path):
    payload = pickle.dumps(OrderedDict(w=_Evil()), protocol=4)  # STACK_GLOBAL + FRAME
    p = _pth(tmp_path / "evil.pth", payload)
    with pytest.raises(UnsafePickleError, match=r"evil\.pth.*'(posix|nt)\.system'"):
        load_state_dict_file(p)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_out_of_band_buffers_and_stack_underflow_are_refused(tmp_path):
    for name, payload, msg in [("oob", b"\x80\x05\x97.", "out-of-band buffers"),
                               ("underflow", b"\x80\x02a.", "stack underflow"),
                               ("nomark", b"\x80\x02t.", "needs a MARK"),
                               ("nostop", b"\x80\x02N", "not a valid pickle")]:
        with pytest.raises(StateDictFileError, match=rf"{name}\.pth.*{msg}"):
            load_pth(_pth(tmp_path / f"{name}.pth", payload))


# --------------------------------------------------------- tensor geometry
@pytest.mark.parametrize("case,size,stride,offset,msg", [
    ("zero_times_huge", (0, 1 << 62), (1, 1), 0, r"multiply past 2\*\*63 bytes"),
    ("dims65", (1,) * 65, (1,) * 65, 0, r"65 dimensions; at most 64"),
    ("negative_size", (-1,), (1,), 0, r"negative size"),
    ("negative_stride", (2,), (-1,), 1, r"negative offset/stride"),
    ("negative_offset", (1,), (1,), -1, r"negative offset/stride"),
    ("offset_past_end", (0,), (1,), 10, r"storage offset 10 lies past its end"),
    ("reaches_past_end", (2,), (1,), 3, r"reaches element 4"),
    ("huge_int_size", (1 << 70,), (1,), 0, r"multiply past 2\*\*63 bytes"),
    ("big_size", (1 << 40,), (0,), 0, r"needs 4\.0 TiB.*exceeds max_bytes"),
    ("float_size", (2.0,), (1,), 0, r"not an integer"),
    ("rank_mismatch", (2, 2), (1,), 0, r"differ in rank"),
])
def test_bad_tensor_geometry_is_refused(tmp_path, case, size, stride, offset, msg):
    p = _pth(tmp_path / f"{case}.pth", _state_dict_pickle(w=_tensor(size, stride, offset)),
             {"0": np.arange(4, dtype="<f4").tobytes()})
    with pytest.raises(StateDictFileError, match=rf"{case}\.pth.*{msg}"):
        load_state_dict_file(p)


def test_storage_count_and_key_are_checked_before_reading(tmp_path):
    p = _pth(tmp_path / "numel.pth", _state_dict_pickle(w=_tensor((1,), (1,), numel=1 << 40)), {"0": bytes(16)})
    with pytest.raises(StateDictFileError, match=r"numel\.pth.*holds 16 bytes but torch\.FloatStorage of 1099511627776"):
        load_pth(p)
    p = _pth(tmp_path / "key.pth", _state_dict_pickle(w=_tensor((1,), (1,), key="../x")), {"0": bytes(16)})
    with pytest.raises(StateDictFileError, match=r"key\.pth.*bad storage key"):
        load_pth(p)


# ------------------------------------------------------------ zip directory
def _zip_file(path, members):
    path.write_bytes(_zip_bytes(members))
    return path


def test_zip_directory_rules(tmp_path):
    pkl = _state_dict_pickle()
    npy = _npy_header((2,)) + bytes(8)
    cases = {
        "encrypted.pth": ([_member("archive/data.pkl", pkl, flags=1)], r"is encrypted"),
        "encrypted.npz": ([_member("a.npy", npy, flags=1)], r"is encrypted"),
        "utf8.npz": ([_member(b"\xff\xfe.npy", npy, flags=0x800)], r"not valid UTF-8"),
        "dup.pth": ([_member("archive/data.pkl", pkl), _member("archive/data.pkl", pkl)], r"appears 2 times"),
        "dup.npz": ([_member("a.npy", npy), _member("a.npy", npy)], r"appears 2 times"),
        "nul.npz": ([_member(b"a\x00b.npy", npy), _member("a.npy", npy)], r"contains a NUL"),
        "bzip2.npz": ([_member("a.npy", npy, method=zipfile.ZIP_BZIP2)], r"compression method 12"),
    }
    for name, (members, msg) in cases.items():
        p = _zip_file(tmp_path / name, members)
        with pytest.raises(StateDictFileError, match=rf"{name.replace('.', '[.]')}.*{msg}"):
            load_state_dict_file(p)
    # the same members, well-formed, load
    assert list(load_state_dict_file(_zip_file(tmp_path / "ok.npz", [_member("a.npy", npy)]))) == ["a"]
    assert load_state_dict_file(_zip_file(tmp_path / "ok.pth", [_member("archive/data.pkl", pkl)])) == {}


def test_zip_members_declaring_more_than_max_bytes_in_total(tmp_path):
    npy = _npy_header((100,)) + bytes(400)
    p = _zip_file(tmp_path / "sum.npz", [_member(f"a{i}.npy", npy) for i in range(3)])
    assert len(load_state_dict_file(p)) == 3
    with pytest.raises(StateDictLimitError, match=r"sum\.npz.*declare 1\d\d\d bytes.*max_bytes=2500") as info:
        load_state_dict_file(p, max_bytes=2500)  # each member fits, the three do not
    assert info.value.limit_name == "max_bytes" and info.value.limit == 2500


# ---------------------------------------------------- NUL characters in keys
def test_nul_in_keys_is_refused_on_save_and_load(tmp_path):
    arrays = {"a": np.zeros(2, np.float32), "a\x00b": np.ones(2, np.float32)}
    for ext in ("npz", "safetensors"):
        with pytest.raises(StateDictFileError, match=r"NUL"):
            save_state_dict_file(arrays, tmp_path / f"nul.{ext}")
        assert not (tmp_path / f"nul.{ext}").exists()
    p = _safetensors(tmp_path / "nul.safetensors",
                     {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                      "a\x00b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8))
    with pytest.raises(StateDictFileError, match=r"nul\.safetensors.*NUL"):
        load_state_dict_file(p)
    p = _pth(tmp_path / "nul.pth", _state_dict_pickle(**{"a\x00b": _tensor((1,), (1,))}), {"0": bytes(16)})
    with pytest.raises(StateDictFileError, match=r"nul\.pth.*NUL"):
        load_state_dict_file(p)


# --------------------------------------------------------- safetensors header
def _entry(**kw):
    e = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    e.update(kw)
    return {"w": e}


@pytest.mark.parametrize("case,header,msg", [
    ("shape_string", _entry(shape="abc"), r"invalid shape 'abc'"),
    ("shape_float", _entry(shape=[2.0]), r"invalid shape"),
    ("shape_bool", _entry(shape=[True, True]), r"invalid shape"),
    ("shape_65", _entry(shape=[1] * 65, data_offsets=[0, 4]), r"65 dimensions"),
    ("zero_times_huge", _entry(shape=[0, 1 << 62], data_offsets=[0, 0]), r"multiply past"),
    ("offsets_float", _entry(data_offsets=[0.0, 8.0]), r"invalid data_offsets"),
    ("offsets_three", _entry(data_offsets=[0, 4, 8]), r"invalid data_offsets"),
    ("offsets_huge", _entry(data_offsets=[0, 1 << 70]), r"run past the end"),
    ("dtype_unknown", _entry(dtype="F8_XX"), r"unsupported dtype 'F8_XX'"),
    ("dtype_list", _entry(dtype=["F32"]), r"unsupported dtype"),
    ("entry_list", {"w": [1, 2]}, r"not an object"),
    ("metadata", {"__metadata__": {"a": 1}, **_entry()}, r"__metadata__ is not an object of strings"),
    ("duplicate", b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[1],'
                  b'"data_offsets":[0,4]}}', r"repeats the key 'w'"),
    ("not_utf8", b'{"\xff":1}', r"not UTF-8"),
    ("deep_json", b'{"w":' + b"[" * 200 + b"]" * 200 + b"}", r"nested more than 100 levels deep"),
    ("deeper_json", b'{"w":' + b"[" * 100000 + b"]" * 100000 + b"}", r"nested more than 100 levels deep"),
    ("big_number", b'{"w":' + b"9" * 5000 + b"}", r"not valid JSON"),
])
def test_safetensors_header_rules(tmp_path, case, header, msg):
    p = _safetensors(tmp_path / f"{case}.safetensors", header, bytes(8))
    with pytest.raises(StateDictFileError, match=rf"{case}\.safetensors.*{msg}"):
        load_state_dict_file(p)


def test_safetensors_absurd_header_lengths(tmp_path):
    good = json.dumps(_entry()).encode()
    for n, msg in [(1 << 63, r"is more than the 104857600 bytes"), (10 ** 6, r"runs past the end")]:
        p = _safetensors(tmp_path / "len.safetensors", good, bytes(8), length=n)
        with pytest.raises(StateDictFileError, match=rf"len\.safetensors.*header length {n} {msg}"):
            load_state_dict_file(p)
    p = _safetensors(tmp_path / "big.safetensors", _entry(shape=[1 << 20], data_offsets=[0, 4 << 20]),
                     bytes(4 << 20))
    with pytest.raises(StateDictLimitError, match=r"big\.safetensors.*tensor 'w'.*max_bytes=1000000"):
        load_state_dict_file(p, max_bytes=1_000_000)
    assert load_state_dict_file(p)["w"].shape == (1 << 20,)


# -------------------------------------------------------- legitimate files
def test_torch_written_files_still_round_trip(tmp_path):
    torch = require_torch()
    g = torch.Generator().manual_seed(0)
    base = torch.randn(24, generator=g)
    sd = OrderedDict([("w", torch.randn(3, 4, generator=g)), ("t", torch.randn(5, 3, generator=g).t()),
                      ("view", base[5:17].view(3, 4)), ("strided", base[1::3]),
                      ("bf16", torch.randn(2, 3, generator=g).to(torch.bfloat16)),
                      ("expanded", torch.randn(3, 1, generator=g).expand(3, 4)),
                      ("empty", torch.zeros(0, 3)), ("n", torch.tensor(7))])
    for protocol in (2, 4, 5):
        p = tmp_path / f"p{protocol}.pth"
        torch.save({"state_dict": sd, "epoch": 3, "tags": {"a", "b"}, "shape": torch.Size([2, 3])}, p,
                   pickle_protocol=protocol)
        got = load_state_dict_file(p)
        assert list(got) == list(sd)
        for k, t in sd.items():
            want = (t.float() if t.dtype == torch.bfloat16 else t).contiguous().numpy()
            np.testing.assert_array_equal(got[k], want, err_msg=k)
        raw = load_pth(p)
        assert raw["epoch"] == 3 and raw["tags"] == {"a", "b"} and raw["shape"] == (2, 3)


def test_max_bytes_can_be_raised_to_read_a_big_legitimate_file(tmp_path):
    torch = require_torch()
    sd = {"big": torch.ones(1024, 1024), "expanded": torch.ones(1).expand(2048, 1024)}  # 4 MiB + 8 MiB
    p = tmp_path / "big.pth"
    torch.save(sd, p)
    with pytest.raises(StateDictLimitError, match=r"big\.pth.*max_bytes=4000000.*pass a larger max_bytes") as info:
        load_state_dict_file(p, max_bytes=4_000_000)
    assert info.value.limit_name == "max_bytes" and isinstance(info.value, StateDictFileError)
    with pytest.raises(StateDictLimitError, match=r"big\.pth.*tensor on storage '1'"):
        load_state_dict_file(p, max_bytes=12_000_000)  # the file fits; materialising the expand does not
    got = load_state_dict_file(p, max_bytes=32_000_000)
    assert got["expanded"].shape == (2048, 1024) and got["expanded"].sum() == 2048 * 1024
    assert load_state_dict_file(p)["big"].sum() == 1024 * 1024  # the default (1 GiB) covers it
    for ext in ("npz", "safetensors"):
        q = tmp_path / f"big.{ext}"
        save_state_dict_file({"big": np.ones((1024, 1024), np.float32)}, q)
        with pytest.raises(StateDictLimitError, match=rf"big\.{ext}.*max_bytes=1000000"):
            load_state_dict_file(q, max_bytes=1_000_000)
        assert load_state_dict_file(q, max_bytes=8_000_000)["big"].sum() == 1024 * 1024


def test_fortran_order_npz_round_trip(tmp_path):
    a = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    np.savez(tmp_path / "f.npz", a=a, b=np.arange(3, dtype=">i4"))
    got = load_state_dict_file(tmp_path / "f.npz")
    np.testing.assert_array_equal(got["a"], a)
    assert got["a"].flags.c_contiguous and got["a"].flags.owndata
    np.testing.assert_array_equal(got["b"], [0, 1, 2])
    np.savez_compressed(tmp_path / "c.npz", a=a)
    np.testing.assert_array_equal(load_state_dict_file(tmp_path / "c.npz")["a"], a)


# --------------------------------------------- truncation and bit flips
def _offsets(n, count, rng):
    return range(n) if n <= count else sorted(rng.sample(range(n), count))


def _mutants(raw, rng, count=200):
    for cut in _offsets(len(raw), count, rng):
        yield f"truncated at {cut}", raw[:cut]
    for _ in range(count):
        data = bytearray(raw)
        bit = rng.randrange(len(raw) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
        yield f"bit {bit} flipped", bytes(data)


def _load_or_glassnet_error(path, label):
    try:
        got = load_state_dict_file(path)
    except GlassnetError as exc:
        assert str(path) in str(exc), (label, str(exc))
        return "error"
    except Exception as exc:  # noqa: BLE001 - that is what this test is about
        pytest.fail(f"{label}: {type(exc).__name__} escaped: {exc}")
    assert isinstance(got, OrderedDict) and all(isinstance(v, np.ndarray) for v in got.values()), label
    return "ok"


def test_truncated_and_bit_flipped_files_load_or_raise_a_glassnet_error(tmp_path):
    torch = require_torch()
    rng = random.Random(0)
    torch.save({"w": torch.randn(3, 4), "b": torch.randn(4).to(torch.bfloat16), "n": torch.tensor(3)},
               tmp_path / "src.pth")
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "n": np.array(3)}
    save_state_dict_file(arrays, tmp_path / "src.npz")
    save_state_dict_file(arrays, tmp_path / "src.safetensors", metadata={"k": "v"})
    outcomes = {}
    target = tmp_path / "mutant"
    for ext in ("pth", "npz", "safetensors"):
        raw = (tmp_path / f"src.{ext}").read_bytes()
        p = target.with_suffix(f".{ext}")
        for label, data in _mutants(raw, rng):
            p.write_bytes(data)
            outcomes.setdefault(ext, []).append(_load_or_glassnet_error(p, f".{ext} {label}"))
    # the pickle itself, truncated and flipped, with the zip around it intact
    with zipfile.ZipFile(tmp_path / "src.pth") as z:
        members = {n: z.read(n) for n in z.namelist()}
    pkl_name = next(n for n in members if n.endswith("data.pkl"))
    p = tmp_path / "pickle.pth"
    for label, data in _mutants(members[pkl_name], rng):
        with zipfile.ZipFile(p, "w") as z:
            for n, v in members.items():
                z.writestr(n, data if n == pkl_name else v)
        outcomes.setdefault("pickle", []).append(_load_or_glassnet_error(p, f"data.pkl {label}"))
    for kind, got in outcomes.items():
        assert "error" in got, kind  # the damage is noticed...
        assert got[0] == "error" and len(got) >= 250, kind
