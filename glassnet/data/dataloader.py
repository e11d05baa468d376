"""DataLoader: batches of NumPy arrays from a dataset, reproducibly shuffled, optionally built by worker processes.

Epochs and seeds
----------------
The loader counts epochs: each ``iter(loader)`` (each ``for`` loop) uses the
current epoch ``e`` and then advances the counter. With ``shuffle=True``,
epoch ``e``'s order is ``default_rng(SeedSequence([seed, e])).permutation(N)``:
a fresh permutation every epoch that depends only on ``(seed, e)``. A resumed
run calls ``loader.set_epoch(e)`` and gets exactly the order epoch ``e`` had;
``loader.iter_epoch(e, start_batch=k)`` yields batches ``k, k+1, ...`` of
epoch ``e`` (mid-epoch resume) without touching the counter.
Without a ``seed`` one is drawn from OS entropy at construction (readable as
``loader.seed``, so even such a run can be replayed).

Samplers
--------
``sampler=`` replaces the loader's own order (PyTorch's argument; it excludes
``shuffle=True``): epoch ``e`` visits ``sampler.indices(e)`` when the sampler
has that method (a :class:`glassnet.distributed.DistributedSampler`: this
rank's shard, PyTorch's order), else ``list(sampler)`` after
``sampler.set_epoch(e)`` if it has one, else ``list(sampler)``;
``len(loader)`` counts the batches of ``len(sampler)`` samples.
``loader.set_epoch(e)`` (and each ``iter(loader)``) also calls
``sampler.set_epoch(e)``, so a training loop only moves the loader's epoch.
Per-sample randomness stays ``sample_rng(seed, epoch, index)`` of the
dataset's index, so with workers each rank builds bitwise the batches its
shard gives with ``num_workers=0``.

Samples
-------
A dataset with ``get_item(index, rng)`` is read sample by sample with
``rng = sample_rng(loader.seed, epoch, index)`` (:mod:`glassnet.data.sample_rng`)
and collated (``np.stack`` of the samples, int64 labels); any other dataset
through ``get_batch(indices)``, or ``dataset[i]`` stacked
(:func:`~glassnet.data.datasets.fetch_batch`).

Workers
-------
With ``num_workers=N > 0`` batches are built by N worker processes
(:mod:`glassnet.data.start_method`, :mod:`glassnet.data.worker_pool`:
failures and shutdown, :mod:`glassnet.data.worker_loop`: seeding) and come
back through shared memory (:mod:`glassnet.data.shared_batches`). Batch
``k`` goes to worker ``k % N``; at most ``prefetch_factor * N`` batches are
in flight; they are yielded in order, and since a batch depends only on
``(dataset, indices, seed, epoch)`` they are bitwise the batches of
``num_workers=0`` (for ``get_item`` datasets and deterministic ones; a
``get_batch`` dataset whose transforms keep their own generator cannot be
replayed across processes). A batch from the workers is not copied: its
arrays view the shared memory the worker wrote, which is reused once they
are garbage-collected (keeping a batch is safe; it just keeps its memory).
No process starts before the first iteration; without ``persistent_workers`` the workers of an epoch are stopped, and
every shared-memory segment unlinked, when its iterator ends, is closed,
raises (Ctrl-C included) or is garbage-collected. With
``persistent_workers=True`` they serve every epoch until ``loader.close()``
or until the loader is garbage-collected. With the default ``forkserver``
start method a script must guard its entry point with
``if __name__ == "__main__":`` and the dataset must pickle.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import InvalidArgumentError
from .collate import has_get_item
from .epoch_iterators import InProcessEpoch, WorkerEpoch
from .worker_loop import get_worker_info
from .worker_pool import DataLoaderTimeoutError, DataLoaderWorkerError, WorkerPool

__all__ = ["DataLoader", "DataLoaderWorkerError", "DataLoaderTimeoutError", "get_worker_info"]


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        rule = "a positive int" if minimum == 1 else "a non-negative int"
        raise InvalidArgumentError(f"DataLoader: {name} must be {rule}, got {value!r}")
    return int(value)


class DataLoader:
    """Iterate over ``dataset`` in batches of ``(x, y)`` NumPy arrays.

    Arguments follow PyTorch's ``torch.utils.data.DataLoader``: ``batch_size``,
    ``shuffle``, ``drop_last`` (drop a last, smaller batch), ``num_workers``
    (0: build batches in this process), ``prefetch_factor`` (batches in flight
    per worker), ``persistent_workers``, ``timeout`` (seconds to wait for one
    batch from the workers; 0: no limit; a worker that dies is reported at
    once regardless), ``worker_init_fn(worker_id)``, ``multiprocessing_context``
    (``"forkserver"`` (default), ``"spawn"``, ``"fork"`` or a context);
    plus ``seed`` (shuffle order and per-sample augmentation) and ``sampler``
    (the indices of each epoch, e.g. a :class:`glassnet.distributed.DistributedSampler`;
    see the module docstring). ``len(loader)`` is the number of batches.

    Shape:
        - x: (B, *sample_shape), e.g. (B, 1, 28, 28) float32 in [0, 1] or (B, 3, 224, 224) uint8
        - y: (B,) int64
        - B is ``batch_size``, except the last batch of an epoch, which has
          ``len(dataset) % batch_size`` samples when that is not 0 and
          ``drop_last=False``
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, num_workers: int = 0, prefetch_factor: int = 2,
                 persistent_workers: bool = False, timeout: float = 0.0, worker_init_fn=None,
                 multiprocessing_context=None, sampler=None):
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        if sampler is not None:
            if shuffle:
                raise InvalidArgumentError("DataLoader: sampler and shuffle=True are mutually exclusive "
                                           "(the sampler decides the order; shuffle it there)")
            if not callable(getattr(sampler, "__len__", None)) or not (
                    callable(getattr(sampler, "indices", None)) or callable(getattr(sampler, "__iter__", None))):
                raise InvalidArgumentError(f"DataLoader: sampler must have len() and indices(epoch) or "
                                           f"__iter__, got {type(sampler).__name__}")
        self.sampler = sampler
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        elif isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise InvalidArgumentError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        self.seed = int(seed)
        self.num_workers = _check_int(num_workers, "num_workers", 0)
        self.prefetch_factor = _check_int(prefetch_factor, "prefetch_factor", 1)
        if persistent_workers and self.num_workers == 0:
            raise InvalidArgumentError("DataLoader: persistent_workers=True needs num_workers > 0")
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout >= 0:
            raise InvalidArgumentError(f"DataLoader: timeout must be a number of seconds >= 0, got {timeout!r}")
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.persistent_workers = bool(persistent_workers)
        self.timeout = float(timeout)
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self._epoch = 0
        self._pool = None       # the persistent pool, started at the first iteration
        self._pool_user = None  # weak reference to the iterator using it now

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will use."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (its shuffle order included)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise InvalidArgumentError(f"DataLoader.set_epoch: epoch must be a non-negative int, got {epoch!r}")
        self._epoch = int(epoch)
        if callable(getattr(self.sampler, "set_epoch", None)):
            self.sampler.set_epoch(self._epoch)

    @property
    def uses_get_batch(self) -> bool:
        """True when batches come from one ``dataset.get_batch`` call each."""
        return not self.uses_get_item and callable(getattr(self.dataset, "get_batch", None))

    @property
    def uses_get_item(self) -> bool:
        """True when samples come from ``dataset.get_item(index, sample_rng(seed, epoch, index))``."""
        return has_get_item(self.dataset)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """The sample indices of ``epoch`` (default: the next one), in visiting order
        (the sampler's, when there is one).

        Shape: (len(sampler) or len(dataset),) integers.
        """
        e = self._epoch if epoch is None else int(epoch)
        if self.sampler is not None:
            return self._sampler_order(e)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, e]))
        return rng.permutation(n)

    def _sampler_order(self, epoch: int) -> np.ndarray:
        sampler = self.sampler
        if callable(getattr(sampler, "indices", None)):
            order = sampler.indices(epoch)
        else:
            if callable(getattr(sampler, "set_epoch", None)):
                sampler.set_epoch(epoch)
            order = list(sampler)
        order = np.asarray(order, dtype=np.int64).reshape(-1)
        if len(order) != len(sampler):
            raise InvalidArgumentError(f"DataLoader: the sampler gave {len(order)} indices for epoch {epoch} "
                                       f"but its len() is {len(sampler)}")
        return order

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        # Claim the epoch now (not at the first next()), so that
        # ``it = iter(loader)`` twice gives two different epochs.
        e = self._epoch
        self.set_epoch(e + 1)
        return self.iter_epoch(e)

    def iter_epoch(self, epoch: int, start_batch: int = 0):
        """Batches ``start_batch, start_batch + 1, ...`` of epoch ``epoch`` (the loader's epoch counter
        is left alone). The iterator has ``close()`` and is a context manager; with workers, closing it
        (or dropping it) stops the epoch's work at once.

        Shape:
            - each batch: ``(x (B, *sample_shape), y (B,))`` as for ``iter(loader)``
        """
        epoch = _check_int(epoch, "epoch", 0)
        n_batches = len(self)
        start = _check_int(start_batch, "start_batch", 0)
        if start > n_batches:
            raise InvalidArgumentError(f"DataLoader.iter_epoch: start_batch {start} is past the epoch's "
                                       f"{n_batches} batches")
        order = self.order(epoch)
        if self.num_workers == 0 or start == n_batches:
            return InProcessEpoch(self, epoch, order, start, n_batches)
        return WorkerEpoch(self, epoch, order, start, n_batches)

    def batch_indices(self, order: np.ndarray, k: int) -> np.ndarray:
        """The sample indices of batch ``k`` in ``order``.

        Shape:
            - order: (N,); Output: (B,)
        """
        return order[k * self.batch_size:(k + 1) * self.batch_size]

    def _acquire_pool(self):
        """``(pool, owned)``: the persistent pool if idle, else a new pool owned by the caller."""
        user = self._pool_user() if self._pool_user is not None else None
        if self.persistent_workers and user is None:
            if self._pool is None or self._pool.closed:
                self._pool = self._new_pool()
            return self._pool, False
        return self._new_pool(), True

    def _new_pool(self) -> WorkerPool:
        return WorkerPool(self.dataset, self.num_workers, self.prefetch_factor, self.seed,
                          self.multiprocessing_context, self.worker_init_fn)

    def close(self) -> None:
        """Stop persistent workers now (they are started again by the next iteration)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pool"] = state["_pool_user"] = None
        return state

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} n={len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, epoch={self._epoch}, "
                f"num_workers={self.num_workers}"
                + ("" if self.sampler is None else f", sampler={self.sampler!r}") + ")")
