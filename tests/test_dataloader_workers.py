"""DataLoader worker processes: batches bitwise equal to num_workers=0 for any N, prefetch bound, mid-epoch
resume, persistent workers, seeding; every failure and shutdown path leaves no process and no segment."""
import gc
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from glassnet import random as gn_random
from glassnet.data import ArrayDataset, DataLoader
from glassnet.data import transforms as T
from glassnet.data.dataloader import DataLoaderTimeoutError, DataLoaderWorkerError, get_worker_info
from glassnet.errors import GlassnetError, InvalidArgumentError

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc") or not os.path.isdir("/dev/shm"),
                                reason="checks processes and segments through /proc and /dev/shm")
SHM = Path("/dev/shm")


class RngImages:
    """get_item draws from the per-sample rng; records the pid of every process that built a sample."""

    def __init__(self, n, shape=(3, 6, 5), log=None, fail_at=None, exit_at=None, kill_at=None, sleep=0.0):
        self.n, self.shape, self.log = n, shape, log
        self.fail_at, self.exit_at, self.kill_at, self.sleep = fail_at, exit_at, kill_at, sleep

    def __len__(self):
        return self.n

    def get_item(self, i, rng):
        if self.log is not None:
            (Path(self.log) / f"{i}.{os.getpid()}").touch()
        if self.sleep:
            time.sleep(self.sleep)
        if i == self.fail_at:
            raise ValueError(f"cannot decode image {i}")
        if i == self.exit_at:
            os._exit(3)
        if i == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        x = rng.integers(0, 256, self.shape, dtype=np.uint8)
        x[0, 0, 0] = i % 256
        return x, int(rng.integers(0, 10))

    def __getitem__(self, i):
        return self.get_item(i, np.random.default_rng(i))


class GrowingSamples(RngImages):
    """Sample size grows with the index: slots have to grow; float64 to exercise another dtype."""

    def get_item(self, i, rng):
        side = 2 + i // 8
        return rng.standard_normal((2, side, side)), np.array([i, -i])


class GlobalRngUser(RngImages):
    """Reaches for the global generators (against the contract): reproducible, independent of N."""

    def get_item(self, i, rng):
        return np.array([gn_random.get_rng().random(), np.random.random()]), i


class PerSample:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((1, 2, 2), i, np.float32), f"label{i}"   # a non-numeric target travels pickled


def _init_marks_worker(worker_id):
    info = get_worker_info()
    assert info is not None and info.id == worker_id
    np.random.seed(1000 + worker_id)


def _init_fails(worker_id):
    raise RuntimeError(f"no GPU for worker {worker_id}")


def _segments():
    return {p.name for p in SHM.iterdir() if p.name.startswith(f"gn{os.getpid()}")}


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _worker_pids(log):
    return {int(p.suffix[1:]) for p in Path(log).iterdir()} - {os.getpid()}


def _assert_clean(log=None, within=5.0):
    """No segment of this process left, and every worker that built a sample gone."""
    pids = _worker_pids(log) if log is not None else set()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and (_segments() or any(_alive(p) for p in pids)):
        time.sleep(0.02)
    assert not _segments(), f"shared-memory segments left behind: {sorted(_segments())}"
    assert not [p for p in pids if _alive(p)], "worker processes left behind"


def _same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == xb.dtype and ya.dtype == yb.dtype
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.fixture
def log(tmp_path):
    d = tmp_path / "log"
    d.mkdir()
    return d


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("shuffle, drop_last", [(True, False), (False, True)])
def test_batches_bitwise_equal_to_in_process_for_any_n(workers, shuffle, drop_last, log):
    ds = RngImages(45, log=None)
    kw = dict(batch_size=4, shuffle=shuffle, drop_last=drop_last, seed=5)
    ref = DataLoader(ds, **kw)
    par = DataLoader(ds, num_workers=workers, **kw)
    for _ in range(2):  # two epochs: different orders and draws, each equal to N=0
        _same(list(par), list(ref))
    logged = DataLoader(RngImages(45, log=log), num_workers=workers, **kw)
    _same(list(logged), list(DataLoader(RngImages(45), **kw)))
    assert len(_worker_pids(log)) == workers
    _assert_clean(log)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_other_start_methods_give_the_same_batches(context):
    ds = GrowingSamples(40)
    ref = list(DataLoader(ds, batch_size=8, seed=1))
    _same(list(DataLoader(ds, batch_size=8, seed=1, num_workers=2, multiprocessing_context=context)),
          ref)
    _assert_clean()


