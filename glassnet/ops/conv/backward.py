"""The conv backward's entry point: one small table from the cache's type to its weight gradient.

Whatever the forward's algorithm, ``dL/db = Σ_{n,h,w} dO`` and dL/dX is asked of
:func:`~.selection.winograd_for` anew (dL/dX of a stride-1 convolution is a stride-1 convolution
of dL/dY, with the channels swapped and the input size as the output size), else it is
``col2im(W_rowᵀ · dO)``. Only dL/dW depends on what the forward kept:

=====================  ===========================================================
cache                  dL/dW
=====================  ===========================================================
:class:`Im2colCache`   ``dO · X_colᵀ``, X_col from the cache or rebuilt per chunk
:class:`WinogradCache` ``Gᵀ [Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B)] G``, from the forward's V
=====================  ===========================================================
"""
from __future__ import annotations

from ...backend import get_array_module
from ...errors import InvalidTypeError, ShapeError
from .cache import Im2colCache, WinogradCache
from .geometry import output_shape
from .im2col_gemm import gemm_backward
from .selection import winograd_for
from .winograd import winograd_input_gradient, winograd_weight_gradient

__all__ = ["conv2d_backward"]


def _im2col_weight_gradient(d_o, cache, want_dx):
    """dL/dW = dO · X_colᵀ (and dL/db as its last column when the bias rode in the GEMM), with
    dL/dX = col2im(W_rowᵀ · dO) in the same pass over the chunks when ``want_dx``.

    Shape: d_o (C_out, N, Ho, Wo) -> (dW (C_out, C/groups·kH·kW), db or None, dX (C, N, H, W) or None).
    """
    return gemm_backward(d_o, cache, cache.cols, cache.bias_in_gemm, True, want_dx)


def _winograd_weight_gradient(d_o, cache, want_dx):
    """dL/dW = Gᵀ [Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B)] G by the forward's tiles, and dL/dX =
    col2im(W_rowᵀ · dO) when ``want_dx``.

    Shape: d_o (C_out, N, Ho, Wo) -> (dW (C_out, C, r, r), None, dX (C, N, H, W) or None).
    """
    dweight = winograd_weight_gradient(d_o, cache)
    dx_cn = gemm_backward(d_o, cache, None, False, False, True)[2] if want_dx else None
    return dweight, None, dx_cn


#: cache type -> its weight gradient (which also runs col2im's dL/dX when asked to).
_WEIGHT_GRADIENT = {Im2colCache: _im2col_weight_gradient, WinogradCache: _winograd_weight_gradient}


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
    forward went through Winograd, dL/dW is the algorithm's weight gradient
    (:meth:`~glassnet.ops.conv.winograd_tiles.WinogradTiles.weight_gradient`); dL/dX goes through
    Winograd (the flipped filters on dL/dY) where :mod:`.selection` says so, under the
    forward's settings (the cache's).

    Shape:
        dout: (N, C_out, Ho, Wo).
        returns (dx, dweight, dbias): (N, C_in, H, W),
        (C_out, C_in/groups, kH, kW), (C_out,) or None without bias.
    """
    weight_gradient = _WEIGHT_GRADIENT.get(type(cache))
    if weight_gradient is None:
        raise InvalidTypeError(f"conv2d backward: expected the cache of glassnet.ops.conv.conv2d_forward "
                               f"({', '.join(t.__name__ for t in _WEIGHT_GRADIENT)}), got {type(cache).__name__}")
    x, weight, pads = cache.x, cache.weight, cache.padding
    (sh, sw), (dh, dw) = cache.stride, cache.dilation
    xp = get_array_module(dout)
    n, c, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    ho, wo = dout.shape[2], dout.shape[3]
    if tuple(dout.shape) != (n, c_out, ho, wo) or (ho, wo) != output_shape(h, w, kh, kw, sh, sw, pads, dh, dw):
        raise ShapeError(f"conv2d backward: dout has shape {tuple(dout.shape)}, which is not this convolution's output shape")
    if dout.dtype != x.dtype:
        raise InvalidTypeError(f"conv2d backward: dout is {dout.dtype} but the input was {x.dtype}; glassnet never upcasts silently")
    d_o = xp.ascontiguousarray(dout.transpose(1, 0, 2, 3))  # (C_out, N, Ho, Wo)
    dx_cn = None  # dX, channel-major (C, N, H, W) like the columns; returned transposed
    dx_algorithm = cache.need_dx and winograd_for(cache.settings, kh, kw, sh, sw, dh, dw, cache.groups, pads,
                                                  c_out, c, n, h, w, x.itemsize, cache.workspace_limit,
                                                  on_cpu=xp.__name__ == "numpy")
    if dx_algorithm:
        dx_cn = winograd_input_gradient(d_o, weight, pads, (h, w), dx_algorithm)
    dweight, gemm_dbias, col2im_dx = weight_gradient(d_o, cache, cache.need_dx and dx_cn is None)
    dbias = d_o.sum(axis=(1, 2, 3)) if cache.has_bias and gemm_dbias is None else gemm_dbias
    if col2im_dx is not None:
        dx_cn = col2im_dx
    dx = None if dx_cn is None else dx_cn.transpose(1, 0, 2, 3)
    return dx, xp.ascontiguousarray(dweight).reshape(weight.shape), dbias
