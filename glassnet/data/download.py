"""Download files with MD5 checks, atomic writes, mirrors, limits and a progress bar.

The network is reached only through an *opener*: a callable
``opener(url, timeout=...)`` returning a binary file-like response (with
``read(n)``, and optionally ``headers`` holding ``Content-Length``). The
default opener is built on :mod:`urllib.request` (so ``file://`` URLs and
proxies work, and tests run on local files or a server on 127.0.0.1); it
sends glassnet's User-Agent, follows at most ``max_redirects`` redirects and
lets a watchdog cut the connection when the download's deadline passes.

A hostile or broken server cannot hang or flood a download:

- ``deadline_s`` bounds the *whole* download (connecting, headers, body),
  not just each socket operation, so a server trickling one byte a second
  fails when the deadline passes;
- at most ``expected_size`` / ``Content-Length`` / ``max_bytes`` bytes are
  read: a longer or endless body is cut off with :class:`DownloadError`;
- the bytes go to a temporary file in the destination folder, which is
  fsynced, checked (size, MD5) and only then renamed onto the final name;
  on any failure, ``KeyboardInterrupt`` included, it is deleted.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataFormatError, GlassnetError, InvalidArgumentError
from ..files import fsync_dir
from ..limits import DEFAULT_MIN_BYTES

__all__ = ["ChecksumError", "DownloadError", "md5sum", "download_url", "download_from_mirrors",
           "DEFAULT_DEADLINE_S", "DEFAULT_MAX_REDIRECTS", "DEFAULT_MAX_DOWNLOAD_BYTES"]

_CHUNK = 1 << 16
USER_AGENT = "glassnet (https://github.com/glassnet)"
#: seconds one file's whole download may take by default (a 30 MB file at 50 KB/s)
DEFAULT_DEADLINE_S = 600.0
#: redirects the default opener follows before giving up
DEFAULT_MAX_REDIRECTS = 5
#: bytes a download may write when neither the caller nor the server gives a size
DEFAULT_MAX_DOWNLOAD_BYTES = DEFAULT_MIN_BYTES


class ChecksumError(DataFormatError):
    """A downloaded file's MD5 differs from the published one."""


class DownloadError(GlassnetError, OSError):
    """A download failed (HTTP error, dropped connection, deadline, oversize body),
    or no mirror delivered a good copy of a file."""


def md5sum(path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


class _Watchdog:
    """Shuts down every socket registered with it once ``deadline_s`` has passed,
    which wakes a read blocked on a trickling server."""

    def __init__(self, deadline_s: float):
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._sockets = []
        self._timer = threading.Timer(deadline_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def register(self, sock):
        with self._lock:
            self._sockets.append(sock)
        if self.expired.is_set():
            self._shutdown(sock)
        return sock

    def _fire(self):
        self.expired.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock):
        with contextlib.suppress(OSError, AttributeError, ValueError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self):
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()


def _watched(http_class, watchdog: _Watchdog):
    """A connection factory for ``do_open`` whose sockets the watchdog can cut."""
    def factory(host, **kwargs):
        conn = http_class(host, **kwargs)
        create = getattr(conn, "_create_connection", None)  # http.client's hook for the raw socket
        if create is not None:
            conn._create_connection = lambda *a, **k: watchdog.register(create(*a, **k))
        connect = conn.connect

        def connect_and_register():
            connect()
            watchdog.register(conn.sock)  # the TLS socket, for HTTPS
        conn.connect = connect_and_register
        return conn
    return factory


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog):
        super().__init__()
        self._watchdog = watchdog

    def http_open(self, req):
        return self.do_open(_watched(http.client.HTTPConnection, self._watchdog), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog):
        super().__init__()
        self._watchdog = watchdog

    def https_open(self, req):
        return self.do_open(_watched(http.client.HTTPSConnection, self._watchdog), req,
                            context=self._context)


def _urllib_opener(watchdog: _Watchdog, max_redirects: int):
    """The default opener: urllib with a User-Agent, bounded redirects and watched sockets."""
    redirect = urllib.request.HTTPRedirectHandler()
    redirect.max_redirections = max_redirects
    redirect.max_repeats = min(redirect.max_repeats, max_redirects)
    handlers = [_HTTPHandler(watchdog), redirect]
    if hasattr(http.client, "HTTPSConnection"):
        handlers.append(_HTTPSHandler(watchdog))
    built = urllib.request.build_opener(*handlers)

    def opener(url: str, timeout: float = 30.0):
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        return built.open(req, timeout=timeout)
    return opener


