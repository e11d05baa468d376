"""2-D convolution kernels, lowered to one big matrix multiply (im2col).

Contract (every kernel module): ``conv2d_forward(x, weight, ...) -> (out, cache)``
and ``conv2d_backward(dout, cache) -> (dx, dweight, dbias)``. Pure functions on
raw arrays (NumPy or CuPy); no state, no Tensor. Outputs keep the input's dtype
and no float64 temporaries are made for float32 inputs.

Notation (the lecture's): ``X`` is the input (N, C, H, W), ``W`` the filter
bank (C_out, C_in/groups, kH, kW) in PyTorch's layout, ``b`` the bias, ``O``
the output and ``dO = dL/dO`` the upstream gradient (``dout``).

How it works
------------
Every output pixel is a dot product between one filter and one kH×kW×C patch
of the (padded) input. **im2col** copies every patch into a column, so the
whole convolution becomes one matrix product::

    W_row  = W.reshape(C_out, C·kH·kW)           one filter per row
    X_col  = im2col(X)       (N, C·kH·kW, Ho·Wo)  one patch per column
    O      = W_row · X_col + b                    (N, C_out, Ho·Wo) = NCHW

im2col never loops over output pixels: it makes kH·kW strided-slice copies,
one per kernel offset (i, j). Offset (i, j) of *every* patch at once is the
strided slice ``X_pad[:, :, i·dH : … : sH, j·dW : … : sW]`` of shape
(N, C, Ho, Wo), which lands in row ``c·kH·kW + i·kW + j`` of the columns.

The backward pass runs the same picture in reverse::

    dW     = Σ_n dO_n · X_col,nᵀ                  (C_out, C·kH·kW)
    db     = Σ_{n,h,w} dO
    dX_col = W_rowᵀ · dO                          (N, C·kH·kW, Ho·Wo)
    dX     = col2im(dX_col)

where **col2im** is the adjoint of im2col: it adds every column back onto the
patch it came from (``dX_pad[..., slice, slice] += …``, one in-place
accumulation per kernel offset, so overlapping patches sum), then strips the
padding.

Column layout: (C·kH·kW, N·Ho·Wo)
---------------------------------
The whole batch goes into one matrix: ``X_col`` is (C·kH·kW, N·Ho·Wo), one
patch per column, samples side by side — the lecture's [363 × 3025] for one
AlexNet image, widened by the batch. Then every product is one plain 2-D
GEMM, which BLAS runs at full speed (NumPy's *stacked* matmul with a
transposed operand falls off BLAS onto a slow loop — measured 100× slower
for the SmallCNN's dW):

* forward ``O = W_row · X_col`` is (C_out, N·Ho·Wo); the layer returns it
  as an (N, C_out, Ho, Wo) *view* (channel-major memory, NCHW indexing), so
  no transposing copy is made; element-wise layers keep that memory order;
* ``dW = dO · X_colᵀ`` and ``dX_col = W_rowᵀ · dO`` take the transposed
  operand as a BLAS flag, no copy;
* im2col reads from the input laid out as (C, N, H, W) (one copy that also
  pads; a plain copy when the input already has that memory order, as the
  output of a previous convolution does), so each kernel offset is one
  strided-slice copy into the columns; col2im accumulates into the same
  layout and dX is returned as its transposed view, as is the output;
* a 1×1, stride-1, unpadded convolution needs no im2col: ``X_col`` is the
  (C, N·H·W) view of that transposed input;
* groups are contiguous row blocks of X_col and of ``W_row``, one GEMM per
  group;
* memory chunking is a slice of the batch axis.

Winograd for 3×3 and 5×5 layers with many channels
---------------------------------------------------
A stride-1 3×3 or 5×5 convolution with many channels (VGG's 64–512 channel
layers, ResNet's 3×3 layers on maps 14–56 wide, AlexNet's conv2–conv5; see
``WINOGRAD_RULES``) goes through Winograd's F(4×4, 3×3), F(3×3, 3×3) or
F(3×3, 5×5) instead (:mod:`glassnet.kernels.winograd_tiles`): t² GEMMs
with 2.8–4× fewer multiply-adds, input and output transforms instead of
im2col. Its dL/dX is the same kind of algorithm on dL/dY with the flipped
filters, and its dL/dW the algorithm's weight gradient (no X_col at all).
:func:`set_winograd` turns it off; both paths agree to float rounding.

Memory cap
----------
X_col is kH·kW times larger than X. When it would exceed the workspace limit
(``workspace_limit_bytes`` argument, else :func:`get_workspace_limit`, 256 MiB
by default, set with :func:`set_workspace_limit`), forward and backward work
through the batch in chunks so that no im2col-sized buffer (X_col, or dX_col
in the backward) is larger than the limit. A single sample is the smallest
chunk: if one sample's columns alone exceed the limit they are still built
whole. When the forward needs only one chunk its X_col is kept in the cache
(saving a second im2col in the backward, ~20% of its time); a chunked forward
caches only X, and the backward rebuilds the columns chunk by chunk.
:func:`set_cache_cols` turns the keeping off to save memory.

Padding
-------
``padding`` is ``(pH, pW)`` (symmetric) or ``((top, bottom), (left, right))``.
The asymmetric form is what PyTorch's ``padding='same'`` needs when
``dilation·(k − 1)`` is odd; :func:`same_padding` computes it.
"""
# Over 500 lines: this session touched it only for the error family (and, in train.py/tensor.py, the
# checkpoint resume checks and gradient hooks); splitting it by job is issue 13's restructuring (ops layer,
# train/ package), planned with farm-studio, not done piecemeal here.

