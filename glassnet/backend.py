"""The array backend: which array module does the math, and the dtype policy.

Kernels never ``import numpy`` for math. They ask for the module that owns
their inputs with :func:`get_array_module`, so the same kernel code runs on
NumPy arrays (CPU) and CuPy arrays (GPU).

Dtype policy
------------
* Floating point data defaults to ``float32`` (:func:`get_default_dtype`).
* ``float64`` is used when asked for (``dtype=np.float64`` or by passing a
  float64 array); it is never chosen silently.
* Binary operations between float32 and float64 tensors raise instead of
  silently upcasting (see :func:`result_dtype`).
"""
from __future__ import annotations

import numpy as np
from .errors import GlassnetRuntimeError, InvalidArgumentError, InvalidTypeError

try:  # CuPy is optional; importing it must never fail glassnet.
    import cupy as _cupy  # type: ignore
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_default_dtype = np.dtype(np.float32)


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def is_channel_major(a) -> bool:
    """Whether ``a`` (N, C, …) is stored as a C-contiguous (C, N, …) array, as
    convolutions return their outputs (and not also plain C-contiguous)."""
    return a.ndim >= 2 and not a.flags.c_contiguous and a.swapaxes(0, 1).flags.c_contiguous


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # pragma: no cover - depends on the machine
        return False


def get_default_dtype() -> np.dtype:
    """The floating dtype used when none is given (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the default floating dtype: ``float32`` or ``float64``."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise InvalidTypeError(f"set_default_dtype: expected float32 or float64, got {dtype}")
    _default_dtype = dtype


def is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def result_dtype(op: str, *dtypes):
    """The dtype of a binary op's result, refusing silent float upcasts.

    Raises ``TypeError`` when float32 meets float64: convert one side
    explicitly (``t.astype(np.float64)``) instead.
    """
    floats = {np.dtype(d) for d in dtypes if is_float(d)}
    if len(floats) > 1:
        names = " and ".join(sorted(str(d) for d in floats))
        raise InvalidTypeError(
            f"{op}: operands have dtypes {names}; glassnet never upcasts silently. "
            "Convert one operand with .astype(...) first."
        )
    if floats:
        return floats.pop()
    return np.result_type(*dtypes)


def to_device(array, device: str):
    """Move ``array`` to ``'cpu'`` (NumPy) or ``'cuda'`` (CuPy)."""
    if device == "cpu":
        if _cupy is not None and isinstance(array, _cupy.ndarray):
            return _cupy.asnumpy(array)
        return np.asarray(array)
    if device in ("cuda", "gpu"):
        if _cupy is None:
            raise GlassnetRuntimeError("to_device('cuda'): CuPy is not installed (pip install glassnet[gpu])")
        return _cupy.asarray(array)
    raise InvalidArgumentError(f"to_device: unknown device {device!r}; expected 'cpu' or 'cuda'")


def device_of(array) -> str:
    """``'cuda'`` for a CuPy array, ``'cpu'`` otherwise."""
    return "cuda" if get_array_module(array) is not np else "cpu"


def to_numpy(array) -> np.ndarray:
    """A NumPy copy/view of any backend array."""
    return to_device(array, "cpu")


def retain_freed_memory() -> bool:
    """Ask the C allocator (glibc's malloc) to keep freed memory for reuse.

    A training step allocates and frees the same large temporaries every
    step (im2col columns, their gradients, activations). By default glibc
    serves blocks above 32 MiB with ``mmap`` and unmaps them on ``free``, so
    every step pays the page faults of touching fresh memory again — about
    30 % of a VGG16 training step on a 2-core machine (1.57 s vs 2.25 s,
    measured). This sets ``M_MMAP_MAX = 0`` and a 2 GiB ``M_TRIM_THRESHOLD``:
    freed memory stays in the process and is reused; peak RSS is unchanged,
    but the process does not give memory back to the OS while it runs.

    It changes the allocator of the whole process, so glassnet never calls
    it on import; applications opt in (``glassnet train`` and the benchmarks
    do). Returns True when applied, False where there is no glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))
