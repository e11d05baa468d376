"""Downloads, entirely offline: file:// URLs, fake openers and a local HTTP
server on 127.0.0.1 serving small IDX files written with write_idx."""
import functools
import hashlib
import http.client
import http.server
import io
import os
import socket
import threading
import time
import urllib.error

import numpy as np
import pytest

from glassnet.data import (
    ChecksumError, DownloadError, FashionMNIST, MNIST, download_from_mirrors, download_url,
    md5sum, write_idx,
)
from glassnet.errors import DataFormatError

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _leftovers(folder):
    return [p for p in os.listdir(folder) if p.endswith(".part")]


def _write_split(folder, split, n, seed=0):
    """Small valid IDX files for ``split``; returns {name: md5}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    img, lab = SPLIT_FILES[split]
    write_idx(folder / img, rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
    write_idx(folder / lab, rng.integers(0, 10, size=n).astype(np.uint8))
    return {name: md5sum(folder / name) for name in (img, lab)}


@pytest.fixture
def served(tmp_path):
    """A thread running http.server over tmp_path/www; yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data folders: HOME, $GLASSNET_DATA and the system folder all
    point into tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setattr(FashionMNIST, "system_dir", str(tmp_path / "no-system"))
    monkeypatch.setattr(MNIST, "system_dir", str(tmp_path / "no-system-mnist"))
    return tmp_path


# --------------------------------------------------------------------------
# download_url


def test_md5sum(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert md5sum(p) == "900150983cd24fb0d6963f7d28e17f72"
    assert md5sum(p, chunk_size=1) == "900150983cd24fb0d6963f7d28e17f72"


def test_download_file_url_success(tmp_path):
    src = tmp_path / "src" / "a.gz"
    src.parent.mkdir()
    write_idx(src, np.arange(10, dtype=np.uint8))
    dest = tmp_path / "out" / "sub" / "a.gz"
    got = download_url(src.as_uri(), dest, md5sum(src), progress=False)
    assert got == dest and dest.read_bytes() == src.read_bytes()
    assert not _leftovers(dest.parent)
    # md5 comparison is case-insensitive; progress bar path works too
    dest2 = tmp_path / "out" / "b.gz"
    download_url(src.as_uri(), dest2, md5sum(src).upper(), progress=True)
    assert dest2.read_bytes() == src.read_bytes()


def test_checksum_mismatch_leaves_nothing_behind(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 100_000)
    out = tmp_path / "out"
    dest = out / "a.bin"
    with pytest.raises(ChecksumError) as e:
        download_url(src.as_uri(), dest, "0" * 32, progress=False)
    assert isinstance(e.value, DataFormatError)
    msg = str(e.value)
    assert src.as_uri() in msg and md5sum(src) in msg and "0" * 32 in msg
    assert not dest.exists() and os.listdir(out) == []


def test_failed_download_keeps_an_existing_file(tmp_path):
    src = tmp_path / "new.bin"
    src.write_bytes(b"new")
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old good copy")
    with pytest.raises(ChecksumError):
        download_url(src.as_uri(), dest, "f" * 32, progress=False)
    assert dest.read_bytes() == b"old good copy" and not _leftovers(dest.parent)


class _Resp(io.BytesIO):
    def __init__(self, data, length=None, fail_after=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data) if length is None else length)}
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(min(n, 1000) if n and n > 0 else n)


def test_short_read_is_an_error_and_atomic(tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="connection ended after 500 of 900 bytes"):
        download_url("http://x/f.bin", dest, opener=lambda url, timeout: _Resp(b"a" * 500, length=900),
                     progress=False)
    assert not dest.exists() and os.listdir(tmp_path) == []


def test_interrupted_transfer_removes_temp_file(tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="connection failed after 2000 bytes.*ConnectionResetError") as e:
        download_url("http://x/f.bin", dest,
                     opener=lambda url, timeout: _Resp(b"a" * 5000, fail_after=2000), progress=False)
    assert isinstance(e.value.__cause__, ConnectionResetError)
    assert os.listdir(tmp_path) == []

    def refuse(url, timeout):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_url("http://x/f.bin", dest, opener=refuse, progress=False)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------
# download_from_mirrors


def test_mirrors_retry_next_after_failure(tmp_path):
    good = tmp_path / "good"
    bad = tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "f.bin").write_bytes(b"right bytes")
    (bad / "f.bin").write_bytes(b"wrong bytes")
    md5 = md5sum(good / "f.bin")
    out = tmp_path / "out"
    mirrors = [(tmp_path / "missing").as_uri() + "/", bad.as_uri(), good.as_uri() + "/"]
    path = download_from_mirrors("f.bin", mirrors, out, md5, progress=False)
    assert path == out / "f.bin" and path.read_bytes() == b"right bytes"
    assert not _leftovers(out)


