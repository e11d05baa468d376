"""In-process stand-ins for other ranks, and a small float64 MLP, for the one-process tests."""
import numpy as np

import glassnet as gn
from glassnet import nn
from glassnet.distributed.comm import Communicator, Work


class TwinComm(Communicator):
    """Size 2, the other rank identical to this one: a sum is twice the local value."""

    size, backend = 2, "twin"

    def __init__(self, log=None):
        self.log = log

    def allreduce_(self, array):
        array *= 2
        return array

    def iallreduce_(self, array):
        if self.log is not None:
            self.log(array)
        array *= 2
        return Work()

    def broadcast_(self, array, root=0):
        return array

    def allgather_object(self, obj):
        return [obj, obj]

    def dup(self):
        return self


def mlp(seed=0):
    gn.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 3)).double()


def loss_of(model, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((5, 6)), rng.integers(0, 3, 5)
    return nn.CrossEntropyLoss()(model(gn.tensor(x), **kwargs), gn.tensor(y))


class OtherRankComm(TwinComm):
    """Size 2 where rank 1 reports ``other`` instead of this rank's values."""

    def __init__(self, other):
        super().__init__()
        self.other = other

    def allgather_object(self, obj):
        return [obj, self.other]
