"""``ThreadedCommunicator``: gradient allreduces run by a background thread.

MPICH advances a non-blocking collective only inside MPI calls, so with
:class:`~glassnet.distributed.comm.MPICommunicator` alone the reduction's
copies run when the gradient hooks poll, on the training thread. Wrapped in a
:class:`ThreadedCommunicator` (what ``DistributedDataParallel`` does when MPI
grants MPI_THREAD_MULTIPLE), a thread of its own runs them, so they overlap
with backward for real when a core is free for it.
"""
from __future__ import annotations

import queue
import threading
import time

from .comm import Communicator, Work

__all__ = ["ThreadedCommunicator"]


class _ThreadWork(Work):
    __slots__ = ("event", "error")

    def __init__(self):
        self.event = threading.Event()
        self.error = None

    def test(self) -> bool:
        if self.event.is_set() and self.error is not None:
            raise self.error
        return self.event.is_set()

    def wait(self) -> None:
        self.event.wait()
        if self.error is not None:
            raise self.error


class ThreadedCommunicator(Communicator):
    """``iallreduce_`` run by one background thread, one allreduce after the other, in order
    (mpi4py releases the GIL inside MPI calls, NumPy inside its loops). The thread starts the
    non-blocking allreduce and tests it every ``poll_s`` seconds, sleeping in
    between (a blocking MPICH allreduce would spin a core while it waits for
    the other ranks, stealing it from backward on a busy machine). Needs
    MPI_THREAD_MULTIPLE (what mpi4py asks for by default). Everything else
    goes to ``inner``.
    """

    poll_s = 2e-4  # seconds between MPI_Tests; None: one blocking allreduce (MPICH then spins a core)

    def __init__(self, inner: Communicator):
        self.inner, self.rank, self.size, self.backend = inner, inner.rank, inner.size, inner.backend + "+thread"
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="glassnet-allreduce", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            array, work = self._queue.get()
            try:
                if self.poll_s is None:
                    self.inner.allreduce_(array)
                else:  # test-and-sleep: progress without spinning a core
                    inner = self.inner.iallreduce_(array)
                    while not inner.test():
                        time.sleep(self.poll_s)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                work.error = exc
            work.event.set()

    def iallreduce_(self, array) -> Work:
        work = _ThreadWork()
        self._queue.put((array, work))
        return work

    def allreduce_(self, array):
        return self.inner.allreduce_(array)

    def broadcast_(self, array, root: int = 0):
        return self.inner.broadcast_(array, root)

    def broadcast_object(self, obj, root: int = 0):
        return self.inner.broadcast_object(obj, root)

    def allgather_object(self, obj) -> list:
        return self.inner.allgather_object(obj)

    def barrier(self) -> None:
        self.inner.barrier()

    def dup(self) -> "Communicator":
        return ThreadedCommunicator(self.inner.dup())

    def abort(self, code: int = 1) -> None:
        self.inner.abort(code)

    def progress(self, works) -> list:
        return [w for w in works if not w.test()]
