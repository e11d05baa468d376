"""CIFAR-10/100 from small files written here in the exact python format (Python 2 pickles with
bytes keys, as the official files are, and Python 3 re-pickles with str keys), checked against
torchvision's reader where its interpreter is there; hostile pickles refused without running
anything; download from a local http.server with MD5 check and safe extraction."""
import collections
import functools
import hashlib
import http.server
import io
import json
import os
import pickle
import struct
import subprocess
import tarfile
import threading

import numpy as np
import pytest

from glassnet.data import CIFAR10, CIFAR100, ChecksumError, UnsafePickleError
from glassnet.data.archive import extract_tar
from glassnet.data.cifar_pickle import load_cifar_pickle
from glassnet.data.datasets import DatasetNotFoundError
from glassnet.data.sample_rng import sample_rng
from glassnet.errors import DataFormatError, LimitExceededError
from tests.test_image_folder import TV_PYTHON
from tests.torch_oracle import in_ci


def py2_pickle(obj) -> bytes:
    """``obj`` pickled as Python 2's cPickle wrote the CIFAR files (protocol 2; str as BINSTRING,
    so keys load as bytes; arrays through numpy.core.multiarray._reconstruct)."""
    out = bytearray(b"\x80\x02")

    def string(b):
        out.extend(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def write(v):
        if isinstance(v, dict):
            out.extend(b"}(")
            for k, x in v.items():
                write(k)
                write(x)
            out.extend(b"u")
        elif isinstance(v, list):
            out.extend(b"](")
            for x in v:
                write(x)
            out.extend(b"e")
        elif isinstance(v, (bytes, str)):
            string(v.encode() if isinstance(v, str) else v)
        elif isinstance(v, int):
            out.extend(b"J" + struct.pack("<i", v))
        elif isinstance(v, np.ndarray):
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85")
            string(b"b")
            out.extend(b"\x87R(K\x01(" + b"".join(b"J" + struct.pack("<i", d) for d in v.shape) + b"t")
            out.extend(b"cnumpy\ndtype\n")
            string(v.dtype.str[1:].encode())
            out.extend(b"K\x00K\x01\x87R(K\x03")
            string(b"|")
            out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
            string(v.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(v))
    write(obj)
    return bytes(out + b".")


def py3_pickle(obj, protocol=2) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def write_cifar10(root, writer=py2_pickle, n=4, keys=bytes):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    k = (lambda s: s.encode()) if keys is bytes else (lambda s: s)
    rng = np.random.default_rng(0)
    for i, name in enumerate(CIFAR10.train_list + CIFAR10.test_list):
        m = n if name != "test_batch" else n - 1
        (folder / name).write_bytes(writer({k("batch_label"): b"training batch", k("labels"): rng.integers(0, 10, m).tolist(),
                                            k("data"): images(m, i), k("filenames"): [b"f%d.png" % j for j in range(m)]}))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(writer({k("num_cases_per_batch"): n, k("label_names"): names,
                                                  k("num_vis"): 3072}))
    return root


def write_cifar100(root, writer=py2_pickle, n=5):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, name in enumerate(["train", "test"]):
        folder.joinpath(name).write_bytes(writer({
            b"filenames": [b"x"] * n, b"batch_label": b"b", b"fine_labels": rng.integers(0, 100, n).tolist(),
            b"coarse_labels": rng.integers(0, 20, n).tolist(), b"data": images(n, 10 + i)}))
    (folder / "meta").write_bytes(writer({b"fine_label_names": [b"f%d" % j for j in range(100)],
                                          b"coarse_label_names": [b"c%d" % j for j in range(20)]}))
    return root


@pytest.fixture(autouse=True)
def no_real_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GLASSNET_DATA", raising=False)


@pytest.mark.parametrize("writer, keys", [(py2_pickle, bytes), (py3_pickle, str), (py3_pickle, bytes),
                                          (functools.partial(py3_pickle, protocol=4), str)])
def test_cifar10_reads_both_key_kinds(tmp_path, writer, keys):
    root = write_cifar10(tmp_path / "d", writer, keys=keys)
    train, test = CIFAR10(root), CIFAR10(root, train=False, transform=lambda x: x)
    assert train.data.shape == (20, 3, 32, 32) and train.data.dtype == np.uint8 and len(test) == 3
    assert train.classes[0] == "airplane" and train.class_to_idx["truck"] == 9
    first = load_cifar_pickle(root / "cifar-10-batches-py" / "data_batch_1")
    row = first["data"][2]
    np.testing.assert_array_equal(train.data[2, 0], row[:1024].reshape(32, 32))   # R, G, B planes
    np.testing.assert_array_equal(train.data[2, 2], row[2048:].reshape(32, 32))
    assert train.targets.dtype == np.int64 and train.targets[:4].tolist() == first["labels"]
    x, y = train[2]
    assert x.dtype == np.float32 and x.shape == (3, 32, 32) and y == first["labels"][2]
    np.testing.assert_allclose(x, train.data[2] / 255.0, rtol=1e-6)
    assert test[0][0].dtype == np.uint8


def test_cifar100_fine_and_coarse(tmp_path):
    root = write_cifar100(tmp_path / "d")
    fine, coarse = CIFAR100(root), CIFAR100(root, train=False, coarse=True)
    meta = load_cifar_pickle(root / "cifar-100-python" / "train")
    assert fine.targets.tolist() == meta["fine_labels"] and len(fine.classes) == 100 and fine.classes[7] == "f7"
    assert len(coarse.classes) == 20 and coarse.targets.max() < 20 and len(coarse) == 5


def test_rng_contract(tmp_path):
    from glassnet.data import transforms as T
    ds = CIFAR10(write_cifar10(tmp_path / "d"), transform=T.Compose([T.RandomCrop(32, padding=4), T.ToFloat()]))
    a, b = ds.get_item(5, sample_rng(1, 2, 5))[0], ds.get_item(5, sample_rng(1, 2, 5))[0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ds[5][0], ds.get_item(5, sample_rng(0, 0, 5))[0])


TV_CIFAR = r'''
import json, sys
import numpy as np
import torchvision.datasets.cifar as C
C.check_integrity = lambda *a, **k: True     # the test files are not the official ones
out = {}
for name, cls, kw in (("c10", C.CIFAR10, {}), ("c10t", C.CIFAR10, {"train": False}), ("c100", C.CIFAR100, {})):
    ds = cls(sys.argv[1], **kw)
    out[name] = {"data": ds.data.transpose(0, 3, 1, 2).tolist(), "targets": list(ds.targets), "classes": ds.classes}
json.dump(out, open(sys.argv[2], "w"))
'''


def test_same_data_as_torchvision(tmp_path):
    if not os.path.exists(TV_PYTHON):
        if in_ci() and "GLASSNET_TORCHVISION_PYTHON" in os.environ:
            pytest.fail(f"no torchvision interpreter at {TV_PYTHON}")
        pytest.skip(f"torchvision oracle unavailable: no interpreter at {TV_PYTHON}")
    root = write_cifar100(write_cifar10(tmp_path / "d"))
    (tmp_path / "tv.py").write_text(TV_CIFAR)
    proc = subprocess.run([TV_PYTHON, str(tmp_path / "tv.py"), str(root), str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        if "No module named" in proc.stderr:
            pytest.skip(proc.stderr.strip().splitlines()[-1])
        pytest.fail(proc.stderr[-3000:])
    tv = json.loads((tmp_path / "out.json").read_text())
    for name, ds in (("c10", CIFAR10(root)), ("c10t", CIFAR10(root, train=False)), ("c100", CIFAR100(root))):
        np.testing.assert_array_equal(ds.data, np.array(tv[name]["data"], np.uint8))
        assert ds.targets.tolist() == tv[name]["targets"] and ds.classes == tv[name]["classes"]


def _bad_batch(tmp_path, payload: bytes):
    root = write_cifar10(tmp_path / "d")
    path = root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(payload)
    return root, path


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __reduce__(self):
        return (eval, ("1+1",))


def test_hostile_pickles_are_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    hostile = {
        "os.system": pickle.dumps(_System(marker), protocol=2),
        "os.system p4": pickle.dumps({"data": _System(marker)}, protocol=4),
        "protocol 0": b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
        "eval": pickle.dumps(_Eval(), protocol=2),
        "a class": pickle.dumps(collections.OrderedDict(data=1), protocol=2),
        "py2 builtin": b"c__builtin__\neval\n(S'1'\ntR.",
    }
    for what, payload in hostile.items():
        root, path = _bad_batch(tmp_path / what.replace(" ", "_"), payload)
        with pytest.raises(UnsafePickleError, match="data_batch_3.*refusing to load global"):
            CIFAR10(root)
    assert not marker.exists()


@pytest.mark.parametrize("payload, error, match", [
    (b"\x80\x02" + b"]" * 3000 + b"a" * 2999 + b".", LimitExceededError, "levels deep"),
    (b"\x80\x02K\x01r\xff\xff\xff\x7f.", DataFormatError, "memo index"),
    (b"\x80\x02}q\x00", DataFormatError, "STOP"),
    (b"garbage", DataFormatError, "data_batch_3"),
    (py2_pickle([1, 2]), DataFormatError, "expected a pickled dict"),
    (py2_pickle({b"data": np.zeros((2, 3072), np.float64), b"labels": [0, 0]}), DataFormatError, "must be uint8"),
    (py2_pickle({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 0]}), DataFormatError, r"\(n, 3072\)"),
    (py2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), DataFormatError, "2 images but"),
    (py2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), DataFormatError, "label 10"),
    (py2_pickle({b"data": np.zeros((2, 3072), np.uint8)}), DataFormatError, "'labels' must be a list"),
    (py2_pickle({b"labels": [0]}), DataFormatError, "'data' must be"),
    (py2_pickle({b"data": np.zeros((1, 3000), np.uint8), b"labels": [0]}).replace(
        b"J" + struct.pack("<i", 3000), b"J" + struct.pack("<i", 3072)), DataFormatError, "needs 3072 bytes"),
    (py2_pickle({b"data": np.zeros(3, np.uint8)}).replace(b"K\x00\x85", b"K\x05\x85"), DataFormatError,
     "unexpected arguments"),
])
def test_malformed_files_name_the_file(tmp_path, payload, error, match):
    root, path = _bad_batch(tmp_path, payload)
    with pytest.raises(error, match=match) as info:
        CIFAR10(root)
    assert "data_batch_3" in str(info.value)


