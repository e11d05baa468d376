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

import numpy as np

import glassnet.nn as nn
from tests.layer_case_tools import LayerCase, _inputs, distinct, labels, normal, off_kink, simple  # noqa: F401


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
