"""Multi-layer perceptrons: the lecture's fully connected networks."""
from __future__ import annotations

from .. import nn
from .registry import register_model
from ..errors import InvalidArgumentError

_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


@register_model
def mlp(num_classes: int = 10, in_channels: int = 1, image_size=28, hidden=(512,),
        activation: str = "relu", dropout: float = 0.0):
    """A fully connected classifier: Flatten → [Linear → act (→ Dropout)] × len(hidden) → Linear.

    The default is the 784-512-10 ReLU network used for Fashion-MNIST.

    Args:
        num_classes: outputs of the last layer.
        in_channels, image_size: the input image's channels and side (int or
            (H, W)); the first layer has ``in_channels·H·W`` inputs.
        hidden: widths of the hidden layers (an int for one layer).
        activation: one of ``relu``, ``sigmoid``, ``tanh``, ``leaky_relu``, ``elu``.
        dropout: dropout probability after each hidden activation (0 = none).

    Shape:
        Input: (N, in_channels, H, W) or (N, in_channels·H·W).
        Output: (N, num_classes) logits.
    """
    if activation not in _ACTIVATIONS:
        raise InvalidArgumentError(f"mlp: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    widths = [hidden] if isinstance(hidden, int) else list(hidden)
    layers = [nn.Flatten()]
    fan_in = in_channels * h * w
    for width in widths:
        layers += [nn.Linear(fan_in, width), _ACTIVATIONS[activation]()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)
