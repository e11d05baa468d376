"""glassnet.threads: the kernels' own threads (memory-bound passes and GEMMs split over the cores).

Every split pass writes disjoint slices and every GEMM is cut into a number of parts that
does not depend on the thread count, so results with several threads must be bitwise equal
to one thread's, for NCHW and channel-major inputs.
"""
import threading

import numpy as np
import pytest

import glassnet.threads as th
from glassnet.ops import activations as A
from glassnet.ops import conv as C
from glassnet.ops import pool as P


@pytest.fixture
def two_threads():
    th.set_num_threads(2)
    yield
    th.set_num_threads(1)


def channel_major(a):
    """Same values, stored as (C, N, H, W) like a convolution output."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def test_validated():
    th.set_num_threads(1)
    with pytest.raises(ValueError, match="positive"):
        th.set_num_threads(0)
    assert th.get_num_threads() == 1


def test_import_starts_no_thread_and_the_default_is_chosen_at_first_use():
    """``import glassnet`` starts no thread, loads no threadpoolctl and changes no BLAS setting;
    the default (every usable core, or OMP_NUM_THREADS; BLAS held to one thread inside the
    kernels) is chosen at the first kernel call, the worker threads start then, and the
    BLAS's own thread count is back as it was after each GEMM."""
    import os
    import subprocess
    import sys

    probe = """
import sys, threading
import glassnet, numpy as np
assert threading.active_count() == 1, threading.enumerate()
assert 'threadpoolctl' not in sys.modules
from threadpoolctl import ThreadpoolController
blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == 'blas']
before = [c.num_threads for c in blas]
import glassnet.threads as th
import glassnet.nn as nn
x = glassnet.randn(64, 16, 40, 40)
y = nn.ReLU()(nn.Conv2d(16, 32, 3)(x))
print(th.get_num_threads(), th.holds_blas(), threading.active_count() > 1, [c.num_threads for c in blas] == before)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    cores = th.usable_cores()
    assert out.stdout.split() == [str(cores), "True", str(cores > 1), "True"]
    env["OMP_NUM_THREADS"] = "3"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[:2] == ["3", "True"]


def test_default_count_shares_the_cores_among_mpi_ranks(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(th, "usable_cores", lambda: 8)
    assert th.default_num_threads() == 8
    monkeypatch.setenv("MPI_LOCALNRANKS", "3")  # MPICH: 3 ranks here
    assert th.default_num_threads() == 2
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "16")  # more ranks than cores: one each
    assert th.default_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # an explicit count wins
    assert th.default_num_threads() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert th.default_num_threads() == 1


def test_the_off_switch_leaves_gemms_to_blas():
    th.set_num_threads(1, hold_blas=False)
    try:
        assert th.get_num_threads() == 1 and not th.holds_blas()
    finally:
        th.set_num_threads(1)
    assert th.holds_blas()


def test_parallel_for_covers_each_index_once(two_threads):
    n = 1001
    seen = np.zeros(n, dtype=np.int64)
    callers = set()

    def work(lo, hi):
        callers.add(threading.get_ident())
        seen[lo:hi] += 1

    th.parallel_for(n, work, elements=th.MIN_PARALLEL_ELEMENTS)
    assert (seen == 1).all()
    assert len(callers) == 2  # the calling thread and one worker


def test_parallel_for_small_work_stays_on_the_calling_thread(two_threads):
    callers = []
    th.parallel_for(10, lambda lo, hi: callers.append((threading.get_ident(), lo, hi)), elements=10)
    assert callers == [(threading.get_ident(), 0, 10)]


def test_parallel_for_reraises_a_workers_error(two_threads):
    def work(lo, hi):
        if lo > 0:
            raise RuntimeError("boom in the second range")

    with pytest.raises(RuntimeError, match="second range"):
        th.parallel_for(100, work, elements=th.MIN_PARALLEL_ELEMENTS)


def test_memory_order_flat():
    a = np.arange(24.0).reshape(2, 3, 2, 2)
    assert np.shares_memory(th.memory_order_flat(a), a)
    cm = channel_major(a)
    flat = th.memory_order_flat(cm)
    assert np.shares_memory(flat, cm) and np.array_equal(flat, a.transpose(1, 0, 2, 3).reshape(-1))
    assert th.memory_order_flat(a[:, :, :, ::2]) is None


def test_elementwise_mixed_layouts_falls_back_and_is_right(two_threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    out = np.empty_like(x)
    th.elementwise(np.maximum, out, channel_major(x), np.float32(0))  # out NCHW, input channel-major
    assert np.array_equal(out, np.maximum(x, 0))


def _run(fn, threads):
    th.set_num_threads(threads)
    try:
        return fn()
    finally:
        th.set_num_threads(1)


@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
def test_conv_relu_and_pool_bitwise_equal_with_threads(layout):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 24, 20, 20)).astype(np.float32)
    if layout == "channel_major":
        x = channel_major(x)
    w = (rng.standard_normal((32, 24, 3, 3)) * 0.1).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)

    def everything():
        y, conv_cache = C.conv2d_forward(x, w, b, (1, 1), (1, 1))
        r, relu_cache = A.relu_forward(y)
        p, pool_cache = P.max_pool2d_forward(r, (3, 3), (2, 2), (1, 1))
        dp = np.ones_like(p) * np.float32(0.5)
        dr = P.max_pool2d_backward(dp, pool_cache)
        dy = A.relu_backward(dr, relu_cache)
        dx, dw, db = C.conv2d_backward(dy, conv_cache)
        return y, r, p, dr, dy, dx, dw, db

    serial = _run(everything, 1)
    threaded = _run(everything, 2)
    for a, b_ in zip(serial, threaded):
        assert a.shape == b_.shape and np.array_equal(a, b_)


@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_bitwise_equal_with_threads(layout, training):
    from glassnet.ops import norm as Nm

    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 16, 24, 24)).astype(np.float32)
    if layout == "channel_major":
        x = channel_major(x)
    gamma, beta = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)

    def everything():
        rm, rv = np.zeros(16, np.float32), np.ones(16, np.float32)
        y, cache = Nm.batch_norm_forward(x, gamma, beta, rm, rv, training, 0.1, 1e-5)
        return (y, rm, rv) + tuple(Nm.batch_norm_backward(dout, cache))

    for a, b_ in zip(_run(everything, 1), _run(everything, 2)):
        assert np.array_equal(a, b_)


def test_add_splits_same_layout_arrays_and_falls_back_otherwise(two_threads):
    rng = np.random.default_rng(3)
    a = channel_major(rng.standard_normal((8, 16, 32, 32)).astype(np.float32))
    b = channel_major(rng.standard_normal((8, 16, 32, 32)).astype(np.float32))
    s = th.add(a, b)
    assert np.array_equal(s, a + b) and th.memory_order_flat(s) is not None
    assert np.array_equal(th.add(a, np.ascontiguousarray(b)), a + b)  # mixed layouts
    assert np.array_equal(th.add(a, np.float32(2)), a + 2)  # broadcast scalar


def test_glassnet_command_quiets_openblas_before_numpy_loads():
    """The console entry point sets OPENBLAS_THREAD_TIMEOUT before NumPy is
    imported (and keeps a value that is already set)."""
    import os
    import subprocess
    import sys

    probe = ("import sys, glassnet_command; assert 'numpy' not in sys.modules; "
             "sys.argv = ['glassnet', 'models']; glassnet_command.main(); "
             "import os, glassnet.threads as t; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), t.blas_threads_spin())")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1].split() == ["4", "False"]
    env["OPENBLAS_THREAD_TIMEOUT"] = "28"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1].split() == ["28", "True"]


def test_a_forked_child_runs_without_the_parents_workers(two_threads):
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not wait on the parent's (absent) worker threads
        try:
            seen = np.zeros(1000)
            th.parallel_for(1000, lambda lo, hi: seen.__setitem__(slice(lo, hi), 1), elements=1 << 30)
            os.write(w, f"{th.get_num_threads()} {int(seen.sum())}".encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 100).decode() == "1 1000"
    assert th.get_num_threads() == 2
