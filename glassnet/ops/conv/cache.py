"""The typed caches of the conv family: one frozen dataclass per algorithm.

:func:`~glassnet.ops.conv.forward.conv2d_forward` returns one of these as its ``cache``;
:func:`~glassnet.ops.conv.backward.conv2d_backward` dispatches on its type and reads it by field
name. ``algorithm`` names the strategy the forward took (it lands on the tape's
:class:`~glassnet.op_record.OpRecord`):

=====================  ===========================  =============================================
cache                  ``algorithm``                strategy
=====================  ===========================  =============================================
:class:`Im2colCache`   ``"im2col"``                 ``O = W_row · X_col + b``, one GEMM per group
:class:`WinogradCache` ``"winograd F(4x4,3x3)"``,   Winograd's F(m×m, r×r) tiles: t² GEMMs between
                       ``"winograd F(3x3,3x3)"``,   transformed filters and input tiles
                       ``"winograd F(3x3,5x5)"``
=====================  ===========================  =============================================

Arrays are kept by reference (no copies); ``eq=False`` because arrays have no single truth value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["ConvCache", "Im2colCache", "WinogradCache"]


@dataclass(frozen=True, eq=False)
class ConvCache:
    """What every conv backward needs, whatever the forward's algorithm.

    Attributes:
        x: the input X (N, C_in, H, W).
        weight: the filters W (C_out, C_in/groups, kH, kW).
        has_bias: whether the forward added a bias (then the backward returns dL/db).
        stride, dilation: (sH, sW), (dH, dW).
        padding: (top, bottom, left, right).
        groups: channel groups.
        workspace_limit: bytes one im2col-sized buffer may take (the backward chunks under it).
        need_dx: whether the backward computes dL/dX (False: the input needs no gradient).
        settings: the :class:`~glassnet.ops.conv.settings.ConvSettings` the forward ran under;
            the backward decides by the same ones (contextvars do not follow into threads,
            and a backward may run outside the forward's ``conv_settings`` block).

    Shape:
        x (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW).
    """

    x: object
    weight: object
    has_bias: bool
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    workspace_limit: int
    need_dx: bool
    settings: object


@dataclass(frozen=True, eq=False)
class Im2colCache(ConvCache):
    """An im2col + GEMM forward (:mod:`glassnet.ops.conv.im2col_gemm`).

    Attributes:
        cols: X_col of the whole batch, kept for dL/dW when the forward needed one chunk and
            ``cache_cols`` is on; ``None`` otherwise (the backward rebuilds it chunk by chunk).
        bias_in_gemm: the bias rode in the GEMM as the last column of W_row against a row of
            ones in X_col (one group, not pointwise); then dL/db is dW's last column.

    Shape:
        cols (C_in·kH·kW [+ 1 with bias_in_gemm], N·Ho·Wo) or None.
    """

    algorithm: ClassVar[str] = "im2col"
    cols: object
    bias_in_gemm: bool


@dataclass(frozen=True, eq=False)
class WinogradCache(ConvCache):
    """A Winograd forward (:mod:`glassnet.ops.conv.winograd`).

    Attributes:
        tiles: the :class:`~glassnet.ops.conv.winograd_tiles.WinogradTiles` F(m×m, r×r) that ran.
        v: the input transform V, kept for dL/dW when ``cache_cols`` is on; ``None`` otherwise
            (the backward transforms the input again).

    Shape:
        v (t², C_in, tiles) or None, with t = m + r − 1 and tiles = N·⌈Ho/m⌉·⌈Wo/m⌉.
    """

    tiles: object
    v: object

    @property
    def algorithm(self) -> str:
        """``"winograd F(mxm,rxr)"``, e.g. ``"winograd F(4x4,3x3)"``."""
        m, r = self.tiles.m, self.tiles.r
        return f"winograd F({m}x{m},{r}x{r})"
