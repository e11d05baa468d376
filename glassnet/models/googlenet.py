"""GoogLeNet / Inception v1 (Szegedy et al. 2014) in torchvision's layout.

Each Inception module runs four branches on the same input and concatenates
their outputs along the channels: a 1×1 conv; a 1×1 "bottleneck" then a 3×3
conv; a 1×1 bottleneck then a second 3×3 conv (the paper has 5×5 here;
torchvision — and so glassnet, to load its weights — uses 3×3); a 3×3
max-pool (stride 1) then a 1×1 projection. The 1×1 bottlenecks keep the
channel count, and so the cost, of the wide convs down. No FC layers but the
last one: a global average pool replaces them (6.6M parameters vs AlexNet's 61M).
"""
from __future__ import annotations

from .. import nn
from ..nn.fusion import batch_norm_relu
from ..joining import cat
from ..nn import functional as F
from .registry import register_model
from ..errors import InvalidArgumentError


class BasicConv2d(nn.Module):
    """Conv2d (no bias) → BatchNorm2d(eps=0.001) → ReLU; children ``conv`` and ``bn``.

    Shape: (N, in_channels, H, W) → (N, out_channels, H_out, W_out) as the conv.
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return batch_norm_relu(self.bn, None, self.conv(x))  # F.relu(self.bn(...)), fused


class Inception(nn.Module):
    """One Inception module: ``branch1`` (1×1), ``branch2`` (1×1 → 3×3),
    ``branch3`` (1×1 → 3×3, torchvision's stand-in for the paper's 5×5),
    ``branch4`` (3×3 max-pool stride 1 → 1×1), concatenated on channels.

    Shape:
        Input: (N, in_channels, H, W).
        Output: (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x):
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (training only): adaptive average pool to 4×4 →
    ``conv`` (BasicConv2d 1×1, 128) → flatten → ``fc1`` (2048 → 1024) → ReLU →
    dropout (0.7) → ``fc2`` (1024 → num_classes).

    Shape: (N, in_channels, H, W) → (N, num_classes).
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = self.conv(x).flatten(1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet (see :func:`googlenet`).

    Shape:
        Input: (N, in_channels, H, W), H, W ≥ 15 (224 is standard: 112 → 56 →
        28 → 14 → 7 → 1; below 32 the last maps are 1×1, so training-mode batch
        norm needs a batch of 2 or more). Output: (N, num_classes) logits; in training mode
        with ``aux_logits`` the tuple ``(logits, aux2, aux1)``, each
        (N, num_classes), as torchvision's ``GoogLeNetOutputs``.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False, transform_input: bool = False,
                 init_weights: bool = True, dropout: float = 0.2, dropout_aux: float = 0.7,
                 in_channels: int = 3):
        super().__init__()
        if transform_input and in_channels != 3:
            raise InvalidArgumentError(f"GoogLeNet: transform_input needs 3 input channels (RGB), got in_channels={in_channels}")
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        if init_weights:
            # torchvision: trunc_normal_(std=0.01, a=-2, b=2) — the ±2 bounds are 200σ
            # away, so this is N(0, 0.01²) for all practical purposes.
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.normal_(m.weight, 0.0, 0.01)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def _transform_input(self, x):
        if not self.transform_input:
            return x
        # ImageNet normalisation (mean/std) → the (x − 0.5)/0.5 scaling the original weights used.
        return cat([x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5,
                    x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5,
                    x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5], 1)

    def forward(self, x):
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if (self.aux1 is not None and self.training) else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if (self.aux2 is not None and self.training) else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.dropout(self.avgpool(x).flatten(1))
        x = self.fc(x)
        if self.training and self.aux_logits:
            return x, aux2, aux1
        return x


@register_model
def googlenet(num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = False,
              transform_input: bool = False, dropout: float = 0.2, dropout_aux: float = 0.7,
              init_weights: bool = True):
    """GoogLeNet (Inception v1), torchvision's layout: ``state_dict`` keys and
    shapes match ``torchvision.models.googlenet`` one to one (6,624,904
    parameters with 1000 classes and no auxiliary heads).

    conv1 (7×7/2, 64) → maxpool1 (3/2, ceil) → conv2 (1×1, 64) → conv3 (3×3,
    192) → maxpool2 → inception3a, 3b → maxpool3 → inception4a–4e → maxpool4
    (2/2) → inception5a, 5b → avgpool (global) → dropout → fc (1024 →
    num_classes). Every conv is a :class:`BasicConv2d` (conv without bias,
    BatchNorm2d(eps=0.001), ReLU).

    Args:
        num_classes, in_channels: outputs and input channels.
        aux_logits: add the two auxiliary classifiers ``aux1`` (after 4a) and
            ``aux2`` (after 4d); in training mode the output is then the tuple
            ``(logits, aux2, aux1)`` (torchvision's order); in eval mode just logits.
        transform_input: rescale ImageNet-normalised RGB input as torchvision does.
        dropout, dropout_aux: dropout before ``fc`` / in the auxiliary heads.
        init_weights: N(0, 0.01²) conv and linear weights, BatchNorm γ = 1, β = 0.

    Shape:
        Input: (N, in_channels, H, W), H, W ≥ 15. Output: (N, num_classes)
        (or the training-mode tuple above).
    """
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, transform_input=transform_input,
                     init_weights=init_weights, dropout=dropout, dropout_aux=dropout_aux,
                     in_channels=in_channels)
