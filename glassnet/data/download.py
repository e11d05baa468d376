"""Download files with MD5 checks, atomic writes, mirrors and a progress bar.

The network is reached only through an *opener*: a callable
``opener(url, timeout=...)`` returning a binary file-like response (with
``read(n)``, and optionally ``headers`` holding ``Content-Length``). The
default is :func:`urllib.request.urlopen`, which also serves ``file://`` URLs,
so tests run entirely on local files.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

from ..errors import DataFormatError, GlassnetError

__all__ = ["ChecksumError", "DownloadError", "md5sum", "download_url", "download_from_mirrors"]

_CHUNK = 1 << 16
USER_AGENT = "glassnet (https://github.com/glassnet)"


class ChecksumError(DataFormatError):
    """A downloaded file's MD5 differs from the published one."""


class DownloadError(GlassnetError, OSError):
    """No mirror delivered a good copy of a file."""


def md5sum(path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _default_opener(url: str, timeout: float = 30.0):
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(req, timeout=timeout)


def _content_length(resp):
    headers = getattr(resp, "headers", None)
    try:
        value = headers.get("Content-Length") if headers is not None else None
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def download_url(url: str, dest, md5: str | None = None, *, opener=None,
                 progress: bool = True, timeout: float = 30.0) -> Path:
    """Download ``url`` to the file ``dest`` and return its path.

    The bytes go to a temporary file next to ``dest`` that is renamed onto
    ``dest`` (``os.replace``) only when complete and, if ``md5`` is given,
    only when its MD5 matches; so ``dest`` is never left half-written. On any
    failure the temporary file is deleted. A wrong MD5 raises
    :class:`ChecksumError`; network errors propagate (``OSError`` /
    ``urllib.error.URLError``). ``progress`` shows a tqdm bar on stderr.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    opener = opener or _default_opener
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            resp = opener(url, timeout=timeout)
            with contextlib.closing(resp):
                total = _content_length(resp)
                received = 0
                bar = None
                if progress:
                    from tqdm.auto import tqdm
                    bar = tqdm(total=total, unit="B", unit_scale=True,
                               unit_divisor=1024, desc=dest.name, leave=False)
                try:
                    while True:
                        block = resp.read(_CHUNK)
                        if not block:
                            break
                        out.write(block)
                        h.update(block)
                        received += len(block)
                        if bar is not None:
                            bar.update(len(block))
                finally:
                    if bar is not None:
                        bar.close()
        if total is not None and received != total:
            raise DownloadError(f"{url}: connection ended after {received} of {total} bytes")
        got = h.hexdigest()
        if md5 is not None and got != md5.lower():
            raise ChecksumError(
                f"{url}: MD5 of the downloaded file is {got}, expected {md5}; "
                f"the download was corrupted or the mirror serves a different file "
                f"(nothing was written to {dest})"
            )
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest


def download_from_mirrors(filename: str, mirrors, dest_dir, md5: str | None = None, *,
                          opener=None, progress: bool = True, timeout: float = 30.0) -> Path:
    """Fetch ``filename`` into ``dest_dir`` from the first mirror that works.

    Each mirror is a base URL (``"https://host/path/"``; the file name is
    appended). A mirror that fails (network or HTTP protocol error, wrong
    MD5) is skipped; if all fail, :class:`DownloadError` lists every URL and
    why it failed.
    """
    dest = Path(dest_dir) / filename
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            return download_url(url, dest, md5, opener=opener, progress=progress, timeout=timeout)
        # URLError, HTTPError, timeouts and resets are OSErrors; a broken HTTP
        # exchange (IncompleteRead, BadStatusLine) is an HTTPException.
        except (OSError, ChecksumError, http.client.HTTPException) as exc:
            failures.append(f"  {url}: {exc}")
    if not failures:
        raise DownloadError(f"cannot download {filename}: no mirrors given")
    raise DownloadError(
        f"could not download {filename} into {dest.parent}; every mirror failed:\n" + "\n".join(failures)
    )
