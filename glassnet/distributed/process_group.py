"""The process group: who this process is among the ranks of a data-parallel job.

    import glassnet.distributed as dist
    dist.init()                      # from mpiexec's environment; world size 1 without it
    dist.rank(), dist.world_size()   # 0 .. N-1, N
    if dist.is_main_process(): ...   # rank 0 writes files, prints progress

``init()`` reads the launcher's environment: MPICH / Intel MPI (``PMI_RANK``,
``PMI_SIZE``), Open MPI (``OMPI_COMM_WORLD_SIZE``), PMIx (``PMIX_RANK``),
MVAPICH (``MV2_COMM_WORLD_SIZE``). Started by one of them, it imports
``mpi4py`` (``MPI_Init``) and makes the world communicator; started as a plain
``python`` process, it makes a world of size 1 and imports no MPI at all, so
single-process training needs no MPI installed. Every accessor below calls
``init()`` on first use, so a Trainer can simply ask ``world_size() > 1``.

With more than one rank, ``init()`` also installs the failure handling of
:mod:`glassnet.distributed.failure` (an uncaught exception on any rank ends
the whole job within seconds, naming the rank) and, on rank 0, prints one
line mapping ranks to process ids and hosts: if a rank is killed (kill -9,
out of memory), the launcher names only its PID, and that line names the rank.
"""
from __future__ import annotations

import os
import socket

from ..errors import InvalidArgumentError
from .comm import Communicator, LocalCommunicator, MPICommunicator
from .rank_abort import announce_ranks, install_excepthook, remember_ranks

__all__ = ["init", "is_initialized", "launched_by_mpi", "get_communicator", "rank", "world_size",
           "local_rank", "is_main_process", "barrier", "broadcast_object", "all_gather_object",
           "sync_batchnorm_communicator", "shutdown"]

_LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK",
                         "PMIX_LOCAL_RANK")

_world: Communicator | None = None
_local_rank = 0
_sync_bn: Communicator | None = None


def launched_by_mpi(environ=None) -> bool:
    """Whether an MPI launcher (mpiexec, mpirun, srun with PMI/PMIx) started this process."""
    env = os.environ if environ is None else environ
    return any(name in env for name in _LAUNCHER_VARIABLES)


def init(backend: str = "auto", *, abort_on_exception: bool = True, announce: bool = True) -> Communicator:
    """Join the job's ranks; returns the world :class:`~glassnet.distributed.comm.Communicator`.

    Args:
        backend: ``"auto"`` (MPI when started by an MPI launcher, else a world
            of size 1), ``"mpi"`` (always MPI: ``mpi4py`` must be installed)
            or ``"local"`` (size 1, even under mpiexec — every rank alone).
        abort_on_exception: with more than one rank, make an uncaught
            exception on any rank abort the whole job (see
            :func:`glassnet.distributed.failure.install_excepthook`).
        announce: with more than one rank, rank 0 prints the rank/PID/host
            table to stderr.

    Calling it again returns the communicator of the first call.
    """
    global _world, _local_rank
    if backend not in ("auto", "mpi", "local"):
        raise InvalidArgumentError(f"glassnet.distributed.init: backend must be 'auto', 'mpi' or 'local', "
                                   f"got {backend!r}")
    if _world is not None:
        return _world
    use_mpi = backend == "mpi" or (backend == "auto" and launched_by_mpi())
    world = MPICommunicator() if use_mpi else LocalCommunicator()
    _local_rank = _find_local_rank(world)
    _world = world
    if world.size > 1:
        if abort_on_exception:
            install_excepthook(world)
        table = world.allgather_object((os.getpid(), socket.gethostname(), _local_rank))
        remember_ranks(table)
        if announce and world.rank == 0:
            announce_ranks(table)
    return world


def _find_local_rank(world) -> int:
    for name in _LOCAL_RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    if isinstance(world, MPICommunicator):  # ranks sharing this node's memory, by rank
        MPI = world._MPI
        node = world.comm.Split_type(MPI.COMM_TYPE_SHARED, key=world.rank)
        try:
            return node.Get_rank()
        finally:
            node.Free()
    return 0


def is_initialized() -> bool:
    """Whether :func:`init` has run in this process."""
    return _world is not None


def get_communicator() -> Communicator:
    """The world communicator (calls :func:`init` if needed)."""
    return _world if _world is not None else init()


def rank() -> int:
    """This process's rank, 0 .. world_size() − 1."""
    return get_communicator().rank


def world_size() -> int:
    """The number of ranks (1 without an MPI launcher)."""
    return get_communicator().size


def local_rank() -> int:
    """This process's index among the ranks on its own machine (picks its GPU)."""
    get_communicator()
    return _local_rank


def is_main_process() -> bool:
    """True on rank 0, the rank that writes run folders, checkpoints and progress."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank has called ``barrier()``."""
    get_communicator().barrier()


def broadcast_object(obj, root: int = 0):
    """``root``'s picklable object on every rank (e.g. a resume position, a run folder name)."""
    return get_communicator().broadcast_object(obj, root)


def all_gather_object(obj) -> list:
    """Every rank's object, as a list indexed by rank, on every rank."""
    return get_communicator().allgather_object(obj)


def sync_batchnorm_communicator() -> Communicator:
    """The communicator every :class:`~glassnet.distributed.SyncBatchNorm` uses:
    a duplicate of the world's, so its collectives never meet the gradient buckets'.
    Created on first use (collectively: every rank's first SyncBatchNorm forward)."""
    global _sync_bn
    if _sync_bn is None:
        _sync_bn = get_communicator().dup()
    return _sync_bn


def shutdown() -> None:
    """Wait for every rank (a barrier), then forget the process group (MPI itself is
    finalised by mpi4py when the process exits)."""
    global _world, _sync_bn
    if _world is not None:
        _world.barrier()
    _world = _sync_bn = None
