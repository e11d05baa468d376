"""Learning-rate schedulers, with ``torch.optim.lr_scheduler``'s names and values.

A scheduler changes ``group["lr"]`` of its optimizer's param groups. Call
``scheduler.step()`` once per epoch, *after* ``optimizer.step()``
(``ReduceLROnPlateau.step(metric)`` takes the monitored value).

Epoch-based schedulers record each group's starting rate in
``group["initial_lr"]`` (as PyTorch does) and keep it in ``base_lrs``;
``last_epoch`` counts the calls to ``step()`` (0 right after construction).

Shape: schedulers touch only the scalar learning rates, never the
parameters, so parameters of any shape are accepted.
"""
from .base import LRScheduler
from .cosine import CosineAnnealingLR
from .plateau import ReduceLROnPlateau
from .step import ExponentialLR, MultiStepLR, StepLR

__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
]
