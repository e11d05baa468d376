"""Data-parallel training over MPI: one model per process, gradients averaged.

    pip install 'glassnet[mpi]'            # mpi4py + the mpich wheel, no system MPI
    mpiexec -n 4 python train.py

    import glassnet.distributed as dist
    dist.init()                                         # world size 1 without mpiexec
    model = dist.convert_sync_batchnorm(build_model())  # optional: global-batch BN statistics
    model = dist.DistributedDataParallel(model, bucket_mb=25)
    sampler = dist.DistributedSampler(train_set, shuffle=True, seed=0)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in batches_of(train_set, sampler.indices(), batch_size):  # per rank
            ...forward, loss.backward() (gradients averaged), optimizer.step()

Pieces, one file each:

* :mod:`.process_group` — ``init()``, ``rank()``, ``world_size()``,
  ``local_rank()``, ``is_main_process()``, ``barrier()``,
  ``broadcast_object()``, ``all_gather_object()``; ``mpi4py`` is imported
  only under an MPI launcher;
* :mod:`.comm` — the :class:`Communicator` interface (local, MPI; NCCL later);
  :mod:`.threaded` — allreduces on a background thread;
* :mod:`.ddp` — :class:`DistributedDataParallel`, gradient averaging overlapped
  with backward through :mod:`.buckets`;
* :mod:`.sampler` — :class:`DistributedSampler`, PyTorch's index lists;
* :mod:`.sync_batchnorm` — :class:`SyncBatchNorm`, :func:`convert_sync_batchnorm`;
* :mod:`.consistency` — :func:`check_consistency`, the start-of-training check;
* :mod:`.failure` — a failing rank ends the whole job, naming the rank;
* :mod:`.agree` — decisions every rank takes together (stop flag, step sums, rank 0's answer);
* :mod:`.launch` — ``glassnet train --nproc N``: mpiexec found and started;
* :mod:`.training` — ``mpiexec -n N glassnet train``: each rank's role (rank 0
  writes, sharded data, global-batch sums, agreed Ctrl-C, the resume rule for
  another N); the rank's Trainer is :class:`glassnet.train.distributed_run.DistributedTrainer`.

A training loop learns that it runs distributed from ``world_size() > 1``
(or ``isinstance(model, DistributedDataParallel)``); the batch size given to
each rank is per rank, the global batch is ``world_size()`` times it.
"""
from .agree import AgreedInterrupt, any_rank, on_main, sum_over_ranks
from .comm import Communicator, LocalCommunicator, MPICommunicator, Work
from .consistency import check_consistency, model_signature
from .ddp import DistributedDataParallel, broadcast_arrays_, unwrap
from .errors import DistributedError, DistributedTimeoutError, RankMismatchError
from .failure import abort, abort_on_failure, rank_table
from .process_group import (all_gather_object, barrier, broadcast_object, get_communicator, init, is_initialized,
                            is_main_process, launched_by_mpi, local_rank, rank, shutdown, world_size)
from .sampler import DistributedSampler, global_position, resume_step, shard_loader
from .sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm
from .threaded import ThreadedCommunicator

__all__ = [
    "init", "is_initialized", "launched_by_mpi", "get_communicator", "rank", "world_size", "local_rank",
    "is_main_process", "barrier", "broadcast_object", "all_gather_object", "shutdown",
    "Communicator", "LocalCommunicator", "MPICommunicator", "ThreadedCommunicator", "Work",
    "DistributedDataParallel", "unwrap", "broadcast_arrays_",
    "DistributedSampler", "global_position", "resume_step", "shard_loader", "SyncBatchNorm", "convert_sync_batchnorm",
    "check_consistency", "model_signature", "abort", "abort_on_failure", "rank_table",
    "DistributedError", "RankMismatchError", "DistributedTimeoutError",
    "AgreedInterrupt", "any_rank", "sum_over_ranks", "on_main",
]
