"""Optional TensorBoard scalars for a training run (``pip install glassnet[tensorboard]``).

    from glassnet.tensorboard import TensorBoardLogger
    fit(model, loader, opt, epochs=10, on_epoch_end=TensorBoardLogger("runs/cnn/tensorboard"))

``glassnet train --tensorboard`` does this, writing to ``<out>/tensorboard``;
view it with ``tensorboard --logdir runs``. tensorboardX is imported only
when a logger is made.
"""
from __future__ import annotations

from .errors import MissingDependencyError

__all__ = ["TensorBoardLogger"]

#: History keys written as scalars, with their TensorBoard tags.
SCALARS = {
    "train_loss": "loss/train", "val_loss": "loss/val",
    "train_accuracy": "accuracy/train", "val_accuracy": "accuracy/val",
    "lr": "lr", "images_per_s": "speed/images_per_s", "epoch_time_s": "speed/epoch_time_s",
}


class TensorBoardLogger:
    """An ``on_epoch_end(epoch, row)`` callback writing each epoch's metrics as scalars.

    Args:
        log_dir: the event-file folder (created if needed).
    """

    def __init__(self, log_dir):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise MissingDependencyError("TensorBoard logging needs tensorboardX: pip install glassnet[tensorboard]") from exc
        self.log_dir = str(log_dir)
        self._writer = SummaryWriter(self.log_dir)

    def __call__(self, epoch: int, row: dict) -> None:
        for key, tag in SCALARS.items():
            value = row.get(key)
            if value is not None:
                self._writer.add_scalar(tag, float(value), int(epoch))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
