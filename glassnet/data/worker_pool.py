"""DataLoader worker processes, seen from the main process: starting them, failure detection, shutdown.

Workers start by ``forkserver`` by default (why, and what the server has
preloaded: :mod:`glassnet.data.start_method`).

Each worker has its own task pipe and result pipe (no lock shared between
processes that a dying worker could leave held) and runs
:func:`glassnet.data.worker_loop.worker_loop` (seeding is described there).
Batches travel through the shared-memory slots of
:mod:`glassnet.data.shared_batches`.

Failures
--------
A worker that raises sends the sample index, the exception's type, message,
traceback text and (when it pickles) the exception itself; the main process
raises :class:`DataLoaderWorkerError` when it reaches that batch. A worker
that dies is noticed through its process sentinel the moment it exits
(``multiprocessing.connection.wait``), not after a timeout.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
import signal
import time
import weakref
from multiprocessing import connection, resource_tracker

import numpy as np

from ..errors import GlassnetRuntimeError
from .shared_batches import SlotRing
from .start_method import default_start_method, prepare_forkserver
from .worker_loop import worker_loop

__all__ = ["DataLoaderWorkerError", "DataLoaderTimeoutError", "WorkerPool"]

_STOP = -2


class DataLoaderWorkerError(GlassnetRuntimeError):
    """A DataLoader worker raised, died or timed out. Attributes (``None`` where unknown):
    ``worker_id``, ``pid``, ``epoch``, ``batch_index``, ``sample_index``, ``exc_type``, ``exc_message``,
    ``worker_traceback`` (the worker's traceback text, also attached as a note)."""

    def __init__(self, message, **info):
        super().__init__(message)
        for key in ("worker_id", "pid", "epoch", "batch_index", "sample_index", "exc_type", "exc_message",
                    "worker_traceback"):
            setattr(self, key, info.get(key))
        if self.worker_traceback:
            self.add_note(f"Traceback in DataLoader worker {self.worker_id}:\n{self.worker_traceback.rstrip()}")


class DataLoaderTimeoutError(DataLoaderWorkerError):
    """No batch came back within the loader's ``timeout``."""


def _how_it_ended(exitcode) -> str:
    if exitcode is None:
        return "closed its pipe"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


class _PoolState:
    """What shutting a pool down needs (kept apart from the pool so a finalizer can hold it)."""

    def __init__(self, ring, current):
        self.procs, self.tasks, self.results = [], [], []
        self.ring, self.current, self.closed = ring, current, False

    def shutdown(self, grace: float = 0.2) -> None:
        if self.closed:
            return
        self.closed = True
        self.current.value = _STOP
        for conn in self.tasks:
            try:
                conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(1.0)
            if p.is_alive():  # pragma: no cover - ignores SIGTERM
                p.kill()
                p.join()
        for conn in self.tasks + self.results:
            conn.close()
        self.ring.close()  # after the workers are gone: none can create a segment any more


class WorkerPool:
    """``num_workers`` processes building batches of ``dataset`` into a ring of shared-memory slots
    (``prefetch_factor * num_workers`` to begin with).

    One iteration at a time: :meth:`begin` starts one (tasks of an earlier
    one still queued are skipped), :meth:`submit` sends batch ``k`` to worker
    ``k % num_workers``, :meth:`collect` returns the batches that came back.

    Shape:
        - submit's indices: (B,) integers; collected batches as the dataset builds them,
          e.g. ``(x (B, C, H, W), y (B,))``
    """

    def __init__(self, dataset, num_workers: int, prefetch_factor: int, seed: int,
                 multiprocessing_context=None, worker_init_fn=None):
        ctx = multiprocessing_context if multiprocessing_context is not None else default_start_method()
        self.ctx = mp.get_context(ctx) if isinstance(ctx, str) else ctx
        self.dataset, self.num_workers, self.seed, self.init_fn = dataset, num_workers, seed, worker_init_fn
        self.ring = SlotRing(prefetch_factor * num_workers)
        self._state = _PoolState(self.ring, self.ctx.RawValue("q", -1))
        self._finalizer = weakref.finalize(self, self._state.shutdown)
        self._pending: dict[tuple[int, int], tuple] = {}  # (iteration, batch) -> (worker, slot, epoch, indices)
        self._iteration = -1
        self._start()

    @property
    def closed(self) -> bool:
        return self._state.closed

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._state.procs]

    def _start(self) -> None:
        st, ctx = self._state, self.ctx
        if ctx.get_start_method() == "forkserver":
            prepare_forkserver(ctx, self.dataset)
        resource_tracker.ensure_running()  # one tracker shared by all: segments cross processes
        for w in range(self.num_workers):
            task_r, task_w = ctx.Pipe(duplex=False)
            res_r, res_w = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=worker_loop, name=f"glassnet-loader-{w}", daemon=True,
                               args=(w, self.num_workers, self.dataset, self.seed, self.init_fn,
                                     task_r, res_w, st.current))
            try:
                proc.start()
            except BaseException as exc:
                for c in (task_r, task_w, res_r, res_w):
                    c.close()
                self.shutdown()
                if not isinstance(exc, (pickle.PicklingError, AttributeError, TypeError)):
                    raise
                raise DataLoaderWorkerError(
                    f"DataLoader: cannot send {type(self.dataset).__name__} to worker processes started by "
                    f"{ctx.get_start_method()!r} ({type(exc).__name__}: {exc}); define the dataset, its transforms "
                    f"and worker_init_fn at module level, or pass multiprocessing_context='fork'") from exc
            task_r.close()
            res_w.close()
            st.procs.append(proc)
            st.tasks.append(task_w)
            st.results.append(res_r)

    # -------------------------------------------------------------- tasks
    def begin(self) -> int:
        """Start a new iteration; returns its id (earlier iterations' queued tasks get skipped)."""
        self._iteration += 1
        self._state.current.value = self._iteration
        return self._iteration

    def can_submit(self) -> bool:
        return not self.closed

    def submit(self, iteration: int, epoch: int, k: int, indices) -> None:
        slot = self.ring.acquire()
        w = k % self.num_workers
        self._pending[(iteration, k)] = (w, slot, epoch, indices)
        try:
            self._state.tasks[w].send((iteration, k, epoch, indices, self.ring.spec(slot)))
        except OSError:
            self._died(w)

    def end(self, iteration: int) -> None:
        """Abandon ``iteration``: its tasks still queued are skipped (their slots come back as replies arrive)."""
        if not self.closed and self._state.current.value == iteration:
            self._state.current.value = -1

    def worker_of(self, iteration: int, k: int):
        return self._pending.get((iteration, k), (None,))[0]

    def collect(self, iteration: int, timeout: float | None) -> list:
        """``[(k, batch or DataLoaderWorkerError), ...]`` of ``iteration`` that arrived within ``timeout``
        seconds (``None``: wait for at least one); raises :class:`DataLoaderWorkerError` if a worker died."""
        st = self._state
        conns = {c: w for w, c in enumerate(st.results)}
        sentinels = {p.sentinel: w for w, p in enumerate(st.procs)}
        ready = connection.wait(list(conns) + list(sentinels), timeout)
        out = []
        for r in ready:
            if r in conns:
                if not self._drain(conns[r], iteration, out):
                    self._died(conns[r])
        for r in ready:
            if r in sentinels:
                self._drain(sentinels[r], iteration, out)
                self._died(sentinels[r])
        return out

    def _drain(self, w: int, iteration: int, out: list) -> bool:
        """Handle every message waiting from worker ``w``; False if its pipe is closed."""
        conn = self._state.results[w]
        try:
            while conn.poll():
                tag, it, k, payload, grown = conn.recv()
                if it == -1:  # worker_init_fn failed
                    err = self._error(w, None, None, payload, "in worker_init_fn")
                    self.shutdown()
                    raise err
                _, slot, epoch, indices = self._pending.pop((it, k))
                if grown is not None:
                    self.ring.grown(slot, *grown)
                if it == iteration and tag == "ok":
                    out.append((k, self.ring.read(slot, payload)))  # the slot returns when the batch dies
                    continue
                if it == iteration and tag == "error":
                    out.append((k, self._error(w, epoch, k, payload, indices=indices)))
                self.ring.release(slot)
        except (EOFError, OSError):
            return False
        return True

    def _error(self, w, epoch, k, info, where=None, indices=None) -> DataLoaderWorkerError:
        pid = self._state.procs[w].pid
        if where is None:
            where = (f"on sample {info['index']} (batch {k} of epoch {epoch})" if info["index"] is not None
                     else f"on batch {k} of epoch {epoch} (samples {_preview(indices)})")
        err = DataLoaderWorkerError(
            f"DataLoader worker {w} (pid {pid}) raised {info['type']}: {info['message']} {where}",
            worker_id=w, pid=pid, epoch=epoch, batch_index=k, sample_index=info["index"], exc_type=info["type"],
            exc_message=info["message"], worker_traceback=info["traceback"])
        if info["pickled"] is not None:
            try:
                err.__cause__ = pickle.loads(info["pickled"])
            except Exception:  # noqa: BLE001 - the cause is a courtesy
                pass
        return err

    def _died(self, w: int):
        """Raise for worker ``w``'s exit (after reading what it sent last: a worker_init_fn error says more)."""
        proc = self._state.procs[w]
        proc.join(1.0)
        self._drain(w, -1, [])
        held = sorted(k for k, v in self._pending.items() if v[0] == w)
        if held:
            it, k = held[0]
            epoch, indices = self._pending[held[0]][2:]
            what = f"while loading batch {k} of epoch {epoch} (samples {_preview(indices)})"
        else:
            what, epoch, k = "between batches", None, None
        self.shutdown()
        raise DataLoaderWorkerError(f"DataLoader worker {w} (pid {proc.pid}) {_how_it_ended(proc.exitcode)} "
                                    f"{what}", worker_id=w, pid=proc.pid, epoch=epoch, batch_index=k)

    def shutdown(self) -> None:
        """Stop the workers (politely, then SIGTERM, then SIGKILL) and unlink every segment. Idempotent."""
        self._finalizer()


def _preview(indices, n: int = 8) -> str:
    idx = np.asarray(indices).reshape(-1).tolist()
    return ", ".join(map(str, idx[:n])) + (f", ... ({len(idx)} in all)" if len(idx) > n else "")
