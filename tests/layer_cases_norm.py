"""Registry cases for the normalization layers and Dropout2d.

BatchNorm cases run in training mode (the default after construction), so
parity covers the full batch-statistics backward (input, weight and bias
grads). The layers are built with random γ, β and running statistics (drawn
from glassnet's seeded global RNG) so that a misplaced γ in dx, or an eval
path that ignored the running stats, cannot hide behind γ = 1, β = 0.

Batch norm passes the registry's default float64 gradcheck tolerance: the
op is smooth and the inputs are O(1), so no loosening is needed.
"""
from __future__ import annotations

import numpy as np

import glassnet as gn
import glassnet.nn as nn
from tests.layer_case_tools import LayerCase, _inputs, normal


def _random_bn(cls, num_features, **kwargs):
    def build():
        m = cls(num_features, **kwargs)
        rng = gn.random.get_rng()
        if m.affine:
            m.weight.data[...] = rng.uniform(0.5, 1.5, num_features)
            m.bias.data[...] = rng.standard_normal(num_features)
        if m.track_running_stats:
            m.running_mean[...] = rng.standard_normal(num_features) * 0.5
            m.running_var[...] = rng.uniform(0.5, 2.0, num_features)
        return m
    return build


def _bn_case(cls_name, num_features, shape, **kwargs):
    cls = getattr(nn, cls_name)
    kw = "".join(f",{k}={v}" for k, v in kwargs.items())
    return LayerCase(
        id=f"{cls_name}({num_features}{kw})-{'x'.join(map(str, shape))}",
        build=_random_bn(cls, num_features, **kwargs),
        inputs=_inputs(normal(shape)),
        args=(num_features,),
        kwargs=kwargs,
        expected_shape=shape,
    )


def _lrn_case(size, shape, **kwargs):
    kw = "".join(f",{k}={v}" for k, v in kwargs.items())
    return LayerCase(
        id=f"LocalResponseNorm({size}{kw})-{'x'.join(map(str, shape))}",
        build=lambda: nn.LocalResponseNorm(size, **kwargs),
        inputs=_inputs(normal(shape)),
        args=(size,),
        kwargs=kwargs,
        expected_shape=shape,
    )


def _dropout2d_reference(torch, module, inputs, gn_out):
    """PyTorch's channel dropout with the channel mask glassnet drew (a channel
    is kept iff any of its outputs is non-zero): checks that whole channels
    are dropped, the 1/(1−p) scaling, and the backward through the mask."""
    x = inputs[0]
    out = np.asarray(gn_out)
    kept = np.abs(out).reshape(out.shape[0], out.shape[1], -1).sum(axis=2) != 0
    mask = torch.from_numpy(kept.astype(np.float32).reshape(out.shape[:2] + (1,) * (out.ndim - 2)))
    return x * mask / (1 - module.p)


CASES = [
    _bn_case("BatchNorm1d", 4, (6, 4)),
    _bn_case("BatchNorm1d", 3, (4, 3, 5)),
    _bn_case("BatchNorm2d", 4, (3, 4, 5, 5)),
    _bn_case("BatchNorm2d", 3, (2, 3, 3, 4), affine=False),
    _bn_case("BatchNorm2d", 3, (2, 3, 3, 3), momentum=None),
    _lrn_case(5, (2, 7, 3, 3), alpha=1e-2, beta=0.75, k=2.0),
    _lrn_case(4, (2, 6, 3, 2), alpha=0.05, beta=0.75, k=1.0),
    _lrn_case(3, (2, 5, 4), alpha=0.1, beta=0.5, k=1.5),
    LayerCase(
        id="Dropout2d(p=0.4)-2x6x3x3",
        build=lambda: nn.Dropout2d(0.4),
        inputs=_inputs(normal((2, 6, 3, 3))),
        kwargs={"p": 0.4},
        random=True,
        torch_forward=_dropout2d_reference,
    ),
]
