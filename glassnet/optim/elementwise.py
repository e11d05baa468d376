"""Element-wise update helpers: float32 scalars and cache-sized slices."""
from __future__ import annotations

import numpy as np

from ..threads import parallel_for


def _scalar(dtype, value):
    """``value`` as a scalar of ``dtype`` (so float32 math stays float32)."""
    return np.dtype(dtype).type(value)


_CHUNK = 1 << 18  # elements per slice of an in-place update (1 MiB of float32)


def for_slices(work, *arrays) -> None:
    """``work(*slices)`` over matching 1-D slices of ``CHUNK`` elements of
    same-shaped C-contiguous NumPy ``arrays``, so an update's temporaries stay
    cache-sized instead of parameter-sized (VGG's FC6 weight alone is
    411 MB); the slices are shared out over the kernel threads
    (:mod:`glassnet.threads`). Small or other arrays: one ``work(*arrays)``.
    Element-wise updates give the same result either way."""
    first = arrays[0]
    if first.size <= _CHUNK or not all(isinstance(a, np.ndarray) and a.flags.c_contiguous
                                       and a.shape == first.shape for a in arrays):
        work(*arrays)
        return
    flats = [a.reshape(-1) for a in arrays]
    n_slices = -(-first.size // _CHUNK)

    def run(lo, hi):
        for i in range(lo, hi):
            work(*[f[i * _CHUNK:(i + 1) * _CHUNK] for f in flats])

    parallel_for(n_slices, run, first.size)
