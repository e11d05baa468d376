"""The conv family's measured tuning data: where each algorithm pays, and the thresholds drawn
from it. Numbers only; the rules that read them live in :mod:`.selection`.

``benchmarks/tune_conv.py`` re-measures the layers of :data:`MEASURED` on this machine and
prints fresh rows in the same format (``--quick``: a smoke run on shrunken layers).

MACHINE-SPECIFIC. Measured on the project's benchmark machine: 2 logical CPUs (AMD EPYC,
AVX-512), NumPy 2.4.6 with scipy-openblas 0.3.31 (2 threads, SkylakeX kernels), 2026-11-28
(see BENCHMARKS.md). Another CPU, BLAS or thread count moves the crossovers; re-measure with
``python benchmarks/tune_conv.py`` before trusting them elsewhere.

The measurements behind the rules are :data:`MEASURED` (forward ms, im2col against Winograd;
dL/dW gains alike); the rules' thresholds sit between the layers that paid and those that did not.

On a GPU (CuPy, an H200): cuBLAS runs im2col's one big GEMM so fast that Winograd's transforms
(many small kernels) cost more than they save — VGG16's training step at batch 2 took 40 -> 70 ms
and ResNet-18's at batch 8 43 -> 65 ms with the CPU's rules — so CuPy arrays use im2col unless
``ConvSettings(winograd_on_gpu=True)``.
"""
from __future__ import annotations

from typing import NamedTuple

from .winograd_tiles import F3X3_3X3, F3X3_5X5, F4X4_3X3

__all__ = ["Measurement", "MEASURED", "WinogradRule", "WINOGRAD_RULES", "WIDE_ROWS_MIN_RATIO",
           "DW_TRANSPOSED_MIN_ROWS"]


class Measurement(NamedTuple):
    """One measured layer: a stride-1 ``kernel``×``kernel`` convolution, padding ``kernel // 2``,
    C_in -> C_out channels on ``px``×``px`` maps at ``batch``, forward float32 ms by im2col and by
    Winograd ``algorithm`` (``"F(4x4,3x3)"`` …). ``batch`` / ``algorithm`` are ``None`` where the
    original measurement did not record them.

    Shape: not applicable (one table row).
    """

    algorithm: str | None
    network: str
    layer: str
    c_in: int
    c_out: int
    px: int
    batch: int | None
    kernel: int
    im2col_ms: float
    winograd_ms: float


# MACHINE-SPECIFIC: measured on 2 logical CPUs (AMD EPYC, AVX-512), NumPy 2.4.6 + scipy-openblas
# 0.3.31 (2 threads, SkylakeX kernels), 2026-11-28. Re-measure with benchmarks/tune_conv.py,
# which prints fresh rows in this format.
MEASURED = (
    Measurement("F(4x4,3x3)", "VGG16", "conv1_2", 64, 64, 224, 1, 3, 30.5, 23.1),
    Measurement("F(4x4,3x3)", "VGG16", "conv2_2", 128, 128, 112, 1, 3, 22.8, 14.7),
    Measurement("F(4x4,3x3)", "VGG16", "conv3_2", 256, 256, 56, 1, 3, 20.4, 11.1),
    Measurement("F(4x4,3x3)", "VGG16", "conv4_2", 512, 512, 28, 2, 3, 38.6, 21.1),
    Measurement("F(4x4,3x3)", "ResNet-18", "layer1", 64, 64, 56, 8, 3, 14.3, 12.5),
    Measurement("F(4x4,3x3)", "-", "64 ch at 28 px", 64, 64, 28, None, 3, 5.6, 6.2),  # slower
    Measurement("F(3x3,3x3)", "AlexNet", "conv3", 192, 384, 13, 16, 3, 19.1, 15.1),
    Measurement("F(3x3,3x3)", "AlexNet", "conv4", 384, 256, 13, 16, 3, 27.6, 20.8),
    Measurement("F(3x3,3x3)", "AlexNet", "conv5", 256, 256, 13, 16, 3, 18.0, 14.7),
    Measurement("F(3x3,3x3)", "ResNet-18", "layer3", 256, 256, 14, 8, 3, 10.6, 8.1),
    Measurement("F(3x3,3x3)", "VGG16", "conv5 (25 tiles)", 512, 512, 14, 1, 3, 6.2, 8.2),  # slower
    Measurement("F(3x3,5x5)", "AlexNet", "conv2", 64, 192, 27, 16, 5, 40.9, 23.5),
    Measurement(None, "FMNIST CNN", "conv2", 32, 64, 14, 128, 3, 8.0, 11.4),  # few channels never pay
)


class WinogradRule(NamedTuple):
    """One row of :data:`WINOGRAD_RULES`: ``algorithm`` for a ``kernel``×``kernel`` stride-1
    convolution when min(C_in, C_out) >= ``min_channels``, Wo >= ``min_width`` and the batch has at
    least ``min_tiles`` tiles (N·⌈Ho/m⌉·⌈Wo/m⌉).

    Shape: not applicable (ints and a :class:`~glassnet.ops.conv.winograd_tiles.WinogradTiles`).
    """

    kernel: int
    algorithm: object
    min_channels: int
    min_width: int
    min_tiles: int


#: The first matching row wins (:func:`glassnet.ops.conv.selection.winograd_for`).
WINOGRAD_RULES = (
    WinogradRule(3, F4X4_3X3, 64, 56, 0),
    WinogradRule(3, F4X4_3X3, 128, 28, 0),
    WinogradRule(3, F3X3_3X3, 128, 13, 200),
    WinogradRule(5, F3X3_5X5, 64, 13, 200),
)

#: col2im over full-width rows (stride 1) when Wo >= this times the extra columns W_pad − Wo
#: (they cost (W_pad − Wo)/Wo <= 5 % more GEMM; the wide-row overlay runs one long ``+=`` per
#: kernel offset instead of Ho short ones).
WIDE_ROWS_MIN_RATIO = 20

#: dL/dW = dO · X_colᵀ runs as (X_col · dOᵀ)ᵀ, written into dW's transposed view, when X_col has
#: at least this many rows per group: OpenBLAS is 2–10× faster in that orientation on VGG's layers.
DW_TRANSPOSED_MIN_ROWS = 128
