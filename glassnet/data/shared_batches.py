"""A ring of shared-memory slots that carries whole batches from DataLoader workers to the main process.

The scheme
----------
The main process owns the *slots* (``prefetch_factor * num_workers`` to
begin with, one more whenever all are taken); each batch in flight, and each
batch the user still holds, has one. A slot is a POSIX shared-memory segment
(:class:`multiprocessing.shared_memory.SharedMemory`) whose names the main
process chooses: ``gn<pid><token>_<slot>_<generation>``. A task sent to a
worker carries its slot's current segment (name and size) and the name the
next, larger generation would get. The worker writes the batch's arrays
into the segment (64-byte aligned, one after the other; samples of
``get_item`` datasets go straight into place, with no intermediate
``np.stack``). Only when the batch does not fit (the slot's first use, or a
bigger batch) does the worker create the next generation, sized to the
batch; the main process then attaches it and unlinks the old one. So the
pipes carry only small layout tuples, never pixels, and segments are created
only a handful of times per pool, not per batch.

The main process does not copy a batch out: the arrays it yields are views
of the slot's memory, and the slot returns to the ring only when the last of
them is garbage-collected (a batch the user keeps stays valid; the ring then
gets a new slot). So a batch is written once, by the worker, into memory that
is already mapped and faulted in, and read in place. When the pool shuts
down the main process unlinks every segment it knows, including a next
generation a dead worker may have created without reporting it; batches
still alive keep their (nameless) memory until they are freed. Segments are
registered with multiprocessing's resource tracker, which unlinks them
should the main process itself be killed.

Arrays of ``object`` dtype and anything that is not an array travel pickled
in the layout instead.
"""
from __future__ import annotations

import mmap
import os
import secrets
import weakref
from multiprocessing import resource_tracker, shared_memory

import numpy as np

from .collate import stack_labels

__all__ = ["SlotRing", "WorkerSlots", "write_batch", "write_items", "read_batch", "ALIGN"]

ALIGN = 64  # bytes; every array in a slot starts on a cache line
_PAGE = 4096


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _posix():
    try:
        import _posixshmem
    except ImportError:  # pragma: no cover - Windows
        from ..errors import GlassnetRuntimeError
        raise GlassnetRuntimeError("DataLoader: num_workers > 0 needs POSIX shared memory (Linux, macOS)") from None
    return _posixshmem


def _attach(name: str) -> mmap.mmap:
    """Map segment ``name`` (no SharedMemory object: the mapping lives as long as arrays use it)."""
    fd = _posix().shm_open("/" + name, os.O_RDWR, mode=0o600)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _unlink(name: str, missing_ok: bool = False) -> None:
    """Remove segment ``name`` and its resource-tracker entry (registered by the worker that created it)."""
    resource_tracker.register("/" + name, "shared_memory")  # idempotent: keeps register/unregister paired
    try:
        _posix().shm_unlink("/" + name)
    except FileNotFoundError:
        if not missing_ok:  # pragma: no cover
            raise
    finally:
        resource_tracker.unregister("/" + name, "shared_memory")


class SlotRing:
    """The main process's slots (see the module docstring).

    ``acquire()`` a slot for a task (a new one if all are busy), send ``spec(slot)`` with it, call
    ``grown(slot, name, size)`` when the worker reports a new generation, ``read(slot, layout)`` for the
    batch. The slot comes back by itself when the arrays of that batch are garbage-collected (the
    batch *is* the slot's memory: no copy), or by ``release(slot)`` for a task that brought no batch.
    """

    def __init__(self, n_slots: int):
        self.prefix = f"gn{os.getpid()}{secrets.token_hex(3)}"
        self._gen: list[int] = []
        self._map: list[mmap.mmap | None] = []
        self._free: list[int] = []
        for _ in range(n_slots):
            self._new_slot()
        self._free.reverse()
        self.closed = False

    def _new_slot(self) -> int:
        self._gen.append(0)
        self._map.append(None)
        self._free.append(len(self._gen) - 1)
        return len(self._gen) - 1

    def name(self, slot: int, gen: int) -> str:
        return f"{self.prefix}_{slot}_{gen}"

    def acquire(self) -> int:
        if not self._free:
            self._new_slot()
        return self._free.pop()

    def release(self, slot: int) -> None:
        if not self.closed:
            self._free.append(slot)

    @property
    def n_slots(self) -> int:
        return len(self._gen)

    def spec(self, slot: int) -> tuple:
        """``(slot, current name or None, current size, next generation's name)`` for a task."""
        mm, gen = self._map[slot], self._gen[slot]
        return (slot, None if mm is None else self.name(slot, gen), 0 if mm is None else len(mm),
                self.name(slot, gen + 1))

    def grown(self, slot: int, name: str, size: int) -> None:
        """Adopt the next generation a worker created for ``slot``; unlink the previous one."""
        new = _attach(name)
        if self._map[slot] is not None:
            _unlink(self.name(slot, self._gen[slot]))
        self._map[slot] = new
        self._gen[slot] += 1

    def read(self, slot: int, layout):
        """The batch described by ``layout``, its arrays viewing ``slot``'s memory; the slot is released
        when they are all gone."""
        mm = self._map[slot]
        if mm is None or not any(f[0] == "shm" for f in (layout[1] if layout[0] != "object" else ())):
            self.release(slot)
            return read_batch(None, layout)
        base = np.frombuffer(mm, dtype=np.uint8)
        weakref.finalize(base, self.release, slot).atexit = False
        return read_batch(base, layout)

    def close(self) -> None:
        """Unlink every segment of the ring (also next generations a dead worker may have left).
        Batches still in use keep their memory until they are garbage-collected."""
        if self.closed:
            return
        self.closed = True
        for slot, mm in enumerate(self._map):
            if mm is not None:
                _unlink(self.name(slot, self._gen[slot]), missing_ok=True)
                self._map[slot] = None
            _unlink(self.name(slot, self._gen[slot] + 1), missing_ok=True)


