"""How DataLoader workers are started.

Start method
------------
Workers are started with ``forkserver`` where the platform has it (Linux,
macOS), else ``spawn``. ``fork`` is not the default: it copies the parent
at an arbitrary moment, and a training process has threads (glassnet's
kernel pool of :mod:`glassnet.threads`, OpenBLAS's, tqdm's, a user's) whose
locks a forked child inherits held. The fork server is a single-threaded
process started once per main process (at the first iteration that needs
workers, never at import or construction) with NumPy and glassnet already
imported (``OPENBLAS_NUM_THREADS=1`` in it, so workers do not oversubscribe
the cores), this process's ``sys.path`` (as ``PYTHONPATH``) and the main
module loaded (:mod:`glassnet.data.forkserver_preload`); each worker is a fork
of it, so starting one costs a few milliseconds plus unpickling the dataset
(measured: ~3 ms more CPU per worker than ``fork``). Those variables are
then also in the workers' environment. ``multiprocessing_context="fork"``
remains available (datasets that cannot be pickled, or huge in-memory
datasets that should not be sent); ``benchmarks/bench_loader_workers.py``
measures both.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys

__all__ = ["default_start_method", "prepare_forkserver"]


def default_start_method() -> str:
    """``"forkserver"`` where available, else ``"spawn"`` (see the module docstring)."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def prepare_forkserver(ctx, dataset) -> None:
    """Start the fork server (once per main process) with single-threaded BLAS, this process's
    ``sys.path`` (Python passes it but the server ignores it), and NumPy, glassnet, the main module
    (:mod:`glassnet.data.forkserver_preload`), the dataset's module and what unpickling a worker needs
    preloaded: imported once, in the server, not again in every worker of every epoch. Does nothing
    if the server already runs (started by an earlier loader or by other code)."""
    from multiprocessing import forkserver, spawn

    server = forkserver._forkserver
    if getattr(server, "_forkserver_pid", None) is not None:
        return  # already running
    keys = ("init_main_from_name", "init_main_from_path", "sys_argv", "sys_path", "dir")
    main = {k: v for k, v in spawn.get_preparation_data("forkserver").items() if k in keys}
    preload = list(getattr(server, "_preload_modules", ["__main__"]))
    for name in ("glassnet.data.forkserver_preload", "glassnet.data.worker_loop", "multiprocessing.sharedctypes",
                 "runpy", type(dataset).__module__):
        if name not in preload and name != "__main__":
            preload.append(name)
    ctx.set_forkserver_preload(preload)
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "GLASSNET_FORKSERVER_MAIN": json.dumps(main),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        server.ensure_running()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