from __future__ import annotations

from ..backend import get_array_module
from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError
from ..threads import parallel_for
from .winograd_tiles import F3X3_3X3, F3X3_5X5, F4X4_3X3

DEFAULT_WORKSPACE_LIMIT = 256 * 2**20  # bytes of one im2col buffer
_workspace_limit = DEFAULT_WORKSPACE_LIMIT
_cache_cols = True

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "im2col",
    "col2im",
    "same_padding",
    "conv2d_output_shape",
    "set_workspace_limit",
    "get_workspace_limit",
    "set_cache_cols",
    "set_winograd",
    "DEFAULT_WORKSPACE_LIMIT",
]


# --------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------
def set_workspace_limit(nbytes) -> None:
    """Set the default cap, in bytes, on one im2col buffer (``None`` restores
    the 256 MiB default). Larger convolutions are processed in batch chunks."""
    global _workspace_limit
    if nbytes is None:
        _workspace_limit = DEFAULT_WORKSPACE_LIMIT
        return
    nbytes = int(nbytes)
    if nbytes < 1:
        raise InvalidArgumentError(f"set_workspace_limit: expected a positive number of bytes, got {nbytes}")
    _workspace_limit = nbytes


def get_workspace_limit() -> int:
    """The current default cap, in bytes, on one im2col buffer."""
    return _workspace_limit


def set_cache_cols(flag: bool) -> None:
    """Whether an unchunked forward keeps X_col (or, on the Winograd path, the
    input transform V) in its cache for the backward (default True).

    Keeping it makes the backward ~20% faster; dropping it saves kH·kW times
    the input's memory per layer until the backward runs.
    """
    global _cache_cols
    _cache_cols = bool(flag)


