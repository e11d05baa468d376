"""Containers: ``Sequential`` and ``ModuleList``."""
from __future__ import annotations

from collections import OrderedDict

from .fusion import sequential_step
from .module import Module


class Sequential(Module):
    """Chain modules: ``Sequential(a, b, c)(x) == c(b(a(x)))``. Children are
    named "0", "1", … (PyTorch's state_dict keys), or by an OrderedDict.

    Shape: whatever its first module takes → whatever its last returns.

    Examples:
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> net(gn.zeros(5, 4)).shape
        (5, 2)
        >>> [name for name, _ in net.named_parameters()]
        ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        """Each module on the previous one's output. Three adjacent pairs run faster with the same
        results where :mod:`glassnet.nn.fusion`'s rules allow (:func:`~glassnet.nn.fusion.sequential_step`):
        ``BatchNorm`` → ``ReLU`` as one fused kernel, ``ReLU`` → ``MaxPool2d`` as the pool first
        and the ReLU on its output, ``Conv2d``/``Linear`` → ``ReLU`` with the ReLU in place."""
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            x, i = sequential_step(modules, i, x)
        return x

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (names "0", "1", …)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, idx):
        return list(self._modules.values())[idx]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