def test_growing_samples_get_batch_and_getitem_datasets():
    _same(list(DataLoader(GrowingSamples(50), batch_size=8, seed=7, num_workers=2, prefetch_factor=1)),
          list(DataLoader(GrowingSamples(50), batch_size=8, seed=7)))
    x = np.random.default_rng(0).integers(0, 256, (37, 1, 28, 28), dtype=np.uint8)
    ads = ArrayDataset(x, np.arange(37) % 10, transform=T.Compose([T.ToFloat(), T.Normalize(0.5, 0.25)]))
    _same(list(DataLoader(ads, batch_size=5, shuffle=True, seed=2, num_workers=2)),
          list(DataLoader(ads, batch_size=5, shuffle=True, seed=2)))
    got = list(DataLoader(PerSample(7), batch_size=3, num_workers=2))
    ref = list(DataLoader(PerSample(7), batch_size=3))
    for (xa, ya), (xb, yb) in zip(got, ref):
        np.testing.assert_array_equal(xa, xb)
        assert ya.tolist() == yb.tolist() and ya.tolist()[0].startswith("label")
    _assert_clean()


def test_iter_epoch_resumes_mid_epoch_bitwise():
    ds = RngImages(50)
    loader = DataLoader(ds, batch_size=6, shuffle=True, seed=11, num_workers=2)
    ref = list(DataLoader(ds, batch_size=6, shuffle=True, seed=11).iter_epoch(3))
    with loader.iter_epoch(3, start_batch=4) as it:
        _same(list(it), ref[4:])
    assert loader.epoch == 0  # iter_epoch leaves the counter alone
    assert list(loader.iter_epoch(3, start_batch=len(loader))) == []
    with pytest.raises(InvalidArgumentError, match="start_batch 10 is past the epoch's 9 batches"):
        loader.iter_epoch(0, start_batch=10)
    _assert_clean()


