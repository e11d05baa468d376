"""The registry of layers and sample inputs that drives the layer test suite.

Every ``glassnet.nn`` layer appears here at least once (``test_layers.py``
fails if one is missing). For each case the suite checks:

* output shape (against PyTorch's, and against ``expected_shape`` if given);
* a float64 gradcheck w.r.t. every float input and every parameter;
* forward and backward parity with PyTorch in float32 (same weights, loaded
  through ``state_dict`` so the parameter names must match PyTorch's too);
* a ``state_dict`` round trip into a fresh instance.

A case describes how to build the layer in both libraries and how to draw
inputs. Inputs are drawn in float64 by ``inputs(rng)`` and kept away from
kinks (ReLU's 0, ties of a max) where the layer has them.
"""
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


def _torch_maxout(torch, gn_module):
    """A PyTorch reference for Maxout (PyTorch has no such layer)."""

    class TorchMaxout(torch.nn.Module):
        def __init__(self, k, out_f, in_f, bias):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.empty(k, out_f, in_f))
            self.bias = torch.nn.Parameter(torch.empty(k, out_f)) if bias else None

        def forward(self, x):
            z = torch.einsum("ni,koi->nko", x, self.weight)
            if self.bias is not None:
                z = z + self.bias
            return z.max(dim=1).values

    return TorchMaxout(gn_module.num_pieces, gn_module.out_features, gn_module.in_features, gn_module.bias is not None)


def _dropout_reference(torch, module, inputs, gn_out):
    """PyTorch's dropout with the mask glassnet drew (read off its output):
    checks the 1/(1−p) scaling and the backward through the same mask."""
    x = inputs[0]
    mask = torch.from_numpy((np.asarray(gn_out) != 0).astype(np.float32))
    return x * mask / (1 - module.p)


CASES = [
    simple("Linear", 6, 3, shape=(4, 6), draw=normal, expected=(4, 3)),
    simple("Linear", 5, 2, shape=(2, 3, 5), draw=normal, bias=False, expected=(2, 3, 2)),
    simple("Linear", 1, 7, shape=(3, 1), draw=normal),
    simple("ReLU", shape=(5, 7)),
    simple("ReLU", shape=(2, 3, 4, 5)),
    simple("LeakyReLU", shape=(5, 7)),
    simple("LeakyReLU", shape=(3, 4), negative_slope=0.1),
    simple("ELU", shape=(5, 7)),
    simple("ELU", shape=(3, 4), alpha=0.5),
    simple("Sigmoid", shape=(5, 7), draw=normal),
    simple("Tanh", shape=(5, 7), draw=normal),
    simple("Softmax", shape=(4, 6), draw=normal, dim=1),
    simple("Softmax", shape=(3, 4, 5), draw=normal, dim=0),
    simple("LogSoftmax", shape=(4, 6), draw=normal, dim=1),
    simple("Identity", shape=(3, 4), draw=normal),
    simple("Flatten", shape=(2, 3, 4, 5), draw=normal, expected=(2, 60)),
    simple("Flatten", shape=(2, 3, 4, 5), draw=normal, start_dim=2, expected=(2, 3, 20)),
    LayerCase(
        id="Maxout(6,4,k=3)",
        build=lambda: nn.Maxout(6, 4, num_pieces=3),
        inputs=_inputs(normal((5, 6))),
        torch_build=_torch_maxout,
        expected_shape=(5, 4),
    ),
    LayerCase(
        id="Dropout(p=0.3)",
        build=lambda: nn.Dropout(0.3),
        inputs=_inputs(normal((6, 8))),
        kwargs={"p": 0.3},
        random=True,
        torch_forward=_dropout_reference,
    ),
    LayerCase(
        id="MSELoss(mean)",
        build=lambda: nn.MSELoss(),
        inputs=_inputs(normal((4, 3)), normal((4, 3))),
        expected_shape=(),
    ),
    LayerCase(
        id="MSELoss(sum)",
        build=lambda: nn.MSELoss(reduction="sum"),
        inputs=_inputs(normal((2, 3, 2)), normal((2, 3, 2))),
        kwargs={"reduction": "sum"},
    ),
    LayerCase(
        id="MSELoss(none)",
        build=lambda: nn.MSELoss(reduction="none"),
        inputs=_inputs(normal((4, 3)), normal((4, 3))),
        kwargs={"reduction": "none"},
    ),
    LayerCase(
        id="CrossEntropyLoss(mean)",
        build=lambda: nn.CrossEntropyLoss(),
        inputs=_inputs(normal((5, 4)), labels(5, 4)),
        expected_shape=(),
    ),
    LayerCase(
        id="CrossEntropyLoss(sum)",
        build=lambda: nn.CrossEntropyLoss(reduction="sum"),
        inputs=_inputs(normal((7, 10)), labels(7, 10)),
        kwargs={"reduction": "sum"},
    ),
    LayerCase(
        id="CrossEntropyLoss(none)",
        build=lambda: nn.CrossEntropyLoss(reduction="none"),
        inputs=_inputs(normal((3, 5)), labels(3, 5)),
        kwargs={"reduction": "none"},
    ),
]


def _collect_family_cases():
    """Each layer family keeps its cases in ``tests/layer_cases_<family>.py``
    (a module-level ``CASES`` list built with the helpers above); they are
    all gathered here so the suite runs every one of them."""
    import importlib
    import pathlib

    found = []
    for path in sorted(pathlib.Path(__file__).parent.glob("layer_cases_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        found.extend(module.CASES)
    return found


CASES.extend(_collect_family_cases())

# Exported names of glassnet.nn that are not layers (nothing to gradcheck).
NOT_LAYERS = {"Module", "Parameter", "Sequential", "ModuleList", "functional", "init"}