def test_all_mirrors_fail_lists_every_url(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "f.bin").write_bytes(b"wrong")
    mirrors = [(tmp_path / "missing").as_uri(), bad.as_uri()]
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as e:
        download_from_mirrors("f.bin", mirrors, out, "1" * 32, progress=False)
    msg = str(e.value)
    assert "every mirror failed" in msg
    assert (tmp_path / "missing").as_uri() + "/f.bin" in msg and bad.as_uri() + "/f.bin" in msg
    assert "MD5" in msg
    assert not (out / "f.bin").exists() and not _leftovers(out)
    with pytest.raises(DownloadError, match="no mirrors given"):
        download_from_mirrors("f.bin", [], out)


def test_mirrors_skip_http_protocol_errors(tmp_path):
    calls = []

    def opener(url, timeout):
        calls.append(url)
        if "first" in url:
            raise http.client.IncompleteRead(b"partial", 100)
        return _Resp(b"payload")

    path = download_from_mirrors("f.bin", ["http://first/", "http://second/"], tmp_path, progress=False,
                                 opener=opener)
    assert calls == ["http://first/f.bin", "http://second/f.bin"]
    assert path.read_bytes() == b"payload"


def test_mirrors_over_local_http_server(served, tmp_path):
    www, base = served
    (www / "real").mkdir()
    (www / "fake").mkdir()
    md5s = _write_split(www / "real", "test", 7)
    _write_split(www / "fake", "test", 7, seed=99)
    name = SPLIT_FILES["test"][0]
    out = tmp_path / "dl"
    # 404 first, then a mirror serving different bytes, then the right one
    path = download_from_mirrors(name, [base + "nothing/", base + "fake/", base + "real/"], out,
                                 md5s[name], progress=False)
    assert md5sum(path) == md5s[name] and not _leftovers(out)
    with pytest.raises(DownloadError) as e:
        download_from_mirrors(name, [base + "nothing/"], out / "x", md5s[name], progress=False)
    assert "404" in str(e.value)


# --------------------------------------------------------------------------
# Datasets with download=True


def _patch_remote(monkeypatch, cls, mirrors, md5s):
    resources = {split: tuple((n, md5s.get(n, "0" * 32)) for n in names)
                 for split, names in SPLIT_FILES.items()}
    monkeypatch.setattr(cls, "mirrors", tuple(mirrors))
    monkeypatch.setattr(cls, "resources", resources)


@pytest.mark.parametrize("cls", [FashionMNIST, MNIST])
def test_dataset_download_into_root_then_found(isolated, served, monkeypatch, cls):
    www, base = served
    md5s = _write_split(www / "m", "train", 12)
    md5s.update(_write_split(www / "m", "test", 5, seed=1))
    _patch_remote(monkeypatch, cls, [base + "down/", base + "m/"], md5s)
    root = isolated / "root"
    ds = cls(root=root, train=True, download=True)
    assert len(ds) == 12 and ds.folder == root
    assert sorted(os.listdir(root)) == sorted(SPLIT_FILES["train"])
    assert ds.data.dtype == np.uint8 and ds.targets.dtype == np.int64
    # the files are now found without download, by root ...
    again = cls(root=root, train=True)
    np.testing.assert_array_equal(again.data, ds.data)
    # ... and the test split is fetched separately
    assert len(cls(root=root, train=False, download=True)) == 5
    assert sorted(os.listdir(root)) == sorted(SPLIT_FILES["train"] + SPLIT_FILES["test"])


def test_dataset_download_default_goes_to_user_cache(isolated, served, monkeypatch):
    www, base = served
    md5s = _write_split(www / "m", "test", 4)
    _patch_remote(monkeypatch, FashionMNIST, [base + "m/"], md5s)
    ds = FashionMNIST(train=False, download=True)
    cache = isolated / "home" / ".cache" / "glassnet" / "fashion-mnist"
    assert ds.folder == cache and len(ds) == 4
    assert FashionMNIST(train=False).folder == cache


