"""Decisions every rank takes together: stop now, the step's global sums, rank 0's answer.

A training loop under MPI must take the same branch on every rank, or one
rank waits forever in a collective the others skipped. Three helpers, each
one collective on the world communicator (so every rank must call it at the
same point):

* :func:`any_rank` — ``True`` on every rank when at least one rank says so
  (an allreduced stop flag: Ctrl-C reached one rank, or all of them, and
  every rank stops after the same step);
* :func:`sum_over_ranks` — float64 sums of a few numbers (a step's loss sum,
  correct count and sample count: the global batch's metrics, identical on
  every rank, so rank 0's checkpoint holds them for all);
* :func:`on_main` — run a function on rank 0 only (check or create the run
  folder, pick its name) and hand its result, or the exception it raised,
  to every rank: a refusal becomes the same error on every rank, not an
  error on one and a hang on the others.

:class:`AgreedInterrupt` is the ``KeyboardInterrupt`` raised on every rank
at the same step after an agreed stop: the program may exit normally on
every rank (no ``MPI_Abort``; see :func:`glassnet.distributed.failure.abort_on_failure`).
"""
from __future__ import annotations

import numpy as np

from .errors import DistributedError

__all__ = ["AgreedInterrupt", "any_rank", "sum_over_ranks", "on_main"]


class AgreedInterrupt(KeyboardInterrupt):
    """Raised on every rank at the same step when the ranks agreed to stop (Ctrl-C)."""


def _world(comm):
    if comm is None:
        from .process_group import get_communicator

        comm = get_communicator()
    return comm


def any_rank(flag: bool, comm=None) -> bool:
    """Whether ``flag`` is true on at least one rank (the same answer on every rank; collective)."""
    comm = _world(comm)
    if comm.size == 1:
        return bool(flag)
    buf = np.array([1 if flag else 0], dtype=np.int64)
    comm.allreduce_(buf)
    return bool(buf[0] > 0)


def sum_over_ranks(values, comm=None) -> list:
    """The float64 sums over the ranks of the numbers in ``values`` (collective; same length on every rank).

    Shape: ``values`` (K,) numbers -> a list of K floats.
    """
    comm = _world(comm)
    buf = np.array(values, dtype=np.float64).reshape(-1)
    if comm.size > 1:
        comm.allreduce_(buf)
    return buf.tolist()


def on_main(fn, *args, comm=None, **kwargs):
    """``fn(*args, **kwargs)`` run on rank 0 only; its result on every rank, or the exception it raised
    re-raised on every rank (the same type and message; a :class:`DistributedError` carrying its text
    when it does not pickle). Collective."""
    comm = _world(comm)
    if comm.size == 1:
        return fn(*args, **kwargs)
    outcome = None
    if comm.rank == 0:
        try:
            outcome = ("ok", fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to every rank, raised there
            outcome = ("error", exc)
        try:
            outcome = comm.broadcast_object(outcome, 0)
        except Exception:  # noqa: BLE001 - an unpicklable result or error: send its text
            text = f"{type(outcome[1]).__name__}: {outcome[1]}"
            outcome = comm.broadcast_object(("error", DistributedError(f"rank 0: {text}")), 0)
    else:
        outcome = comm.broadcast_object(None, 0)
    kind, value = outcome
    if kind == "error":
        raise value
    return value
