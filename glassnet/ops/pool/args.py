"""The frozen argument objects of the pool family."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PoolArgs:
    """A sliding-window pool's hyper-parameters, normalised.

    Attributes:
        kind: ``"max"``, ``"avg"`` or ``"lp"``.
        kernel_size: (kH, kW).
        stride: (sH, sW) (``kernel_size`` when the user gave ``None``).
        padding: (pH, pW), symmetric (PyTorch pools pad both sides alike).
        dilation: (dH, dW) (max pooling only; 1 otherwise).
        ceil_mode: round the output size up (dropping a window that would start in the right padding).
        count_include_pad: average pooling: padding counts in the divisor.
        divisor_override: average pooling: the divisor, if given.
        norm_type: Lp pooling's p (``None`` for other kinds).

    Shape:
        output (Ho, Wo): Ho = floor((H + 2·pH − dH·(kH − 1) − 1)/sH) + 1
        (ceil with ``ceil_mode``), likewise Wo.
    """

    kind: str
    kernel_size: tuple
    stride: tuple
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    norm_type: float | None = None


@dataclass(frozen=True)
class AdaptivePoolArgs:
    """An adaptive pool's target size.

    Attributes:
        kind: ``"max"`` or ``"avg"``.
        output_size: (Ho, Wo). Window i covers rows [floor(i·H/Ho), ceil((i+1)·H/Ho)).

    Shape:
        output (N, C, Ho, Wo).
    """

    kind: str
    output_size: tuple
