"""glassnet.gemm.matmul and glassnet.blas_threads: GEMMs split over glassnet's threads with the
BLAS held to one thread.

The parts depend only on the shape and the machine's cores, so the bits may not depend on the
thread count; the BLAS's own thread count must be back as it was after every call.
"""
import numpy as np
import pytest

import glassnet.threads as th
from glassnet import blas_threads, gemm

pytestmark = pytest.mark.skipif(not blas_threads.can_hold_blas(), reason="threadpoolctl finds no BLAS")


def _with_threads(n, fn):
    th.set_num_threads(n)
    try:
        return fn()
    finally:
        th.set_num_threads(1)


SHAPES = [
    ((600, 300), (300, 500), False, False),   # rows
    ((256, 300), (300, 500), False, False),   # columns (the longer side)
    ((40, 600), (600, 3000), False, False),   # few rows: columns
    ((500, 128), (128, 700), True, False),    # a transposed view
    ((128, 900), (900, 256), False, True),    # b transposed view
    ((8, 9), (9, 7), False, False),           # too small to split
]


@pytest.mark.parametrize("a_shape, b_shape, a_t, b_t", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_gemm_is_bitwise_the_same_with_any_thread_count(a_shape, b_shape, a_t, b_t, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape[::-1] if a_t else a_shape).astype(dtype)
    b = rng.standard_normal(b_shape[::-1] if b_t else b_shape).astype(dtype)
    a, b = (a.T if a_t else a), (b.T if b_t else b)
    results = [_with_threads(n, lambda: gemm.matmul(a, b)) for n in (1, 2, 3)]
    for r in results[1:]:
        assert r.dtype == dtype and np.array_equal(r, results[0])
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[0], a @ b, rtol=tol, atol=tol * np.abs(a @ b).max())


def test_split_gemm_writes_into_out_views():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((200, 150)), rng.standard_normal((150, 300))
    out = np.zeros((300, 200)).T  # a transposed view, as Linear's forward writes
    r = _with_threads(2, lambda: gemm.matmul(a, b, out=out))
    assert r is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_stacks_split_over_the_stack_bitwise():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((16, 64, 48)).astype(np.float32)
    b = rng.standard_normal((16, 48, 400)).astype(np.float32)
    one, two = (_with_threads(n, lambda: gemm.matmul(a, b)) for n in (1, 2))
    assert np.array_equal(one, two)
    np.testing.assert_allclose(one, np.matmul(a, b), rtol=1e-4, atol=1e-4)


def test_the_parts_depend_on_shape_and_cores_only(monkeypatch):
    monkeypatch.setattr(th, "default_num_threads", lambda: 4)
    assert gemm.gemm_parts(512, 512, 512) == ("columns", 4)    # a tie: column blocks
    assert gemm.gemm_parts(513, 512, 512) == ("rows", 4)
    assert gemm.gemm_parts(40, 4096, 512) == ("columns", 4)
    assert gemm.gemm_parts(65, 25088, 289) == ("columns", 4)   # a convolution's W_row · X_col
    assert gemm.gemm_parts(289, 64, 25088) == ("rows", 4)      # its dW as X_col · dOᵀ
    assert gemm.gemm_parts(4096, 200, 512) == ("rows", 4)      # few columns: rows
    assert gemm.gemm_parts(200, 4096, 512) == ("columns", 4)
    assert gemm.gemm_parts(100, 4096, 512) == ("columns", 4)
    assert gemm.gemm_parts(40, 200, 512) == ("rows", 1)        # neither side cuts in two
    assert gemm.gemm_parts(4096, 9216, 16) == ("rows", 4)      # shallow: contiguous output blocks
    assert gemm.gemm_parts(8, 8, 8) == ("rows", 1)
    monkeypatch.setattr(th, "default_num_threads", lambda: 1)
    assert gemm.gemm_parts(512, 512, 512) == ("rows", 1)


def test_the_blas_gets_its_thread_count_back():
    libs = blas_threads.blas_libraries()
    before = [lib.num_threads for lib in libs]
    with blas_threads.held_to_one_thread():
        assert all(lib.num_threads == 1 for lib in libs)
        with blas_threads.held_to_one_thread():  # nested: one hold
            assert all(lib.num_threads == 1 for lib in libs)
        assert all(lib.num_threads == 1 for lib in libs)
    assert [lib.num_threads for lib in libs] == before
    with pytest.raises(RuntimeError):
        with blas_threads.held_to_one_thread():
            raise RuntimeError("a failing GEMM")
    assert [lib.num_threads for lib in libs] == before
    _with_threads(2, lambda: gemm.matmul(np.ones((300, 300)), np.ones((300, 300))))
    assert [lib.num_threads for lib in libs] == before


def test_off_switch_and_cupy_like_arrays_are_plain_matmul():
    a, b = np.arange(12.0).reshape(3, 4), np.arange(8.0).reshape(4, 2)
    th.set_num_threads(2, hold_blas=False)
    try:
        assert np.array_equal(gemm.matmul(a, b), a @ b)
    finally:
        th.set_num_threads(1)
    ints = np.arange(6).reshape(2, 3)
    assert np.array_equal(gemm.matmul(ints, ints.T), ints @ ints.T)  # no BLAS for ints: one call


def test_mid_size_gemms_use_blas_threads_that_sleep(monkeypatch):
    """With OpenBLAS's threads sleeping right after a GEMM (OPENBLAS_THREAD_TIMEOUT small), a
    GEMM below BLAS_OWN_BELOW_FLOPS runs on the BLAS's own threads (no hold); larger ones and
    every GEMM with spinning threads are held and split."""
    from contextlib import contextmanager

    entered = []

    @contextmanager
    def spy():
        entered.append(True)
        yield

    monkeypatch.setattr(gemm, "held_to_one_thread", spy)
    mid_a, mid_b = np.ones((128, 512), np.float32), np.ones((512, 256), np.float32)
    big_a, big_b = np.ones((1024, 512), np.float32), np.ones((512, 512), np.float32)
    assert 128 * 512 * 256 < gemm.BLAS_OWN_BELOW_FLOPS <= 1024 * 512 * 512
    th.set_num_threads(2)
    try:
        monkeypatch.setattr(th, "blas_threads_spin", lambda: False)
        assert np.array_equal(gemm.matmul(mid_a, mid_b), mid_a @ mid_b) and not entered
        gemm.matmul(big_a, big_b)
        assert entered == [True]
        monkeypatch.setattr(th, "blas_threads_spin", lambda: True)
        gemm.matmul(mid_a, mid_b)
        assert entered == [True, True]
    finally:
        th.set_num_threads(1)
