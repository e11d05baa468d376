"""Writing the decoded-image cache: :func:`prepare_image_cache` (``glassnet prepare``).

See :mod:`glassnet.data.image_cache` for what the cache holds and why. Here: how it is written
so that no interruption leaves a cache that looks valid.

1. The folder is scanned (ImageFolder's rules) and each file's size and mtime recorded.
2. ``images-<token>.npy.part`` is created at its full size and each image decoded, resized
   and centre-cropped straight into its row, by ``workers`` processes (each maps the file
   itself; rows are disjoint). A file that cannot be decoded raises
   :class:`~glassnet.errors.DataFormatError` naming it, or with ``on_error="skip"`` is left out
   (the rows after it move up) and listed in the index and in one warning.
3. The array is fsynced and renamed to ``images-<token>.npy``; then ``index.json`` is written
   to a temporary name, fsynced and renamed over the old index (the one step that makes the
   new cache current); only then are the previous cache's images and any leftovers of
   interrupted runs deleted.

A prepare killed (``kill -9``) at any point before the index's rename leaves the previous
cache intact, or no index at all; Ctrl-C and errors also delete the ``.part`` file.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import struct
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, InvalidArgumentError, LimitExceededError
from ..files import fsync_dir
from .cache_rows import write_rows
from .decode import MAX_PIXELS, check_decode_args
from .image_cache import FORMAT, FORMAT_VERSION, HEADER_BYTES, INDEX_NAME, fingerprint, scan_folder
from .image_folder import IMG_EXTENSIONS, skipped_message

__all__ = ["prepare_image_cache"]


def _npy_header(shape) -> bytes:
    """A version-1.0 ``.npy`` header for uint8 ``shape``, padded to :data:`HEADER_BYTES`."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (tuple(int(d) for d in shape),)
    body = text.ljust(HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


def _check_out(out: Path) -> None:
    """``out`` must be absent, empty, or hold a glassnet cache (or its leftovers): never someone's files."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InvalidArgumentError(f"prepare: --out {out} exists and is not a folder")
    ours = ("images-", ".index.json.", INDEX_NAME)
    foreign = [p.name for p in out.iterdir() if not p.name.startswith(ours)]
    if foreign:
        raise InvalidArgumentError(f"prepare: --out {out} holds files that are not an image cache's "
                                   f"(e.g. {foreign[0]!r}); choose an empty or new folder")
    index = out / INDEX_NAME
    if index.is_file():
        try:
            ok = json.loads(index.read_text(encoding="utf-8")).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise InvalidArgumentError(f"prepare: {index} is not a glassnet image cache index; "
                                       "choose an empty or new folder")


def _default_workers(n: int) -> int:
    return max(1, min(os.cpu_count() or 1, 8, n // 64 or 1))


def prepare_image_cache(folder, out, size: int = 256, mode: str = "RGB", *, workers: int | None = None,
                        on_error: str = "raise", extensions=IMG_EXTENSIONS, fast_decode: bool = False,
                        max_pixels: int = MAX_PIXELS, progress: bool = True) -> Path:
    """Decode the image folder ``folder`` once into the cache ``out``; return ``out``.

    Args:
        folder: a class-per-subfolder image folder (:class:`~glassnet.data.ImageFolder`'s rules).
        out: the cache folder (created; an existing cache there is replaced atomically).
        size: each image's shorter side is resized to ``size``, then its centre ``size x size`` kept.
        mode: ``"RGB"`` or ``"L"``.
        workers: decoding processes (``None``: up to 8, one per CPU; ``1``: in this process).
        on_error: ``"raise"`` or ``"skip"`` (a bad file is left out and listed, one warning).
        extensions: the image file endings (case-insensitive).
        fast_decode: decode JPEGs at the reduced DCT scale whose shorter side stays >= ``size``
            (faster for photos at least twice ``size``; pixels differ slightly from a full decode).
        max_pixels: refuse images declaring more pixels, before decoding.
        progress: show a tqdm progress bar on stderr.

    Shape:
        - the cache's ``images``: (N, C, size, size) uint8, C = 3 ("RGB") or 1 ("L"), N the
          images decoded
    """
    check_decode_args("prepare_image_cache", mode, None, "auto", max_pixels)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidArgumentError(f"prepare_image_cache: size must be an int >= 1, got {size!r}")
    if on_error not in ("raise", "skip"):
        raise InvalidArgumentError(f"prepare_image_cache: on_error must be 'raise' or 'skip', got {on_error!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidArgumentError(f"prepare_image_cache: workers must be None or an int >= 1, got {workers!r}")
    source = os.path.abspath(os.path.expanduser(str(folder)))
    out = Path(out).expanduser().absolute()
    if out == Path(source) or Path(source) in out.parents:
        raise InvalidArgumentError(f"prepare_image_cache: the cache {out} may not be inside the folder {source}")
    _check_out(out)
    classes, _, samples, files = scan_folder(source, extensions)
    channels = 3 if mode == "RGB" else 1
    row = channels * size * size
    out.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out).free
    if HEADER_BYTES + row * len(samples) > free:
        raise LimitExceededError(f"prepare: the cache needs {HEADER_BYTES + row * len(samples)} bytes for "
                                 f"{len(samples)} images of {channels}x{size}x{size}, but {out} has {free} free",
                                 limit_name="disk", needed=HEADER_BYTES + row * len(samples), limit=free)
    token = secrets.token_hex(8)
    images_name = f"images-{token}.npy"
    part = out / (images_name + ".part")
    done = False
    try:
        with open(part, "wb") as f:
            f.write(_npy_header((len(samples), channels, size, size)))
            f.truncate(HEADER_BYTES + row * len(samples))
        paths = [p for p, _ in samples]
        job = dict(part=str(part), shape=(len(samples), channels, size, size), mode=mode, size=size,
                   decode_size=size if fast_decode else None, max_pixels=max_pixels)
        n_workers = workers if workers is not None else _default_workers(len(paths))
        reasons = write_rows(paths, job, n_workers, progress)
        bad = [i for i, why in enumerate(reasons) if why is not None]
        if bad and on_error == "raise":
            raise DataFormatError(f"{paths[bad[0]]}: {reasons[bad[0]]}" + (
                f" ({len(bad) - 1} more files cannot be decoded either; pass on_error='skip' / --skip-bad "
                "to leave them out)" if len(bad) > 1 else " (pass on_error='skip' / --skip-bad to leave it out)"))
        good = [i for i, why in enumerate(reasons) if why is None]
        if not good:
            raise DataFormatError(f"prepare: none of the {len(paths)} images in {source} could be decoded")
        _compact(part, good, row, len(samples), (len(good), channels, size, size))
        os.replace(part, out / images_name)
        fsync_dir(out)
        skipped = [[files[i][0], reasons[i]] for i in bad]
        index = {
            "format": FORMAT, "version": FORMAT_VERSION, "images": images_name,
            "shape": [len(good), channels, size, size], "size": size, "mode": mode, "fast_decode": bool(fast_decode),
            "resize": "shorter side to size (bilinear, antialiased), then the centre size x size",
            "source": source, "extensions": [e.lower() for e in extensions], "classes": list(classes),
            "samples": [[files[i][0], samples[i][1]] for i in good], "skipped": skipped,
            "files": files, "fingerprint": fingerprint(classes, files),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        tmp_index = out / f".index.json.{token}"
        with open(tmp_index, "w", encoding="utf-8") as f:
            json.dump(index, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_index, out / INDEX_NAME)
        fsync_dir(out)
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                part.unlink()
            with contextlib.suppress(OSError):
                (out / images_name).unlink()
    for p in out.iterdir():  # the previous cache's images and leftovers of interrupted runs
        if p.name != images_name and p.name != INDEX_NAME and p.name.startswith(("images-", ".index.json.")):
            with contextlib.suppress(OSError):
                p.unlink()
    if skipped:
        warnings.warn(skipped_message(f"prepare_image_cache({source})", [tuple(s) for s in skipped], len(paths)),
                      stacklevel=2)
    return out


def _compact(part: Path, good, row: int, n: int, shape) -> None:
    """Move the decoded rows up over the skipped ones, fix the header's shape, truncate, fsync."""
    with open(part, "r+b") as f:
        if len(good) < n:
            mm = np.memmap(f, dtype=np.uint8, mode="r+", offset=HEADER_BYTES, shape=(n, row))
            for k, i in enumerate(good):
                if k != i:
                    mm[k] = mm[i]
            mm.flush()
            del mm
            f.seek(0)
            f.write(_npy_header(shape))
            f.truncate(HEADER_BYTES + row * len(good))
        f.flush()
        os.fsync(f.fileno())
