"""ResNet (He et al. 2015) in torchvision's layout: ``resnet18/34/50/101/152``.

A residual block learns F(x) and outputs relu(F(x) + x): the identity path
lets gradients reach early layers unchanged, so 100+ layer networks train.
ResNet-18/34 stack :class:`BasicBlock` (two 3×3 convs); ResNet-50/101/152
stack :class:`Bottleneck` (1×1 reduce → 3×3 → 1×1 expand ×4). When a block
changes the size or the channels, the shortcut is ``downsample`` = 1×1 conv
(stride s) + BatchNorm. Strided blocks put the stride on the 3×3 conv
(torchvision's "ResNet v1.5").
"""
from __future__ import annotations

from .. import nn
from ..nn.fusion import batch_norm_add_relu, batch_norm_relu
from .registry import register_model


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1×1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), two 3×3 convs.

    Shape: (N, inplanes, H, W) → (N, planes, ⌈H/stride⌉, ⌈W/stride⌉).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = batch_norm_relu(self.bn1, self.relu, self.conv1(x))
        return batch_norm_add_relu(self.bn2, self.relu, self.conv2(out), identity)  # relu(bn2(…) + identity)


class Bottleneck(nn.Module):
    """1×1 (planes) → 3×3 (planes, stride) → 1×1 (4·planes), BatchNorm after
    each, ReLU after the first two and after the residual add.

    Shape: (N, inplanes, H, W) → (N, 4·planes, ⌈H/stride⌉, ⌈W/stride⌉).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = batch_norm_relu(self.bn1, self.relu, self.conv1(x))
        out = batch_norm_relu(self.bn2, self.relu, self.conv2(out))
        return batch_norm_add_relu(self.bn3, self.relu, self.conv3(out), identity)  # relu(bn3(…) + identity)


class ResNet(nn.Module):
    """torchvision's ResNet: conv1 (7×7/2, 64, no bias) → bn1 → relu →
    maxpool (3/2, pad 1) → layer1..layer4 (64, 128, 256, 512 planes; strides
    1, 2, 2, 2) → avgpool (global) → fc.

    ``small_input=True`` (for 28×28/32×32 data, CIFAR-style) replaces conv1
    by a 3×3 stride-1 conv (pad 1) and the maxpool by an Identity, so the
    first residual stage sees the full-size image instead of a 4× smaller
    one. Only ``conv1.weight``'s shape then differs from torchvision's.

    Initialisation (torchvision's): conv weights kaiming-normal (fan_out,
    ReLU gain), BatchNorm γ = 1, β = 0, ``fc`` PyTorch's default;
    ``zero_init_residual`` sets each block's last BatchNorm γ to 0.

    Shape:
        Input: (N, in_channels, H, W) (any H, W ≥ 1 that survive the strides;
        224 is standard: 112 → 56 → 56 → 28 → 14 → 7 → 1).
        Output: (N, num_classes).
    """

    def __init__(self, block, layers, num_classes: int = 1000, in_channels: int = 3,
                 zero_init_residual: bool = False, small_input: bool = False):
        super().__init__()
        self.inplanes = 64
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(batch_norm_relu(self.bn1, self.relu, self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


_DOC = """ResNet-{depth} ({blocks} × {block_name} per stage), torchvision's layout:
    ``state_dict`` keys and shapes match ``torchvision.models.resnet{depth}`` one to one
    ({params} parameters with 1000 classes).

    Args:
        num_classes, in_channels: outputs and input channels.
        small_input: 3×3 stride-1 conv1 and no maxpool, for 28×28/32×32 images
            (see :class:`ResNet`).
        zero_init_residual: start each block's last BatchNorm at γ = 0.

    Shape:
        Input: (N, in_channels, H, W). Output: (N, num_classes).
    """


def _make_builder(name, depth, block, layers, params):
    def builder(num_classes: int = 1000, in_channels: int = 3, small_input: bool = False,
                zero_init_residual: bool = False):
        return ResNet(block, layers, num_classes=num_classes, in_channels=in_channels,
                      zero_init_residual=zero_init_residual, small_input=small_input)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = _DOC.format(depth=depth, blocks=list(layers), block_name=block.__name__, params=params)
    return register_model(builder)


resnet18 = _make_builder("resnet18", 18, BasicBlock, (2, 2, 2, 2), "11,689,512")
resnet34 = _make_builder("resnet34", 34, BasicBlock, (3, 4, 6, 3), "21,797,672")
resnet50 = _make_builder("resnet50", 50, Bottleneck, (3, 4, 6, 3), "25,557,032")
resnet101 = _make_builder("resnet101", 101, Bottleneck, (3, 4, 23, 3), "44,549,160")
resnet152 = _make_builder("resnet152", 152, Bottleneck, (3, 8, 36, 3), "60,192,808")