def test_dataset_download_checksum_failure(isolated, served, monkeypatch):
    www, base = served
    md5s = _write_split(www / "m", "test", 4)
    md5s[SPLIT_FILES["test"][0]] = "0" * 32              # images never match
    _patch_remote(monkeypatch, FashionMNIST, [base + "m/"], md5s)
    root = isolated / "root"
    with pytest.raises(DownloadError, match="MD5"):
        FashionMNIST(root=root, train=False, download=True)
    assert not (root / SPLIT_FILES["test"][0]).exists() and not _leftovers(root)


def test_download_skipped_when_files_present(isolated, monkeypatch):
    root = isolated / "root"
    _write_split(root, "train", 3)

    def no_network(*a, **k):
        raise AssertionError("must not download")

    monkeypatch.setattr("glassnet.data.datasets.download_from_mirrors", no_network)
    assert len(FashionMNIST(root=root, download=True)) == 3


def test_http_error_is_an_oserror():
    # download_from_mirrors relies on this to move on to the next mirror
    assert issubclass(urllib.error.HTTPError, OSError)


# --------------------------------------------------------------------------
# Hostile servers on 127.0.0.1: every misbehaviour ends in a DownloadError (or
# ChecksumError) within the deadline, and never leaves a file behind.


class _HostileHandler(http.server.BaseHTTPRequestHandler):
    """Behaviour chosen by the path; ``server.stop`` (an Event) ends the slow ones."""

    protocol_version = "HTTP/1.0"
    body = bytes(range(256)) * 40  # 10240 bytes

    def log_message(self, *args):
        pass

    def _send(self, code=200, length=None, extra=()):
        self.send_response(code)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def _trickle(self, data):
        for b in data:  # one byte every 50 ms, until the test ends
            if self.server.stop.wait(0.05):
                return
            self.wfile.write(bytes([b]))
            self.wfile.flush()

    def do_GET(self):  # noqa: C901 - one branch per behaviour
        path = self.path.split("?")[0]
        path = path[:-2] if path.endswith("/f") else path  # a mirror's base URL + file name "f"
        try:
            if path == "/good":
                self._send(length=len(self.body))
                self.wfile.write(self.body)
            elif path == "/ua":
                ua = self.headers.get("User-Agent", "").encode()
                self._send(length=len(ua))
                self.wfile.write(ua)
            elif path == "/trickle":                       # 8 minutes for the body
                self._send(length=len(self.body))
                self._trickle(self.body)
            elif path == "/trickle-headers":               # the status line itself trickles
                self._trickle(b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 10000)
            elif path == "/silent":                        # accepts, then never answers
                self.server.stop.wait(60)
            elif path == "/endless":                       # no length, never ends
                self._send()
                while not self.server.stop.is_set():
                    self.wfile.write(bytes(65536))
            elif path == "/oversize":                      # no length, 10x the expected size
                self._send()
                self.wfile.write(self.body * 10)
            elif path == "/longer-than-length":           # more bytes than Content-Length
                self._send(length=100)
                self.wfile.write(self.body)
            elif path == "/drop":                          # promises 10240, sends 4000, hangs up
                self._send(length=len(self.body))
                self.wfile.write(self.body[:4000])
                self.wfile.flush()
                self.connection.shutdown(2)
            elif path == "/bad-length":
                self._send(extra=[("Content-Length", "not a number")])
                self.wfile.write(self.body)
            elif path == "/loop":
                self._send(302, length=0, extra=[("Location", "/loop")])
            elif path.startswith("/hop/"):                 # /hop/3 -> /hop/2 -> ... -> /good
                n = int(path.rsplit("/", 1)[1])
                self._send(302, length=0, extra=[("Location", f"/hop/{n - 1}" if n > 1 else "/good")])
            elif path == "/500":
                self.send_error(500, "Internal Server Error")
            else:
                self.send_error(404, "Not Found")
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def hostile():
    """A ThreadingHTTPServer on 127.0.0.1 with _HostileHandler; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _fails(tmp_path, url, match, **kw):
    """Download ``url`` expecting DownloadError matching ``match``; returns the seconds it took."""
    out = tmp_path / "out"
    dest = out / "f.bin"
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=match) as e:
        download_url(url, dest, progress=False, **kw)
    elapsed = time.monotonic() - t0
    assert url in str(e.value)
    assert not dest.exists() and os.listdir(out) == [], "a partial or temporary file was left behind"
    return elapsed


def test_hostile_good_baseline_and_wrong_checksum(hostile, tmp_path):
    body = _HostileHandler.body
    path = download_url(hostile + "/good", tmp_path / "g.bin", progress=False, deadline_s=5,
                        expected_size=len(body))
    assert path.read_bytes() == body and not _leftovers(tmp_path)
    # http.client stops at Content-Length; the extra bytes are never read
    path = download_url(hostile + "/longer-than-length", tmp_path / "f", progress=False, deadline_s=5)
    assert path.read_bytes() == body[:100]
    out = tmp_path / "out"
    with pytest.raises(ChecksumError, match="MD5"):
        download_url(hostile + "/good", out / "f.bin", "0" * 32, progress=False, deadline_s=5)
    assert os.listdir(out) == []


# (path, what the error says, download_url keywords)
HOSTILE_CASES = [
    # the per-socket timeout (30 s) never fires: each read returns a byte in 50 ms
    ("/trickle", "deadline of 1 s", {"deadline_s": 1.0, "timeout": 30.0}),
    ("/trickle-headers", "deadline of 1 s", {"deadline_s": 1.0, "timeout": 30.0}),
    ("/silent", "deadline of 1 s", {"deadline_s": 1.0, "timeout": 30.0}),
    ("/endless", r"longer than max_bytes=1000000.*cut off", {"max_bytes": 1_000_000}),
    ("/oversize", "more than the expected 10240 bytes", {"expected_size": 10240}),
    ("/longer-than-length", "announces 100 bytes.*has 10240", {"expected_size": 10240}),
    ("/drop", "connection ended after 4000 of 10240 bytes|connection failed", {}),
    ("/bad-length", "longer than max_bytes=100", {"max_bytes": 100}),
    ("/nothing", "HTTP 404", {}),
    ("/500", "HTTP 500", {}),
    ("/loop", "HTTP 302.*redirect", {}),
]


@pytest.mark.parametrize("where, match, kw", HOSTILE_CASES, ids=[c[0] for c in HOSTILE_CASES])
def test_hostile_server(hostile, tmp_path, where, match, kw):
    elapsed = _fails(tmp_path, hostile + where, match, **{"deadline_s": 10.0, **kw})
    assert elapsed < kw.get("deadline_s", 10.0) + 5.0


def test_hostile_deadline_with_a_custom_opener(tmp_path):
    class Trickle(_Resp):
        def read(self, n=-1):
            time.sleep(0.05)
            return super().read(1)

    elapsed = _fails(tmp_path, "http://x/f", "deadline", opener=lambda url, timeout: Trickle(bytes(10**5)),
                     deadline_s=0.5)
    assert elapsed < 5.0


def test_hostile_redirects_bounded(hostile, tmp_path):
    body = _HostileHandler.body
    assert download_url(hostile + "/hop/3", tmp_path / "a", progress=False, max_redirects=3).read_bytes() == body
    _fails(tmp_path, hostile + "/hop/4", r"more than 3 redirects", max_redirects=3)


def test_default_opener_sends_user_agent(hostile, tmp_path):
    # urllib's default would be blocked by some mirrors; ours names glassnet.
    assert download_url(hostile + "/ua", tmp_path / "ua", progress=False).read_text().startswith("glassnet")


def test_hostile_refused_connection(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    _fails(tmp_path, f"http://127.0.0.1:{port}/f", "cannot open.*refused", deadline_s=5)


def test_hostile_keyboard_interrupt_midway_removes_temp(tmp_path):
    class Interrupted(_Resp):
        def read(self, n=-1):
            if self.tell() >= 3000:
                raise KeyboardInterrupt
            return super().read(n)

    dest = tmp_path / "f.bin"
    with pytest.raises(KeyboardInterrupt):
        download_url("http://x/f.bin", dest, opener=lambda url, timeout: Interrupted(b"a" * 9000), progress=False)
    assert os.listdir(tmp_path) == []


def test_hostile_mirrors_skip_every_kind_of_failure(hostile, tmp_path):
    md5 = hashlib.md5(_HostileHandler.body).hexdigest()
    mirrors = [hostile + "/nothing", hostile + "/500", hostile + "/drop", hostile + "/trickle"]
    with pytest.raises(DownloadError) as e:
        download_from_mirrors("f", mirrors, tmp_path / "out", md5, progress=False, deadline_s=1.0)
    msg = str(e.value)
    assert "404" in msg and "500" in msg and "deadline" in msg
    assert not _leftovers(tmp_path / "out")


@pytest.mark.parametrize("kw", [{"deadline_s": 0}, {"timeout": -1}, {"max_bytes": -1}, {"max_redirects": -1}])
def test_download_rejects_bad_limits(tmp_path, kw):
    from glassnet.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        download_url("http://127.0.0.1:9/x", tmp_path / "x", progress=False, **kw)
