"""``matmul``: every GEMM of glassnet's kernels, split over glassnet's own threads.

When glassnet owns the cores (:func:`glassnet.threads.holds_blas`, the default where
threadpoolctl finds the BLAS), a GEMM runs with the BLAS held to one thread
(:mod:`glassnet.blas_threads`) and, when large, as a fixed number of parts — blocks of the
output's rows or of its columns (along its longer side) — spread over the kernel threads. The number
of parts depends only on the shape and on :func:`~glassnet.threads.default_num_threads` (the
machine's cores, or ``OMP_NUM_THREADS``, shared among MPI ranks), never on
:func:`~glassnet.threads.set_num_threads`, and each part is one BLAS call on one thread, so
the result is bitwise the same with any thread count. A stack of matrices (Winograd's t²
products) is split over the stack: each product is its own BLAS call either way.

One exception, where the process asked OpenBLAS's threads to sleep right after each GEMM
(``OPENBLAS_THREAD_TIMEOUT`` < 20, as the ``glassnet`` command sets it): mid-size GEMMs
(fewer than :data:`BLAS_OWN_BELOW_FLOPS` multiply-adds, a fully connected layer's) run on the
BLAS's own threads, whose shared packing beat glassnet's parts there (128×3136·3136×128: 1.7
against 2.0–5.1 ms on 2 cores); their threads then sleep at once and cost the next pass nothing.
Their bits depend on the BLAS's thread count, which glassnet never changes — still not on
glassnet's.

Otherwise (``hold_blas=False``, CuPy arrays) it is plain ``xp.matmul``.
"""
from __future__ import annotations

import numpy as np

from . import threads
from .backend import get_array_module
from .blas_threads import held_to_one_thread

__all__ = ["matmul", "matmul_in_parts", "gemm_parts", "MIN_SPLIT_FLOPS", "MIN_PART_ROWS", "MIN_PART_COLUMNS",
           "OUTPUT_BOUND_MAX_K", "BLAS_OWN_BELOW_FLOPS"]

#: a GEMM with fewer multiply-adds (M·N·K) than this runs as one part
MIN_SPLIT_FLOPS = 1 << 21
#: a row block has at least this many rows, a column block at least this many columns
MIN_PART_ROWS = 32
MIN_PART_COLUMNS = 128
#: a GEMM with a shorter inner dimension mostly writes its output: cut into row blocks, each
#: part's output one contiguous run (AlexNet's fc6 dW, 4096×16·16×9216: 16.4 against 21.1 ms)
OUTPUT_BOUND_MAX_K = 32
#: with non-spinning BLAS threads, 2-D GEMMs with fewer multiply-adds run on the BLAS's threads
BLAS_OWN_BELOW_FLOPS = 1 << 27
_EVERYTHING = 1 << 62  # parallel_for's element count: always worth splitting


def gemm_parts(m: int, n: int, k: int) -> tuple[str, int]:
    """How an (m×k)·(k×n) GEMM is cut: ``("rows", p)`` or ``("columns", p)`` blocks of the
    output, ``p`` ≤ :func:`~glassnet.threads.default_num_threads` (1: not cut). A function of the
    shape and of the process's environment and machine only.

    Every part reads the whole of one operand: row blocks each read all of B (k×n), column
    blocks all of A (m×k). So the cut goes along the output's longer side (rows when m > n),
    and the smaller operand is the one read again: a convolution's W_row · X_col (65 × 289 ·
    289 × 25 088, the SmallCNN's conv2) takes 6.3 ms in column blocks on 2 cores against 7.5
    in rows, its dL/dW (X_col · dOᵀ, 289 × 64 output) 6.4 in row blocks against 7.0
    (``benchmarks/bench_gemm_parts.py``, BENCHMARKS.md). A side too short for two blocks
    of :data:`MIN_PART_ROWS` / :data:`MIN_PART_COLUMNS` is not cut. A shallow GEMM (k below
    :data:`OUTPUT_BOUND_MAX_K`) mostly writes its output and is cut into row blocks, whose
    outputs are contiguous.

    Shape: m, n, k: ints.
    """
    cores = threads.default_num_threads()
    if cores < 2 or m * n * k < MIN_SPLIT_FLOPS:
        return "rows", 1
    rows_ok, columns_ok = m >= 2 * MIN_PART_ROWS, n >= 2 * MIN_PART_COLUMNS
    if rows_ok and (m > n or not columns_ok or k < OUTPUT_BOUND_MAX_K):
        return "rows", min(cores, m // MIN_PART_ROWS)
    if columns_ok:
        return "columns", min(cores, n // MIN_PART_COLUMNS)
    return "rows", 1


def _matmul_2d(a, b, out):
    m, k = a.shape
    n = b.shape[1]
    axis, parts = gemm_parts(m, n, k)
    if parts == 1:
        np.matmul(a, b, out=out)
        return
    matmul_in_parts(a, b, out, axis, parts)


def matmul_in_parts(a, b, out, axis: str, parts: int) -> None:
    """``out = a @ b`` as ``parts`` blocks of the output's ``axis`` (``"rows"`` or ``"columns"``),
    one ``np.matmul`` each, spread over the kernel threads (the caller holds the BLAS to one
    thread; ``benchmarks/bench_gemm_parts.py`` times either cut).

    Shape: a (M, K), b (K, N), out (M, N).
    """
    m, n = out.shape
    cuts = threads.even_bounds(m if axis == "rows" else n, parts)

    def run(lo, hi):
        for p in range(lo, hi):
            s = slice(cuts[p], cuts[p + 1])
            if axis == "rows":
                np.matmul(a[s], b, out=out[s])
            else:
                np.matmul(a, b[:, s], out=out[:, s])

    threads.parallel_for(parts, run, _EVERYTHING)


def _matmul_stack(a, b, out):
    def run(lo, hi):
        np.matmul(a[lo:hi], b[lo:hi], out=out[lo:hi])

    threads.parallel_for(out.shape[0], run, _EVERYTHING)


def matmul(a, b, out=None):
    """``a @ b`` (into ``out`` when given), split over the kernel threads with the BLAS on one.

    Shape: (M, K) @ (K, N) -> (M, N); stacks (B, M, K) @ (B, K, N) -> (B, M, N) are split
    over B; other shapes (broadcasting, 1-D) run as one ``matmul``.
    """
    xp = get_array_module(a)
    if xp is not np or not threads.holds_blas():
        return xp.matmul(a, b) if out is None else xp.matmul(a, b, out=out)
    two_d = a.ndim == 2 and b.ndim == 2
    if two_d and a.shape[0] * a.shape[1] * b.shape[1] < BLAS_OWN_BELOW_FLOPS and not threads.blas_threads_spin():
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    stack = a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0] and a.shape[0] > 1
    with held_to_one_thread():
        if not (two_d or stack) or a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
            return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
        if out is None:
            shape = (a.shape[0], b.shape[1]) if two_d else (a.shape[0], a.shape[1], b.shape[2])
            out = np.empty(shape, dtype=np.result_type(a, b))
        (_matmul_2d if two_d else _matmul_stack)(a, b, out)
    return out
