"""Building blocks for layer registry cases: the ``LayerCase`` record and the
input drawers. ``tests/layer_registry.py`` and every ``tests/layer_cases_*.py``
import them from here (so the family files do not import the registry that
collects them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import glassnet.nn as nn


@dataclass
class LayerCase:
    id: str
    build: Callable[[], "nn.Module"]
    inputs: Callable[[np.random.Generator], list]
    torch_build: Callable = None  # torch -> torch module; default: same class name and args
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expected_shape: tuple = None
    random: bool = False  # output depends on the RNG (dropout): gradcheck reseeds each call
    torch_forward: Callable = None  # (torch, torch_module, torch_inputs, gn_output) -> output, for random layers
    gradcheck_tol: dict = field(default_factory=dict)


def off_kink(shape, gap=0.05):
    """Normal samples pushed at least ``gap`` away from 0 (ReLU-family kinks)."""
    def draw(rng):
        x = rng.standard_normal(shape)
        return np.where(np.abs(x) < gap, np.sign(x + 1e-12) * gap + x, x)
    return draw


def distinct(shape):
    """A random permutation of well-separated values: no ties for max-type layers."""
    def draw(rng):
        n = int(np.prod(shape))
        return (rng.permutation(n).reshape(shape) - n / 2) * 0.1 / max(1, n / 20)
    return draw


def normal(shape):
    return lambda rng: rng.standard_normal(shape)


def labels(n, classes):
    return lambda rng: rng.integers(0, classes, size=n)


def _inputs(*drawers):
    return lambda rng: [d(rng) for d in drawers]


def simple(cls_name, *args, shape=(4, 6), draw=off_kink, expected=None, **kwargs):
    """A case for a layer that takes one float tensor, with the same name and
    constructor in PyTorch."""
    cls = getattr(nn, cls_name)
    arg_txt = ",".join(map(str, args)) + ("," if args and kwargs else "") + ",".join(f"{k}={v}" for k, v in kwargs.items())
    return LayerCase(
        id=f"{cls_name}({arg_txt})-{'x'.join(map(str, shape))}",
        build=lambda: cls(*args, **kwargs),
        inputs=_inputs(draw(shape)),
        args=args,
        kwargs=kwargs,
        expected_shape=expected,
    )
