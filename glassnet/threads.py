"""Opt-in worker threads for the memory-bound passes of the CPU kernels.

BLAS already runs every GEMM on all cores, but NumPy runs element-wise
loops and copies on one. With :func:`set_num_threads` ``(n > 1)`` the kernels
split their large memory-bound passes — im2col and col2im, the Winograd
transforms, max pooling, ReLU, batch norm (by channel), residual adds and
the SGD/Adam updates (by slice) — into ``n`` contiguous parts, run by a pool
of threads (NumPy releases the GIL inside those loops). Each part writes its
own slice of the output, so results are bitwise the same as with one thread.

Off by default: importing glassnet starts no threads and changes no
setting. It pays only when BLAS's own threads go to sleep after a GEMM.
OpenBLAS keeps them spinning for about 0.1 s by default, holding the very
cores the workers need; start the process with ``OPENBLAS_THREAD_TIMEOUT=4``
(it is read when NumPy loads, so set it before ``import numpy``). The
``glassnet`` command and the benchmarks do both; :func:`blas_threads_spin`
tells whether the environment asks OpenBLAS to spin.

CuPy arrays are never split (the GPU is parallel already).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .backend import is_channel_major
from .errors import InvalidArgumentError

__all__ = ["set_num_threads", "get_num_threads", "parallel_for", "memory_order_flat",
           "elementwise", "add", "blas_threads_spin", "MIN_PARALLEL_ELEMENTS"]

MIN_PARALLEL_ELEMENTS = 1 << 18  # below this (1 MiB of float32) a pass runs on the calling thread
_num_threads = 1
_pool: ThreadPoolExecutor | None = None


def set_num_threads(n: int | None) -> int:
    """Use ``n`` threads (the calling one plus ``n − 1`` workers) for the
    kernels' memory-bound passes; ``None`` means ``os.cpu_count()``, 1 turns
    the splitting off. Returns the number now in use."""
    global _num_threads, _pool
    n = (os.cpu_count() or 1) if n is None else int(n)
    if n < 1:
        raise InvalidArgumentError(f"set_num_threads: expected a positive number of threads, got {n}")
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    if n > 1:
        _pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="glassnet")
        _register_fork_reset()
    _num_threads = n
    return n


_fork_reset_registered = False


def _register_fork_reset() -> None:
    """A forked child has none of the parent's worker threads: it starts
    with splitting off (1 thread) instead of waiting on a pool that is gone."""
    global _fork_reset_registered
    if not _fork_reset_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_reset_in_child)
        _fork_reset_registered = True


def _reset_in_child() -> None:
    global _num_threads, _pool
    _num_threads, _pool = 1, None


def get_num_threads() -> int:
    """Threads the kernels split memory-bound passes over (1: not split)."""
    return _num_threads


def blas_threads_spin() -> bool:
    """Whether OpenBLAS's threads will busy-wait after a GEMM (the default
    unless ``OPENBLAS_THREAD_TIMEOUT`` was set to a small value, < 20)."""
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT") or os.environ.get("GOTO_THREAD_TIMEOUT")
    try:
        return value is None or int(value) >= 20
    except ValueError:
        return True


def parallel_for(n: int, work, elements: int, xp=np) -> None:
    """Call ``work(lo, hi)`` over ``range(n)`` cut into contiguous ranges, one
    per thread, the calling thread taking the first; plain ``work(0, n)``
    when splitting is off, the pass touches fewer than
    :data:`MIN_PARALLEL_ELEMENTS` ``elements``, or the arrays belong to
    another module ``xp`` than NumPy (CuPy). The ranges must write disjoint
    memory. Exceptions from any range are re-raised."""
    parts = min(_num_threads, n)
    if parts < 2 or elements < MIN_PARALLEL_ELEMENTS or xp is not np:
        work(0, n)
        return
    bounds = [n * i // parts for i in range(parts + 1)]
    futures = [_pool.submit(work, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
    try:
        work(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()


def memory_order_flat(a):
    """``a`` as a 1-D view in memory order, or None when ``a`` is not one
    dense block (C-contiguous, or channel-major: an (N, C, …) view of a
    C-contiguous (C, N, …) array, as convolutions return)."""
    if not isinstance(a, np.ndarray):
        return None
    if a.flags.c_contiguous:
        return a.reshape(-1)
    if is_channel_major(a):
        return a.swapaxes(0, 1).reshape(-1)
    return None


def _same_layout(arrays):
    first = arrays[0]
    return all(a.shape == first.shape and a.strides == first.strides for a in arrays[1:])


def elementwise(fn, out, *inputs) -> None:
    """``fn(*inputs, out=out)`` for a ufunc-like ``fn`` (NumPy or CuPy), split
    over the threads along memory order when ``out`` and every input are
    NumPy arrays that are dense blocks of one layout (otherwise one call).
    ``inputs`` may include scalars."""
    arrays = [out] + [a for a in inputs if isinstance(a, np.ndarray) and a.ndim]
    flats = [memory_order_flat(a) for a in arrays]
    if _num_threads < 2 or any(f is None for f in flats) or not _same_layout(arrays):
        fn(*inputs, out=out)
        return
    flat_of = {id(a): f for a, f in zip(arrays, flats)}
    flat_out = flat_of[id(out)]
    flat_in = [flat_of.get(id(a), a) for a in inputs]

    def part(lo, hi):
        fn(*[f[lo:hi] if isinstance(f, np.ndarray) and f.ndim else f for f in flat_in], out=flat_out[lo:hi])

    parallel_for(flat_out.size, part, flat_out.size)


def add(a, b):
    """``a + b``; for two large NumPy arrays of one shape, dtype and layout
    (a residual connection, two gradients meeting) split over the threads."""
    if (_num_threads < 2 or not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray)
            or a.shape != b.shape or a.dtype != b.dtype or a.size < MIN_PARALLEL_ELEMENTS):
        return a + b
    out = np.empty_like(a)
    elementwise(np.add, out, a, b)
    return out
