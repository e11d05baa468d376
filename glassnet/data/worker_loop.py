"""The body of a DataLoader worker process: build the batches asked for into shared memory.

Runs in the worker (:mod:`glassnet.data.worker_pool` starts it). Tasks come
down the worker's own task pipe as ``(iteration, batch, epoch, indices,
slot)``; the batch is built exactly as in the main process
(:mod:`glassnet.data.collate`) and written into its shared-memory slot
(:mod:`glassnet.data.shared_batches`); a small reply goes up the result pipe:
the layout, or what failed. The worker ignores SIGINT (Ctrl-C is the main
process's to handle), skips tasks of an iteration the main process has
abandoned, and exits when told to, when its pipe closes, or when it finds
itself orphaned (checked every second while idle).

Memory
------
A worker keeps the memory it frees for reuse (glibc's ``M_MMAP_MAX = 0`` and
a 2 GiB ``M_TRIM_THRESHOLD``, what :func:`glassnet.backend.retain_freed_memory`
does for ``glassnet train``'s main process): decoding and augmenting
allocate and free the same buffers for every sample, and re-faulting them
cost ~6 % of a worker's CPU in ``benchmarks/bench_loader_workers.py``. A
worker's resident memory then stays at its peak (one batch's work).

Randomness in a worker
----------------------
All of a sample's randomness comes from ``sample_rng(seed, epoch, index)``.
Code that reaches for a global generator anyway finds it reseeded before
every batch from ``SeedSequence([seed, epoch, batch, 0x6C6E])``: glassnet's
(:func:`glassnet.random.manual_seed`), NumPy's legacy ``np.random`` and
Python's ``random``. So no two workers share a stream, and what such code
draws depends on the batch, not on which worker built it.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import random
import signal
import traceback

import numpy as np

from .collate import has_get_item, iter_items
from .datasets import fetch_batch
from .shared_batches import WorkerSlots, write_batch, write_items

__all__ = ["WorkerInfo", "get_worker_info", "seed_worker_globals", "worker_loop"]

_PARENT_CHECK_S = 1.0
_worker_info = None


class WorkerInfo:
    """What :func:`get_worker_info` returns inside a worker: ``id``, ``num_workers``, ``seed``, ``dataset``."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


def get_worker_info() -> WorkerInfo | None:
    """This worker's :class:`WorkerInfo`; ``None`` in the main process (PyTorch's function)."""
    return _worker_info


def seed_worker_globals(seed: int, epoch: int, batch: int) -> None:
    """Reseed glassnet's, NumPy's legacy and Python's global generators for one batch."""
    from .. import random as gn_random

    ss = np.random.SeedSequence([int(seed), int(epoch), int(batch), 0x6C6E])
    gn_random.manual_seed(ss)
    state = ss.generate_state(4)
    np.random.seed(state)
    random.seed(int(state[0]) << 32 | int(state[1]))


def _describe(exc: BaseException, index) -> dict:
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:  # noqa: BLE001 - any exception may refuse to round-trip
        pickled = None
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return {"index": index, "type": name, "message": str(exc), "traceback": traceback.format_exc(),
            "pickled": pickled}


def _build(dataset, per_item: bool, slots: WorkerSlots, seed, epoch, indices, spec):
    """The layout of one batch written into its slot, and ``None``; on failure ``None`` and what failed."""
    idx = np.asarray(indices).reshape(-1).tolist()
    items = []
    try:
        if per_item:
            items.extend(item for _, item in iter_items(dataset, idx, seed, epoch))
            return write_items(slots, spec, items), None
        return write_batch(slots, spec, fetch_batch(dataset, indices)), None
    except BaseException as exc:  # noqa: BLE001 - reported to the main process, which raises
        return None, _describe(exc, idx[len(items)] if per_item and len(items) < len(idx) else None)


def _retain_freed_memory() -> None:
    """:func:`glassnet.backend.retain_freed_memory` for this process, without its library search."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc is loaded already
    except (OSError, AttributeError):  # not glibc: nothing to do
        return
    mallopt(-4, 0)  # M_MMAP_MAX
    mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD


def worker_loop(worker_id, num_workers, dataset, seed, init_fn, tasks, results, current):
    """Body of a worker process: build the batches asked for until told to stop or orphaned."""
    global _worker_info
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _retain_freed_memory()
    parent = os.getppid()
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    slots, per_item = WorkerSlots(), has_get_item(dataset)
    try:
        if init_fn is not None:
            try:
                init_fn(worker_id)
            except BaseException as exc:  # noqa: BLE001
                results.send(("error", -1, -1, _describe(exc, None), None))
                return
        while True:
            if not tasks.poll(_PARENT_CHECK_S):
                if os.getppid() != parent:
                    return  # the main process is gone
                continue
            task = tasks.recv()
            if task is None:
                return
            it, k, epoch, indices, spec = task
            if current.value != it:  # an abandoned iteration: skip at once
                results.send(("skip", it, k, None, None))
                continue
            seed_worker_globals(seed, epoch, k)
            slots.grown = None
            layout, failure = _build(dataset, per_item, slots, seed, epoch, indices, spec)
            try:
                results.send(("ok", it, k, layout, slots.grown) if failure is None
                             else ("error", it, k, failure, slots.grown))
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                results.send(("error", it, k, _describe(exc, None), slots.grown))
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        slots.close()