def test_bad_meta_and_read_limit(tmp_path):
    root = write_cifar10(tmp_path / "d")
    (root / "cifar-10-batches-py" / "batches.meta").write_bytes(py2_pickle({b"label_names": [b"a"] * 9}))
    with pytest.raises(DataFormatError, match="batches.meta.*10 class names"):
        CIFAR10(root)
    root = write_cifar10(tmp_path / "e")
    with pytest.raises(LimitExceededError, match="max_bytes=1000"):
        CIFAR10(root, max_bytes=1000)


def test_not_found_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        CIFAR10(tmp_path / "none")


# --------------------------------------------------------------------------- download
def _archive(tmp_path, members):
    """A .tar.gz of {name: bytes} (a value of None makes a symbolic link); its path and MD5."""
    path = tmp_path / "serve" / "cifar-10-python.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path, hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "serve"
    served.mkdir(exist_ok=True)
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(served), **k)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *a):
            pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def _official_members(tmp_path, sub="src"):
    src = write_cifar10(tmp_path / sub) / "cifar-10-batches-py"
    members = {f"cifar-10-batches-py/{p.name}": p.read_bytes() for p in sorted(src.iterdir())}
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    return members


def test_download_checks_md5_and_extracts(tmp_path, server, monkeypatch):
    url, hits = server
    _, md5 = _archive(tmp_path, _official_members(tmp_path))
    monkeypatch.setattr(CIFAR10, "url", f"{url}/cifar-10-python.tar.gz")
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5)
    ds = CIFAR10(tmp_path / "dl", download=True)
    assert len(ds) == 20 and (tmp_path / "dl" / "cifar-10-batches-py" / "readme.html").is_file()
    assert not list((tmp_path / "dl").glob(".*extract*"))
    CIFAR10(tmp_path / "dl", download=True, train=False)
    assert hits == ["/cifar-10-python.tar.gz"]                     # found on disk: not fetched again


