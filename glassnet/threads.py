"""The kernels' own threads: memory-bound passes and GEMMs split over the cores.

BLAS runs GEMMs on all cores, but NumPy runs element-wise loops and copies on
one. glassnet splits its large memory-bound passes — im2col and col2im, the
Winograd transforms, max pooling, ReLU, batch norm (by channel), residual adds
and the SGD/Adam updates (by slice) — into contiguous parts run by a pool of
threads (NumPy releases the GIL inside those loops). Each part writes its own
slice of the output, so results are bitwise the same with any thread count.

By default glassnet owns the cores (:func:`holds_blas`): inside its kernels the
BLAS library is held to one thread (:mod:`glassnet.blas_threads`, through
threadpoolctl) and glassnet splits each large GEMM into a fixed number of parts
on its own threads (:mod:`glassnet.gemm`). Then no BLAS thread spins after a
GEMM against the next pass (OpenBLAS keeps its threads busy-waiting for ~0.1 s
by default), and no environment variable is needed. The number of parts
depends only on the GEMM's shape and the machine's cores, never on the thread
count, so the bits stay the same with any :func:`set_num_threads`.

Nothing happens at import: the thread count is chosen at the first kernel call
that asks for it (:func:`default_num_threads`: ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` if set, else the usable cores, shared among the MPI
ranks on the machine) and the worker threads start then. Without threadpoolctl the
default is the old one: one kernel thread, GEMMs on BLAS's own threads.

The off switch, ``set_num_threads(1, hold_blas=False)``, is that old default:
nothing split, the BLAS left alone. ``hold_blas=False`` with more threads splits
the passes but leaves GEMMs to BLAS's threads; that pays only when they sleep
right after a GEMM (start the process with ``OPENBLAS_THREAD_TIMEOUT=4``, as the
``glassnet`` command does; :func:`blas_threads_spin` tells).

CuPy arrays are never split (the GPU is parallel already).
"""
from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .backend import is_channel_major
from .errors import InvalidArgumentError

__all__ = ["set_num_threads", "get_num_threads", "default_num_threads", "holds_blas", "usable_cores", "parallel_for",
           "even_bounds", "memory_order_flat", "elementwise", "add", "blas_threads_spin", "MIN_PARALLEL_ELEMENTS"]

MIN_PARALLEL_ELEMENTS = 1 << 18  # below this (1 MiB of float32) a pass runs on the calling thread
_num_threads: int | None = None  # None: not chosen yet (the automatic default, resolved at first use)
_hold_blas = False
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _first_positive_int(names) -> int | None:
    """The first of the environment variables ``names`` set to a positive int, else None."""
    for name in names:
        try:
            n = int(os.environ.get(name, ""))
        except ValueError:
            continue
        if n >= 1:
            return n
    return None


#: a thread count a launcher that shares the cores between processes sets
THREAD_COUNT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: how many processes an MPI launcher started on this machine (Open MPI's, MPICH's): each rank of
#: a data-parallel job takes its share of the cores, not all of them
LOCAL_RANKS_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")


