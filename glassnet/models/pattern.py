"""The lecture's general CNN pattern as a builder::

    INPUT → [(CONV → RELU) × N → POOL] × M → (FC → RELU) × K → FC
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from .registry import register_model
from ..errors import InvalidArgumentError


@register_model
def convnet_pattern(n_conv: int = 2, n_pool: int = 2, n_fc: int = 1, width: int = 32, num_classes: int = 10,
                    in_channels: int = 1, image_size=28, hidden: int = 128, batch_norm: bool = False,
                    dropout: float = 0.0):
    """Build ``[(CONV-RELU)*N - POOL]*M - (FC-RELU)*K - FC``.

    Stage ``s`` (0-based, ``s < M``) has ``N`` convs 3×3 / pad 1 of
    ``width·2^s`` channels (pad 1 keeps the size), each followed by ReLU
    (and BatchNorm2d before the ReLU with ``batch_norm``; the conv then has
    no bias), then a 2×2 max-pool that halves the size (M = 0: one stage, no pool). The classifier flattens the
    ``width·2^(M−1) × H/2^M × W/2^M`` map, applies ``K`` FC layers of
    ``hidden`` units with ReLU (and dropout after each with ``dropout > 0``),
    and a final FC to ``num_classes``. The defaults give
    ``[(CONV-RELU)*2 - POOL]*2 - FC-RELU - FC`` on 28×28×1: 28 → 14 → 7,
    64·7·7 = 3136 features.

    Module names: ``features.stage{s}_conv{i}``, ``stage{s}_bn{i}``,
    ``stage{s}_relu{i}``, ``stage{s}_pool``; ``classifier.flatten``,
    ``fc{k}``, ``relu{k}``, ``dropout{k}``, ``out`` (k and i count from 1).

    Args:
        n_conv (N ≥ 1), n_pool (M ≥ 0), n_fc (K ≥ 0): the pattern's counts.
        width: channels of the first stage (doubled at each next stage).
        num_classes, in_channels: outputs and input channels.
        image_size: input side, int or (H, W); each must be divisible by 2^M.
        hidden: units of each hidden FC layer.
        batch_norm: BatchNorm2d between each conv and its ReLU.
        dropout: dropout probability after each hidden FC's ReLU (0 = none).

    Shape:
        Input: (N, in_channels, H, W). Output: (N, num_classes).
    """
    if n_conv < 1 or n_pool < 0 or n_fc < 0 or width < 1:
        raise InvalidArgumentError(f"convnet_pattern: need n_conv >= 1, n_pool >= 0, n_fc >= 0, width >= 1; "
                         f"got n_conv={n_conv}, n_pool={n_pool}, n_fc={n_fc}, width={width}")
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    scale = 2 ** n_pool
    if h % scale or w % scale:
        raise InvalidArgumentError(f"convnet_pattern: image sides must be divisible by 2^n_pool = {scale} "
                         f"({n_pool} 2×2 pools), got {h}×{w}")
    stages = max(n_pool, 1)
    features = OrderedDict()
    c = in_channels
    for s in range(stages):
        out = width * 2 ** s
        for i in range(1, n_conv + 1):
            features[f"stage{s}_conv{i}"] = nn.Conv2d(c, out, 3, padding=1, bias=not batch_norm)
            if batch_norm:
                features[f"stage{s}_bn{i}"] = nn.BatchNorm2d(out)
            features[f"stage{s}_relu{i}"] = nn.ReLU()
            c = out
        if s < n_pool:
            features[f"stage{s}_pool"] = nn.MaxPool2d(2)
    classifier = OrderedDict([("flatten", nn.Flatten())])
    fan_in = c * (h // scale) * (w // scale)
    for k in range(1, n_fc + 1):
        classifier[f"fc{k}"] = nn.Linear(fan_in, hidden)
        classifier[f"relu{k}"] = nn.ReLU()
        if dropout:
            classifier[f"dropout{k}"] = nn.Dropout(dropout)
        fan_in = hidden
    classifier["out"] = nn.Linear(fan_in, num_classes)
    return nn.Sequential(OrderedDict([("features", nn.Sequential(features)),
                                      ("classifier", nn.Sequential(classifier))]))
