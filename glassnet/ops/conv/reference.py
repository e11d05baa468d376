"""The lecture's convolution, written plainly: im2col by a loop over the patches, col2im by adding
each patch back, and the convolution as ``O = W_row · X_col + b`` through them. The oracle of the
fast paths (tests/test_conv_reference.py); slow.

Notation: the patch under output pixel (i, j) of sample n holds the padded input's elements
``X_pad[n, c, i·sH + a·dH, j·sW + b·dW]`` for every channel c and kernel offset (a, b); im2col
writes it, flattened in the order (c, a, b), into column ``n·Ho·Wo + i·Wo + j`` — the order of
``W.reshape(C_out, C·kH·kW)`` and the layout of the fast :func:`~glassnet.ops.conv.im2col`::

    O  = W_row · X_col + b           dW = dO · X_colᵀ     db = Σ dO     dX = col2im(W_rowᵀ · dO)

per group (row blocks of X_col and W_row). Same signatures and ``(out, cache)`` /
``backward(dout, cache)`` contract as the fast kernels; NumPy arrays, any float dtype (kept).
Arguments go through the same :class:`~glassnet.ops.conv.args.ConvArgs`; the cache is a
:class:`~glassnet.ops.conv.cache.ReferenceCache`.

    >>> import numpy as np
    >>> x = np.arange(9.).reshape(1, 1, 3, 3)
    >>> im2col(x, 2, 2)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    >>> col2im(np.ones((4, 4)), (1, 1, 3, 3), 2, 2)[0, 0]   # how many patches cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
"""
from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from .args import ConvArgs
from .cache import ReferenceCache

__all__ = ["im2col", "col2im", "conv2d_forward", "conv2d_backward"]


def _patch_rows(args):
    """Two functions: the padded-input rows of output row i's patches, ``i·sH + a·dH``, and the
    columns of output column j's, ``j·sW + b·dW`` (a < kH, b < kW)."""
    (kh, kw), (sh, sw), (dh, dw) = args.kernel_size, args.stride, args.dilation
    return (lambda i: [i * sh + a * dh for a in range(kh)]), (lambda j: [j * sw + b * dw for b in range(kw)])


def im2col(x, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """Every kH×kW patch of the zero-padded ``x`` as a column, one patch at a time.

    Shape:
        x (N, C, H, W) -> (C·kH·kW, N·Ho·Wo).
    """
    if x.ndim != 4:
        raise ShapeError(f"im2col: expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    args = ConvArgs.from_user((kh, kw), stride, padding, dilation, layer="im2col")
    n, c, h, w = x.shape
    ho, wo = args.output_hw(h, w)
    t, b, l, r = args.padding
    xpad = np.zeros((n, c, h + t + b, w + l + r), dtype=x.dtype)
    xpad[:, :, t:t + h, l:l + w] = x
    rows, cols_of = _patch_rows(args)
    cols = np.empty((c * kh * kw, n * ho * wo), dtype=x.dtype)
    for s in range(n):
        for i in range(ho):
            for j in range(wo):
                patch = xpad[s][:, rows(i)][:, :, cols_of(j)]  # (C, kH, kW)
                cols[:, s * ho * wo + i * wo + j] = patch.reshape(-1)
    return cols


def col2im(cols, x_shape, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """Add every column back onto the patch it came from (overlaps sum), then strip the padding:
    the adjoint of :func:`im2col`, ``<im2col(x), C> = <x, col2im(C)>``.

    Shape:
        cols (C·kH·kW, N·Ho·Wo); x_shape (N, C, H, W) -> (N, C, H, W).
    """
    args = ConvArgs.from_user((kh, kw), stride, padding, dilation, layer="col2im")
    n, c, h, w = (int(v) for v in x_shape)
    ho, wo = args.output_hw(h, w)
    if tuple(cols.shape) != (c * kh * kw, n * ho * wo):
        raise ShapeError(f"col2im: cols has shape {tuple(cols.shape)}, expected {(c * kh * kw, n * ho * wo)}")
    t, b, l, r = args.padding
    dxpad = np.zeros((n, c, h + t + b, w + l + r), dtype=cols.dtype)
    rows, cols_of = _patch_rows(args)
    for s in range(n):
        for i in range(ho):
            for j in range(wo):
                patch = cols[:, s * ho * wo + i * wo + j].reshape(c, kh, kw)
                for a, y in enumerate(rows(i)):
                    for bb, q in enumerate(cols_of(j)):
                        dxpad[s, :, y, q] += patch[:, a, bb]
    return dxpad[:, :, t:t + h, l:l + w].copy()


def conv2d_forward(x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """``O = W_row · X_col + b`` per group, X_col from the patch loop.

    Shape:
        x (N, C_in, H, W); weight (C_out, C_in/groups, kH, kW); bias (C_out,) or None
        -> out (N, C_out, Ho, Wo), cache.
    """
    args = ConvArgs.from_user(weight.shape[2:], stride, padding, dilation, groups)
    n, c, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    ho, wo = args.output_hw(h, w)
    x_col = im2col(x, kh, kw, args.stride, args.padding_pairs, args.dilation)
    g, kg, og = args.groups, cg * kh * kw, c_out // args.groups
    w_row = weight.reshape(c_out, kg)
    out = np.concatenate([w_row[i * og:(i + 1) * og] @ x_col[i * kg:(i + 1) * kg] for i in range(g)])
    if bias is not None:
        out = out + bias.reshape(c_out, 1)
    out = out.reshape(c_out, n, ho, wo).transpose(1, 0, 2, 3).copy()
    return out, ReferenceCache(x=x, weight=weight, has_bias=bias is not None, args=args, cols=x_col)


def conv2d_backward(dout, cache):
    """Per group::

        dL/dW = dO · X_colᵀ        dL/db = Σ_{n,h,w} dO        dL/dX = col2im(W_rowᵀ · dO)

    Shape:
        dout (N, C_out, Ho, Wo) -> (dx (N, C_in, H, W), dweight (C_out, C_in/groups, kH, kW),
        dbias (C_out,) or None).
    """
    x, weight, args = cache.x, cache.weight, cache.args
    c_out, cg, kh, kw = weight.shape
    g, kg, og = args.groups, cg * kh * kw, c_out // args.groups
    d_o = dout.transpose(1, 0, 2, 3).reshape(c_out, -1)  # (C_out, N·Ho·Wo)
    w_row = weight.reshape(c_out, kg)
    dw = np.concatenate([d_o[i * og:(i + 1) * og] @ cache.cols[i * kg:(i + 1) * kg].T for i in range(g)])
    dcols = np.concatenate([w_row[i * og:(i + 1) * og].T @ d_o[i * og:(i + 1) * og] for i in range(g)])
    dx = col2im(dcols, x.shape, kh, kw, args.stride, args.padding_pairs, args.dilation)
    db = d_o.sum(axis=1) if cache.has_bias else None
    return dx, dw.reshape(weight.shape), db
