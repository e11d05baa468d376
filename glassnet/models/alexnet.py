"""AlexNet (Krizhevsky et al. 2012) and ZFNet (Zeiler & Fergus 2013).

Three networks:

* :func:`alexnet` — torchvision's AlexNet (the "one weird trick" single-GPU
  variant: 64/192/384/256/256 filters, no NORM layers, adaptive 6×6 pool), so
  torchvision's ``state_dict`` loads one to one.
* :func:`alexnet_lecture` — the lecture's original AlexNet on 227×227×3 with
  96/256/384/384/256 filters and the two NORM (local response normalisation)
  layers, named by what each layer is (``conv1``, ``pool1``, ``norm1``, …).
* :func:`zfnet` — ZFNet: AlexNet with CONV1 7×7 stride 2 and CONV3/4/5 of
  512/1024/512 filters.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from ..errors import ShapeError
from .registry import register_model


class AlexNet(nn.Module):
    """torchvision's AlexNet: ``features`` (5 convs, 3 max-pools), ``avgpool``
    (adaptive to 6×6) and ``classifier`` (3 FC layers with dropout).

    Shape:
        Input: (N, in_channels, H, W) with H, W ≥ 63 (224×224 is the usual
        size: 55 → 27 → 27 → 13 → 13 → 6). Output: (N, num_classes).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


@register_model
def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
    """torchvision's AlexNet (61,100,840 parameters with 1000 classes); weights
    and ``state_dict`` keys match ``torchvision.models.alexnet`` one to one.

    Layers: features = Conv2d(3, 64, 11, 4, 2), ReLU, MaxPool(3, 2),
    Conv2d(64, 192, 5, p2), ReLU, MaxPool(3, 2), Conv2d(192, 384, 3, p1), ReLU,
    Conv2d(384, 256, 3, p1), ReLU, Conv2d(256, 256, 3, p1), ReLU, MaxPool(3, 2);
    avgpool = AdaptiveAvgPool2d((6, 6)); classifier = Dropout, Linear(9216, 4096),
    ReLU, Dropout, Linear(4096, 4096), ReLU, Linear(4096, num_classes).

    Args:
        num_classes, in_channels: outputs and input channels.
        dropout: dropout probability before FC6 and FC7.

    Shape:
        Input: (N, in_channels, H, W), H, W ≥ 63 (the adaptive pool makes any
        such size work; 224 is standard). Output: (N, num_classes).
    """
    return AlexNet(num_classes=num_classes, dropout=dropout, in_channels=in_channels)


def _lecture_classifier(in_features, num_classes, dropout):
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("dropout6", nn.Dropout(dropout)),
        ("fc6", nn.Linear(in_features, 4096)), ("relu6", nn.ReLU()),
        ("dropout7", nn.Dropout(dropout)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()),
        ("fc8", nn.Linear(4096, num_classes)),
    ]))


class LectureConvNet(nn.Module):
    """``features`` (named conv/pool/norm layers) then ``classifier`` (FC6–FC8),
    with a clear error when the input size does not give the 6×6 map FC6 expects.

    Shape:
        Input: (N, in_channels, S, S) with S the documented input size.
        Output: (N, num_classes).
    """

    def __init__(self, name, features, classifier, final_shape, input_hint):
        super().__init__()
        self.name = name
        self.final_shape = tuple(final_shape)
        self.input_hint = input_hint
        self.features = features
        self.classifier = classifier

    def forward(self, x):
        x = self.features(x)
        if tuple(x.shape[1:]) != self.final_shape:
            raise ShapeError(
                f"{self.name}: the conv layers produced a map of shape {tuple(x.shape[1:])}, but FC6 expects "
                f"{self.final_shape} (C, H, W); feed {self.input_hint} images")
        return self.classifier(x)


