"""A small convolutional network for 28×28 images (Fashion-MNIST, MNIST)."""
from __future__ import annotations

from .. import nn
from .registry import register_model
from ..errors import InvalidArgumentError


@register_model
def small_cnn(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 32,
              hidden: int = 128, dropout: float = 0.25):
    """Two conv stages and two fully connected layers — the first CNN of the lecture's pattern
    ``[(CONV-RELU) - POOL] × 2 - (FC-RELU) - FC``::

        conv 3×3 (in_channels → width, pad 1) - ReLU - max-pool 2×2
        conv 3×3 (width → 2·width, pad 1)     - ReLU - max-pool 2×2
        flatten - FC (2·width·(H/4)·(W/4) → hidden) - ReLU - dropout - FC (hidden → num_classes)

    With the defaults on 28×28 inputs: 28 → 14 → 7, 421,642 parameters.

    Args:
        num_classes, in_channels: output classes and input channels.
        image_size: input side (int or (H, W)); each side must be divisible by 4.
        width: channels of the first conv layer (the second has twice as many).
        hidden: units of the hidden fully connected layer.
        dropout: dropout probability before the last layer (0 disables it).

    Shape:
        Input: (N, in_channels, H, W). Output: (N, num_classes) logits.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h % 4 or w % 4:
        raise InvalidArgumentError(f"small_cnn: image sides must be divisible by 4 (two 2×2 pools), got {h}×{w}")
    return SmallCNN(in_channels, num_classes, (h, w), width, hidden, dropout)


class SmallCNN(nn.Module):
    """The network built by :func:`small_cnn`, with torchvision-style parts
    ``features`` (the conv stages) and ``classifier`` (the FC layers).

    Shape:
        Input: (N, in_channels, H, W). Output: (N, num_classes).
    """

    def __init__(self, in_channels, num_classes, image_hw, width, hidden, dropout):
        super().__init__()
        h, w = image_hw
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        classifier = [nn.Flatten(), nn.Linear(2 * width * (h // 4) * (w // 4), hidden), nn.ReLU()]
        if dropout:
            classifier.append(nn.Dropout(dropout))
        classifier.append(nn.Linear(hidden, num_classes))
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x):
        return self.classifier(self.features(x))
