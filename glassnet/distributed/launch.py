"""``glassnet train --nproc N``: start the ranks with the ``mpiexec`` that belongs to mpi4py.

    glassnet train --nproc 2 --model mlp ...      # is
    mpiexec -n 2 python -m glassnet_command train --model mlp ...

:func:`find_mpiexec` looks for the launcher of the MPI library mpi4py uses,
in this order: ``$GLASSNET_MPIEXEC`` (a path you choose), the ``mpiexec``
next to this Python (where the ``mpich`` wheel of ``pip install
'glassnet[mpi]'`` installs it), the one next to the ``mpicc`` mpi4py was
configured with, then ``mpiexec`` on ``PATH``. Without mpi4py, or with no
``mpiexec`` found, it raises a :class:`~glassnet.errors.MissingDependencyError`
of one line saying what to install.

:func:`launch` runs ``mpiexec -n N <this python> -m glassnet_command <argv>`` as a
child in its own process group and waits for it: Ctrl-C (SIGINT) or SIGTERM
reaching this process is forwarded to ``mpiexec`` once (MPICH's mpiexec
passes it on to every rank: the ranks agree to stop, rank 0 saves a
checkpoint), and the exit status is mpiexec's. The launcher environment of
an outer MPI job (``PMI_*``, ``OMPI_*``, ...) is not passed on.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import MissingDependencyError, UsageError

__all__ = ["MPIEXEC_ENV", "find_mpiexec", "mpiexec_command", "strip_nproc", "launch", "nproc_of"]

#: environment variable naming the mpiexec to use
MPIEXEC_ENV = "GLASSNET_MPIEXEC"
_OUTER_LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "HYDRA_",
                            "MV2_COMM_WORLD")


def find_mpiexec() -> str:
    """The path of the ``mpiexec`` belonging to the installed mpi4py (see the module docstring)."""
    chosen = os.environ.get(MPIEXEC_ENV)
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise MissingDependencyError(f"${MPIEXEC_ENV}={chosen}: not an executable file")
        return chosen
    if importlib.util.find_spec("mpi4py") is None:
        raise MissingDependencyError("--nproc needs mpi4py and an MPI library: pip install 'glassnet[mpi]' "
                                     "(mpi4py + the mpich wheel, no system MPI needed)")
    candidates = [Path(sys.executable).parent / "mpiexec"]
    try:
        import mpi4py

        mpicc = (mpi4py.get_config() or {}).get("mpicc")
        if mpicc:
            candidates.append(Path(mpicc).parent / "mpiexec")
    except Exception:  # noqa: BLE001 - a broken mpi4py config only loses one candidate
        pass
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("mpiexec")
    if found:
        return found
    raise MissingDependencyError("--nproc: mpi4py is installed but no mpiexec was found (next to "
                                 f"{sys.executable}, beside mpi4py's mpicc, or on PATH); pip install mpich, "
                                 f"or set ${MPIEXEC_ENV} to your MPI's mpiexec")


def strip_nproc(argv) -> list:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (the ranks get the rest)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == "--nproc":
            skip = True
            continue
        if item.startswith("--nproc="):
            continue
        out.append(item)
    return out


def nproc_of(argv):
    """The N of ``--nproc N`` / ``--nproc=N`` in ``argv`` (``None`` without it)."""
    argv = list(argv)
    for i, item in enumerate(argv):
        text = argv[i + 1] if item == "--nproc" and i + 1 < len(argv) else (
            item.split("=", 1)[1] if item.startswith("--nproc=") else None)
        if text is not None:
            if not text.isdigit() or int(text) < 1:
                raise UsageError(f"--nproc must be an integer >= 1, got {text!r}")
            return int(text)
        if item == "--nproc":
            raise UsageError("--nproc needs a number of ranks")
    return None


def mpiexec_command(nproc: int, argv, mpiexec: str | None = None) -> list:
    """``[mpiexec, "-n", N, python, "-m", "glassnet_command", *argv]`` (``--nproc`` removed from ``argv``)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise UsageError(f"--nproc must be an integer >= 1, got {nproc!r}")
    entry = "glassnet_command" if importlib.util.find_spec("glassnet_command") else "glassnet.cli"
    return [mpiexec or find_mpiexec(), "-n", str(nproc), sys.executable, "-m", entry, *strip_nproc(argv)]


def _child_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(_OUTER_LAUNCHER_PREFIXES)}


def launch(nproc: int, argv, *, mpiexec: str | None = None) -> int:
    """Run ``argv`` (``glassnet`` arguments, e.g. ``["train", "--model", "mlp"]``) on ``nproc`` ranks
    under mpiexec and return its exit status (forwarding Ctrl-C / SIGTERM to it once)."""
    command = mpiexec_command(nproc, argv, mpiexec)
    sys.stdout.flush()
    sys.stderr.flush()
    proc = subprocess.Popen(command, env=_child_env(), start_new_session=True)
    forwarded = set()

    def forward(signum, frame):
        if signum not in forwarded and proc.poll() is None:
            forwarded.add(signum)
            proc.send_signal(signum)

    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {}
    try:
        for s in watched:
            previous[s] = signal.signal(s, forward)
    except ValueError:  # not the main thread: no signal forwarding
        pass
    try:
        return proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc.poll() is None:  # this process is leaving early: take the job with it
            proc.kill()
            proc.wait()


def route(main, argv) -> int:
    """The ``glassnet`` command's entry: ``glassnet train --nproc N ...`` starts mpiexec
    (:func:`launch`); a rank started by an MPI launcher runs ``main(argv)`` under
    :func:`glassnet.distributed.training.run_command` (a failing rank ends the job, naming
    itself); anything else is ``main(argv)``."""
    from .process_group import launched_by_mpi

    argv = list(argv)
    try:
        nproc = nproc_of(argv) if argv[:1] == ["train"] else None
        if nproc is not None and launched_by_mpi():
            raise UsageError("--nproc starts mpiexec itself: give either --nproc N or mpiexec -n N, not both")
        if nproc is not None:
            return launch(nproc, argv)
    except (UsageError, MissingDependencyError) as exc:
        sys.stderr.write(f"glassnet {argv[0]}: error: {exc}\n")
        return 2 if isinstance(exc, UsageError) else 1
    if launched_by_mpi():
        from .training import run_command

        return run_command(main, argv)
    return main(argv)
