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

Column layout: (N, C·kH·kW, Ho·Wo)
----------------------------------
The two usual layouts are ``(C·kH·kW, N·Ho·Wo)`` (one 2-D GEMM for the whole
batch) and ``(N, C·kH·kW, Ho·Wo)`` (a batched GEMM, one per sample). Measured
with NumPy 2.4 / OpenBLAS on 2 cores (float32, forward + backward, ms):

    ==============================  ===================  ===================
    shape                           (K, N·L)  fwd / bwd  (N, K, L)  fwd / bwd
    ==============================  ===================  ===================
    x(128,32,14,14)  w(64,32,3,3)   7.7 / 17.5           10.1 / 19.4
    x(2,64,224,224)  w(64,64,3,3)   65.8 / 115.6         63.5 / 115.9
    x(64,3,227,227)  w(96,3,11,11)  144.0 / 345.3        139.0 / 337.3
    ==============================  ===================  ===================

They are within measurement noise on large images, the 2-D layout is ~2 ms
faster on the small-image batch (its im2col copy is cheaper: 2.2 vs 4.2 ms).
glassnet uses **(N, C·kH·kW, Ho·Wo)** because it keeps the rest of the code
free of transposes:

* ``W_row · X_col`` lands directly in NCHW order — no output transpose (the
  2-D layout produces (C_out, N, Ho, Wo) and must transpose back);
* a 1×1, stride-1, unpadded convolution needs no im2col at all: ``X_col`` is
  the free view ``X.reshape(N, C, H·W)``;
* groups are contiguous slabs of the C·kH·kW axis, so ``X_col`` reshapes for
  free to (N, groups, C/groups·kH·kW, L) and one batched matmul against
  ``W`` reshaped to (groups, C_out/groups, C/groups·kH·kW) does every group
  (depthwise included) without a Python loop;
* memory chunking is a plain slice of the batch axis.

The price is that dW sums per-sample products (a (N, C_out, C·kH·kW)
temporary, small next to X_col); measured no slower than the single GEMM.

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
from __future__ import annotations

from ..backend import get_array_module
from ..errors import ShapeError

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
        raise ValueError(f"set_workspace_limit: expected a positive number of bytes, got {nbytes}")
    _workspace_limit = nbytes


def get_workspace_limit() -> int:
    """The current default cap, in bytes, on one im2col buffer."""
    return _workspace_limit


