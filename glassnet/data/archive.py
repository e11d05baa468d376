"""Extracting a downloaded ``.tar.gz`` safely: only the expected folder, only regular files,
nothing outside the destination, bounded sizes, and no half-extracted folder left behind.

    extract_tar("cifar-10-python.tar.gz", root, "cifar-10-batches-py")

The members are listed first and checked: at most ``max_members`` of them; each under
``folder/`` (others are ignored); each a regular file or a folder (links, devices and FIFOs
refused); no absolute path, no ``..``; their declared sizes summing to at most ``max_bytes``.
Then they are extracted with :mod:`tarfile`'s ``"data"`` filter into a temporary folder beside
the destination, and each file is moved into ``root/folder/`` with ``os.replace`` only once all
were written; an interrupted extraction leaves only the temporary folder, which the next call
removes.
"""
from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..errors import DataFormatError, LimitExceededError

__all__ = ["extract_tar", "DEFAULT_MAX_MEMBERS", "DEFAULT_MAX_EXTRACT_BYTES"]

#: the most members an archive may list
DEFAULT_MAX_MEMBERS = 10_000
#: the most bytes extracted by default (4 GiB)
DEFAULT_MAX_EXTRACT_BYTES = 4 << 30


def _members(tf, archive, folder, max_members, max_bytes):
    chosen, total = [], 0
    for k, m in enumerate(tf):
        if k >= max_members:
            raise LimitExceededError(f"{archive}: the archive holds more than {max_members} members",
                                     limit_name="max_members", limit=max_members)
        name = m.name
        norm = posixpath.normpath(name)
        if name.startswith("/") or norm == ".." or norm.startswith("../") or "\x00" in name:
            raise DataFormatError(f"{archive}: the member {name[:200]!r} points outside the archive's folder")
        if norm != folder and not norm.startswith(folder + "/"):
            continue
        if not (m.isfile() or m.isdir()):
            raise DataFormatError(f"{archive}: the member {name[:200]!r} is not a regular file or folder "
                                  "(links and devices are refused)")
        total += max(m.size, 0)
        if total > max_bytes:
            raise LimitExceededError(f"{archive}: the archive's files sum to more than max_bytes={max_bytes} bytes",
                                     limit_name="max_bytes", needed=total, limit=max_bytes)
        chosen.append(m)
    if not any(m.isfile() for m in chosen):
        raise DataFormatError(f"{archive}: the archive has no files under {folder}/")
    return chosen


def extract_tar(archive, root, folder: str, *, max_members: int = DEFAULT_MAX_MEMBERS,
                max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES) -> Path:
    """Extract the members under ``folder/`` of the tar archive ``archive`` into ``root/folder``;
    return that folder. See the module docstring for the checks; a bad archive raises
    :class:`~glassnet.errors.DataFormatError` (or :class:`LimitExceededError`) naming it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{folder}.extract-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{folder}.extract-"))
    try:
        try:
            with tarfile.open(archive, "r:*") as tf:
                members = _members(tf, archive, folder, max_members, max_bytes)
                tf.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, DataFormatError):
                raise
            raise DataFormatError(f"{archive}: cannot extract the archive: {type(exc).__name__}: {exc}") from exc
        dest = root / folder
        dest.mkdir(parents=True, exist_ok=True)
        for m in members:
            if m.isfile():
                target = dest / posixpath.relpath(posixpath.normpath(m.name), folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / posixpath.normpath(m.name), target)
        return dest
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
