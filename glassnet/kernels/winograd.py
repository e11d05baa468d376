"""Winograd F(2×2, 3×3) convolution for 3×3, stride-1 layers (Lavin & Gray, 2015).

A 3×3 convolution computes each 2×2 block of outputs from the 4×4 input tile
``d`` under it. Winograd's minimal filtering algorithm does that with 16
multiplications instead of 36::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

    Bᵀ = [[1, 0, −1, 0],      G = [[1,    0,   0  ],      Aᵀ = [[1, 1,  1,  0],
          [0, 1,  1, 0],           [1/2,  1/2, 1/2],            [0, 1, −1, −1]]
          [0, −1, 1, 0],           [1/2, −1/2, 1/2],
          [0, 1,  0, −1]]          [0,    0,   1  ]]

Summed over input channels, the element-wise product becomes 16 matrix
products, one per position (a, b) of the 4×4 transformed tile::

    U[ab] = (G g Gᵀ)[ab]              (C_out, C)     the filters, transformed once
    V[ab] = (Bᵀ d B)[ab]              (C, tiles)     every input tile, transformed
    M[ab] = U[ab] · V[ab]             (C_out, tiles) 16 GEMMs
    Y     = Aᵀ M A                    each tile's 2×2 outputs

so the GEMMs do 2.25× fewer multiply-adds than im2col's one big GEMM, and
the transforms (additions and subtractions of strided views, like im2col's
copies) replace im2col. The transforms use only ±1 and ½, so the results
agree with the direct convolution to float rounding (float32: ~1e-6
relative).

Arrays are channel-major, (C, N, H, W) in memory, as in :mod:`.conv`. The
kernels below are used by :func:`glassnet.kernels.conv.conv2d_forward` (the
forward) and :func:`glassnet.kernels.conv.conv2d_backward` (dL/dX, which for a
stride-1 convolution is itself a stride-1 convolution of dL/dY with the
flipped, channel-swapped filters).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..threads import parallel_for

_BT = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]])
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_AT = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])
TILE, OUT = 4, 2  # input tile side, output block side


def transform_filters(weight):
    """U = G g Gᵀ for every (output, input) channel pair, as one GEMM:
    ``U[ab] = Σ_ij G[a,i]·G[b,j]·g[ij]``, i.e. the (16 × 9) matrix G ⊗ G
    times the filters laid out as columns.

    Shape: weight (C_out, C, 3, 3) -> U (16, C_out, C), row ``4a + b`` holding
    position (a, b) of the transformed 4×4 filter.
    """
    xp = get_array_module(weight)
    c_out, c = weight.shape[:2]
    gg = xp.asarray(np.kron(_G, _G), dtype=weight.dtype)  # (16, 9)
    w9 = xp.ascontiguousarray(weight).reshape(c_out * c, 9)
    return (gg @ w9.T).reshape(16, c_out, c)


def transform_input(xpad, tiles_h, tiles_w):
    """V = Bᵀ d B for every 4×4 tile (stride 2) of a padded channel-major input.

    The input is first split into its four *phase planes*
    ``P[u][v] = xpad[:, :, u::2, v::2]`` (one strided copy), so that row
    ``2i + k`` of tile i is row ``i + k // 2`` of phase ``k % 2``: every later
    pass reads contiguous rows. Rows first, ``R = Bᵀ d``: ``d0 − d2``,
    ``d1 + d2``, ``d2 − d1``, ``d1 − d3``; then the same on the columns of
    each. Split over the threads by channel.

    Shape: xpad (C, N, 2·tiles_h + 2, 2·tiles_w + 2) -> V (16, C, N·tiles_h·tiles_w).
    """
    xp = get_array_module(xpad)
    c, n = xpad.shape[:2]
    th, tw = tiles_h, tiles_w
    v = xp.empty((16, c, n * th * tw), dtype=xpad.dtype)
    v_tiles = v.reshape(16, c, n, th, tw)

    def transform_channels(c0, c1):
        m = c1 - c0
        phase = xp.empty((2, 2, m, n, th + 1, tw + 1), dtype=xpad.dtype)
        for u in range(2):
            for w in range(2):
                phase[u, w] = xpad[c0:c1, :, u::2, w::2]
        rows = xp.empty((4, 2, m, n, th, tw + 1), dtype=xpad.dtype)  # R[k] for column phase w
        for w in range(2):
            even, odd = phase[0, w], phase[1, w]  # rows 2i (+2) and 2i+1 (+2)
            xp.subtract(even[:, :, :th], even[:, :, 1:], out=rows[0, w])  # d0 − d2
            xp.add(odd[:, :, :th], even[:, :, 1:], out=rows[1, w])  # d1 + d2
            xp.subtract(even[:, :, 1:], odd[:, :, :th], out=rows[2, w])  # d2 − d1
            xp.subtract(odd[:, :, :th], odd[:, :, 1:], out=rows[3, w])  # d1 − d3
        for a in range(4):
            even, odd = rows[a, 0], rows[a, 1]  # columns 2j (+2) and 2j+1 (+2)
            xp.subtract(even[..., :tw], even[..., 1:], out=v_tiles[4 * a + 0, c0:c1])
            xp.add(odd[..., :tw], even[..., 1:], out=v_tiles[4 * a + 1, c0:c1])
            xp.subtract(even[..., 1:], odd[..., :tw], out=v_tiles[4 * a + 2, c0:c1])
            xp.subtract(odd[..., :tw], odd[..., 1:], out=v_tiles[4 * a + 3, c0:c1])

    parallel_for(c, transform_channels, 4 * v[0].size, xp=xp)
    return v


def transform_output(m, n, tiles_h, tiles_w, bias=None):
    """Y = Aᵀ M A for every tile, plus the bias: each tile's 2×2 outputs.

    Rows first: ``Q = Aᵀ M`` (``m0 + m1 + m2`` and ``m1 − m2 − m3`` over the
    first index), then the same on the columns. Split over the threads by
    output channel.

    Shape: m (16, C_out, N·tiles_h·tiles_w) -> Y (C_out, N, 2·tiles_h, 2·tiles_w).
    """
    xp = get_array_module(m)
    c_out = m.shape[1]
    y = xp.empty((c_out, n, 2 * tiles_h, 2 * tiles_w), dtype=m.dtype)
    m_tiles = m.reshape(4, 4, c_out, n, tiles_h, tiles_w)

    def transform_channels(c0, c1):
        mm = m_tiles[:, :, c0:c1]
        q0 = [mm[0, b] + mm[1, b] + mm[2, b] for b in range(4)]
        q1 = [mm[1, b] - mm[2, b] - mm[3, b] for b in range(4)]
        for i, q in enumerate((q0, q1)):
            even = y[c0:c1, :, i::2, 0::2]
            odd = y[c0:c1, :, i::2, 1::2]
            xp.add(q[0], q[1], out=even)
            even += q[2]
            xp.subtract(q[1], q[2], out=odd)
            odd -= q[3]
            if bias is not None:
                b = bias[c0:c1].reshape(-1, 1, 1, 1)
                even += b
                odd += b

    parallel_for(c_out, transform_channels, 4 * m[0].size, xp=xp)
    return y


def padded_extent(out):
    """Padded input length that whole 4×4 tiles (stride 2) need for ``out``
    outputs: ``2·⌈out/2⌉ + 2`` (an odd ``out`` gets one zero row or column
    more than the convolution's padding gives)."""
    return 2 * (-(-out // 2)) + 2


def winograd_conv3x3(xpad, weight, bias, out_hw):
    """Stride-1 3×3 convolution of a zero-padded channel-major input by F(2×2, 3×3).

    Shape: xpad (C, N, padded_extent(Ho), padded_extent(Wo)), the input with
    its convolution padding and zeros beyond; weight (C_out, C, 3, 3); bias
    (C_out,) or None; out_hw (Ho, Wo). Returns (C_out, N, Ho, Wo), C-contiguous.
    """
    xp = get_array_module(xpad)
    n = xpad.shape[1]
    ho, wo = out_hw
    th, tw = -(-ho // 2), -(-wo // 2)
    v = transform_input(xpad, th, tw)
    m = xp.matmul(transform_filters(weight), v)  # 16 GEMMs (C_out, C)·(C, tiles)
    del v
    y = transform_output(m, n, th, tw, bias)
    if (2 * th, 2 * tw) != (ho, wo):
        y = xp.ascontiguousarray(y[:, :, :ho, :wo])
    return y


def workspace_bytes(c, c_out, n, out_hw, itemsize):
    """Bytes of the largest Winograd buffers (V and M) for one call."""
    tiles = n * (-(-out_hw[0] // 2)) * (-(-out_hw[1] // 2))
    return 16 * max(c, c_out) * tiles * itemsize
