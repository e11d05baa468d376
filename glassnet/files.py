"""Writing files so that a crash never leaves half of one: the one mechanism every writer uses.

:func:`atomic_write` writes to a temporary file in the same folder
(``.NAME.<random>.tmp``), flushes and fsyncs it, renames it over ``NAME`` with
one ``os.replace`` and fsyncs the folder, so the rename itself survives a
power cut. An error or ``KeyboardInterrupt`` during the write removes the
temporary and leaves any previous ``NAME`` untouched; a ``kill -9`` can leave
only the temporary, never a torn ``NAME``.

    atomic_write("runs/x/history.json", lambda f: f.write(text.encode()))
    atomic_write_text("runs/x/history.json", text)
"""
from __future__ import annotations

import os
import tempfile

__all__ = ["atomic_write", "atomic_write_text", "fsync_dir"]


def fsync_dir(folder) -> None:
    """Make a rename in ``folder`` durable, where the platform allows it (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_mode(path) -> int:
    """Mode for the new file: the old file's, else what ``open()`` would give."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path, write) -> None:
    """Call ``write(f)`` on a binary temporary file, then move it over ``path`` atomically (see the module)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(folder)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