def set_cache_cols(flag: bool) -> None:
    """Whether an unchunked forward keeps X_col in its cache (default True).

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
            raise ValueError(f"conv2d: {name} must be an int or a pair, got {v!r}")
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
        raise ValueError(f"conv2d: padding must be >= 0, got {padding!r}")
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
        raise ValueError(f"conv2d: stride and dilation must be >= 1, got stride={stride!r}, dilation={dilation!r}")
    return sh, sw, _pads(padding), dh, dw


def _chunk_size(n, per_sample_bytes, limit):
    return max(1, min(n, limit // max(1, per_sample_bytes)))


# --------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------
def _pad_input(x, t, b, l, r):
    if not (t or b or l or r):
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    xpad = xp.zeros((n, c, h + t + b, w + l + r), dtype=x.dtype)
    xpad[:, :, t : t + h, l : l + w] = x
    return xpad


def _im2col(x, kh, kw, sh, sw, pads, dh, dw, ho, wo):
    xp = get_array_module(x)
    n, c = x.shape[:2]
    xpad = _pad_input(x, *pads)
    cols = xp.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        r0 = i * dh
        for j in range(kw):
            c0 = j * dw
            cols[:, :, i, j] = xpad[:, :, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw]
    return cols.reshape(n, c * kh * kw, ho * wo)


def _col2im(cols, x_shape, kh, kw, sh, sw, pads, dh, dw, ho, wo):
    xp = get_array_module(cols)
    n, c, h, w = x_shape
    t, b, l, r = pads
    dxpad = xp.zeros((n, c, h + t + b, w + l + r), dtype=cols.dtype)
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    for i in range(kh):
        r0 = i * dh
        for j in range(kw):
            c0 = j * dw
            dxpad[:, :, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw] += cols[:, :, i, j]
    if t or b or l or r:
        return dxpad[:, :, t : t + h, l : l + w]
    return dxpad


def im2col(x, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """Unroll every kH×kW receptive field of ``x`` into a column.

    Column ``p = ho·Wo + wo`` of sample ``n`` holds the patch under output
    pixel (ho, wo); row ``c·kH·kW + i·kW + j`` holds channel c at kernel
    offset (i, j) — the order of ``W.reshape(C_out, C·kH·kW)``, so a
    convolution is ``W_row · im2col(X)``. Built from kH·kW strided-slice
    copies (one per kernel offset), never a loop over output pixels.

    Shape:
        x: (N, C, H, W); stride, dilation: int or pair; padding: int, pair,
        or ((top, bottom), (left, right)).
        returns: (N, C·kH·kW, Ho·Wo) with Ho, Wo from
        :func:`conv2d_output_shape`.
    """
    xp = get_array_module(x)
    if x.ndim != 4:
        raise ShapeError(f"im2col: expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    sh, sw, pads, dh, dw = _normalise(stride, padding, dilation)
    ho, wo = _output_shape(x.shape[2], x.shape[3], kh, kw, sh, sw, pads, dh, dw)
    return _im2col(xp.ascontiguousarray(x), kh, kw, sh, sw, pads, dh, dw, ho, wo)


def col2im(cols, x_shape, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """The adjoint of :func:`im2col`: add every column back onto its patch.

    Where patches overlap their contributions sum (in-place
    ``dX_pad[..., slice, slice] += cols_ij``, one per kernel offset), and the
    padding is stripped at the end. So ``<im2col(x), c> == <x, col2im(c)>``,
    which is exactly what the backward pass needs: dX = col2im(dX_col).
    (It is *not* the inverse: a pixel covered by k patches comes back k-fold.)

    Shape:
        cols: (N, C·kH·kW, Ho·Wo); x_shape: (N, C, H, W).
        returns: (N, C, H, W), the dtype of ``cols``.
    """
    if len(x_shape) != 4:
        raise ShapeError(f"col2im: x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    n, c, h, w = (int(s) for s in x_shape)
    sh, sw, pads, dh, dw = _normalise(stride, padding, dilation)
    ho, wo = _output_shape(h, w, kh, kw, sh, sw, pads, dh, dw)
    if tuple(cols.shape) != (n, c * kh * kw, ho * wo):
        raise ShapeError(
            f"col2im: cols has shape {tuple(cols.shape)}, but a {kh}x{kw} filter on x of shape "
            f"{(n, c, h, w)} gives columns of shape {(n, c * kh * kw, ho * wo)}"
        )
    xp = get_array_module(cols)
    dx = _col2im(xp.ascontiguousarray(cols), (n, c, h, w), kh, kw, sh, sw, pads, dh, dw, ho, wo)
    return xp.ascontiguousarray(dx)


# --------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------
def _check_inputs(x, weight, bias, groups):
    if x.ndim != 4:
        raise ShapeError(f"conv2d: expected input of shape (N, C, H, W), got {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: expected weight of shape (C_out, C_in/groups, kH, kW), got {tuple(weight.shape)}")
    if groups < 1:
        raise ValueError(f"conv2d: groups must be >= 1, got {groups}")
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
            raise TypeError(
                f"conv2d: input is {x.dtype} but {name} is {a.dtype}; glassnet never upcasts silently. "
                "Convert one with .astype(...) first."
            )


def conv2d_forward(
    x,
    weight,
    bias=None,
    stride=(1, 1),
    padding=(0, 0),
    dilation=(1, 1),
    groups=1,
    workspace_limit_bytes=None,
):
    """2-D convolution (cross-correlation, as in PyTorch): ``O = W_row · X_col + b``.

    ``X_col = im2col(X)`` holds one receptive field per column and
    ``W_row = W.reshape(C_out, C/groups·kH·kW)`` one filter per row. With
    groups > 1 each group of C/groups input channels meets its own
    C_out/groups filters (one batched matmul over groups). A 1×1 filter at
    stride 1 without padding skips im2col: X_col is ``X.reshape(N, C, H·W)``.
    The batch is processed in chunks when X_col would exceed the workspace
    limit (see the module docstring).

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
    g = groups
    L = ho * wo
    kg = cg * kh * kw
    x = xp.ascontiguousarray(x)
    w_g = xp.ascontiguousarray(weight).reshape(g, c_out // g, kg)  # W_row, split by group
    pointwise = kh == 1 and kw == 1 and (sh, sw) == (1, 1) and not any(pads)

    def gemm(cols, m):  # (m, g·kg, L) -> (m, C_out, L)
        return xp.matmul(w_g, cols.reshape(m, g, kg, L)).reshape(m, c_out, L)

    cols_cache = None
    if pointwise:
        out = gemm(x.reshape(n, c, L), n)
    else:
        chunk = _chunk_size(n, c * kh * kw * L * x.itemsize, limit)
        if chunk >= n:
            cols = _im2col(x, kh, kw, sh, sw, pads, dh, dw, ho, wo)
            out = gemm(cols, n)
            if _cache_cols:
                cols_cache = cols
        else:
            out = xp.empty((n, c_out, L), dtype=x.dtype)
            for n0 in range(0, n, chunk):
                n1 = min(n, n0 + chunk)
                cols = _im2col(x[n0:n1], kh, kw, sh, sw, pads, dh, dw, ho, wo)
                out[n0:n1] = gemm(cols, n1 - n0)
                del cols
    if bias is not None:
        out += bias.reshape(1, c_out, 1)
    out = out.reshape(n, c_out, ho, wo)
    cache = (x, weight, bias is not None, (sh, sw), pads, (dh, dw), g, limit, cols_cache)
    return out, cache


def conv2d_backward(dout, cache):
    """Gradients of ``O = W_row · X_col + b`` (per group, summed over the batch):

        dL/dW     = Σ_n dO_n · X_col,nᵀ      reshaped to (C_out, C_in/groups, kH, kW)
        dL/db     = Σ_{n,h,w} dO             (C_out,)
        dL/dX_col = W_rowᵀ · dO              (N, C_in·kH·kW, Ho·Wo)
        dL/dX     = col2im(dL/dX_col)        overlapping patches add up,
                                             padding stripped

    with ``dO_n`` the (C_out, Ho·Wo) gradient of sample n. X_col is taken from
    the cache when the forward kept it, else rebuilt with im2col chunk by
    chunk under the same workspace limit as the forward; dX_col is built in
    chunks under that limit too.

    Shape:
        dout: (N, C_out, Ho, Wo).
        returns (dx, dweight, dbias): (N, C_in, H, W),
        (C_out, C_in/groups, kH, kW), (C_out,) or None without bias.
    """
    x, weight, has_bias, (sh, sw), pads, (dh, dw), g, limit, cols_cache = cache
    xp = get_array_module(dout)
    n, c, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    ho, wo = dout.shape[2], dout.shape[3]
    if tuple(dout.shape) != (n, c_out, ho, wo) or (ho, wo) != _output_shape(h, w, kh, kw, sh, sw, pads, dh, dw):
        raise ShapeError(f"conv2d backward: dout has shape {tuple(dout.shape)}, which is not this convolution's output shape")
    if dout.dtype != x.dtype:
        raise TypeError(f"conv2d backward: dout is {dout.dtype} but the input was {x.dtype}; glassnet never upcasts silently")
    L = ho * wo
    kg = cg * kh * kw
    cog = c_out // g
    d_o = xp.ascontiguousarray(dout).reshape(n, g, cog, L)
    w_g = xp.ascontiguousarray(weight).reshape(g, cog, kg)
    w_gt = w_g.transpose(0, 2, 1)  # W_rowᵀ per group: (g, kg, cog)

    dbias = dout.sum(axis=(0, 2, 3)) if has_bias else None
    pointwise = kh == 1 and kw == 1 and (sh, sw) == (1, 1) and not any(pads)
    if pointwise:
        cols = x.reshape(n, g, kg, L)
        dweight = xp.matmul(d_o, cols.transpose(0, 1, 3, 2)).sum(axis=0)
        dx = xp.matmul(w_gt, d_o).reshape(n, c, h, w)
        return dx, dweight.reshape(weight.shape), dbias

    # A cached X_col means the forward ran in one chunk, so the backward does too.
    chunk = _chunk_size(n, c * kh * kw * L * x.itemsize, limit)
    dx = None if chunk >= n else xp.empty(x.shape, dtype=x.dtype)
    dweight = None
    for n0 in range(0, n, chunk):
        n1 = min(n, n0 + chunk)
        m = n1 - n0
        if cols_cache is not None:
            cols = cols_cache[n0:n1]
        else:
            cols = _im2col(x[n0:n1], kh, kw, sh, sw, pads, dh, dw, ho, wo)
        cols = cols.reshape(m, g, kg, L)
        dO = d_o[n0:n1]
        part = xp.matmul(dO, cols.transpose(0, 1, 3, 2)).sum(axis=0)  # Σ_n dO_n · X_col,nᵀ
        if dweight is None:
            dweight = part
        else:
            dweight += part
        del cols
        dcols = xp.matmul(w_gt, dO).reshape(m, c * kh * kw, L)  # W_rowᵀ · dO
        dx_chunk = _col2im(dcols, (m, c, h, w), kh, kw, sh, sw, pads, dh, dw, ho, wo)
        del dcols
        if dx is None:
            dx = xp.ascontiguousarray(dx_chunk)
        else:
            dx[n0:n1] = dx_chunk
    return dx, dweight.reshape(weight.shape), dbias
