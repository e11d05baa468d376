"""Entry point of the ``glassnet`` command (kept outside the package on purpose).

Before anything imports NumPy it asks OpenBLAS to put its threads to sleep
right after each GEMM (``OPENBLAS_THREAD_TIMEOUT=4``) instead of spinning
for ~0.1 s on every core; the kernels' own worker threads
(:mod:`glassnet.threads`) need those cores between GEMMs. OpenBLAS reads the
variable once, when NumPy loads it, which is why this cannot live in
``glassnet`` itself (importing the package loads NumPy) — and the library
never changes the environment on import. A value already set is kept.
Inside glassnet's kernels the BLAS is held to one thread anyway
(:mod:`glassnet.blas_threads`); this covers NumPy's GEMMs outside them.
"""
import os
import sys


def main():
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    from glassnet.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