@register_model
def alexnet_lecture(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
    """The lecture's original AlexNet (one-tower version of Krizhevsky et al. 2012)::

        input  227×227×3
        CONV1  96 11×11 filters, stride 4, pad 0   → 55×55×96   (34,848 weights + 96 biases)
        POOL1  3×3, stride 2                       → 27×27×96
        NORM1  local response norm (n=5, α=1e-4, β=0.75, k=2)
        CONV2  256 5×5, stride 1, pad 2            → 27×27×256
        POOL2  3×3, stride 2                       → 13×13×256
        NORM2  local response norm
        CONV3  384 3×3, pad 1                      → 13×13×384
        CONV4  384 3×3, pad 1                      → 13×13×384
        CONV5  256 3×3, pad 1                      → 13×13×256
        POOL3  3×3, stride 2                       → 6×6×256
        FC6 9216 → 4096,  FC7 4096 → 4096,  FC8 4096 → num_classes

    ReLU after every conv and after FC6/FC7; dropout before FC6 and FC7.
    The original's two-GPU split (CONV2/4/5 seeing only half the maps) is
    not modelled: every layer sees all maps of the previous one. With 1000
    classes: 62,378,344 parameters.

    Module names: ``features.conv1, relu1, pool1, norm1, conv2, …, pool3`` and
    ``classifier.flatten, dropout6, fc6, relu6, dropout7, fc7, relu7, fc8``.

    Args:
        num_classes, in_channels: outputs and input channels.
        dropout: dropout probability before FC6 and FC7.

    Shape:
        Input: (N, in_channels, 227, 227). Output: (N, num_classes).
    """
    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)

    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 96, 11, stride=4, padding=0)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(3, stride=2)), ("norm1", lrn()),
        ("conv2", nn.Conv2d(96, 256, 5, padding=2)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(3, stride=2)), ("norm2", lrn()),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1)), ("relu5", nn.ReLU()),
        ("pool3", nn.MaxPool2d(3, stride=2)),
    ]))
    return LectureConvNet("alexnet_lecture", features, _lecture_classifier(256 * 6 * 6, num_classes, dropout),
                          (256, 6, 6), "227×227")


@register_model
def zfnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
    """ZFNet (Zeiler & Fergus 2013): AlexNet with CONV1 changed to 7×7 stride 2
    and CONV3/4/5 to 512/1024/512 filters (the lecture's summary). As in the
    ZF paper, CONV2 has stride 2 (otherwise the smaller CONV1 stride would
    leave a 12×12×512 map and a 73,728-input FC6). Padding is chosen so that
    224×224 input gives the paper's sizes, and 227×227 works too::

        layer                          224 input       227 input
        CONV1 96 7×7 /2, pad 1         110×110×96      112×112×96
        POOL1 3×3 /2, pad 1            55×55×96        56×56×96
        NORM1
        CONV2 256 5×5 /2, pad 0        26×26×256       26×26×256
        POOL2 3×3 /2, pad 1            13×13×256       13×13×256
        NORM2
        CONV3 512 3×3, pad 1           13×13×512
        CONV4 1024 3×3, pad 1          13×13×1024
        CONV5 512 3×3, pad 1           13×13×512
        POOL3 3×3 /2                   6×6×512
        FC6 18432 → 4096, FC7 4096 → 4096, FC8 4096 → num_classes

    ReLU after every conv and FC6/FC7, dropout before FC6/FC7, the same NORM
    layers as :func:`alexnet_lecture`; module names as there. 107,627,624
    parameters with 1000 classes.

    Shape:
        Input: (N, in_channels, 224, 224) or (N, in_channels, 227, 227)
        (any side from 213 to 244 gives the 6×6 map). Output: (N, num_classes).
    """
    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)

    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 96, 7, stride=2, padding=1)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(3, stride=2, padding=1)), ("norm1", lrn()),
        ("conv2", nn.Conv2d(96, 256, 5, stride=2, padding=0)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(3, stride=2, padding=1)), ("norm2", lrn()),
        ("conv3", nn.Conv2d(256, 512, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(512, 1024, 3, padding=1)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(1024, 512, 3, padding=1)), ("relu5", nn.ReLU()),
        ("pool3", nn.MaxPool2d(3, stride=2)),
    ]))
    return LectureConvNet("zfnet", features, _lecture_classifier(512 * 6 * 6, num_classes, dropout),
                          (512, 6, 6), "224×224 or 227×227")
