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
import traceback

from .agree import AgreedInterrupt
from .process_group import get_communicator
from .rank_abort import abort_job, exit_code, failure_summary, installed_communicator, rank_description
from .rank_abort import announce_ranks, install_excepthook, rank_table, remember_ranks  # re-exported

__all__ = ["install_excepthook", "abort", "abort_on_failure", "announce_ranks", "rank_table",
           "describe_rank", "remember_ranks"]


def _world(comm):
    """``comm``, else the one the excepthook was installed with, else the world's."""
    comm = comm or installed_communicator()
    return get_communicator() if comm is None else comm


def describe_rank(comm=None) -> str:
    """``rank 1 of 4 (pid 1234 on node7)`` for this process."""
    return rank_description(_world(comm))


def abort(message: str, code: int = 1, comm=None) -> None:
    """Print ``glassnet.distributed: <this rank>: <message>`` to stderr and end every rank
    of the job (MPI_Abort with ``code``). Does not return."""
    abort_job(message, code, _world(comm))


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
    if comm is None:
        comm = get_communicator()
    try:
        yield
    except BaseException as exc:
        code = exit_code(exc)
        if comm.size == 1 or code == 0 or isinstance(exc, AgreedInterrupt):
            raise
        if report is not None:
            report(exc)
        elif not isinstance(exc, SystemExit):
            traceback.print_exc()
        abort(failure_summary(exc), code, comm)
