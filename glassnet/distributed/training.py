"""What ``glassnet train`` does differently on N ranks: the rank's role in a data-parallel run.

    mpiexec -n 2 glassnet train --model mlp --batch-size 64 --out runs/mlp2   # global batch 128
    glassnet train --nproc 2 --model mlp --batch-size 64 --out runs/mlp2      # the same (starts mpiexec)

:func:`training_role` returns a :class:`TrainingRole` (world size 1 without
``mpiexec``: every method is then the single-process behaviour, so the
trainer and the command call them unconditionally). With N ranks:

* **who writes** — only rank 0 (:attr:`TrainingRole.writes_files`) creates
  the run folder and writes ``config.json``, checkpoints, history, test
  results and TensorBoard events, prints, and shows the progress bar. The
  other ranks read the run folder (``--resume``), so it must be on a file
  system every rank sees (any folder on one machine). Decisions taken from
  the file system (is ``--out`` free? the default run folder name) are taken
  on rank 0 and handed to every rank (:meth:`TrainingRole.on_main`), so a
  refusal is the same error on every rank;
* **the batch** — ``--batch-size`` is per rank; the global batch is
  N × it (:meth:`TrainingRole.batch_text`);
* **the data** — the training loader visits this rank's shard
  (:func:`glassnet.distributed.sampler.shard_loader`: a
  :class:`~glassnet.distributed.DistributedSampler` with the loader's seed,
  moved to each epoch by the loader; ``--workers`` are per rank). Validation
  and test sets are evaluated whole on every rank, so every rank takes the
  same scheduler / best-checkpoint decisions;
* **the model** — checked against rank 0's at start (parameter names, shapes,
  dtypes, the dataset lengths, the per-rank batch size: a
  :class:`~glassnet.distributed.errors.RankMismatchError` on every rank) and
  wrapped in :class:`~glassnet.distributed.DistributedDataParallel`
  (rank 0's weights broadcast, gradients averaged);
* **the metrics** — each step's loss sum, correct count and sample count are
  summed over the ranks (:meth:`TrainingRole.step_sums`), so the history and
  the partial-epoch sums in a checkpoint are the global batch's, identical on
  every rank: rank 0's checkpoint holds what every rank needs (weights,
  optimizer state, position, sums; the glassnet RNG stream is the same on
  every rank — each rank seeds it with ``--seed`` — so rank 0's RNG state is
  every rank's);
* **stopping** — Ctrl-C on ``mpiexec`` reaches every rank; the trainer asks
  :meth:`TrainingRole.agree_stop` before each step, an allreduced flag, so
  all ranks stop after the same step, rank 0 saves one checkpoint, and every
  rank exits with status 130 (no ``MPI_Abort``). Any other failure on a rank
  ends the job through :func:`run_command` (``MPI_Abort``, naming the rank).

Resuming on another number of ranks (the sampler position rule of
:mod:`glassnet.distributed.sampler`): after ``k`` steps on ``N`` ranks an
epoch has used the first ``k·B·N`` samples of its global order; on ``N'``
ranks the run continues at step ``⌊k·B·N / (B·N')⌋`` of that epoch
(:func:`glassnet.distributed.sampler.resume_step`) — no sample is skipped,
fewer than ``B·N'`` are seen twice (and counted twice in that epoch's train
loss and accuracy). With ``N' = N`` the resume is bitwise exact. The
checkpoint records ``world_size`` and ``batch_size`` for it (a checkpoint
without them was written by one process).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from .agree import any_rank, on_main, sum_over_ranks
from .comm import Communicator, LocalCommunicator

__all__ = ["TrainingRole", "training_role", "run_command"]


@dataclass(frozen=True)
class TrainingRole:
    """This process's part in a (possibly 1-rank) data-parallel training run (module docstring).

    Attributes:
        comm: the world communicator.
    """

    comm: Communicator = field(default_factory=LocalCommunicator)

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def world_size(self) -> int:
        return self.comm.size

    @property
    def distributed(self) -> bool:
        return self.comm.size > 1

    @property
    def writes_files(self) -> bool:
        """True on rank 0: the one rank that writes the run folder, prints and shows progress."""
        return self.comm.rank == 0

    def on_main(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on rank 0, its result (or its exception) on every rank."""
        return on_main(fn, *args, comm=self.comm, **kwargs)

    def batch_text(self, batch_size: int) -> str:
        """``batch 64`` or ``batch 64 per rank x 2 ranks = global batch 128``."""
        if not self.distributed:
            return f"batch {batch_size}"
        return (f"batch {batch_size} per rank x {self.world_size} ranks = "
                f"global batch {batch_size * self.world_size}")

    def prepare(self, model, train_loader, *, lengths: dict, batch_size: int, bucket_mb: float = 25):
        """Check every rank against rank 0, then ``(model wrapped in DDP, this rank's training loader)``.

        ``lengths`` names the dataset lengths that must agree (``{"train": 60000, ...}``). With one rank,
        ``(model, train_loader)`` unchanged.
        """
        if not self.distributed:
            return model, train_loader
        from .consistency import check_consistency
        from .ddp import DistributedDataParallel
        from .sampler import shard_loader

        check_consistency(model, comm=self.comm, batch_size=int(batch_size),
                          **{f"{name} set length": int(n) for name, n in lengths.items()})
        ddp = DistributedDataParallel(model, bucket_mb=bucket_mb, comm=self.comm, check_consistency=False)
        return ddp, shard_loader(train_loader, self.comm)

    def step_sums(self, loss_sum: float, correct: int, n: int):
        """``(loss_sum, correct, n)`` summed over the ranks (the global batch's; collective)."""
        if not self.distributed:
            return loss_sum, correct, n
        total_loss, total_correct, total_n = sum_over_ranks([loss_sum, correct, n], self.comm)
        return total_loss, int(round(total_correct)), int(round(total_n))

    def agree_stop(self, requested: bool) -> bool:
        """Whether any rank asked to stop (Ctrl-C): the same answer on every rank (collective)."""
        return any_rank(requested, self.comm) if self.distributed else bool(requested)

    def checkpoint_fields(self, batch_size) -> dict:
        """What a checkpoint records of the run's layout (for the resume rule)."""
        return {"world_size": self.world_size, "batch_size": batch_size}

    def resume_meta(self, meta: dict, n_batches: int) -> dict:
        """Checkpoint metadata ``meta`` as seen by this world: unchanged when it was written with
        this many ranks (or records none), else a copy whose ``step`` follows the module docstring's
        rule and whose loader state has this world's ``n_batches`` batches per epoch."""
        loader = ((meta.get("rng_states") or {}).get("loader") or {})
        old, batch = int(loader.get("world_size") or 1), loader.get("batch_size")
        if old == self.world_size or batch is None or not isinstance(meta.get("step"), int):
            return meta
        from .sampler import resume_step

        step = resume_step(meta["step"], int(batch), old, self.world_size, n_batches)
        rng = {**meta["rng_states"], "loader": {**loader, "batches_per_epoch": int(n_batches),
                                                "world_size": self.world_size}}
        return {**meta, "step": step, "rng_states": rng}


def training_role() -> TrainingRole:
    """The role of this process: the world of :func:`glassnet.distributed.init` (size 1 without mpiexec)."""
    from .process_group import get_communicator

    return TrainingRole(get_communicator())


def run_command(main, argv=None) -> int:
    """Run the ``glassnet`` command ``main(argv)`` on this rank of an MPI job and return its status.

    Ranks other than 0 print nothing to stdout (their lines would repeat rank 0's); errors
    still reach stderr. An exception or a failing status (other than 130, the agreed Ctrl-C
    stop every rank takes together) ends every rank at once with a line naming this rank
    (:func:`glassnet.distributed.failure.abort`): the others would otherwise wait in a collective.
    """
    from .failure import abort, abort_on_failure
    from .process_group import init

    comm = init()
    with contextlib.ExitStack() as stack:
        if comm.rank > 0:
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
        with abort_on_failure(comm):
            status = main(argv)
    if comm.size > 1 and status not in (0, 130, None):
        abort(f"exited with status {status}", int(status), comm)
    return status
