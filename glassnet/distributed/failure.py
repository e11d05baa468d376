"""When one rank fails, the whole job stops within seconds, naming the rank.

MPI's collectives wait for every rank: a rank that dies or leaves while the
others are inside an allreduce would leave them waiting forever. What the
library does about each way a rank can stop:

* **an uncaught exception** — :func:`install_excepthook` (done by
  ``init()`` when there are 2+ ranks) prints the traceback and one line
  ``glassnet.distributed: rank 1 of 4 (pid 1234 on node7) failed: ValueError: ...``
  to stderr, then calls ``MPI_Abort``: the launcher kills every other rank.
* **an exit with a non-zero status** (``sys.exit(1)`` after catching an
  error, as the ``glassnet`` command does) — Python calls no excepthook for
  ``SystemExit``, and ``MPI_Finalize`` on that rank would wait for the others.
  Wrap the program in :func:`abort_on_failure` (a context manager and
  decorator): an exception or non-zero ``SystemExit`` leaving it aborts the
  job the same way; a clean exit (status 0) passes through.
* **a killed rank** (``kill -9``, the out-of-memory killer) — nothing runs
  in the dead process; MPICH's ``mpiexec`` sees it die and kills the others
  at once, printing ``BAD TERMINATION ... PID <pid> ... Killed (signal 9)``.
  The rank/PID/host table rank 0 prints at ``init()`` (:func:`announce_ranks`)
  names the rank of that PID.
* **a stuck rank** (a deadlock, a rank that skipped a backward) —
  ``DistributedDataParallel(timeout_s=...)`` raises
  :class:`~glassnet.distributed.errors.DistributedTimeoutError` after that
  many seconds, which then aborts the job as above.

:func:`abort` is the explicit form: print a message naming this rank and end
every rank now.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import traceback

__all__ = ["install_excepthook", "abort", "abort_on_failure", "announce_ranks", "rank_table",
           "describe_rank"]

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


def describe_rank(comm=None) -> str:
    """``rank 1 of 4 (pid 1234 on node7)`` for this process."""
    comm = comm or _comm
    if comm is None:
        from .process_group import get_communicator

        comm = get_communicator()
    return f"rank {comm.rank} of {comm.size} (pid {os.getpid()} on {socket.gethostname()})"


def abort(message: str, code: int = 1, comm=None) -> None:
    """Print ``glassnet.distributed: <this rank>: <message>`` to stderr and end every rank
    of the job (MPI_Abort with ``code``). Does not return."""
    comm = comm or _comm
    if comm is None:
        from .process_group import get_communicator

        comm = get_communicator()
    try:
        sys.stderr.write(f"glassnet.distributed: {describe_rank(comm)} {message}; "
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


def _exit_code(exc) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, SystemExit):
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 1


def _summary(exc) -> str:
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
        abort(_summary(value), _exit_code(value) or 1, comm)

    hook._glassnet_distributed = True
    sys.excepthook = hook


@contextlib.contextmanager
def abort_on_failure(comm=None, *, report=None):
    """Run the block; an exception or a non-zero ``SystemExit`` leaving it aborts every
    rank (after printing the traceback, for exceptions). With one rank it does nothing.

        with glassnet.distributed.abort_on_failure():
            sys.exit(main())

    An :class:`~glassnet.distributed.agree.AgreedInterrupt` (raised on every rank at the
    same step after an agreed Ctrl-C stop) passes through: every rank exits by itself.
    ``report(exc)``, if given, prints the error instead of the traceback (the ``glassnet``
    command's one line) before the abort line.
    """
    from .agree import AgreedInterrupt

    if comm is None:
        from .process_group import get_communicator

        comm = get_communicator()
    try:
        yield
    except BaseException as exc:
        code = _exit_code(exc)
        if comm.size == 1 or code == 0 or isinstance(exc, AgreedInterrupt):
            raise
        if report is not None:
            report(exc)
        elif not isinstance(exc, SystemExit):
            traceback.print_exc()
        abort(_summary(exc), code, comm)
