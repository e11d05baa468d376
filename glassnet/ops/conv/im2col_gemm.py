"""im2col + GEMM: the lecture's convolution as one big matrix multiply, and its col2im backward.

Notation (the lecture's): ``X`` the input (N, C, H, W), ``W`` the filters (C_out, C/groups, kH,
kW), ``b`` the bias, ``O`` the output, ``dO = dL/dO`` the upstream gradient. Every output pixel
is one filter's dot product with one kH×kW×C patch of the (padded) input; **im2col** copies every
patch into a column, so the whole convolution is one matrix product::

    W_row  = W.reshape(C_out, C·kH·kW)              one filter per row
    X_col  = im2col(X)       (C·kH·kW, N·Ho·Wo)     one patch per column, the batch side by side
    O      = W_row · X_col + b                      (C_out, N·Ho·Wo), returned as an NCHW view

and the backward runs the same picture in reverse (:func:`gemm_backward`)::

    dW     = dO · X_colᵀ                            (C_out, C·kH·kW)
    db     = Σ_{n,h,w} dO
    dX     = col2im(W_rowᵀ · dO)                    overlapping patches add up

im2col never loops over output pixels: kernel offset (i, j) of *every* patch at once is the
strided slice ``X_pad[:, :, i·dH : … : sH, j·dW : … : sW]`` (N, C, Ho, Wo), one copy into row
``c·kH·kW + i·kW + j`` of the columns. **col2im** is its adjoint: one in-place ``+=`` per kernel
offset into the padded gradient, then the padding stripped.

Layout: X_col is (C·kH·kW, N·Ho·Wo) — the lecture's [363 × 3025] for one AlexNet image, widened
by the batch — so every product is one plain 2-D GEMM at full BLAS speed (NumPy's *stacked*
matmul with a transposed operand falls off BLAS, 100× slower for the SmallCNN's dW). The forward
returns O (C_out, N, Ho, Wo) as its (N, C_out, Ho, Wo) *view*; im2col reads the input as
(C, N, H, W) (one copy that also pads; none when the input is a previous convolution's output);
col2im accumulates in that layout and dX is returned as its transposed view. A 1×1, stride-1,
unpadded convolution needs no im2col (X_col is the input's (C, N·H·W) view); groups are row
blocks of X_col and W_row, one GEMM per group; memory chunking slices the batch.
"""
from __future__ import annotations

from ...backend import get_array_module
from ...gemm import matmul
from ...errors import ShapeError
from ...threads import parallel_for
from . import tuning
from .cache import Im2colCache
from .args import ConvArgs
from .geometry import channels_first_padded, chunk_size, crop, is_pointwise
from .selection import use_wide_rows

__all__ = ["im2col", "col2im", "gemm_forward", "gemm_backward"]


# --------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------
def _im2col(x, kh, kw, sh, sw, pads, dh, dw, ho, wo, ones_row=False):
    """(N, C, H, W) -> X_col (C·kH·kW, N·Ho·Wo): kH·kW strided-slice copies.

    With ``ones_row`` a last row of ones is appended (C·kH·kW + 1 rows), so
    that ``[W_row | b] · X_col`` adds the bias inside the GEMM.
    """
    xp = get_array_module(x)
    n, c = x.shape[:2]
    k = c * kh * kw
    xpad = channels_first_padded(x, *pads)
    buf = xp.empty((k + int(ones_row), n * ho * wo), dtype=x.dtype)
    cols = buf[:k].reshape(c, kh, kw, n, ho, wo)

    polyphase = (sh > 1 or sw > 1) and kh * kw > sh * sw

    def copy_channels(c0, c1):  # channels c0:c1 of every patch (threads split this range)
        phases = _phases(xpad[c0:c1], sh, sw) if polyphase else None
        for i in range(kh):
            r0 = i * dh
            for j in range(kw):
                q0 = j * dw
                if phases is None:
                    src = xpad[c0:c1, :, r0 : r0 + sh * (ho - 1) + 1 : sh, q0 : q0 + sw * (wo - 1) + 1 : sw]
                else:  # the same elements, read with unit stride from their phase
                    r, q = r0 // sh, q0 // sw
                    src = phases[r0 % sh][q0 % sw][:, :, r : r + ho, q : q + wo]
                cols[c0:c1, i, j] = src

    parallel_for(c, copy_channels, buf.size, xp=xp)
    if ones_row:
        buf[k] = 1
    return buf