def _content_length(resp):
    headers = getattr(resp, "headers", None)
    try:
        value = headers.get("Content-Length") if headers is not None else None
        return int(value) if value is not None and int(value) >= 0 else None
    except (TypeError, ValueError, AttributeError):
        return None


def _describe(exc: BaseException, max_redirects: int) -> str:
    """A one-line reason for a failed request."""
    if isinstance(exc, urllib.error.HTTPError):
        if 300 <= exc.code < 400:
            return (f"HTTP {exc.code} {exc.reason}: a redirect loop, a redirect without a Location, "
                    f"or more than {max_redirects} redirects (max_redirects)")
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot open: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def download_url(url: str, dest, md5: str | None = None, *, opener=None, progress: bool = True,
                 timeout: float = 30.0, deadline_s: float = DEFAULT_DEADLINE_S,
                 expected_size: int | None = None, max_bytes: int | None = None,
                 max_redirects: int = DEFAULT_MAX_REDIRECTS) -> Path:
    """Download ``url`` to the file ``dest`` and return its path.

    Args:
        url: ``http://``, ``https://`` or ``file://`` URL.
        dest: the final file; its folder is created if needed.
        md5: the expected hex MD5 (any case), or ``None`` not to check.
        opener: ``opener(url, timeout=...)`` returning a response; ``None`` = urllib
            (bounded redirects, deadline enforced on the sockets themselves).
        progress: show a tqdm bar on stderr.
        timeout: seconds any one socket operation may wait (capped by ``deadline_s``).
        deadline_s: seconds the whole download may take, from connecting to the last
            byte (with a custom opener, checked between reads).
        expected_size: the file's size in bytes, if known: a body of another length fails.
        max_bytes: the most bytes written when neither ``expected_size`` nor the server's
            ``Content-Length`` gives a size (``None`` = 1 GiB).
        max_redirects: redirects the default opener follows.

    The bytes go to a temporary file next to ``dest`` that is fsynced and
    renamed onto ``dest`` (``os.replace``) only when complete, of the expected
    size and, if ``md5`` is given, with a matching MD5; so ``dest`` is never
    left half-written (an existing ``dest`` is kept on failure). On any
    failure, ``KeyboardInterrupt`` included, the temporary file is deleted.

    Raises :class:`ChecksumError` for a wrong MD5 and :class:`DownloadError`
    (a glassnet error and an ``OSError``) for everything else that goes wrong
    remotely: HTTP errors (404, 500...), too many redirects, a connection that
    fails or drops midway, the deadline, a body longer or shorter than its
    expected size. :class:`~glassnet.errors.InvalidArgumentError` for a
    nonsensical limit.
    """
    for name, value in (("timeout", timeout), ("deadline_s", deadline_s)):
        if not value > 0:
            raise InvalidArgumentError(f"download_url: {name} must be > 0 seconds, got {value}")
    for name, value in (("expected_size", expected_size), ("max_bytes", max_bytes)):
        if value is not None and int(value) < 0:
            raise InvalidArgumentError(f"download_url: {name} must be >= 0, got {value}")
    if int(max_redirects) < 0:
        raise InvalidArgumentError(f"download_url: max_redirects must be >= 0, got {max_redirects}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    watchdog = _Watchdog(deadline_s)
    if opener is None:
        opener = _urllib_opener(watchdog, int(max_redirects))
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            received, h = _transfer(url, dest, out, opener, progress, min(timeout, deadline_s),
                                    deadline_s, start, watchdog, expected_size, max_bytes,
                                    int(max_redirects))
            out.flush()
            os.fsync(out.fileno())
        got = h.hexdigest()
        if md5 is not None and got != md5.lower():
            raise ChecksumError(
                f"{url}: MD5 of the downloaded file is {got}, expected {md5}; "
                f"the download was corrupted or the mirror serves a different file "
                f"(nothing was written to {dest})"
            )
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        watchdog.cancel()
    return dest


def _transfer(url, dest, out, opener, progress, timeout, deadline_s, start, watchdog,
              expected_size, max_bytes, max_redirects):
    """Copy the response body into ``out``; ``(bytes received, md5 object)``."""
    def deadline_passed():  # the watchdog's timer, or a socket timeout capped at the deadline firing first
        return watchdog.expired.is_set() or time.monotonic() - start >= deadline_s

    def deadline_error():
        return DownloadError(
            f"{url}: the download did not finish within its deadline of {deadline_s:g} s "
            f"(deadline_s; {time.monotonic() - start:.1f} s elapsed, {received} bytes received)")

    received = 0
    try:
        resp = opener(url, timeout=timeout)
    except GlassnetError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()
        if deadline_passed():
            raise deadline_error() from exc
        raise DownloadError(f"{url}: {_describe(exc, max_redirects)}") from exc
    h = hashlib.md5(usedforsecurity=False)
    with contextlib.closing(resp):
        total = _content_length(resp)
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(f"{url}: the server announces {total} bytes (Content-Length) "
                                f"but the file has {expected_size} (expected_size)")
        limit = next(v for v in (expected_size, total, max_bytes, DEFAULT_MAX_DOWNLOAD_BYTES)
                     if v is not None)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total if total is not None else expected_size, unit="B", unit_scale=True,
                       unit_divisor=1024, desc=dest.name, leave=False)
        try:
            while True:
                if deadline_passed():
                    raise deadline_error()
                try:
                    # one byte past the limit, to tell "exactly the limit" from "more"
                    block = resp.read(min(_CHUNK, limit + 1 - received))
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if deadline_passed():
                        raise deadline_error() from exc
                    raise DownloadError(f"{url}: the connection failed after {received} bytes "
                                        f"({type(exc).__name__}: {exc})") from exc
                if not block:
                    break
                if received + len(block) > limit:
                    raise DownloadError(_too_long(url, limit, expected_size, total))
                out.write(block)
                h.update(block)
                received += len(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    if watchdog.expired.is_set():
        raise deadline_error()
    want = expected_size if expected_size is not None else total
    if want is not None and received != want:
        raise DownloadError(f"{url}: connection ended after {received} of {want} bytes")
    return received, h


def _too_long(url, limit, expected_size, total) -> str:
    if expected_size is not None:
        return f"{url}: the server sent more than the expected {expected_size} bytes (expected_size); cut off"
    if total is not None:
        return f"{url}: the server sent more than its Content-Length of {total} bytes; cut off"
    return (f"{url}: the body is longer than max_bytes={limit} bytes and the server gave no size; "
            "cut off (pass expected_size or a larger max_bytes)")


def download_from_mirrors(filename: str, mirrors, dest_dir, md5: str | None = None, *,
                          opener=None, progress: bool = True, timeout: float = 30.0,
                          deadline_s: float = DEFAULT_DEADLINE_S, expected_size: int | None = None,
                          max_bytes: int | None = None,
                          max_redirects: int = DEFAULT_MAX_REDIRECTS) -> Path:
    """Fetch ``filename`` into ``dest_dir`` from the first mirror that works.

    Each mirror is a base URL (``"https://host/path/"``; the file name is
    appended). A mirror that fails (:class:`DownloadError`: HTTP error,
    dropped connection, deadline, oversize body; or :class:`ChecksumError`)
    is skipped; if all fail, :class:`DownloadError` lists every URL and why it
    failed. The keywords are :func:`download_url`'s, applied to each mirror
    (``deadline_s`` per mirror).
    """
    dest = Path(dest_dir) / filename
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            return download_url(url, dest, md5, opener=opener, progress=progress, timeout=timeout,
                                deadline_s=deadline_s, expected_size=expected_size,
                                max_bytes=max_bytes, max_redirects=max_redirects)
        except (DownloadError, ChecksumError) as exc:
            reason = str(exc)
            failures.append(f"  {reason}" if reason.startswith(url) else f"  {url}: {reason}")
    if not failures:
        raise DownloadError(f"cannot download {filename}: no mirrors given")
    raise DownloadError(
        f"could not download {filename} into {dest.parent}; every mirror failed:\n" + "\n".join(failures)
    )