# --------------------------------------------------------------------------
# argument normalisation and shape arithmetic
# --------------------------------------------------------------------------
def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise InvalidArgumentError(f"conv2d: {name} must be an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _pads(padding):
    """``p``, ``(pH, pW)`` or ``((top, bottom), (left, right))`` -> 4 ints."""
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and any(
        isinstance(p, (tuple, list)) for p in padding
    ):
        (t, b), (l, r) = (_pair(p, "padding") for p in padding)
    else:
        ph, pw = _pair(padding, "padding")
        t, b, l, r = ph, ph, pw, pw
    if min(t, b, l, r) < 0:
        raise InvalidArgumentError(f"conv2d: padding must be >= 0, got {padding!r}")
    return t, b, l, r


def same_padding(kernel_size, dilation=1):
    """The padding PyTorch applies for ``padding='same'`` (stride 1).

    The total per axis is ``d·(k − 1)``; PyTorch puts ``total // 2`` before
    and the rest after, so an even effective kernel pads one more at the
    bottom/right. Returns ``((top, bottom), (left, right))``, which
    :func:`conv2d_forward` accepts as ``padding``.

    Shape:
        kernel_size, dilation: int or (kH, kW) / (dH, dW).
        returns: ((top, bottom), (left, right)).
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    dh, dw = _pair(dilation, "dilation")
    th, tw = dh * (kh - 1), dw * (kw - 1)
    return (th // 2, th - th // 2), (tw // 2, tw - tw // 2)


def conv2d_output_shape(h, w, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """(Ho, Wo) exactly as PyTorch: ``floor((H + pads − d·(k − 1) − 1) / s) + 1``.

    Raises :class:`~glassnet.errors.ShapeError` when an output side would be < 1.

    Shape:
        h, w, kh, kw: ints; stride, dilation: int or pair; padding: int,
        pair, or ((top, bottom), (left, right)). returns: (Ho, Wo).
    """
    sh, sw, pads, dh, dw = _normalise(stride, padding, dilation)
    return _output_shape(int(h), int(w), int(kh), int(kw), sh, sw, pads, dh, dw)


def _output_shape(h, w, kh, kw, sh, sw, pads, dh, dw):
    t, b, l, r = pads
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    ho = (h + t + b - eh) // sh + 1
    wo = (w + l + r - ew) // sw + 1
    if ho < 1 or wo < 1:
        dil = f" with dilation ({dh}, {dw}) (effective {eh}x{ew})" if (dh, dw) != (1, 1) else ""
        raise ShapeError(
            f"conv2d: a {kh}x{kw} filter{dil} does not fit the {h}x{w} input padded by "
            f"(top {t}, bottom {b}, left {l}, right {r}): output size "
            f"floor(({h} + {t + b} - {eh})/{sh}) + 1 = {ho} by "
            f"floor(({w} + {l + r} - {ew})/{sw}) + 1 = {wo}; each side must be >= 1"
        )
    return ho, wo


def _normalise(stride, padding, dilation):
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    if sh < 1 or sw < 1 or dh < 1 or dw < 1:
        raise InvalidArgumentError(f"conv2d: stride and dilation must be >= 1, got stride={stride!r}, dilation={dilation!r}")
    return sh, sw, _pads(padding), dh, dw


def _chunk_size(n, per_sample_bytes, limit):
    return max(1, min(n, limit // max(1, per_sample_bytes)))


# --------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------
def _channels_first_padded(x, t, b, l, r):
    """(N, C, H, W) -> (C, N, H + t + b, W + l + r), zero-padded, in one copy."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    x_cn = x.transpose(1, 0, 2, 3)  # already contiguous for a convolution's output
    if not (t or b or l or r):
        return xp.ascontiguousarray(x_cn)
    xpad = xp.empty((c, n, h + t + b, w + l + r), dtype=x.dtype)

    def fill_channels(c0, c1):  # zero border, copied interior (threads split the channels)
        block = xpad[c0:c1]
        block[:, :, :t] = 0
        block[:, :, t + h:] = 0
        block[:, :, t : t + h, :l] = 0
        block[:, :, t : t + h, l + w:] = 0
        block[:, :, t : t + h, l : l + w] = x_cn[c0:c1]

    parallel_for(c, fill_channels, xpad.size, xp=xp)
    return xpad


def _im2col(x, kh, kw, sh, sw, pads, dh, dw, ho, wo, ones_row=False):
    """(N, C, H, W) -> X_col (C·kH·kW, N·Ho·Wo): kH·kW strided-slice copies.

    With ``ones_row`` a last row of ones is appended (C·kH·kW + 1 rows), so
    that ``[W_row | b] · X_col`` adds the bias inside the GEMM.
    """
    xp = get_array_module(x)
    n, c = x.shape[:2]
    k = c * kh * kw
    xpad = _channels_first_padded(x, *pads)
    buf = xp.empty((k + int(ones_row), n * ho * wo), dtype=x.dtype)
    cols = buf[:k].reshape(c, kh, kw, n, ho, wo)

    def copy_channels(c0, c1):  # channels c0:c1 of every patch (threads split this range)
        for i in range(kh):
            r0 = i * dh
            for j in range(kw):
                q0 = j * dw
                cols[c0:c1, i, j] = xpad[c0:c1, :, r0 : r0 + sh * (ho - 1) + 1 : sh, q0 : q0 + sw * (wo - 1) + 1 : sw]

    parallel_for(c, copy_channels, buf.size, xp=xp)
    if ones_row:
        buf[k] = 1
    return buf


def _col2im(cols, x_shape, kh, kw, sh, sw, pads, dh, dw, ho, wo):
    """X_col-shaped gradient (C·kH·kW, N·Ho·Wo) -> dX, overlaps summed, in the
    channel-major layout (C, N, H, W) of the columns (transpose for NCHW)."""
    xp = get_array_module(cols)
    n, c, h, w = x_shape
    t, b, l, r = pads
    dxpad = xp.empty((c, n, h + t + b, w + l + r), dtype=cols.dtype)
    cols = cols.reshape(c, kh, kw, n, ho, wo)

    def add_channels(c0, c1):  # channels c0:c1 of every patch (threads split this range)
        dxpad[c0:c1] = 0
        for i in range(kh):
            r0 = i * dh
            for j in range(kw):
                q0 = j * dw
                dxpad[c0:c1, :, r0 : r0 + sh * (ho - 1) + 1 : sh, q0 : q0 + sw * (wo - 1) + 1 : sw] += cols[c0:c1, i, j]

    parallel_for(c, add_channels, cols.size, xp=xp)
    return _crop(dxpad, t, l, h, w)


def _crop(dxpad, t, l, h, w):
    """The (C, N, H, W) interior of a padded channel-major gradient, as a
    contiguous array (the array itself when there is no padding to strip)."""
    if dxpad.shape[2:] == (h, w) and dxpad.flags.c_contiguous:
        return dxpad
    xp = get_array_module(dxpad)
    out = xp.empty(dxpad.shape[:2] + (h, w), dtype=dxpad.dtype)

    def copy_channels(c0, c1):
        out[c0:c1] = dxpad[c0:c1, :, t : t + h, l : l + w]

    parallel_for(out.shape[0], copy_channels, out.size, xp=xp)
    return out


def _col2im_wide_rows(cols, x_shape, kh, kw, pads, dh, dw, ho):
    """col2im for stride 1 from columns laid out over full-width rows.

    ``cols`` is (C·kH·kW, N·Ho·W_pad): output row ho holds W_pad positions
    instead of Wo, the extra ones zero. Then kernel offset (i, j) of every
    patch is the contiguous run starting at ``i·dH·W_pad + j·dW`` of the
    flattened padded plane, and the overlay is one long ``+=`` per offset
    instead of Ho short ones. The plane gets ``(kW − 1)·dW`` spare elements at
    its end for the last offset's run (they only ever receive zeros).
    Returns dX as (C, N, H, W), like :func:`_col2im`.
    """
    xp = get_array_module(cols)
    n, c, h, w = x_shape
    t, b, l, r = pads
    hp, wp = h + t + b, w + l + r
    run = ho * wp
    flat = xp.empty((c, n, hp * wp + (kw - 1) * dw), dtype=cols.dtype)
    cols = cols.reshape(c, kh, kw, n, run)

    def add_channels(c0, c1):
        flat[c0:c1] = 0
        for i in range(kh):
            for j in range(kw):
                start = i * dh * wp + j * dw
                flat[c0:c1, :, start : start + run] += cols[c0:c1, i, j]

    parallel_for(c, add_channels, cols.size, xp=xp)
    return _crop(flat[:, :, : hp * wp].reshape(c, n, hp, wp), t, l, h, w)


def im2col(x, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """Unroll every kH×kW receptive field of ``x`` into a column.

    Column ``n·Ho·Wo + ho·Wo + wo`` holds the patch of sample n under output
    pixel (ho, wo); row ``c·kH·kW + i·kW + j`` holds channel c at kernel
    offset (i, j) — the order of ``W.reshape(C_out, C·kH·kW)``, so a
    convolution is ``W_row · im2col(X)``. Built from kH·kW strided-slice
    copies (one per kernel offset), never a loop over output pixels.

    Shape:
        x: (N, C, H, W); stride, dilation: int or pair; padding: int, pair,
        or ((top, bottom), (left, right)).
        returns: (C·kH·kW, N·Ho·Wo) with Ho, Wo from
        :func:`conv2d_output_shape` (for one AlexNet image: [363 × 3025]).
    """
    if x.ndim != 4:
        raise ShapeError(f"im2col: expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    sh, sw, pads, dh, dw = _normalise(stride, padding, dilation)
    ho, wo = _output_shape(x.shape[2], x.shape[3], kh, kw, sh, sw, pads, dh, dw)
    return _im2col(x, kh, kw, sh, sw, pads, dh, dw, ho, wo)


def col2im(cols, x_shape, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """The adjoint of :func:`im2col`: add every column back onto its patch.

    Where patches overlap their contributions sum (in-place
    ``dX_pad[..., slice, slice] += cols_ij``, one per kernel offset), and the
    padding is stripped at the end. So ``<im2col(x), c> == <x, col2im(c)>``,
    which is exactly what the backward pass needs: dX = col2im(dX_col).
    (It is *not* the inverse: a pixel covered by k patches comes back k-fold.)

    Shape:
        cols: (C·kH·kW, N·Ho·Wo); x_shape: (N, C, H, W).
        returns: (N, C, H, W), the dtype of ``cols``.
    """
    if len(x_shape) != 4:
        raise ShapeError(f"col2im: x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    n, c, h, w = (int(s) for s in x_shape)
    sh, sw, pads, dh, dw = _normalise(stride, padding, dilation)
    ho, wo = _output_shape(h, w, kh, kw, sh, sw, pads, dh, dw)
    if tuple(cols.shape) != (c * kh * kw, n * ho * wo):
        raise ShapeError(
            f"col2im: cols has shape {tuple(cols.shape)}, but a {kh}x{kw} filter on x of shape "
            f"{(n, c, h, w)} gives columns of shape {(c * kh * kw, n * ho * wo)}"
        )
    xp = get_array_module(cols)
    dx_cn = _col2im(xp.ascontiguousarray(cols), (n, c, h, w), kh, kw, sh, sw, pads, dh, dw, ho, wo)
    return xp.ascontiguousarray(dx_cn.transpose(1, 0, 2, 3))


# --------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------
def _check_inputs(x, weight, bias, groups):
    if x.ndim != 4:
        raise ShapeError(f"conv2d: expected input of shape (N, C, H, W), got {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: expected weight of shape (C_out, C_in/groups, kH, kW), got {tuple(weight.shape)}")
    if groups < 1:
        raise InvalidArgumentError(f"conv2d: groups must be >= 1, got {groups}")
    c_out, cg = weight.shape[:2]
    c = x.shape[1]
    if c % groups or c_out % groups:
        raise ShapeError(
            f"conv2d: groups={groups} must divide both input channels ({c}) and output channels ({c_out})"
        )
    if cg * groups != c:
        raise ShapeError(
            f"conv2d: input has {c} channels but weight {tuple(weight.shape)} with groups={groups} "
            f"expects {cg}·{groups} = {cg * groups}"
        )
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ShapeError(f"conv2d: bias must have shape ({c_out},), got {tuple(bias.shape)}")
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None and a.dtype != x.dtype:
            raise InvalidTypeError(
                f"conv2d: input is {x.dtype} but {name} is {a.dtype}; glassnet never upcasts silently. "
                "Convert one with .astype(...) first."
            )


def _is_pointwise(kh, kw, sh, sw, pads):
    return kh == 1 and kw == 1 and (sh, sw) == (1, 1) and not any(pads)


def _columns(x, kh, kw, sh, sw, pads, dh, dw, ho, wo, ones_row=False):
    """X_col for a batch chunk; for a pointwise conv just the (C, N·H·W) transpose."""
    if _is_pointwise(kh, kw, sh, sw, pads):
        xp = get_array_module(x)
        n, c = x.shape[:2]
        return xp.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c, n * ho * wo)
    return _im2col(x, kh, kw, sh, sw, pads, dh, dw, ho, wo, ones_row)


def _grouped_gemm(xp, a, b, groups, product=None):
    """Block-diagonal product: row block g of ``a`` meets row block g of ``b``.

    ``product(a_g, b_g)`` (default ``a_g · b_g``) is one 2-D GEMM per group;
    the results are stacked along the rows. With one group it is just
    ``product(a, b)``.
    """
    product = product or xp.matmul
    if groups == 1:
        return product(a, b)
    pa, pb = a.shape[0] // groups, b.shape[0] // groups
    return xp.concatenate([product(a[g * pa:(g + 1) * pa], b[g * pb:(g + 1) * pb]) for g in range(groups)],
                          axis=0)


def _transposed_times(w, d):
    """wᵀ · d."""
    return w.T @ d


def _weight_grad(xp, d_o, cols, groups):
    """dW = dO · X_colᵀ per group, as a C-contiguous (C_out, rows of X_col per group).

    When X_col has many rows per group, OpenBLAS runs the product 2–10×
    faster in the orientation (X_col · dOᵀ)ᵀ (measured on VGG's layers);
    that product is written straight into dW's transposed view, so dW comes
    out in its own layout without a transposing copy (which cost 3× the GEMM
    on ResNet's 512-channel layers).
    """
    c_out, kg = d_o.shape[0], cols.shape[0] // groups
    per_group = c_out // groups
    dw = xp.empty((c_out, kg), dtype=d_o.dtype)
    for g in range(groups):
        d_g = d_o[g * per_group:(g + 1) * per_group]
        c_g = cols[g * kg:(g + 1) * kg]
        dw_g = dw[g * per_group:(g + 1) * per_group]
        if kg >= 128:
            xp.matmul(c_g, d_g.T, out=dw_g.T)
        else:
            xp.matmul(d_g, c_g.T, out=dw_g)
    return dw


_winograd = True
#: Which Winograd algorithm a stride-1 convolution uses: the first rule whose
#: kernel size matches and whose thresholds hold — min(C_in, C_out) ≥ min
#: channels, Wo ≥ min width, and at least min tiles (N·⌈Ho/m⌉·⌈Wo/m⌉) — with
#: its buffers under the workspace limit; im2col when none does. Measured on
#: 2 cores (forward, ms, im2col -> Winograd; dL/dW gains alike):
#: F(4×4, 3×3) on VGG16's conv1_2 (64 ch, 224 px) 30.5 -> 23.1, conv2_2 (128,
#: 112) 22.8 -> 14.7, conv3_2 (256, 56) 20.4 -> 11.1, conv4_2 (512, 28, batch
#: 2) 38.6 -> 21.1, ResNet-18's layer1 (64, 56, batch 8) 14.3 -> 12.5; but
#: 64 ch at 28 px 5.6 -> 6.2 (slower). F(3×3, 3×3) on AlexNet's 13 px layers
#: (batch 16) 19.1 -> 15.1, 27.6 -> 20.8, 18.0 -> 14.7 and ResNet-18's layer3
#: (256, 14, batch 8) 10.6 -> 8.1; but VGG16's conv5 (512, 14, batch 1: 25
#: tiles) 6.2 -> 8.2 (slower). F(3×3, 5×5) on AlexNet's conv2 (64 -> 192, 27
#: px, batch 16) 40.9 -> 23.5. Few channels never pay (the FMNIST CNN's 32 ->
#: 64 at 14 px, batch 128: 8.0 -> 11.4).
WINOGRAD_RULES = [
    # (kernel, algorithm, min channels, min width, min tiles)
    (3, F4X4_3X3, 64, 56, 0),
    (3, F4X4_3X3, 128, 28, 0),
    (3, F3X3_3X3, 128, 13, 200),
    (5, F3X3_5X5, 64, 13, 200),
]
#: On a GPU (CuPy) cuBLAS runs im2col's one big GEMM so fast that Winograd's
#: transforms (many small kernels) cost more than they save: an H200 took
#: 40 -> 70 ms for VGG16's training step at batch 2 and 43 -> 65 ms for
#: ResNet-18's at batch 8 with the rules above, so CuPy arrays use im2col.
WINOGRAD_ON_GPU = False


def set_winograd(flag: bool) -> None:
    """Whether stride-1 3×3 and 5×5 convolutions with many channels use
    Winograd's algorithms (default True, see :data:`WINOGRAD_RULES`) instead
    of im2col + GEMM. Both agree to float rounding (~1e-5 relative in float32)."""
    global _winograd
    _winograd = bool(flag)


def _winograd_for(kh, kw, sh, sw, dh, dw, groups, pads, c_in, c_out, n, ho, wo, itemsize, limit, on_cpu=True):
    """The Winograd algorithm (a :class:`~glassnet.kernels.winograd_tiles.WinogradTiles`)
    for this convolution, or None for im2col. Also asked for dX, with the
    channels swapped and the input size as the output size. Winograd needs a
    square kernel, stride 1, no dilation, one group and padding ≤ k − 1 on
    each side (so dX's k − 1 − p ≥ 0); then :data:`WINOGRAD_RULES` decide
    (on the CPU; on a GPU only with :data:`WINOGRAD_ON_GPU`)."""
    if not (_winograd and kh == kw and (sh, sw, dh, dw, groups) == (1, 1, 1, 1, 1) and max(pads) <= kh - 1):
        return None
    if not on_cpu and not WINOGRAD_ON_GPU:
        return None
    channels = min(c_in, c_out)
    for kernel, algorithm, min_channels, min_width, min_tiles in WINOGRAD_RULES:
        m = algorithm.m
        if (kernel == kh and channels >= min_channels and wo >= min_width
                and n * (-(-ho // m)) * (-(-wo // m)) >= min_tiles
                and algorithm.workspace_bytes(c_in, c_out, n, (ho, wo), itemsize) <= limit):
            return algorithm
    return None


def _winograd_padded(x, pads, out_hw, algorithm):
    """``x`` (N, C, H, W) zero-padded channel-major for ``algorithm``: the
    convolution's top/left padding, and bottom/right zeros up to whole tiles."""
    h, w = x.shape[2], x.shape[3]
    t, _, l, _ = pads
    return _channels_first_padded(x, t, algorithm.padded_extent(out_hw[0]) - h - t,
                                  l, algorithm.padded_extent(out_hw[1]) - w - l)


def _winograd_conv(x, weight, bias, pads, out_hw, algorithm, keep_input_transform=False):
    """``algorithm`` (Winograd) on ``x`` (N, C, H, W). Returns (C_out, N, Ho, Wo)
    (and the input transform V, with ``keep_input_transform``)."""
    return algorithm.conv(_winograd_padded(x, pads, out_hw, algorithm), weight, bias, out_hw,
                          keep_input_transform)


def conv2d_forward(
    x,
    weight,
    bias=None,
    stride=(1, 1),
    padding=(0, 0),
    dilation=(1, 1),
    groups=1,
    workspace_limit_bytes=None,
    need_dx=True,
):
    """2-D convolution (cross-correlation, as in PyTorch): ``O = W_row · X_col + b``.

    ``X_col = im2col(X)`` holds one receptive field per column (the whole
    batch side by side) and ``W_row = W.reshape(C_out, C/groups·kH·kW)`` one
    filter per row. With groups > 1 each group of C/groups input channels
    meets its own C_out/groups filters (one GEMM per group). A 1×1 filter at
    stride 1 without padding skips im2col. The batch is processed in chunks
    when X_col would exceed the workspace limit (see the module docstring).
    ``need_dx=False`` (the input needs no gradient, e.g. the image batch into
    the first layer) makes the backward skip ``W_rowᵀ · dO`` and col2im.

    Shape:
        x: (N, C_in, H, W); weight: (C_out, C_in/groups, kH, kW);
        bias: (C_out,) or None;
        stride, dilation: (sH, sW), (dH, dW);
        padding: (pH, pW) or ((top, bottom), (left, right));
        out: (N, C_out, Ho, Wo) with
        Ho = floor((H + top + bottom − dH·(kH − 1) − 1)/sH) + 1 (likewise Wo).
    """
    xp = get_array_module(x)
    _check_inputs(x, weight, bias, groups)
    n, c, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    sh, sw, pads, dh, dw = _normalise(stride, padding, dilation)
    ho, wo = _output_shape(h, w, kh, kw, sh, sw, pads, dh, dw)
    limit = _workspace_limit if workspace_limit_bytes is None else int(workspace_limit_bytes)
    algorithm = _winograd_for(kh, kw, sh, sw, dh, dw, groups, pads, c, c_out, n, ho, wo, x.itemsize, limit,
                              on_cpu=xp.__name__ == "numpy")
    if algorithm is not None:
        # Stride-1 3×3 or 5×5 layers with many channels: Winograd, 2.8–4×
        # fewer multiply-adds (see glassnet.kernels.winograd_tiles); no X_col.
        # The input transform V is kept for dL/dW (like X_col, unless set_cache_cols(False)).
        if _cache_cols:
            out_cn, v = _winograd_conv(x, weight, bias, pads, (ho, wo), algorithm, keep_input_transform=True)
        else:
            out_cn, v = _winograd_conv(x, weight, bias, pads, (ho, wo), algorithm), None
        cache = (x, weight, bias is not None, (sh, sw), pads, (dh, dw), groups, limit, None, False, need_dx,
                 None if v is None else (algorithm, v))
        return out_cn.transpose(1, 0, 2, 3), cache
    L = ho * wo
    kg = cg * kh * kw
    w_row = xp.ascontiguousarray(weight).reshape(c_out, kg)
    pointwise = _is_pointwise(kh, kw, sh, sw, pads)
    # The bias rides in the GEMM as an extra column of W_row against a row of
    # ones in X_col (one group, im2col path): no separate pass over the output,
    # and the backward's dW GEMM yields db as that column.
    bias_in_gemm = bias is not None and groups == 1 and not pointwise
    if bias_in_gemm:
        w_row = xp.concatenate([w_row, bias.reshape(c_out, 1)], axis=1)
    per_sample = (c * kh * kw + int(bias_in_gemm)) * L * x.itemsize
    chunk = n if pointwise else _chunk_size(n, per_sample, limit)
    # The GEMM's natural output is channel-major, (C_out, N·Ho·Wo). It is
    # returned as its (N, C_out, Ho, Wo) transposed *view*: element-wise
    # layers keep that memory order, and the next convolution's im2col (and
    # this one's backward, for dO) read it without a transposing copy.
    out_cn = None if chunk >= n else xp.empty((c_out, n, ho, wo), dtype=x.dtype)
    cols_cache = None
    for n0 in range(0, n, chunk):
        n1 = min(n, n0 + chunk)
        cols = _columns(x[n0:n1], kh, kw, sh, sw, pads, dh, dw, ho, wo, bias_in_gemm)
        o = _grouped_gemm(xp, w_row, cols, groups)  # (C_out, m·L) = W_row · X_col (+ b)
        if bias is not None and not bias_in_gemm:
            o += bias.reshape(c_out, 1)
        if out_cn is None:
            out_cn = o.reshape(c_out, n, ho, wo)
        else:
            out_cn[:, n0:n1] = o.reshape(c_out, n1 - n0, ho, wo)
        if chunk >= n and _cache_cols and not pointwise:
            cols_cache = cols
        del cols, o
    cache = (x, weight, bias is not None, (sh, sw), pads, (dh, dw), groups, limit, cols_cache, bias_in_gemm, need_dx,
             None)
    return out_cn.transpose(1, 0, 2, 3), cache


def conv2d_backward(dout, cache):
    """Gradients of ``O = W_row · X_col + b`` (per group; X_col spans the whole batch):

        dL/dW     = dO · X_colᵀ                (C_out, C_in/groups·kH·kW)
        dL/db     = Σ_{n,h,w} dO               (C_out,)
        dL/dX_col = W_rowᵀ · dO                (C_in·kH·kW, N·Ho·Wo)
        dL/dX     = col2im(dL/dX_col)          overlapping patches add up,
                                               padding stripped

    with ``dO`` the upstream gradient laid out as (C_out, N·Ho·Wo). X_col is
    taken from the cache when the forward kept it, else rebuilt with im2col
    chunk by chunk under the same workspace limit as the forward. Where the
    forward went through Winograd, so do dL/dX (the flipped filters on dL/dY)
    and dL/dW (:meth:`~glassnet.kernels.winograd_tiles.WinogradTiles.weight_gradient`),
    and dL/db is Σ dO.

    Shape:
        dout: (N, C_out, Ho, Wo).
        returns (dx, dweight, dbias): (N, C_in, H, W),
        (C_out, C_in/groups, kH, kW), (C_out,) or None without bias.
    """
    (x, weight, has_bias, (sh, sw), pads, (dh, dw), groups, limit, cols_cache, bias_in_gemm, need_dx,
     winograd_cache) = cache
    xp = get_array_module(dout)
    n, c, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    ho, wo = dout.shape[2], dout.shape[3]
    if tuple(dout.shape) != (n, c_out, ho, wo) or (ho, wo) != _output_shape(h, w, kh, kw, sh, sw, pads, dh, dw):
        raise ShapeError(f"conv2d backward: dout has shape {tuple(dout.shape)}, which is not this convolution's output shape")
    if dout.dtype != x.dtype:
        raise InvalidTypeError(f"conv2d backward: dout is {dout.dtype} but the input was {x.dtype}; glassnet never upcasts silently")
    L = ho * wo
    kg = cg * kh * kw
    w_row = xp.ascontiguousarray(weight).reshape(c_out, kg)
    d_o = xp.ascontiguousarray(dout.transpose(1, 0, 2, 3))  # (C_out, N, Ho, Wo)
    dbias = d_o.sum(axis=(1, 2, 3)) if has_bias and not bias_in_gemm else None
    pointwise = _is_pointwise(kh, kw, sh, sw, pads)
    per_sample = (c * kh * kw + int(bias_in_gemm)) * L * x.itemsize
    chunk = n if (pointwise or cols_cache is not None) else _chunk_size(n, per_sample, limit)
    dx_cn = None  # dX, channel-major (C, N, H, W) like the columns; returned transposed
    on_cpu = xp.__name__ == "numpy"  # Winograd's rules are the CPU's (see WINOGRAD_ON_GPU)
    dx_algorithm = need_dx and _winograd_for(kh, kw, sh, sw, dh, dw, groups, pads, c_out, c, n, h, w,
                                             x.itemsize, limit, on_cpu)
    if dx_algorithm:
        # dL/dX of a stride-1 convolution is the stride-1 convolution of dL/dY,
        # padded by k − 1 − p, with the flipped filters, input and output
        # channels swapped: W'[c, o, i, j] = W[o, c, k − 1 − i, k − 1 − j].
        t, b, l, r = pads
        k1 = kh - 1
        w_flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        dx_cn = _winograd_conv(d_o.transpose(1, 0, 2, 3), w_flipped, None, (k1 - t, k1 - b, k1 - l, k1 - r),
                               (h, w), dx_algorithm)
    dx_by_col2im = need_dx and dx_cn is None
    dweight = None
    dw_algorithm = cols_cache is None and _winograd_for(kh, kw, sh, sw, dh, dw, groups, pads, c, c_out, n,
                                                       ho, wo, x.itemsize, limit, on_cpu)
    if dw_algorithm:
        # The forward went through Winograd (it cached no X_col): dL/dW by
        # the same algorithm, 2.8–4× fewer multiply-adds than dO · X_colᵀ
        # (VGG16's conv2_2 at batch 2: 53.9 -> 37.4 ms; conv3_2: 45.7 -> 28.0).
        if winograd_cache is not None and winograd_cache[0] is dw_algorithm:
            dweight = dw_algorithm.weight_gradient(None, d_o, v=winograd_cache[1])  # the forward's V
        else:
            dweight = dw_algorithm.weight_gradient(_winograd_padded(x, pads, (ho, wo), dw_algorithm), d_o)
    dw_by_gemm = dweight is None  # else the loop below computes dX only (if col2im does it)
    if not (dw_by_gemm or dx_by_col2im):
        return (None if dx_cn is None else dx_cn.transpose(1, 0, 2, 3)), dweight, dbias
    # Stride-1 layers on wide images: col2im over full-width rows (see
    # _col2im_wide_rows); the extra GEMM columns cost (W_pad − Wo)/Wo <= 5 %.
    wide_rows = (not pointwise and (sh, sw) == (1, 1)
                 and 20 * (w + pads[2] + pads[3] - wo) <= wo)
    for n0 in range(0, n, chunk):
        n1 = min(n, n0 + chunk)
        m = n1 - n0
        dO = d_o[:, n0:n1].reshape(c_out, m * L)
        if dw_by_gemm:
            cols = cols_cache if cols_cache is not None else _columns(
                x[n0:n1], kh, kw, sh, sw, pads, dh, dw, ho, wo, bias_in_gemm)
            part = _weight_grad(xp, dO, cols, groups)  # dO · X_colᵀ (last column: Σ dO = db)
            dweight = part if dweight is None else dweight + part
            del cols
        if not dx_by_col2im:
            continue
        if wide_rows:
            # dO padded to full-width rows (zeros in the extra columns), so
            # that each kernel offset of col2im is one contiguous run.
            t, b, l, r = pads
            wp = w + l + r
            d_wide = xp.zeros((c_out, m, ho, wp), dtype=dout.dtype)
            d_wide[..., :wo] = d_o[:, n0:n1]
            dcols = _grouped_gemm(xp, w_row, d_wide.reshape(c_out, m * ho * wp), groups, _transposed_times)
            del d_wide
            part = _col2im_wide_rows(dcols, (m, c, h, w), kh, kw, pads, dh, dw, ho)
        else:
            dcols = _grouped_gemm(xp, w_row, dO, groups, _transposed_times)  # W_rowᵀ · dO
            if pointwise:
                part = dcols.reshape(c, m, h, w)
            else:
                part = _col2im(dcols, (m, c, h, w), kh, kw, sh, sw, pads, dh, dw, ho, wo)
        del dcols
        if chunk >= n:
            dx_cn = part
        else:
            if dx_cn is None:
                dx_cn = xp.empty((c, n, h, w), dtype=x.dtype)
            dx_cn[:, n0:n1] = part
    if bias_in_gemm and dw_by_gemm:
        dweight, dbias = dweight[:, :kg], dweight[:, kg].copy()
    dx = None if dx_cn is None else dx_cn.transpose(1, 0, 2, 3)
    return dx, xp.ascontiguousarray(dweight).reshape(weight.shape), dbias
