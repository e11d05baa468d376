"""Imported first by every benchmark script, before NumPy loads OpenBLAS.

Sets ``OPENBLAS_THREAD_TIMEOUT=4`` (unless already set), as the ``glassnet``
command does: OpenBLAS's threads then sleep right after each GEMM instead of
spinning for ~0.1 s, which leaves the cores to glassnet's kernel threads
(:mod:`glassnet.threads`). It does not change any thread count, and PyTorch
(OpenMP/oneDNN) does not read it. Run a script with
``OPENBLAS_THREAD_TIMEOUT=28`` (OpenBLAS's default) to measure without it.
"""
import os
import sys

if "numpy" in sys.modules:  # too late to take effect: say so instead of pretending
    print("note: NumPy was imported before _blas_env; OPENBLAS_THREAD_TIMEOUT left as it is", file=sys.stderr)
else:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