def default_num_threads() -> int:
    """The automatic thread count: ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` when set, else
    the usable cores divided among the MPI ranks on this machine (at least 1)."""
    ranks = _first_positive_int(LOCAL_RANKS_VARIABLES) or 1
    return _first_positive_int(THREAD_COUNT_VARIABLES) or max(1, usable_cores() // ranks)


def _resolve() -> int:
    """The thread count in use, choosing the automatic default on first use."""
    global _num_threads, _hold_blas
    if _num_threads is None:
        from .blas_threads import can_hold_blas

        if can_hold_blas():
            _num_threads, _hold_blas = default_num_threads(), True
        else:
            _num_threads, _hold_blas = 1, False
    return _num_threads


def set_num_threads(n: int | None, *, hold_blas: bool | None = None) -> int:
    """Use ``n`` threads (the calling one plus ``n − 1`` workers, started at the next
    kernel call) for the kernels' passes and GEMMs; ``None`` means the usable cores.

    ``hold_blas``: hold the BLAS to one thread inside glassnet's kernels and split GEMMs
    over glassnet's threads (default: where threadpoolctl can reach the BLAS). ``False``
    leaves GEMMs to the BLAS's own threads; ``set_num_threads(1, hold_blas=False)`` turns
    every split off. Returns the number now in use.
    """
    global _num_threads, _hold_blas
    from .blas_threads import can_hold_blas

    n = usable_cores() if n is None else int(n)
    if n < 1:
        raise InvalidArgumentError(f"set_num_threads: expected a positive number of threads, got {n}")
    if hold_blas and not can_hold_blas():
        raise InvalidArgumentError("set_num_threads: hold_blas=True needs threadpoolctl (pip install threadpoolctl) "
                                   "and a BLAS it can control")
    _shutdown_pool()
    _num_threads = n
    _hold_blas = can_hold_blas() if hold_blas is None else bool(hold_blas)
    return n


def holds_blas() -> bool:
    """Whether glassnet holds the BLAS to one thread in its kernels and splits GEMMs itself."""
    _resolve()
    return _hold_blas


def _shutdown_pool() -> None:
    global _pool, _pool_size
    if _pool is not None:
        _pool.shutdown(wait=True)
    _pool, _pool_size = None, 0


def _worker_pool() -> ThreadPoolExecutor:
    """The ``n − 1`` worker threads, started on first use."""
    global _pool, _pool_size
    n = _resolve()
    if _pool is None or _pool_size != n - 1:
        _shutdown_pool()
        _pool, _pool_size = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="glassnet"), n - 1
        _register_fork_reset()
    return _pool


_fork_reset_registered = False


def _register_fork_reset() -> None:
    """A forked child has none of the parent's worker threads: it starts
    with splitting off (1 thread) instead of waiting on a pool that is gone."""
    global _fork_reset_registered
    if not _fork_reset_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_reset_in_child)
        _fork_reset_registered = True


def _reset_in_child() -> None:
    global _num_threads, _pool, _pool_size
    _num_threads, _pool, _pool_size = 1, None, 0


def get_num_threads() -> int:
    """Threads the kernels split their passes and GEMMs over (1: not split); choosing
    the automatic default if nothing chose yet (no thread is started)."""
    return _resolve()


@functools.cache
def blas_threads_spin() -> bool:
    """Whether OpenBLAS's threads will busy-wait after a GEMM (the default
    unless ``OPENBLAS_THREAD_TIMEOUT`` was set to a small value, < 20). OpenBLAS
    reads the variable once, when NumPy loads it, so the answer is read once too
    (every GEMM asks, :mod:`glassnet.gemm`)."""
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT") or os.environ.get("GOTO_THREAD_TIMEOUT")
    try:
        return value is None or int(value) >= 20
    except ValueError:
        return True


def even_bounds(size: int, parts: int) -> list[int]:
    """``parts + 1`` cut points ``⌊size·i / parts⌋`` splitting ``range(size)`` into ``parts``
    contiguous ranges whose lengths differ by at most one."""
    return [size * i // parts for i in range(parts + 1)]


def parallel_for(n: int, work, elements: int, xp=np) -> None:
    """Call ``work(lo, hi)`` over ``range(n)`` cut into contiguous ranges, one
    per thread, the calling thread taking the first; plain ``work(0, n)``
    when splitting is off, the pass touches fewer than
    :data:`MIN_PARALLEL_ELEMENTS` ``elements``, or the arrays belong to
    another module ``xp`` than NumPy (CuPy). The ranges must write disjoint
    memory. Exceptions from any range are re-raised."""
    parts = min(_resolve(), n)
    if parts < 2 or elements < MIN_PARALLEL_ELEMENTS or xp is not np:
        work(0, n)
        return
    pool = _worker_pool()
    bounds = even_bounds(n, parts)
    futures = [pool.submit(work, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
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
    if _resolve() < 2 or any(f is None for f in flats) or not _same_layout(arrays):
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
    if (_resolve() < 2 or not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray)
            or a.shape != b.shape or a.dtype != b.dtype or a.size < MIN_PARALLEL_ELEMENTS):
        return a + b
    out = np.empty_like(a)
    elementwise(np.add, out, a, b)
    return out