def test_at_most_prefetch_factor_times_workers_batches_in_flight(log):
    ds = RngImages(40, log=log, sleep=0.01)
    it = iter(DataLoader(ds, batch_size=2, num_workers=2, prefetch_factor=2))
    started = lambda: {int(p.stem) // 2 for p in log.iterdir()}  # noqa: E731
    time.sleep(1.0)
    assert started() == {0, 1, 2, 3}
    next(it)
    time.sleep(0.5)
    assert started() == {0, 1, 2, 3, 4}
    del it
    _assert_clean(log)


def test_slots_are_reused_unless_the_batches_are_kept():
    loader = DataLoader(RngImages(60), batch_size=4, seed=1, num_workers=2, prefetch_factor=2)
    it = loader.iter_epoch(0)
    ring = it._pool.ring
    first = next(it)
    for x, y in it:  # a batch's slot returns when the batch is dropped: the window of 4 in flight, plus
        # `first`, the batch in the loop's hands and the one being handed over
        assert x.base is not None and ring.n_slots <= 2 * 2 + 3
    kept = list(loader.iter_epoch(0))  # kept batches keep their memory: valid after shutdown and unlink
    _same(kept[:1], [first])
    _same(kept, list(DataLoader(RngImages(60), batch_size=4, seed=1).iter_epoch(0)))
    _assert_clean()


def test_a_raising_worker_names_the_sample_type_message_and_traceback(log):
    loader = DataLoader(RngImages(40, log=log, fail_at=13), batch_size=4, num_workers=2)
    got, t0 = [], time.monotonic()
    with pytest.raises(DataLoaderWorkerError) as info:
        for batch in loader:
            got.append(batch)
    err = info.value
    assert time.monotonic() - t0 < 10
    assert isinstance(err, GlassnetError) and len(got) == 3  # batches 0-2 first, as with num_workers=0
    assert "sample 13 (batch 3 of epoch 0)" in str(err) and "ValueError: cannot decode image 13" in str(err)
    assert err.sample_index == 13 and err.batch_index == 3 and err.worker_id == 1
    assert err.exc_type == "ValueError" and "in get_item" in err.worker_traceback
    assert isinstance(err.__cause__, ValueError) and "Traceback in DataLoader worker 1" in err.__notes__[0]
    del info, err
    _assert_clean(log)


@pytest.mark.parametrize("how, expect", [("exit_at", "exited with status 3"), ("kill_at", "was killed by SIGKILL")])
def test_a_dying_worker_is_reported_at_once(how, expect, log):
    loader = DataLoader(RngImages(40, log=log, **{how: 21}), batch_size=4, seed=7, num_workers=2,
                        persistent_workers=True)
    t0 = time.monotonic()
    with pytest.raises(DataLoaderWorkerError, match=f"worker 1 \\(pid \\d+\\) {expect}.* while loading batch 5 "
                                                    f"of epoch 0 \\(samples 20, 21, 22, 23\\)"):
        for _ in loader:
            pass
    assert time.monotonic() - t0 < 10
    _assert_clean(log)
    loader.dataset = RngImages(40)  # the broken pool is gone: the next epoch starts a new one
    _same(list(loader.iter_epoch(1)), list(DataLoader(RngImages(40), batch_size=4, seed=7).iter_epoch(1)))
    loader.close()
    _assert_clean()


def _loop_and_raise(loader):
    for _ in loader:
        raise ZeroDivisionError("in the loop body")


def test_break_exception_gc_and_end_leave_nothing_behind(log):
    mk = lambda: DataLoader(RngImages(80, log=log, sleep=0.002), batch_size=4, num_workers=2)  # noqa: E731
    for _ in mk():  # normal end
        pass
    _assert_clean(log)
    for i, _ in enumerate(mk()):  # break
        if i == 2:
            break
    _assert_clean(log)
    with pytest.raises(ZeroDivisionError):
        _loop_and_raise(mk())
    _assert_clean(log)
    it = iter(mk())
    next(it)
    assert _segments()
    del it
    gc.collect()
    _assert_clean(log)


def test_ctrl_c_while_waiting_leaves_nothing_behind(log):
    loader = DataLoader(RngImages(40, log=log, sleep=0.5), batch_size=4, num_workers=2)
    interrupted = threading.Event()

    def press_ctrl_c():  # again every 0.5 s, like a user: one SIGINT can land in a finalizer, where Python drops it
        while not interrupted.wait(0.8 if last_raised[0] < 0 else 0.5):
            os.kill(os.getpid(), signal.SIGINT)

    last_raised = [-1e9]

    def first_ctrl_c_only(signum, frame):  # a second press must not land in the loader's own clean-up,
        if time.monotonic() - last_raised[0] > 3:  # but a first one Python dropped is pressed again
            last_raised[0] = time.monotonic()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, first_ctrl_c_only)
    timer = threading.Thread(target=press_ctrl_c, daemon=True)
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in loader:
                pass
    finally:
        interrupted.set()
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - t0 < 10
    _assert_clean(log)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the loop body
        for _ in DataLoader(RngImages(40, log=log), batch_size=4, num_workers=2):
            raise KeyboardInterrupt
    _assert_clean(log)


def test_persistent_workers_serve_every_epoch(log):
    ds = RngImages(30, log=log)
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=3, num_workers=2, persistent_workers=True)
    ref = DataLoader(RngImages(30), batch_size=4, shuffle=True, seed=3)
    _same(list(loader), list(ref))
    pids = _worker_pids(log)
    for i, _ in enumerate(loader):  # break mid-epoch: queued work of that epoch is dropped
        if i == 1:
            break
    _same(list(loader), list(ref.iter_epoch(2)))
    assert _worker_pids(log) == pids and len(pids) == 2 and all(_alive(p) for p in pids)
    it1, it2 = iter(loader), iter(loader)  # two live iterators: the second gets its own pool
    _same(list(it2), list(ref.iter_epoch(4)))
    _same(list(it1), list(ref.iter_epoch(3)))
    it = iter(loader)
    next(it)
    loader.close()  # shut down under a live iterator: it says so
    with pytest.raises(GlassnetError, match="the workers were shut down"):
        list(it)
    _assert_clean(log)


def test_worker_globals_are_seeded_per_batch():
    ds = GlobalRngUser(24)
    one = list(DataLoader(ds, batch_size=4, seed=7, num_workers=1))
    two = list(DataLoader(ds, batch_size=4, seed=7, num_workers=2, multiprocessing_context="fork"))
    _same(one, two)
    values = np.concatenate([x for x, _ in one])
    assert len(np.unique(values[:, 0])) == 24 and len(np.unique(values[:, 1])) == 24


