"""Holding the BLAS library to one thread while glassnet's own threads run its GEMMs.

OpenBLAS (NumPy's BLAS) runs every GEMM on all cores and then keeps its threads spinning for
about 0.1 s (``OPENBLAS_THREAD_TIMEOUT``, read once when NumPy loads). A training step
alternates GEMMs with memory-bound passes that glassnet splits over its own threads
(:mod:`glassnet.threads`): right after each GEMM those passes would fight the spinning BLAS
threads for the cores. The remedy that needs no environment variable: inside glassnet's
kernels the BLAS runs on one thread — its other threads never wake, so they never spin — and
glassnet splits each large GEMM into parts on its own threads instead (:mod:`glassnet.gemm`).
The user's own NumPy calls outside glassnet keep the BLAS's thread count: it is set to one on
entering :func:`held_to_one_thread` and restored on leaving it (a few microseconds each way,
through threadpoolctl's handle on the library, found once).

Nothing happens at import: the library is looked up at the first GEMM that needs it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["blas_libraries", "can_hold_blas", "held_to_one_thread"]

_lock = threading.Lock()
_found: tuple | None = None
_depth = 0
_saved: list = []


def blas_libraries() -> tuple:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (found once;
    empty when threadpoolctl is not installed or finds none)."""
    global _found
    if _found is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _found = ()
        else:
            _found = tuple(c for c in ThreadpoolController().lib_controllers if c.user_api == "blas")
    return _found


def can_hold_blas() -> bool:
    """Whether glassnet can set the BLAS's thread count at run time (threadpoolctl found it)."""
    return bool(blas_libraries())


@contextmanager
def held_to_one_thread():
    """Inside the block every BLAS library runs on one thread; on leaving the outermost block
    each gets back the thread count it had. Nested and concurrent blocks share one hold."""
    global _depth, _saved
    libraries = blas_libraries()
    with _lock:
        if _depth == 0:
            _saved = [lib.num_threads for lib in libraries]
            for lib, n in zip(libraries, _saved):
                if n != 1:
                    lib.set_num_threads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, n in zip(libraries, _saved):
                    if n != 1:
                        lib.set_num_threads(n)
