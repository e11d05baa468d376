"""LeNet-5 (LeCun et al. 1998), the first convolutional network of the lecture."""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .registry import register_model
from ..errors import InvalidArgumentError

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


@register_model
def lenet5(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, activation: str = "relu",
           pool: str = "max"):
    """LeNet-5 for 28×28 (MNIST, Fashion-MNIST) or 32×32 grayscale images::

        C1  conv 5×5, 6 filters (pad 2 on 28×28, pad 0 on 32×32)  → 28×28×6
        S2  pool 2×2 / 2                                            → 14×14×6
        C3  conv 5×5, 16 filters                                    → 10×10×16
        S4  pool 2×2 / 2                                            → 5×5×16
        F5  FC 400 → 120,  F6  FC 120 → 84,  output FC 84 → num_classes

    Choices (the 1998 network differs in details that no longer matter):
    C3 connects every S2 map to every C3 map (the paper used a sparse
    connection table); S2/S4 are plain max-pools (``pool="avg"`` gives the
    paper's averaging subsampling, without its trainable scale and bias); the
    activation is ReLU (``activation="tanh"`` gives the paper's squashing
    function); the output layer is a plain linear layer (the paper used RBF
    units). The 28×28 input is padded by 2 in C1 so both sizes reach the same
    28×28×6 map, i.e. the same network and parameters (61,706 with 10 classes).

    Args:
        num_classes, in_channels: outputs and input channels.
        image_size: 28 or 32.
        activation: ``"relu"`` or ``"tanh"``.
        pool: ``"max"`` or ``"avg"``.

    Shape:
        Input: (N, in_channels, image_size, image_size). Output: (N, num_classes).
    """
    if image_size not in (28, 32):
        raise InvalidArgumentError(f"lenet5: image_size must be 28 or 32, got {image_size!r}")
    if activation not in _ACTIVATIONS:
        raise InvalidArgumentError(f"lenet5: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    if pool not in _POOLS:
        raise InvalidArgumentError(f"lenet5: pool must be one of {sorted(_POOLS)}, got {pool!r}")
    act, pool_cls = _ACTIVATIONS[activation], _POOLS[pool]
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2 if image_size == 28 else 0), act(), pool_cls(2),
        nn.Conv2d(6, 16, 5), act(), pool_cls(2),
    )
    classifier = nn.Sequential(
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes),
    )
    return nn.Sequential(OrderedDict([("features", features), ("classifier", classifier)]))
