"""Models, data and training steps shared by the 2-rank worker and the single-process references.

Everything is float64 and deterministic from a seed, so the test process can
recompute on the global batch what the ranks computed on their shards.
"""
from __future__ import annotations

import numpy as np

import glassnet as gn
from glassnet import nn
from glassnet.optim import SGD

RANKS = 2
PER_RANK = 4            # samples per rank per step
STEPS = 5
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-3


def small_cnn(width: int = 4, batch_norm: bool = False, seed: int = 0):
    """Conv(3->width, 3x3) [-> BatchNorm2d] -> ReLU -> MaxPool(2) -> Flatten -> Linear(width*3*3, 16)
    -> ReLU -> Linear(16, 5), float64, initialised from ``seed``."""
    gn.manual_seed(seed)
    layers = [nn.Conv2d(3, width, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(width))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(width * 9, 16), nn.ReLU(), nn.Linear(16, 5)]
    return nn.Sequential(*layers).double()


class Branchy(nn.Module):
    """A trunk plus an ``extra`` head used only when asked (parameters with no gradient)."""

    def __init__(self):
        super().__init__()
        gn.manual_seed(1)
        self.trunk = nn.Linear(6, 8)
        self.extra = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)
        self.double()

    def forward(self, x, use_extra: bool):
        h = self.trunk(x).relu()
        if use_extra:
            h = h + self.extra(h)
        return self.head(h)


# which ranks use Branchy.extra at each step: both, rank 0 only, none, rank 1 only
EXTRA_USE = [(True, True), (True, False), (False, False), (False, True)]


def global_batch(step: int, shape=(3, 6, 6), classes: int = 5):
    """The step's global batch: (RANKS*PER_RANK, *shape) inputs, int64 labels."""
    rng = np.random.default_rng(1000 + step)
    x = rng.standard_normal((RANKS * PER_RANK, *shape))
    y = rng.integers(0, classes, RANKS * PER_RANK)
    return x, y


def shard(array, rank: int):
    """Rank ``rank``'s contiguous share of a global batch."""
    return array[rank * PER_RANK:(rank + 1) * PER_RANK]


def sgd(params):
    return SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def step(model, opt, x, y, **kwargs):
    """One SGD step on (x, y); returns the loss."""
    loss = nn.CrossEntropyLoss()(model(gn.tensor(x), **kwargs), gn.tensor(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.item())


def weights(model) -> dict:
    return {k: np.array(v) for k, v in model.state_dict().items()}
