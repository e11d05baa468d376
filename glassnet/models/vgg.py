"""VGG (Simonyan & Zisserman 2014) in torchvision's layout: ``vgg11/13/16/19``
and their ``_bn`` variants (BatchNorm2d after every conv).

The conv stack is all 3×3 convolutions (stride 1, pad 1: the spatial size is
kept) and 2×2 max-pools (stride 2: it is halved), with 64 → 128 → 256 → 512
→ 512 channels; a stack of three 3×3 convs sees a 7×7 region with fewer
parameters (3·9C² vs 49C²) and more non-linearities than one 7×7 conv.
"""
from __future__ import annotations

from .. import nn
from .registry import register_model

# torchvision's configurations: numbers are conv widths, "M" a 2×2 max-pool.
CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],                      # vgg11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],             # vgg13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # vgg16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],                                                             # vgg19
}


def make_layers(cfg, batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """The ``features`` Sequential for a cfg list (torchvision's indices:
    conv, [bn], relu per number; one MaxPool2d(2, 2) per ``"M"``)."""
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """torchvision's VGG: ``features``, ``avgpool`` (adaptive 7×7) and
    ``classifier`` = Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096),
    ReLU, Dropout, Linear(4096, num_classes).

    Initialisation (torchvision's): conv weights kaiming-normal (fan_out,
    ReLU gain), conv biases 0; BatchNorm γ = 1, β = 0; Linear weights
    N(0, 0.01²), biases 0.

    Shape:
        Input: (N, in_channels, H, W) with H, W ≥ 32 (five 2×2 pools; 224 is
        standard: 224 → 112 → 56 → 28 → 14 → 7). Output: (N, num_classes).
    """

    def __init__(self, features, num_classes: int = 1000, init_weights: bool = True, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _vgg(cfg, batch_norm, num_classes, in_channels, dropout, init_weights):
    return VGG(make_layers(CFGS[cfg], batch_norm, in_channels), num_classes=num_classes,
               init_weights=init_weights, dropout=dropout)


_DOC = """VGG-{depth}{bn} (configuration "{cfg}"){bn_text}, torchvision's layout: ``state_dict``
    keys and shapes match ``torchvision.models.vgg{depth}{bn_key}`` one to one ({params} parameters
    with 1000 classes).

    Args:
        num_classes, in_channels: outputs and input channels.
        dropout: dropout probability in the classifier.
        init_weights: apply torchvision's initialisation (see :class:`VGG`).

    Shape:
        Input: (N, in_channels, H, W), H, W ≥ 32. Output: (N, num_classes).
    """


def _make_builder(name, depth, cfg, batch_norm, params):
    def builder(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, init_weights: bool = True):
        return _vgg(cfg, batch_norm, num_classes, in_channels, dropout, init_weights)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = _DOC.format(depth=depth, cfg=cfg, bn=" BN" if batch_norm else "",
                                  bn_key="_bn" if batch_norm else "",
                                  bn_text=" with BatchNorm2d after each conv" if batch_norm else "",
                                  params=params)
    return register_model(builder)


vgg11 = _make_builder("vgg11", 11, "A", False, "132,863,336")
vgg11_bn = _make_builder("vgg11_bn", 11, "A", True, "132,868,840")
vgg13 = _make_builder("vgg13", 13, "B", False, "133,047,848")
vgg13_bn = _make_builder("vgg13_bn", 13, "B", True, "133,053,736")
vgg16 = _make_builder("vgg16", 16, "D", False, "138,357,544")
vgg16_bn = _make_builder("vgg16_bn", 16, "D", True, "138,365,992")
vgg19 = _make_builder("vgg19", 19, "E", False, "143,667,240")
vgg19_bn = _make_builder("vgg19_bn", 19, "E", True, "143,678,248")
