"""The :class:`~glassnet.train.trainer.Trainer` of one rank of a data-parallel run (``glassnet train`` on N ranks).

:class:`DistributedTrainer` is the Trainer with a
:class:`~glassnet.distributed.training.TrainingRole`: what a run writes goes through the
Trainer's ``_save`` / ``write_history`` (rank 0 only here), each step's sums through
``_count_step`` (summed over the ranks), Ctrl-C through ``_check_interrupt`` (an agreed stop),
and a checkpoint's position through ``adapt_checkpoint_meta`` (the sampler-position rule for
another number of ranks). With one rank (no ``mpiexec``) it is the Trainer, bitwise: the role's
methods are then the identity, and the checkpoint only gains the ``world_size`` / ``batch_size``
of its loader state. The rules themselves are :mod:`glassnet.distributed.training`'s.
"""
from __future__ import annotations

from ..distributed.training import TrainingRole
from .trainer import Trainer

__all__ = ["DistributedTrainer"]

_SUMS = ("loss_sum", "correct", "n")


class DistributedTrainer(Trainer):
    """A :class:`~glassnet.train.trainer.Trainer` on one rank of ``role`` (default: one process alone).

    Args:
        role: this rank's :class:`~glassnet.distributed.training.TrainingRole`
            (``glassnet.distributed.training.training_role()``).
        the rest: as for :class:`~glassnet.train.trainer.Trainer`; ``train_loader`` is this rank's
            shard and ``model`` the :class:`~glassnet.distributed.DistributedDataParallel`
            wrapper (``role.prepare`` makes both).
    """

    def __init__(self, *args, role: TrainingRole | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.role = role or TrainingRole()

    def _save(self, which: str, glassnet_state=None):
        """Rank 0 writes the checkpoint for every rank (they hold the same state); others write nothing."""
        return super()._save(which, glassnet_state) if self.role.writes_files else None

    def write_history(self) -> None:
        if self.role.writes_files:
            super().write_history()

    def _count_step(self, k: int, logits, y, loss: float, clock) -> None:
        """The Trainer's step count, with the global batch's sums (the same on every rank)."""
        if not self.role.distributed:
            return super()._count_step(k, logits, y, loss, clock)
        part = self._partial
        before = {key: part[key] for key in _SUMS}
        part.update(loss_sum=0.0, correct=0, n=0)
        super()._count_step(k, logits, y, loss, clock)  # this rank's sums of this step, and the position
        for key, total in zip(_SUMS, self.role.step_sums(*(part[key] for key in _SUMS))):
            part[key] = before[key] + total

    def _check_interrupt(self) -> None:
        """Every rank stops after the same step: the ranks agree whether any of them was interrupted.

        Only the agreed answer stops this rank, and it only ever raises the flag: a SIGINT whose
        handler runs while the collective blocks sets the flag after its value was sent. Stopping on
        it now would leave the other ranks waiting; overwriting it with the (older) answer would lose
        that Ctrl-C. It is kept and sent at the next check.
        """
        if not self.role.agree_stop(self._interrupted):
            return
        self._interrupted = True
        super()._check_interrupt()

    def _rng_states(self, glassnet_state=None) -> dict:
        states = super()._rng_states(glassnet_state)
        states["loader"].update(self.role.checkpoint_fields(getattr(self.train_loader, "batch_size", None)))
        return states

    def _newest_checkpoint(self):
        which, stem, meta = super()._newest_checkpoint()
        return which, stem, self.adapt_checkpoint_meta(meta)

    def adapt_checkpoint_meta(self, meta: dict) -> dict:
        """``meta`` with its position moved to this number of ranks (``TrainingRole.resume_meta``)."""
        return self.role.resume_meta(meta, len(self.train_loader))
