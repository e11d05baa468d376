"""Communicators: the few collective operations data parallelism needs, behind one interface.

Everything in :mod:`glassnet.distributed` talks to the other ranks through a
:class:`Communicator`; nothing else imports ``mpi4py``. Two implementations:

* :class:`LocalCommunicator` — world size 1 (a plain ``python train.py``):
  every collective is the identity, no MPI library is needed or imported;
* :class:`MPICommunicator` — ``mpi4py`` over whatever MPI the wheel finds at
  run time (the ``mpich`` wheel of ``pip install 'glassnet[mpi]'``), host
  (NumPy) buffers only: the pip MPI wheels are not CUDA-aware.

A third one for GPU ranks — NCCL through ``cupy.cuda.nccl`` — only has to
implement the same methods (``iallreduce_`` on a CUDA stream returning a
:class:`Work` whose ``wait()`` synchronises the stream); the gradient
buckets of :mod:`glassnet.distributed.buckets` use nothing else.

Collectives follow MPI's rule: every rank calls the same collectives on a
communicator in the same order. Independent streams of collectives (the
gradient buckets, SyncBatchNorm's statistics) each get their own
communicator from :meth:`Communicator.dup`, so their orders cannot cross.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidTypeError, MissingDependencyError

__all__ = ["Communicator", "Work", "LocalCommunicator", "MPICommunicator", "import_mpi"]


def import_mpi():
    """``mpi4py.MPI``, or a :class:`MissingDependencyError` naming the pip extra."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise MissingDependencyError(
            "glassnet.distributed: this process was started by an MPI launcher (mpiexec) but mpi4py "
            f"cannot be imported ({exc}); install it with: pip install 'glassnet[mpi]' "
            "(mpi4py + the mpich wheel, no system MPI needed)"
        ) from exc
    return MPI


class Work:
    """A collective in flight (MPI request, NCCL stream event). ``test()`` makes
    progress and says whether it has finished; ``wait()`` blocks until it has."""

    def test(self) -> bool:
        return True

    def wait(self) -> None:
        return None


class Communicator:
    """The collective operations of one group of ranks (see the module docstring).

    Attributes:
        rank: this process's index in the group, 0 .. size − 1.
        size: the number of ranks.
        backend: ``"local"``, ``"mpi"`` (later ``"nccl"``).

    Shape: the array collectives take arrays of any shape (C-contiguous for
    MPI); every rank passes the same shape and dtype.
    """

    rank = 0
    size = 1
    backend = "local"

    def allreduce_(self, array):
        """Sum ``array`` over the ranks, in place (blocking). Returns ``array``."""
        raise NotImplementedError

    def iallreduce_(self, array) -> Work:
        """Start summing ``array`` over the ranks in place; the result is there
        once the returned :class:`Work` has finished. ``array`` must stay alive
        and untouched until then."""
        raise NotImplementedError

    def broadcast_(self, array, root: int = 0):
        """Overwrite ``array`` with root's (blocking, in place). Returns ``array``."""
        raise NotImplementedError

    def broadcast_object(self, obj, root: int = 0):
        """Root's picklable Python object, on every rank."""
        raise NotImplementedError

    def allgather_object(self, obj) -> list:
        """Every rank's ``obj``, as a list indexed by rank, on every rank."""
        raise NotImplementedError

    def barrier(self) -> None:
        raise NotImplementedError

    def dup(self) -> "Communicator":
        """A new communicator over the same ranks whose collectives never match this one's."""
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (MPI_Abort); does not return."""
        raise SystemExit(code)

    def progress(self, works) -> list:
        """Poke the collectives in ``works`` (so they advance while the caller computes);
        returns those not finished yet."""
        return [w for w in works if not w.test()]


class LocalCommunicator(Communicator):
    """World size 1: sums and broadcasts leave the data as it is."""

    def allreduce_(self, array):
        return array

    def iallreduce_(self, array) -> Work:
        return Work()

    def broadcast_(self, array, root: int = 0):
        return array

    def broadcast_object(self, obj, root: int = 0):
        return obj

    def allgather_object(self, obj) -> list:
        return [obj]

    def barrier(self) -> None:
        return None

    def dup(self) -> "Communicator":
        return LocalCommunicator()


class _MPIWork(Work):
    __slots__ = ("request", "done")

    def __init__(self, request):
        self.request = request
        self.done = False

    def test(self) -> bool:
        if not self.done:
            self.done = bool(self.request.Test())
        return self.done

    def wait(self) -> None:
        if not self.done:
            self.request.Wait()
            self.done = True


class MPICommunicator(Communicator):
    """Collectives of an ``mpi4py`` communicator (``MPI.COMM_WORLD`` by default)
    on NumPy arrays (contiguous; sums with ``MPI.SUM``, in place)."""

    backend = "mpi"

    def __init__(self, comm=None):
        MPI = import_mpi()
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.thread_multiple = MPI.Query_thread() == MPI.THREAD_MULTIPLE

    def _buffer(self, array, what):
        if not isinstance(array, np.ndarray):
            raise InvalidTypeError(
                f"MPICommunicator.{what}: expected a NumPy array, got {type(array).__name__}; the pip MPI "
                "wheels are not CUDA-aware, GPU arrays need a NCCL communicator"
            )
        if not array.flags.c_contiguous:
            raise InvalidTypeError(f"MPICommunicator.{what}: the array of shape {array.shape} is not "
                                   "C-contiguous; collectives work on one flat block of memory")
        return array

    def allreduce_(self, array):
        self.comm.Allreduce(self._MPI.IN_PLACE, self._buffer(array, "allreduce_"), op=self._MPI.SUM)
        return array

    def iallreduce_(self, array) -> Work:
        buf = self._buffer(array, "iallreduce_")
        return _MPIWork(self.comm.Iallreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM))

    def broadcast_(self, array, root: int = 0):
        self.comm.Bcast(self._buffer(array, "broadcast_"), root=root)
        return array

    def broadcast_object(self, obj, root: int = 0):
        return self.comm.bcast(obj, root=root)

    def allgather_object(self, obj) -> list:
        return self.comm.allgather(obj)

    def barrier(self) -> None:
        self.comm.Barrier()

    def dup(self) -> "Communicator":
        return MPICommunicator(self.comm.Dup())

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)

    def progress(self, works) -> list:
        # one MPI_Test per request: MPICH advances its collectives only inside MPI calls
        return [w for w in works if not w.test()]

