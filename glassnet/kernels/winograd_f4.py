"""Winograd F(4×4, 3×3) convolution for 3×3, stride-1 layers (Lavin & Gray, 2015).

The larger sibling of :mod:`.winograd`'s F(2×2, 3×3): each 4×4 block of
outputs comes from the 6×6 input tile ``d`` under it (tiles overlap by 2), with
36 multiplications instead of 144 — 4× fewer than the direct convolution
(F(2×2, 3×3): 2.25×)::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

    Bᵀ = [[4,  0, −5,  0, 1, 0],    G = [[ 1/4,     0,    0 ],    Aᵀ = [[1, 1,  1, 1,  1, 0],
          [0, −4, −4,  1, 1, 0],         [−1/6,  −1/6, −1/6],          [0, 1, −1, 2, −2, 0],
          [0,  4, −4, −1, 1, 0],         [−1/6,   1/6, −1/6],          [0, 1,  1, 4,  4, 0],
          [0, −2, −1,  2, 1, 0],         [1/24,  1/12,  1/6],          [0, 1, −1, 8, −8, 1]]
          [0,  2, −1, −2, 1, 0],         [1/24, −1/12,  1/6],
          [0,  4,  0, −5, 0, 1]]         [   0,     0,    1 ]]

(the interpolation points 0, ±1, ±2 and ∞). Summed over input channels::

    U[ab] = (G g Gᵀ)[ab]      (C_out, C)      the filters, transformed once
    V[ab] = (Bᵀ d B)[ab]      (C, tiles)      every 6×6 input tile, transformed
    M[ab] = U[ab] · V[ab]     (C_out, tiles)  36 GEMMs
    Y     = Aᵀ M A            each tile's 4×4 outputs

Each two-sided transform is one GEMM with a Kronecker product, because
``(Bᵀ d B)[ab] = Σ_ij Bᵀ[a,i]·Bᵀ[b,j]·d[ij]``: ``V = (Bᵀ ⊗ Bᵀ) · D`` with D
the 36 tile positions as rows, ``Y = (Aᵀ ⊗ Aᵀ) · M`` and ``U = (G ⊗ G) · g``.
The tiles are gathered by 36 strided copies (im2col's 9 copies of a 3×3
layer, at stride 4 and for a 6×6 window). Coefficients up to 8 and 1/24
make it less exact than F(2×2, 3×3): float32 results agree with the direct
convolution to ~1e-5 relative (measured in tests/test_kernel_winograd.py).

The weight gradient uses the same tiles. The forward is a trilinear form,
``Σ_i e_i y_i = Σ_t (A e)_t (G g)_t (Bᵀ d)_t`` for any 4-vector e, so
differentiating by the filter gives, per tile and summed over tiles::

    dL/dg = Gᵀ [ Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B) ] G     e: the tile's 4×4 block of dL/dY

— 36 GEMMs (C_out, tiles)·(tiles, C) with the tiles as the long inner
dimension, 4× fewer multiply-adds than im2col's dO · X_colᵀ
(:func:`weight_gradient`).

Arrays are channel-major, (C, N, H, W) in memory, as in :mod:`.conv`.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..threads import parallel_for

_BT = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
_G = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], dtype=np.float64)
_AT = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)
TILE, OUT = 6, 4  # input tile side, output block side


def transform_filters(weight):
    """U = G g Gᵀ for every (output, input) channel pair: the (36 × 9) matrix
    G ⊗ G times the filters as columns.

    Shape: weight (C_out, C, 3, 3) -> U (36, C_out, C), row ``6a + b`` holding
    position (a, b) of the transformed 6×6 filter.
    """
    xp = get_array_module(weight)
    c_out, c = weight.shape[:2]
    gg = xp.asarray(np.kron(_G, _G), dtype=weight.dtype)  # (36, 9)
    w9 = xp.ascontiguousarray(weight).reshape(c_out * c, 9)
    return (gg @ w9.T).reshape(36, c_out, c)


def transform_input(xpad, tiles_h, tiles_w):
    """V = (Bᵀ ⊗ Bᵀ) · D, with D[6i + j] the input element at offset (i, j) of
    every 6×6 tile (tiles at stride 4), gathered channel block by channel
    block over the threads.

    Shape: xpad (C, N, 4·tiles_h + 2, 4·tiles_w + 2) -> V (36, C, N·tiles_h·tiles_w).
    """
    xp = get_array_module(xpad)
    c, n = xpad.shape[:2]
    th, tw = tiles_h, tiles_w
    d = xp.empty((36, c, n, th, tw), dtype=xpad.dtype)

    def gather_channels(c0, c1):
        for i in range(TILE):
            for j in range(TILE):
                d[TILE * i + j, c0:c1] = xpad[c0:c1, :, i:i + OUT * (th - 1) + 1:OUT, j:j + OUT * (tw - 1) + 1:OUT]

    parallel_for(c, gather_channels, d.size, xp=xp)
    btbt = xp.asarray(np.kron(_BT, _BT), dtype=xpad.dtype)  # (36, 36)
    return (btbt @ d.reshape(36, -1)).reshape(36, c, n * th * tw)


def transform_output(m, n, tiles_h, tiles_w, bias=None):
    """Y = (Aᵀ ⊗ Aᵀ) · M, each tile's 4×4 outputs scattered into place, plus the bias.

    Shape: m (36, C_out, N·tiles_h·tiles_w) -> Y (C_out, N, 4·tiles_h, 4·tiles_w).
    """
    xp = get_array_module(m)
    c_out = m.shape[1]
    th, tw = tiles_h, tiles_w
    atat = xp.asarray(np.kron(_AT, _AT), dtype=m.dtype)  # (16, 36)
    blocks = (atat @ m.reshape(36, -1)).reshape(OUT, OUT, c_out, n, th, tw)
    y = xp.empty((c_out, n, OUT * th, OUT * tw), dtype=m.dtype)

    def scatter_channels(c0, c1):
        for a in range(OUT):
            for b in range(OUT):
                y[c0:c1, :, a::OUT, b::OUT] = blocks[a, b, c0:c1]
        if bias is not None:
            y[c0:c1] += bias[c0:c1].reshape(-1, 1, 1, 1)

    parallel_for(c_out, scatter_channels, y.size, xp=xp)
    return y


def padded_extent(out):
    """Padded input length that whole 6×6 tiles (stride 4) need for ``out``
    outputs: ``4·⌈out/4⌉ + 2``."""
    return OUT * (-(-out // OUT)) + 2


def winograd_conv3x3(xpad, weight, bias, out_hw):
    """Stride-1 3×3 convolution of a zero-padded channel-major input by F(4×4, 3×3).

    Shape: xpad (C, N, padded_extent(Ho), padded_extent(Wo)), the input with
    its convolution padding and zeros beyond; weight (C_out, C, 3, 3); bias
    (C_out,) or None; out_hw (Ho, Wo). Returns (C_out, N, Ho, Wo), C-contiguous.
    """
    xp = get_array_module(xpad)
    n = xpad.shape[1]
    ho, wo = out_hw
    th, tw = -(-ho // OUT), -(-wo // OUT)
    v = transform_input(xpad, th, tw)
    m = xp.matmul(transform_filters(weight), v)  # 36 GEMMs (C_out, C)·(C, tiles)
    del v
    y = transform_output(m, n, th, tw, bias)
    if (OUT * th, OUT * tw) != (ho, wo):
        y = xp.ascontiguousarray(y[:, :, :ho, :wo])
    return y


def transform_output_gradient(d_o, tiles_h, tiles_w):
    """E = (A ⊗ A) · e for every 4×4 block e of the output gradient (zeros
    past its edge, where the tiles overhang).

    Shape: d_o (C_out, N, Ho, Wo), channel-major -> E (36, C_out, N·tiles_h·tiles_w).
    """
    xp = get_array_module(d_o)
    c_out, n, ho, wo = d_o.shape
    th, tw = tiles_h, tiles_w
    exact = (OUT * th, OUT * tw) == (ho, wo)
    e = (xp.empty if exact else xp.zeros)((OUT * OUT, c_out, n, th, tw), dtype=d_o.dtype)

    def gather_channels(c0, c1):
        for a in range(OUT):
            for b in range(OUT):
                block = d_o[c0:c1, :, a::OUT, b::OUT]
                e[OUT * a + b, c0:c1, :, :block.shape[2], :block.shape[3]] = block

    parallel_for(c_out, gather_channels, e.size, xp=xp)
    aa = xp.asarray(np.kron(_AT.T, _AT.T), dtype=d_o.dtype)  # (36, 16)
    return (aa @ e.reshape(OUT * OUT, -1)).reshape(36, c_out, n * th * tw)


def weight_gradient(xpad, d_o):
    """dL/dW of a stride-1 3×3 convolution, ``Gᵀ [Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B)] G``
    (see the module docstring): the input tiles' V, the output gradient's
    blocks' E, 36 GEMMs ``E[ab] · V[ab]ᵀ`` summing over every tile, and the
    (9 × 36) matrix Gᵀ ⊗ Gᵀ back to 3×3 filters.

    Shape: xpad (C, N, padded_extent(Ho), padded_extent(Wo)) as for the
    forward; d_o (C_out, N, Ho, Wo), channel-major. Returns (C_out, C, 3, 3).
    """
    xp = get_array_module(xpad)
    c = xpad.shape[0]
    c_out, _, ho, wo = d_o.shape
    th, tw = -(-ho // OUT), -(-wo // OUT)
    v = transform_input(xpad, th, tw)
    e = transform_output_gradient(d_o, th, tw)
    m = xp.matmul(e, v.transpose(0, 2, 1))  # 36 GEMMs (C_out, tiles)·(tiles, C)
    del v, e
    gg = xp.asarray(np.kron(_G.T, _G.T), dtype=xpad.dtype)  # (9, 36)
    dw = (gg @ m.reshape(36, c_out * c)).reshape(3, 3, c_out, c)
    return xp.ascontiguousarray(dw.transpose(2, 3, 0, 1))


def workspace_bytes(c, c_out, n, out_hw, itemsize):
    """Bytes of the largest Winograd buffers (D or V, and M) for one call."""
    tiles = n * (-(-out_hw[0] // OUT)) * (-(-out_hw[1] // OUT))
    return 36 * max(c, c_out) * tiles * itemsize
