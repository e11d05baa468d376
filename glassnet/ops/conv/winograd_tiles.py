"""Winograd F(m×m, r×r) convolution by Kronecker-product transforms (Lavin & Gray, 2015).

An r×r stride-1 convolution computes each m×m block of outputs from the
t×t input tile ``d`` under it (t = m + r − 1; tiles overlap by r − 1).
Winograd's minimal filtering algorithm does that with t² multiplications
instead of m²·r²::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          Bᵀ (t×t), G (t×r), Aᵀ (m×t)

Summed over input channels, the element-wise product becomes t² matrix
products, one per position (a, b) of the transformed tile::

    U[ab] = (G g Gᵀ)[ab]      (C_out, C)      the filters, transformed once
    V[ab] = (Bᵀ d B)[ab]      (C, tiles)      every input tile, transformed
    M[ab] = U[ab] · V[ab]     (C_out, tiles)  t² GEMMs
    Y     = Aᵀ M A            each tile's m×m outputs

Each two-sided transform is one GEMM with a Kronecker product, because
``(Bᵀ d B)[ab] = Σ_ij Bᵀ[a,i]·Bᵀ[b,j]·d[ij]``: ``V = (Bᵀ ⊗ Bᵀ) · D`` with D
the t² tile positions as rows (gathered by t² strided copies, as im2col
gathers its r² offsets), ``Y = (Aᵀ ⊗ Aᵀ) · M`` and ``U = (G ⊗ G) · g``.

**The weight gradient** uses the same tiles. The forward is a trilinear form,
``Σ_i e_i y_i = Σ_s (A e)_s (G g)_s (Bᵀ d)_s`` for any m-vector e, so
differentiating by the filter gives, per tile and summed over tiles::

    dL/dg = Gᵀ [ Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B) ] G      e: the tile's m×m block of dL/dY

— t² GEMMs (C_out, tiles)·(tiles, C) with the tiles as the long inner
dimension (:meth:`WinogradTiles.weight_gradient`).

**The matrices** come from Toom–Cook interpolation at t − 1 points plus ∞
(:func:`toom_cook`): with ``V_k`` the (t × k) matrix evaluating a degree
k − 1 polynomial at the points, ``Aᵀ = V_mᵀ``, ``G = V_r`` and
``Bᵀ = V_t⁻ᵀ``, row j of Bᵀ then scaled by ``Π_{l≠j}(p_j − p_l)`` (and G's
row j divided by it). For F(4×4, 3×3) at 0, ±1, ±2 this gives exactly
Lavin & Gray's matrices (glassnet uses 0, ±1, ½, −2, which round less)::

    Bᵀ = [[4,  0, −5,  0, 1, 0],    G = [[ 1/4,     0,    0 ],    Aᵀ = [[1, 1,  1, 1,  1, 0],
          [0, −4, −4,  1, 1, 0],         [−1/6,  −1/6, −1/6],          [0, 1, −1, 2, −2, 0],
          [0,  4, −4, −1, 1, 0],         [−1/6,   1/6, −1/6],          [0, 1,  1, 4,  4, 0],
          [0, −2, −1,  2, 1, 0],         [1/24,  1/12,  1/6],          [0, 1, −1, 8, −8, 1]]
          [0,  2, −1, −2, 1, 0],         [1/24, −1/12,  1/6],
          [0,  4,  0, −5, 0, 1]]         [   0,     0,    1 ]]

The larger the tile, the larger the coefficients and the more the
transforms round: float32 results of the three algorithms used
(:data:`F4X4_3X3`, :data:`F3X3_3X3`, :data:`F3X3_5X5`) agree with the direct
convolution to ~1e-5 relative (tests/test_kernel_winograd.py). Which layer
gets which is decided in :mod:`.selection` by the measured rules of
:mod:`.tuning` (``WINOGRAD_RULES``); :mod:`.winograd` runs them as a convolution.

Arrays are channel-major, (C, N, H, W) in memory, as in :mod:`.im2col_gemm`.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ...backend import get_array_module
from ...gemm import matmul
from ...errors import InvalidArgumentError
from ...threads import parallel_for


def _inverse(matrix):
    """Exact inverse of a small square matrix of Fractions (Gauss–Jordan)."""
    n = len(matrix)
    rows = [list(row) + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        scale = rows[col][col]
        rows[col] = [v / scale for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    return [row[n:] for row in rows]


def toom_cook(m: int, r: int, points):
    """(Bᵀ, G, Aᵀ) of F(m, r) from ``t − 1 = m + r − 2`` distinct finite
    interpolation points (the last point is ∞), as float64 arrays; see the
    module docstring for the construction.

    Shape: returns Bᵀ (t, t), G (t, r), Aᵀ (m, t) with t = m + r − 1.
    """
    t = m + r - 1
    points = [Fraction(p) for p in points]
    if len(points) != t - 1 or len(set(points)) != len(points):
        raise InvalidArgumentError(f"toom_cook: F({m}, {r}) needs {t - 1} distinct finite points, got {points}")

    def evaluation(k):  # (t × k): row j = (1, p_j, …, p_j^(k−1)); the row for ∞ picks the top coefficient
        return [[p ** i for i in range(k)] for p in points] + [[Fraction(0)] * (k - 1) + [Fraction(1)]]

    v_t_inverse = _inverse(evaluation(t))
    scale = [Fraction(1)] * t
    for j, p in enumerate(points):
        for q in points:
            if q != p:
                scale[j] *= p - q
    bt = [[v_t_inverse[k][j] * scale[j] for k in range(t)] for j in range(t)]  # (V_t⁻ᵀ), rows scaled
    g = [[v / scale[j] for v in row] for j, row in enumerate(evaluation(r))]
    at = [list(col) for col in zip(*evaluation(m))]
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in (bt, g, at))


class WinogradTiles:
    """Winograd F(m×m, r×r) for stride-1 r×r convolutions: the transforms,
    the convolution and its weight gradient, on channel-major arrays.

    Shape:
        every method: ``tiles = N · tiles_h · tiles_w`` with ``tiles_h = ⌈Ho/m⌉``; the padded
        input is (C, N, m·tiles_h + r − 1, m·tiles_w + r − 1) (:meth:`padded_extent`).
    """

    def __init__(self, m: int, r: int, points):
        self.m, self.r = m, r
        self.t = m + r - 1
        self.bt, self.g, self.at = toom_cook(m, r, points)
        self._krons = {}  # (matrix name, array module, dtype) -> its Kronecker square, built once

    def __repr__(self):
        return f"WinogradTiles(F({self.m}×{self.m}, {self.r}×{self.r}))"

    def padded_extent(self, out: int) -> int:
        """Padded input length that whole tiles need for ``out`` outputs: m·⌈out/m⌉ + r − 1.

        Shape: int -> int.
        """
        return self.m * (-(-out // self.m)) + self.r - 1

    def workspace_bytes(self, c, c_out, n, out_hw, itemsize) -> int:
        """Bytes of the largest buffers (D or V, and M) of one call: t²·max(C, C_out)·tiles·itemsize.

        Shape: ints; out_hw (Ho, Wo) -> int.
        """
        tiles = n * (-(-out_hw[0] // self.m)) * (-(-out_hw[1] // self.m))
        return self.t * self.t * max(c, c_out) * tiles * itemsize

    def _kron(self, xp, name, dtype):
        """``M ⊗ M`` for M = ``bt``, ``g``, ``at``, ``g.T`` or ``at.T`` (the
        name), on ``xp``'s device in ``dtype``; built on first use."""
        key = (name, xp.__name__, np.dtype(dtype))
        if key not in self._krons:
            matrix = {"bt": self.bt, "g": self.g, "at": self.at, "g.T": self.g.T, "at.T": self.at.T}[name]
            self._krons[key] = xp.asarray(np.kron(matrix, matrix), dtype=dtype)
        return self._krons[key]

    def transform_filters(self, weight):
        """U = G g Gᵀ for every (output, input) channel pair: (G ⊗ G) times the filters as columns.

        Shape: weight (C_out, C, r, r) -> U (t², C_out, C), row ``t·a + b`` holding position (a, b).
        """
        xp = get_array_module(weight)
        c_out, c = weight.shape[:2]
        w_cols = xp.ascontiguousarray(weight).reshape(c_out * c, self.r * self.r)
        return matmul(self._kron(xp, "g", weight.dtype), w_cols.T).reshape(self.t * self.t, c_out, c)

    def transform_input(self, xpad, tiles_h, tiles_w):
        """V = (Bᵀ ⊗ Bᵀ) · D, with D[t·i + j] the input element at offset (i, j)
        of every t×t tile (tiles at stride m), gathered channel block by
        channel block over the threads.

        Shape: xpad (C, N, m·tiles_h + r − 1, m·tiles_w + r − 1) -> V (t², C, tiles).
        """
        xp = get_array_module(xpad)
        c, n = xpad.shape[:2]
        t, m, th, tw = self.t, self.m, tiles_h, tiles_w
        d = xp.empty((t * t, c, n, th, tw), dtype=xpad.dtype)

        def gather_channels(c0, c1):
            for i in range(t):
                for j in range(t):
                    d[t * i + j, c0:c1] = xpad[c0:c1, :, i:i + m * (th - 1) + 1:m, j:j + m * (tw - 1) + 1:m]

        parallel_for(c, gather_channels, d.size, xp=xp)
        return matmul(self._kron(xp, "bt", xpad.dtype), d.reshape(t * t, -1)).reshape(t * t, c, n * th * tw)

    def transform_output(self, mm, n, tiles_h, tiles_w, bias=None):
        """Y = (Aᵀ ⊗ Aᵀ) · M, each tile's m×m outputs scattered into place, plus the bias.

        Shape: mm (t², C_out, tiles) -> Y (C_out, N, m·tiles_h, m·tiles_w).
        """
        xp = get_array_module(mm)
        c_out = mm.shape[1]
        t, m, th, tw = self.t, self.m, tiles_h, tiles_w
        blocks = matmul(self._kron(xp, "at", mm.dtype), mm.reshape(t * t, -1)).reshape(m, m, c_out, n, th, tw)
        y = xp.empty((c_out, n, m * th, m * tw), dtype=mm.dtype)

        def scatter_channels(c0, c1):
            for a in range(m):
                for b in range(m):
                    y[c0:c1, :, a::m, b::m] = blocks[a, b, c0:c1]
            if bias is not None:
                y[c0:c1] += bias[c0:c1].reshape(-1, 1, 1, 1)

        parallel_for(c_out, scatter_channels, y.size, xp=xp)
        return y

    def conv(self, xpad, weight, bias, out_hw, keep_input_transform=False):
        """Stride-1 r×r convolution of a zero-padded channel-major input.

        Shape: xpad (C, N, padded_extent(Ho), padded_extent(Wo)), the input
        with its convolution padding and zeros beyond; weight (C_out, C, r, r);
        bias (C_out,) or None. Returns (C_out, N, Ho, Wo), C-contiguous — and
        with ``keep_input_transform`` also V (t², C, tiles), which
        :meth:`weight_gradient` can reuse.
        """
        xp = get_array_module(xpad)
        n = xpad.shape[1]
        ho, wo = out_hw
        th, tw = -(-ho // self.m), -(-wo // self.m)
        v = self.transform_input(xpad, th, tw)
        mm = matmul(self.transform_filters(weight), v)  # t² GEMMs (C_out, C)·(C, tiles)
        if not keep_input_transform:
            del v
        y = self.transform_output(mm, n, th, tw, bias)
        if (self.m * th, self.m * tw) != (ho, wo):
            y = xp.ascontiguousarray(y[:, :, :ho, :wo])
        return (y, v) if keep_input_transform else y

    def transform_output_gradient(self, d_o, tiles_h, tiles_w):
        """E = (A ⊗ A) · e for every m×m block e of the output gradient (zeros
        past its edge, where the tiles overhang).

        Shape: d_o (C_out, N, Ho, Wo), channel-major -> E (t², C_out, tiles).
        """
        xp = get_array_module(d_o)
        c_out, n, ho, wo = d_o.shape
        t, m, th, tw = self.t, self.m, tiles_h, tiles_w
        exact = (m * th, m * tw) == (ho, wo)
        e = (xp.empty if exact else xp.zeros)((m * m, c_out, n, th, tw), dtype=d_o.dtype)

        def gather_channels(c0, c1):
            for a in range(m):
                for b in range(m):
                    block = d_o[c0:c1, :, a::m, b::m]
                    e[m * a + b, c0:c1, :, :block.shape[2], :block.shape[3]] = block

        parallel_for(c_out, gather_channels, e.size, xp=xp)
        aa = self._kron(xp, "at.T", d_o.dtype)  # (t², m²)
        return matmul(aa, e.reshape(m * m, -1)).reshape(t * t, c_out, n * th * tw)

    def weight_gradient(self, xpad, d_o, v=None):
        """dL/dW = Gᵀ [Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B)] G: the input tiles' V, the
        output gradient's blocks' E, t² GEMMs ``E[ab] · V[ab]ᵀ`` summing over
        every tile, and the (r² × t²) matrix Gᵀ ⊗ Gᵀ back to r×r filters.

        Shape: xpad as for :meth:`conv` (unused when the forward's ``v`` is
        passed); d_o (C_out, N, Ho, Wo), channel-major. Returns (C_out, C, r, r).
        """
        xp = get_array_module(d_o)
        c_out, _, ho, wo = d_o.shape
        t, r = self.t, self.r
        th, tw = -(-ho // self.m), -(-wo // self.m)
        if v is None:
            v = self.transform_input(xpad, th, tw)
        c = v.shape[1]
        e = self.transform_output_gradient(d_o, th, tw)
        mm = matmul(e, v.transpose(0, 2, 1))  # t² GEMMs (C_out, tiles)·(tiles, C)
        del v, e
        gg = self._kron(xp, "g.T", d_o.dtype)  # (r², t²)
        dw = matmul(gg, mm.reshape(t * t, c_out * c)).reshape(r, r, c_out, c)
        return xp.ascontiguousarray(dw.transpose(2, 3, 0, 1))


#: F(4×4, 3×3): 36 multiplications for 16 outputs (4× fewer than direct).
#: The points 0, ±1, ½, −2 round less than Lavin & Gray's 0, ±1, ±2 (largest
#: float32 error on a 64-channel 28 px layer: 2.2e-6 against 6.2e-6; dW 3.6e-6
#: against 7.2e-6).
F4X4_3X3 = WinogradTiles(4, 3, points=(0, 1, -1, 0.5, -2))
#: F(3×3, 3×3): 25 multiplications for 9 outputs (3.2× fewer), for smaller maps.
F3X3_3X3 = WinogradTiles(3, 3, points=(0, 1, -1, 2))
#: F(3×3, 5×5): 49 multiplications for 9 outputs (4.6× fewer than direct).
F3X3_5X5 = WinogradTiles(3, 5, points=(0, 1, -1, 2, -2, 0.5))
