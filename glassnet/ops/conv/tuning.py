"""The conv family's measured tuning data: where each algorithm pays. Numbers only, no rules.

The rules that read these live in :mod:`.selection`; ``benchmarks/tune_conv.py`` re-measures
the layers below and prints this table in the same format.

MACHINE-SPECIFIC. Measured on the project's benchmark machine: 2 logical CPUs (AMD EPYC,
AVX-512), NumPy 2.4.6 with scipy-openblas 0.3.31 (2 threads, SkylakeX kernels), 2026-11-28
(see BENCHMARKS.md). Another CPU, BLAS or thread count moves the crossovers; re-measure with
``python benchmarks/tune_conv.py`` before trusting them elsewhere.

Winograd against im2col, forward, ms (im2col -> Winograd; dL/dW gains alike):

================  ==========  ===========================  ===========================
algorithm         layer       shape (C, px, batch)          ms
================  ==========  ===========================  ===========================
F(4×4, 3×3)       VGG16       conv1_2 (64, 224, 1)          30.5 -> 23.1
F(4×4, 3×3)       VGG16       conv2_2 (128, 112, 1)         22.8 -> 14.7
F(4×4, 3×3)       VGG16       conv3_2 (256, 56, 1)          20.4 -> 11.1
F(4×4, 3×3)       VGG16       conv4_2 (512, 28, 2)          38.6 -> 21.1
F(4×4, 3×3)       ResNet-18   layer1 (64, 56, 8)            14.3 -> 12.5
F(4×4, 3×3)       —           (64, 28, —)                   5.6 -> 6.2 (slower)
F(3×3, 3×3)       AlexNet     conv3–conv5 (13 px, 16)       19.1 -> 15.1, 27.6 -> 20.8, 18.0 -> 14.7
F(3×3, 3×3)       ResNet-18   layer3 (256, 14, 8)           10.6 -> 8.1
F(3×3, 3×3)       VGG16       conv5 (512, 14, 1: 25 tiles)  6.2 -> 8.2 (slower)
F(3×3, 5×5)       AlexNet     conv2 (64 -> 192, 27, 16)     40.9 -> 23.5
F(3×3, 3×3)       FMNIST CNN  (32 -> 64, 14, 128)           8.0 -> 11.4 (few channels never pay)
================  ==========  ===========================  ===========================

On a GPU (CuPy, an H200): cuBLAS runs im2col's one big GEMM so fast that Winograd's transforms
(many small kernels) cost more than they save — VGG16's training step at batch 2 took 40 -> 70 ms
and ResNet-18's at batch 8 43 -> 65 ms with the rules below — so CuPy arrays use im2col unless
``ConvSettings(winograd_on_gpu=True)``.
"""
from __future__ import annotations

from typing import NamedTuple

from .winograd_tiles import F3X3_3X3, F3X3_5X5, F4X4_3X3

__all__ = ["WinogradRule", "WINOGRAD_RULES", "WIDE_ROWS_MIN_RATIO", "DW_TRANSPOSED_MIN_ROWS"]


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
