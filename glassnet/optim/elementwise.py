"""Element-wise update helpers: float32 scalars and cache-sized slices."""
from __future__ import annotations

import threading

import numpy as np

from ..backend import get_array_module
from ..threads import parallel_for


def _scalar(dtype, value):
    """``value`` as a scalar of ``dtype`` (so float32 math stays float32)."""
    return np.dtype(dtype).type(value)


_CHUNK = 1 << 18  # elements per slice of an in-place update (1 MiB of float32)


class Workspace:
    """Scratch arrays kept between steps for the updates of arrays too small
    to slice, per thread and dtype, so a step allocates nothing for them.

    Shape: :meth:`arrays` returns arrays of the requested shape (views of
    flat buffers that grow to the largest size asked for).
    """

    def __init__(self):
        self._buffers: dict = {}

    def arrays(self, count: int, like) -> list:
        """``count`` uninitialised C-contiguous arrays of ``like``'s shape and dtype."""
        key = (threading.get_ident(), like.dtype)
        flat = self._buffers.get(key)
        if flat is None or len(flat) < count or flat[0].size < like.size:
            size = max(like.size, flat[0].size if flat else 0)
            flat = self._buffers[key] = [np.empty(size, dtype=like.dtype) for _ in range(count)]
        return [f[:like.size].reshape(like.shape) for f in flat[:count]]


def for_slices(work, *arrays, scratch: int = 0, workspace: Workspace | None = None) -> None:
    """``work(*slices, *buffers)`` over matching 1-D slices of ``CHUNK`` elements of
    same-shaped C-contiguous NumPy ``arrays``, so an update's passes over
    memory stay in cache instead of streaming parameter-sized arrays (VGG's
    FC6 weight alone is 411 MB); the slices are shared out over the kernel
    threads (:mod:`glassnet.threads`). Small or other arrays: one
    ``work(*arrays, *buffers)``. ``buffers`` are ``scratch`` uninitialised
    arrays of the first array's dtype and of each slice's shape (allocated
    once per thread, reused for every slice), so ``work`` can write its
    intermediate results with ``out=`` instead of allocating temporaries;
    for NumPy arrays too small to slice they come from ``workspace`` when given.
    Element-wise updates give the same result either way."""
    first = arrays[0]
    chunk = _CHUNK
    if first.size <= chunk or not all(isinstance(a, np.ndarray) and a.flags.c_contiguous
                                      and a.shape == first.shape for a in arrays):
        if workspace is not None and scratch and isinstance(first, np.ndarray):
            work(*arrays, *workspace.arrays(scratch, first))
        else:
            xp = get_array_module(first)
            work(*arrays, *[xp.empty_like(first) for _ in range(scratch)])
        return
    flats = [a.reshape(-1) for a in arrays]
    n_slices = -(-first.size // chunk)

    def run(lo, hi):
        buffers = [np.empty(chunk, dtype=first.dtype) for _ in range(scratch)]
        for i in range(lo, hi):
            parts = [f[i * chunk:(i + 1) * chunk] for f in flats]
            n = parts[0].size
            work(*parts, *(buffers if n == chunk else [b[:n] for b in buffers]))

    parallel_for(n_slices, run, first.size)