class WorkerSlots:
    """A worker's attachments to the ring's segments, one per slot, reused from task to task."""

    def __init__(self):
        self._open: dict[int, shared_memory.SharedMemory] = {}
        self.grown = None  # (name, size) of the generation created by the last buffer() call

    def buffer(self, spec, need: int) -> memoryview:
        """A buffer of at least ``need`` bytes for the task's slot (creating the next generation if needed)."""
        slot, name, size, spare = spec
        shm = self._open.get(slot)
        self.grown = None
        if need > size or name is None:
            new = shared_memory.SharedMemory(spare, create=True, size=max(-(-need // _PAGE) * _PAGE, _PAGE))
            self.grown = (new.name, new.size)
        elif shm is not None and shm.name == name:
            return shm.buf
        else:
            new = shared_memory.SharedMemory(name)
        if shm is not None:
            shm.close()
        self._open[slot] = new
        return new.buf

    def close(self) -> None:
        for shm in self._open.values():
            shm.close()
        self._open.clear()


def _plan(fields):
    """Offsets of the shareable arrays among ``fields`` and the bytes they need."""
    offsets, need = [], 0
    for f in fields:
        if isinstance(f, np.ndarray) and not f.dtype.hasobject:
            offsets.append(need)
            need += _aligned(f.nbytes)
        else:
            offsets.append(None)
    return offsets, need


def _view(base, offset, shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if base is None or n == 0:
        return np.zeros(shape, dtype)
    return base[offset:offset + n].view(dtype).reshape(shape)


def _place(buf, offset, shape, dtype) -> np.ndarray:
    return np.ndarray(shape, dtype=dtype, buffer=buf, offset=offset)


def write_batch(slots: WorkerSlots, spec, batch):
    """Write ``batch`` (an array, or a tuple/list of arrays and other values) into the task's slot.

    Returns the layout :func:`read_batch` rebuilds it from.

    Shape:
        - batch: e.g. ``(x (B, C, H, W), y (B,))``; any arrays, any dtype but object
    """
    if isinstance(batch, np.ndarray):
        kind, fields = "array", [batch]
    elif type(batch) in (tuple, list):
        kind, fields = type(batch).__name__, list(batch)
    else:
        return ("object", batch)
    offsets, need = _plan(fields)
    buf = slots.buffer(spec, need) if need else None
    out = []
    for f, off in zip(fields, offsets):
        if off is None:
            out.append(("obj", f))
        else:
            _place(buf, off, f.shape, f.dtype)[...] = f
            out.append(("shm", off, f.shape, f.dtype))
    return (kind, out)


def write_items(slots: WorkerSlots, spec, items):
    """Collate ``(sample, target)`` pairs straight into the task's slot; bitwise equal to
    :func:`~glassnet.data.collate.collate_items` (which it falls back to for mixed samples).

    Shape:
        - items: B pairs, samples of one shape ``S`` and dtype
        - layout of ``(x (B, *S), y (B,))``
    """
    from .collate import collate_items

    xs = [x for x, _ in items]
    x0 = xs[0] if xs else None
    if not (isinstance(x0, np.ndarray) and not x0.dtype.hasobject
            and all(isinstance(x, np.ndarray) and x.shape == x0.shape and x.dtype == x0.dtype for x in xs)):
        return write_batch(slots, spec, collate_items(items))
    y = stack_labels([t for _, t in items])
    x_shape = (len(xs),) + x0.shape
    x_bytes = _aligned(len(xs) * x0.nbytes)
    y_shared = not y.dtype.hasobject
    buf = slots.buffer(spec, x_bytes + (_aligned(y.nbytes) if y_shared else 0))
    x_view = _place(buf, 0, x_shape, x0.dtype)
    for j, x in enumerate(xs):
        x_view[j] = x
    if not y_shared:
        return ("tuple", [("shm", 0, x_shape, x0.dtype), ("obj", y)])
    _place(buf, x_bytes, y.shape, y.dtype)[...] = y
    return ("tuple", [("shm", 0, x_shape, x0.dtype), ("shm", x_bytes, y.shape, y.dtype)])


def read_batch(base, layout):
    """Rebuild the batch :func:`write_batch` / :func:`write_items` wrote, as views of ``base``
    (a uint8 array over the slot's memory)."""
    kind, body = layout
    if kind == "object":
        return body
    fields = [f[1] if f[0] == "obj" else _view(base, f[1], f[2], f[3]) for f in body]
    if kind == "array":
        return fields[0]
    return tuple(fields) if kind == "tuple" else fields
