"""The one frozen argument object of the conv family."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvArgs:
    """A 2-D convolution's hyper-parameters, normalised.

    Attributes:
        kernel_size: (kH, kW).
        stride: (sH, sW), each >= 1.
        padding: (top, bottom, left, right) zero padding, each >= 0.
        dilation: (dH, dW), each >= 1.
        groups: number of channel groups, >= 1.

    Shape:
        output (Ho, Wo) of an (H, W) input:
        Ho = floor((H + top + bottom − dH·(kH − 1) − 1)/sH) + 1, likewise Wo.
    """

    kernel_size: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