def _phases(xpad, sh, sw):
    """The polyphase components of a strided convolution's padded input:
    ``phases[p][q] = xpad[..., p::sH, q::sW]``, each copied contiguous.

    Kernel offset (i, j) of a stride-(sH, sW) convolution reads
    ``xpad[..., r0 + sH·a, q0 + sW·b]`` (r0 = i·dH, q0 = j·dW), which is
    ``phases[r0 mod sH][q0 mod sW][..., r0 div sH + a, q0 div sW + b]``: with
    the sH·sW phases made once (one pass over the input), every one of the
    kH·kW offset copies reads unit-stride rows instead of every sW-th element
    (a 7×7/2 stem: 49 strided copies become 4 and 49 row copies).

    Shape: xpad (C, N, Hp, Wp) -> sH × sW arrays (C, N, ⌈(Hp − p)/sH⌉, ⌈(Wp − q)/sW⌉).
    """
    xp = get_array_module(xpad)
    return [[xp.ascontiguousarray(xpad[:, :, p::sh, q::sw]) for q in range(sw)] for p in range(sh)]


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
    return crop(dxpad, t, l, h, w)


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
    return crop(flat[:, :, : hp * wp].reshape(c, n, hp, wp), t, l, h, w)


def im2col(x, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """Unroll every kH×kW receptive field of ``x`` into a column.

    Column ``n·Ho·Wo + ho·Wo + wo`` holds the patch of sample n under output
    pixel (ho, wo); row ``c·kH·kW + i·kW + j`` holds channel c at kernel
    offset (i, j) — the order of ``W.reshape(C_out, C·kH·kW)``, so a
    convolution is ``W_row · im2col(X)``. Built from kH·kW strided-slice
    copies (one per kernel offset), never a loop over output pixels (the
    lecture's loop version is :func:`glassnet.ops.conv.reference.im2col`).

    Shape:
        x: (N, C, H, W); stride, dilation: int or pair; padding: int, pair,
        or ((top, bottom), (left, right)).
        returns: (C·kH·kW, N·Ho·Wo) with Ho, Wo from
        :func:`~glassnet.ops.conv.args.conv2d_output_shape` (for one AlexNet image: [363 × 3025]).
    """
    if x.ndim != 4:
        raise ShapeError(f"im2col: expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    args = ConvArgs.from_user((kh, kw), stride, padding, dilation, layer="im2col")
    ho, wo = args.output_hw(x.shape[2], x.shape[3])
    (kh, kw), (sh, sw), (dh, dw) = args.kernel_size, args.stride, args.dilation
    return _im2col(x, kh, kw, sh, sw, args.padding, dh, dw, ho, wo)


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
    args = ConvArgs.from_user((kh, kw), stride, padding, dilation, layer="col2im")
    ho, wo = args.output_hw(h, w)
    (kh, kw), (sh, sw), pads, (dh, dw) = args.kernel_size, args.stride, args.padding, args.dilation
    if tuple(cols.shape) != (c * kh * kw, n * ho * wo):
        raise ShapeError(
            f"col2im: cols has shape {tuple(cols.shape)}, but a {kh}x{kw} filter on x of shape "
            f"{(n, c, h, w)} gives columns of shape {(c * kh * kw, n * ho * wo)}"
        )
    xp = get_array_module(cols)
    dx_cn = _col2im(xp.ascontiguousarray(cols), (n, c, h, w), kh, kw, sh, sw, pads, dh, dw, ho, wo)
    return xp.ascontiguousarray(dx_cn.transpose(1, 0, 2, 3))


# --------------------------------------------------------------------------
# the GEMMs
# --------------------------------------------------------------------------
def _columns(x, kh, kw, sh, sw, pads, dh, dw, ho, wo, ones_row=False):
    """X_col for a batch chunk; for a pointwise conv just the (C, N·H·W) transpose."""
    if is_pointwise(kh, kw, sh, sw, pads):
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
    product = product or matmul
    if groups == 1:
        return product(a, b)
    pa, pb = a.shape[0] // groups, b.shape[0] // groups
    return xp.concatenate([product(a[g * pa:(g + 1) * pa], b[g * pb:(g + 1) * pb]) for g in range(groups)],
                          axis=0)


def _transposed_times(w, d):
    """wᵀ · d."""
    return matmul(w.T, d)


def _weight_grad(xp, d_o, cols, groups):
    """dW = dO · X_colᵀ per group, as a C-contiguous (C_out, rows of X_col per group).

    When X_col has many rows per group (:data:`~.tuning.DW_TRANSPOSED_MIN_ROWS`), OpenBLAS runs
    the product 2–10× faster in the orientation (X_col · dOᵀ)ᵀ (measured on VGG's layers);
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
        if kg >= tuning.DW_TRANSPOSED_MIN_ROWS:
            matmul(c_g, d_g.T, out=dw_g.T)
        else:
            matmul(d_g, c_g.T, out=dw_g)
    return dw


def gemm_forward(x, weight, bias, stride, pads, dilation, groups, out_hw, limit, need_dx, settings):
    """``O = W_row · X_col + b`` (one GEMM per group, X_col spanning the whole batch chunk).

    The bias rides in the GEMM as an extra column of W_row against a row of ones in X_col (one
    group, not pointwise, and an output at least as large as W_row: N·Ho·Wo >= C/groups·kH·kW):
    no separate pass over the output, and the backward's dW GEMM yields db as that column. The batch is processed in chunks when X_col would exceed ``limit`` bytes;
    an unchunked forward keeps X_col in the cache when ``settings.cache_cols``.

    Shape:
        x (N, C, H, W); weight (C_out, C/groups, kH, kW); bias (C_out,) or None;
        stride, dilation pairs; pads (top, bottom, left, right); out_hw (Ho, Wo).
        returns (out (N, C_out, Ho, Wo), a channel-major view; :class:`~.cache.Im2colCache`).
    """
    xp = get_array_module(x)
    n, c = x.shape[:2]
    c_out, cg, kh, kw = weight.shape
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out_hw
    L = ho * wo
    kg = cg * kh * kw
    w_row = xp.ascontiguousarray(weight).reshape(c_out, kg)
    pointwise = is_pointwise(kh, kw, sh, sw, pads)
    # [W_row | b] is a copy of the weights: worth it only when the output it saves a pass over is
    # at least as large (a batch-1 forward of ResNet's layer4 would copy 512 × 4 608 weights to
    # add 512 × 49 biases)
    bias_in_gemm = bias is not None and groups == 1 and not pointwise and n * L >= kg
    if bias_in_gemm:
        w_row = xp.concatenate([w_row, bias.reshape(c_out, 1)], axis=1)
    per_sample = (c * kh * kw + int(bias_in_gemm)) * L * x.itemsize
    chunk = n if pointwise else chunk_size(n, per_sample, limit)
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
        if chunk >= n and settings.cache_cols and not pointwise:
            cols_cache = cols
        del cols, o
    cache = Im2colCache(x=x, weight=weight, has_bias=bias is not None, stride=stride, padding=pads,
                        dilation=dilation, groups=groups, workspace_limit=limit, need_dx=need_dx,
                        settings=settings, cols=cols_cache, bias_in_gemm=bias_in_gemm)
    return out_cn.transpose(1, 0, 2, 3), cache


def gemm_backward(d_o, cache, cols_cache, bias_in_gemm, want_dw, want_dx):
    """The im2col backward's GEMM pieces, chunk by chunk under the cache's workspace limit:

        dL/dW     = dO · X_colᵀ                (C_out, C/groups·kH·kW; last column Σ dO = dL/db
                                                when the bias rode in the GEMM)
        dL/dX_col = W_rowᵀ · dO                (C·kH·kW, N·Ho·Wo)
        dL/dX     = col2im(dL/dX_col)          overlapping patches add up, padding stripped

    X_col is ``cols_cache`` when the forward kept it, else rebuilt with im2col per chunk.

    Shape:
        d_o: dO channel-major (C_out, N, Ho, Wo), C-contiguous.
        returns (dweight (C_out, C/groups·kH·kW) or None, dbias (C_out,) from the GEMM or None,
        dx_cn (C, N, H, W) or None).
    """
    x, weight, pads, groups = cache.x, cache.weight, cache.padding, cache.groups
    (sh, sw), (dh, dw) = cache.stride, cache.dilation
    xp = get_array_module(d_o)
    n, c, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    ho, wo = d_o.shape[2], d_o.shape[3]
    L = ho * wo
    kg = cg * kh * kw
    w_row = xp.ascontiguousarray(weight).reshape(c_out, kg)
    pointwise = is_pointwise(kh, kw, sh, sw, pads)
    per_sample = (c * kh * kw + int(bias_in_gemm)) * L * x.itemsize
    chunk = n if (pointwise or cols_cache is not None) else chunk_size(n, per_sample, cache.workspace_limit)
    wide_rows = use_wide_rows(kh, kw, sh, sw, pads, w, wo)
    dweight = dx_cn = None  # dX channel-major (C, N, H, W) like the columns
    for n0 in range(0, n, chunk):
        n1 = min(n, n0 + chunk)
        m = n1 - n0
        dO = d_o[:, n0:n1].reshape(c_out, m * L)
        if want_dw:
            cols = cols_cache if cols_cache is not None else _columns(
                x[n0:n1], kh, kw, sh, sw, pads, dh, dw, ho, wo, bias_in_gemm)
            part = _weight_grad(xp, dO, cols, groups)  # dO · X_colᵀ (last column: Σ dO = db)
            dweight = part if dweight is None else dweight + part
            del cols
        if not want_dx:
            continue
        if wide_rows:
            # dO padded to full-width rows (zeros in the extra columns), so
            # that each kernel offset of col2im is one contiguous run.
            t, b, l, r = pads
            wp = w + l + r
            d_wide = xp.zeros((c_out, m, ho, wp), dtype=d_o.dtype)
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
    dbias = None
    if bias_in_gemm and want_dw:
        dweight, dbias = dweight[:, :kg], dweight[:, kg].copy()
    return dweight, dbias, dx_cn
