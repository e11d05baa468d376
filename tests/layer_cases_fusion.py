"""Registry cases for the pairs of layers glassnet.nn.fusion rewrites: each pair as
``nn.Sequential`` (or a residual block's end) runs through the rewritten path, so the float64
gradcheck and the PyTorch parity of tests/test_layers.py cover the fused kernels
(glassnet.ops.norm_relu), the pool-first order and the in-place ReLU.
"""
from __future__ import annotations

import glassnet.nn as nn
from tests.layer_case_tools import LayerCase, _inputs, distinct, normal, off_kink
from tests.layer_cases_norm import _random_bn


def _bn_relu_case(shape, training=True):
    """Sequential(BatchNorm2d, ReLU): the pair nn.fusion runs as one kernel
    (glassnet.ops.norm_relu); its float64 gradcheck and PyTorch parity, in training
    (batch statistics) or evaluation (running statistics)."""
    c = shape[1]

    def build():
        model = nn.Sequential(_random_bn(nn.BatchNorm2d, c)(), nn.ReLU())
        return model.train(training)

    def torch_build(torch, module):
        return torch.nn.Sequential(torch.nn.BatchNorm2d(c), torch.nn.ReLU()).train(training)

    return LayerCase(
        id=f"Sequential(BatchNorm2d({c}),ReLU)-{'train' if training else 'eval'}-{'x'.join(map(str, shape))}",
        build=build,
        inputs=_inputs(normal(shape)),
        torch_build=torch_build,
        expected_shape=shape,
    )


class ResidualTail(nn.Module):
    """A residual block's end, ``relu(bn(x) + r)``, through nn.fusion's fused kernel."""

    def __init__(self, c, training):
        super().__init__()
        self.bn = _random_bn(nn.BatchNorm2d, c)()
        self.relu = nn.ReLU()
        self.train(training)

    def forward(self, x, r):
        from glassnet.nn.fusion import batch_norm_add_relu

        return batch_norm_add_relu(self.bn, self.relu, x, r)


def _residual_tail_case(shape, training=True):
    c = shape[1]

    def torch_build(torch, module):
        class TorchResidualTail(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bn, self.relu = torch.nn.BatchNorm2d(c), torch.nn.ReLU()

            def forward(self, x, r):
                return self.relu(self.bn(x) + r)

        return TorchResidualTail().train(training)

    return LayerCase(
        id=f"ResidualTail(BatchNorm2d({c}),add,ReLU)-{'train' if training else 'eval'}-{'x'.join(map(str, shape))}",
        build=lambda: ResidualTail(c, training),
        inputs=_inputs(normal(shape), normal(shape)),
        torch_build=torch_build,
        expected_shape=shape,
    )


def _relu_max_pool_case(shape, **pool):
    """Sequential(ReLU, MaxPool2d): nn.fusion runs the pool first and the ReLU on its output;
    its gradcheck and PyTorch parity. ``distinct`` inputs: negative and positive, tie-free."""
    kw = ",".join(f"{k}={v}" for k, v in pool.items())

    def torch_build(torch, module):
        return torch.nn.Sequential(torch.nn.ReLU(), torch.nn.MaxPool2d(**pool))

    return LayerCase(
        id=f"Sequential(ReLU,MaxPool2d({kw}))-{'x'.join(map(str, shape))}",
        build=lambda: nn.Sequential(nn.ReLU(), nn.MaxPool2d(**pool)),
        inputs=_inputs(distinct(shape)),
        torch_build=torch_build,
    )


def _in_place_relu_case(producer, torch_producer, shape, name):
    """Sequential(Conv2d or Linear, ReLU): the ReLU runs in place on the producer's output."""

    def torch_build(torch, module):
        return torch.nn.Sequential(torch_producer(torch), torch.nn.ReLU())

    return LayerCase(
        id=f"Sequential({name},ReLU)-{'x'.join(map(str, shape))}",
        build=lambda: nn.Sequential(producer(), nn.ReLU()),
        inputs=_inputs(off_kink(shape)),
        torch_build=torch_build,
    )


CASES = [
    _bn_relu_case((3, 4, 5, 5)),
    _bn_relu_case((2, 3, 4, 6), training=False),
    _residual_tail_case((2, 4, 4, 5)),
    _residual_tail_case((3, 3, 3, 4), training=False),
    _relu_max_pool_case((2, 3, 8, 8), kernel_size=2),
    _relu_max_pool_case((2, 2, 9, 9), kernel_size=3, stride=2, padding=1),
    _in_place_relu_case(lambda: nn.Conv2d(3, 4, 3, padding=1), lambda torch: torch.nn.Conv2d(3, 4, 3, padding=1),
                        (2, 3, 5, 5), "Conv2d(3,4,3,padding=1)"),
    _in_place_relu_case(lambda: nn.Linear(6, 5), lambda torch: torch.nn.Linear(6, 5), (4, 6), "Linear(6,5)"),
]
