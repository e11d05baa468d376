"""Optimizers and learning-rate schedulers, with ``torch.optim``'s names.

* :class:`SGD` — plain, momentum, Nesterov, weight decay.
* :class:`Adam`, :class:`AdamW` — Adam with L2 or decoupled weight decay, AMSGrad.
* :mod:`glassnet.optim.lr_scheduler` — StepLR, MultiStepLR, ExponentialLR,
  CosineAnnealingLR, ReduceLROnPlateau.

Optimizers work on any objects with ``.data`` (a NumPy/CuPy float array,
updated in place) and ``.grad`` (same shape and dtype, or ``None``).
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer, ParamState
from .sgd import SGD

__all__ = ["Optimizer", "ParamState", "SGD", "Adam", "AdamW", "lr_scheduler"]