def test_no_process_before_the_first_iteration_and_worker_init_fn():
    import multiprocessing as mp

    before = set(mp.active_children())
    loader = DataLoader(RngImages(8), batch_size=4, seed=7, num_workers=2, worker_init_fn=_init_marks_worker,
                        multiprocessing_context="fork", persistent_workers=True)
    assert set(mp.active_children()) == before and loader._pool is None
    assert get_worker_info() is None
    _same(list(loader), list(DataLoader(RngImages(8), batch_size=4, seed=7)))
    assert len(set(mp.active_children()) - before) == 2
    loader.close()
    with pytest.raises(DataLoaderWorkerError, match="raised RuntimeError: no GPU for worker . in worker_init_fn"):
        list(DataLoader(RngImages(8), batch_size=4, num_workers=2, worker_init_fn=_init_fails))
    _assert_clean()


def test_timeout_and_an_unpicklable_dataset():
    loader = DataLoader(RngImages(8, sleep=5.0), batch_size=4, num_workers=1, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(DataLoaderTimeoutError, match="batch 0 of epoch 0 did not come back from worker 0 within"):
        next(iter(loader))
    assert time.monotonic() - t0 < 3
    local = RngImages(8)
    local.transform = lambda x: x  # a lambda does not pickle
    with pytest.raises(DataLoaderWorkerError, match="cannot send RngImages to worker processes.*'fork'"):
        list(DataLoader(local, batch_size=4, num_workers=2))
    _same(list(DataLoader(local, batch_size=4, seed=7, num_workers=2, multiprocessing_context="fork")),
          list(DataLoader(local, batch_size=4, seed=7)))
    pickle.dumps(DataLoader(RngImages(8), num_workers=2, persistent_workers=True))
    _assert_clean()


@pytest.mark.parametrize("kw, match", [
    (dict(num_workers=-1), "num_workers must be a non-negative int"),
    (dict(prefetch_factor=0), "prefetch_factor must be a positive int"),
    (dict(persistent_workers=True), "persistent_workers=True needs num_workers > 0"),
    (dict(timeout=-1), "timeout must be a number of seconds >= 0"),
])
def test_bad_worker_arguments(kw, match):
    with pytest.raises(InvalidArgumentError, match=match):
        DataLoader(RngImages(4), **kw)


FRESH_PROCESS = textwrap.dedent("""
    import os, sys, time
    LOG = sys.argv[1]
    with open(os.path.join(LOG, "main-runs"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    import numpy as np
    from glassnet.data import DataLoader

    class Slow:
        def __len__(self):
            return 64

        def get_item(self, i, rng):
            open(os.path.join(LOG, f"worker.{os.getpid()}"), "a").close()
            time.sleep(0.01)
            return rng.integers(0, 255, (3, 8, 8), dtype=np.uint8), i

    def children():
        me = str(os.getpid())
        kids = []
        for d in filter(str.isdigit, os.listdir("/proc")):
            try:
                if open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1] == me:
                    kids.append(int(d))
            except OSError:
                pass
        return kids

    if __name__ == "__main__":
        before = children()
        loader = DataLoader(Slow(), batch_size=4, num_workers=2, seed=0)
        assert children() == before, "a process started at construction"
        for epoch in range(2):
            for _ in loader:
                pass
        it = iter(loader)
        next(it)
        print("READY", flush=True)
        time.sleep(60)
""")


def test_fresh_process_main_runs_once_and_sigkill_of_main_leaves_nothing(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(FRESH_PROCESS)
    log = tmp_path / "log"
    log.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
        workers = {int(p.suffix[1:]) for p in log.glob("worker.*")}
        assert len(workers) == 6  # 2 workers x 3 epochs
        # the script ran in the main process and once in the fork server, never in a worker
        assert len((log / "main-runs").read_text().split()) == 2
        assert any(p.name.startswith(f"gn{proc.pid}") for p in SHM.iterdir())
        proc.kill()  # SIGKILL: no finalizer runs; workers notice, the resource tracker unlinks
        proc.wait()
        deadline = time.monotonic() + 15
        left = lambda: ([p for p in workers if _alive(p)],  # noqa: E731
                        [p.name for p in SHM.iterdir() if p.name.startswith(f"gn{proc.pid}")])
        while time.monotonic() < deadline and any(left()):
            time.sleep(0.05)
        assert left() == ([], []), "workers or segments outlived a killed main process"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
