"""Decoding a folder's images into the rows of a cache's array, in parallel (for :mod:`.cache_prepare`).

Each task is a chunk of ``(row, path)`` pairs; whoever runs it decodes each path
(:func:`~glassnet.data.decode.decode_image`), resizes its shorter side to ``size`` and keeps the
centre ``size x size`` (:class:`~glassnet.data.transforms.Resize` and
:class:`~glassnet.data.transforms.CenterCrop`, so a row equals what those transforms give on
the decoded image), and writes it into its row of the memory-mapped ``.part`` file. Rows are
disjoint, so the result does not depend on the number of workers or their order.

``workers > 1`` runs the chunks in a :class:`multiprocessing.pool.Pool` of processes (forked
on Linux), not threads: Pillow and simplejpeg release the GIL while they decode and resize,
but each image also runs Python and NumPy steps between those calls (the transforms' array
handling, the row copy), on which threads would queue. Only ``(row, path)`` pairs and failure
reasons travel through the pipes; the pixels go straight into the shared file. The workers
ignore Ctrl-C (the main process terminates them) and, on Linux, die with the main process
(``PR_SET_PDEATHSIG``), so neither Ctrl-C nor ``kill -9`` leaves one running.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys

import numpy as np

from ..errors import DataFormatError
from .decode import decode_image
from .transforms import CenterCrop, Resize

__all__ = ["write_rows", "CHUNK"]

#: images per task
CHUNK = 32
_STATE = {}


def _open(job):
    from .image_cache import HEADER_BYTES

    _STATE["job"] = job
    _STATE["mm"] = np.memmap(job["part"], dtype=np.uint8, mode="r+", offset=HEADER_BYTES, shape=job["shape"])
    _STATE["resize"] = Resize(job["size"])
    _STATE["crop"] = CenterCrop(job["size"])


def _worker_init(job, parent):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    if os.getppid() != parent:  # the main process died before prctl took effect
        os._exit(1)
    _open(job)


def _run(chunk):
    """``[(row, reason or None), ...]`` after writing the chunk's rows."""
    job, mm = _STATE["job"], _STATE["mm"]
    resize, crop = _STATE["resize"], _STATE["crop"]
    out = []
    for row, path in chunk:
        try:
            x = decode_image(path, job["mode"], decode_size=job["decode_size"], max_pixels=job["max_pixels"])
            mm[row] = crop(resize(x))
            out.append((row, None))
        except DataFormatError as exc:
            text = str(exc)
            out.append((row, text[len(path) + 2:] if text.startswith(path + ": ") else text))
    return out


def write_rows(paths, job: dict, workers: int, progress: bool = True) -> list:
    """Decode ``paths[i]`` into row ``i`` of ``job["part"]``; return each row's failure reason (or None).

    ``job``: ``part`` (the file), ``shape`` (N, C, size, size), ``mode``, ``size``,
    ``decode_size``, ``max_pixels``.
    """
    from tqdm.auto import tqdm

    reasons = [None] * len(paths)
    chunks = [[(i, paths[i]) for i in range(a, min(a + CHUNK, len(paths)))] for a in range(0, len(paths), CHUNK)]
    if workers <= 1:
        _open(job)
        try:
            with tqdm(total=len(paths), desc="prepare", unit="img", disable=not progress, dynamic_ncols=True) as bar:
                for chunk in chunks:
                    for row, why in _run(chunk):
                        reasons[row] = why
                    bar.update(len(chunk))
            _STATE["mm"].flush()
        finally:
            _STATE.clear()
        return reasons
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = ctx.Pool(workers, initializer=_worker_init, initargs=(job, os.getpid()))  # before tqdm's thread
    try:
        with tqdm(total=len(paths), desc="prepare", unit="img", disable=not progress, dynamic_ncols=True) as bar:
            for result in pool.imap_unordered(_run, chunks):
                for row, why in result:
                    reasons[row] = why
                bar.update(len(result))
        pool.close()
        pool.join()
    finally:
        pool.terminate()
        pool.join()
    return reasons
