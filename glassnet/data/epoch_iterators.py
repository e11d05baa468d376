"""The iterators behind ``DataLoader.iter_epoch``: one epoch's batches, in order, built here or by workers.

Both have ``close()`` and are context managers. :class:`WorkerEpoch` keeps
at most ``prefetch_factor * num_workers`` batches in flight (batch ``k``
goes to worker ``k % num_workers``), yields them in order whatever order they
come back in, and on every way out (the end, ``close()``, an exception
while waiting, Ctrl-C included, or garbage collection) shuts down the pool it
owns or releases the loader's persistent one.
"""
from __future__ import annotations

import time
import weakref

from ..errors import GlassnetRuntimeError
from .collate import load_batch
from .worker_pool import DataLoaderTimeoutError, DataLoaderWorkerError

__all__ = ["InProcessEpoch", "WorkerEpoch"]

_WAIT_CHUNK_S = 5.0


class _EpochIterator:
    """Common part: iterator protocol, ``close()`` and the context manager."""

    def __iter__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        pass


class InProcessEpoch(_EpochIterator):
    """Batches ``start..stop-1`` of one epoch, built in this process.

    Shape:
        - each batch: ``(x (B, *sample_shape), y (B,))``
    """

    def __init__(self, loader, epoch, order, start, stop):
        self._loader, self._epoch, self._order, self._k, self._stop = loader, epoch, order, start, stop

    def __next__(self):
        if self._k >= self._stop:
            raise StopIteration
        loader, k = self._loader, self._k
        self._k += 1
        return load_batch(loader.dataset, loader.batch_indices(self._order, k), loader.seed, self._epoch)


class WorkerEpoch(_EpochIterator):
    """Batches ``start..stop-1`` of one epoch from a :class:`~glassnet.data.worker_pool.WorkerPool`, in order.

    Shape:
        - each batch: ``(x (B, *sample_shape), y (B,))``, arrays viewing shared memory
    """

    def __init__(self, loader, epoch, order, start, stop):
        self._closed = True
        self._loader, self._epoch, self._order = loader, epoch, order
        self._next = self._sent = start
        self._stop = stop
        self._ready = {}
        self._pool, self._owned = loader._acquire_pool()
        if not self._owned:
            loader._pool_user = weakref.ref(self)
        self._closed = False
        self._window = loader.prefetch_factor * loader.num_workers
        self._iteration = self._pool.begin()
        try:
            self._fill()
        except BaseException:
            self.close()
            raise

    def _fill(self) -> None:
        pool, loader = self._pool, self._loader
        while self._sent < min(self._stop, self._next + self._window) and pool.can_submit():
            pool.submit(self._iteration, self._epoch, self._sent, loader.batch_indices(self._order, self._sent))
            self._sent += 1

    def __next__(self):
        if self._closed or self._next >= self._stop:
            self.close()
            raise StopIteration
        try:
            batch = self._wait(self._next)
            self._next += 1
            self._fill()
        except BaseException:  # a worker's death, a timeout, Ctrl-C while waiting
            self.close()
            raise
        if isinstance(batch, DataLoaderWorkerError):
            self.close()
            raise batch
        if self._next >= self._stop:
            self.close()
        return batch

    def _wait(self, k: int):
        timeout = self._loader.timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        while k not in self._ready:
            if self._pool.closed:
                raise GlassnetRuntimeError(f"DataLoader: the workers were shut down (loader.close()) while "
                                           f"epoch {self._epoch} was being iterated, before batch {k}")
            self._fill()
            wait = _WAIT_CHUNK_S if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                w = self._pool.worker_of(self._iteration, k)
                self._pool.shutdown()  # a stuck worker is of no use to the next epoch either
                raise DataLoaderTimeoutError(
                    f"DataLoader: batch {k} of epoch {self._epoch} did not come back from worker {w} within "
                    f"timeout={timeout:g} s", worker_id=w, epoch=self._epoch, batch_index=k)
            for kk, b in self._pool.collect(self._iteration, min(wait, _WAIT_CHUNK_S)):
                self._ready[kk] = b
        return self._ready.pop(k)

    def close(self) -> None:
        """Stop this epoch's work: an owned pool is shut down, the persistent one released."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._ready.clear()
        if self._owned:
            self._pool.shutdown()
        else:
            self._pool.end(self._iteration)
            if self._loader._pool_user is not None and self._loader._pool_user() in (self, None):
                self._loader._pool_user = None

    def __del__(self):
        self.close()