def test_download_with_a_wrong_md5_extracts_nothing(tmp_path, server, monkeypatch):
    url, _ = server
    _archive(tmp_path, _official_members(tmp_path))
    monkeypatch.setattr(CIFAR10, "url", f"{url}/cifar-10-python.tar.gz")
    monkeypatch.setattr(CIFAR10, "tgz_md5", "0" * 32)
    with pytest.raises(ChecksumError):
        CIFAR10(tmp_path / "dl", download=True)
    assert not (tmp_path / "dl" / "cifar-10-batches-py").exists()


@pytest.mark.parametrize("name, data, match", [
    ("cifar-10-batches-py/../../evil", b"x", "outside"),
    ("/tmp/evil-abs", b"x", "outside"),
    ("cifar-10-batches-py/link", None, "not a regular file"),
])
def test_hostile_archives_are_refused(tmp_path, name, data, match):
    members = _official_members(tmp_path)
    members[name] = data
    archive, _ = _archive(tmp_path, members)
    with pytest.raises(DataFormatError, match=match):
        extract_tar(archive, tmp_path / "root", "cifar-10-batches-py")
    assert not (tmp_path / "evil").exists() and not os.path.exists("/tmp/evil-abs")
    assert not (tmp_path / "root" / "cifar-10-batches-py").exists()
    with pytest.raises(LimitExceededError, match="max_bytes"):
        extract_tar(_archive(tmp_path, _official_members(tmp_path, "src2"))[0], tmp_path / "r2", "cifar-10-batches-py",
                    max_bytes=1000)
