"""Ending every rank from this one: the rank table, ``MPI_Abort``, the excepthook.

The parts of the failure handling that :func:`glassnet.distributed.init` installs, each
given the world communicator (this module imports no process group);
:mod:`glassnet.distributed.failure` describes the whole of it and holds the forms
that find the world communicator themselves.
"""
from __future__ import annotations

import os
import socket
import sys
import time
import traceback

__all__ = ["install_excepthook", "installed_communicator", "abort_job", "announce_ranks", "remember_ranks",
           "rank_table", "rank_description", "exit_code", "failure_summary"]

_comm = None
_table: list = []
_FORWARD_S = 0.5  # seconds between printing the failure and MPI_Abort


def remember_ranks(table) -> None:
    """Keep the ``[(pid, host, local_rank), ...]`` table (indexed by rank) gathered by ``init()``."""
    global _table
    _table = list(table)


def rank_table() -> list:
    """``[(pid, host, local_rank), ...]`` indexed by rank (empty before ``init()`` on 2+ ranks)."""
    return list(_table)


def announce_ranks(table, stream=None) -> None:
    """Print the one-line rank table, e.g. ``glassnet.distributed: 2 ranks: rank 0 pid 81 on vm, rank 1 pid 82 on vm``."""
    stream = sys.stderr if stream is None else stream
    ranks = ", ".join(f"rank {r} pid {pid} on {host}" for r, (pid, host, _) in enumerate(table))
    stream.write(f"glassnet.distributed: {len(table)} ranks: {ranks}\n")
    stream.flush()


def installed_communicator():
    """The communicator :func:`install_excepthook` was given (``None`` before it ran)."""
    return _comm


def rank_description(comm) -> str:
    """``rank 1 of 4 (pid 1234 on node7)`` for this process, ``comm`` its world communicator."""
    return f"rank {comm.rank} of {comm.size} (pid {os.getpid()} on {socket.gethostname()})"


def abort_job(message: str, code: int, comm) -> None:
    """Print ``glassnet.distributed: <this rank>: <message>`` to stderr and end every rank
    of ``comm`` (MPI_Abort with ``code``). Does not return."""
    try:
        sys.stderr.write(f"glassnet.distributed: {rank_description(comm)} {message}; "
                         f"stopping all {comm.size} ranks (MPI_Abort)\n")
        sys.stderr.flush()
        sys.stdout.flush()
        # MPICH's mpiexec forwards a rank's output asynchronously and drops what it has not read
        # when an abort arrives: give it a moment to read the traceback and the line above
        time.sleep(_FORWARD_S)
    finally:
        try:
            comm.abort(code)  # the launcher kills every rank...
        finally:
            os._exit(code)    # ...and this one goes now, even if MPI_Abort returned (MPICH's may)


def exit_code(exc) -> int:
    """The status a rank leaving with ``exc`` ends the job with: 130 for Ctrl-C, a ``SystemExit``'s own, else 1."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, SystemExit):
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 1


def failure_summary(exc) -> str:
    """What the abort line says of ``exc``: ``failed: ValueError: <first line>`` or ``exited with status 2``."""
    if isinstance(exc, SystemExit):
        return f"exited with status {exc.code}"
    text = str(exc).strip().splitlines()
    return f"failed: {type(exc).__name__}: {text[0] if text else ''}".rstrip(": .")


def install_excepthook(comm) -> None:
    """Make an uncaught exception on this rank print its traceback and a line naming the
    rank, then abort every rank (instead of leaving the others waiting in a collective)."""
    global _comm
    _comm = comm
    if getattr(sys.excepthook, "_glassnet_distributed", False):
        return
    previous = sys.excepthook

    def hook(etype, value, tb):
        try:
            previous(etype, value, tb)
        except Exception:  # noqa: BLE001 - the abort below matters more than a broken hook
            traceback.print_exception(etype, value, tb)
        abort_job(failure_summary(value), exit_code(value) or 1, comm)

    hook._glassnet_distributed = True
    sys.excepthook = hook
