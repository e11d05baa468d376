"""The conv forward's entry point: check, normalise, read the settings once, pick the algorithm.

Contract (with :mod:`.backward`): ``conv2d_forward(x, weight, ...) -> (out, cache)`` and
``conv2d_backward(dout, cache) -> (dx, dweight, dbias)``. Pure functions on raw arrays (NumPy or
CuPy); no state, no Tensor. Outputs keep the input's dtype and no float64 temporaries are made
for float32 inputs.
"""
from __future__ import annotations

from ...backend import get_array_module
from ...errors import InvalidArgumentError, InvalidTypeError, ShapeError
from .geometry import normalise, output_shape
from .im2col_gemm import gemm_forward
from .selection import winograd_for
from .settings import current_settings
from .winograd import winograd_forward

__all__ = ["conv2d_forward"]


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
    filter per row (:mod:`.im2col_gemm`). With groups > 1 each group of C/groups input channels
    meets its own C_out/groups filters (one GEMM per group). A 1×1 filter at
    stride 1 without padding skips im2col. Stride-1 3×3 and 5×5 layers with many channels go
    through Winograd instead (:mod:`.winograd`, chosen by :mod:`.selection`). The batch is
    processed in chunks when X_col would exceed the workspace limit (``workspace_limit_bytes``,
    else the current :class:`~.settings.ConvSettings`' ``workspace_limit``).
    ``need_dx=False`` (the input needs no gradient, e.g. the image batch into
    the first layer) makes the backward skip ``W_rowᵀ · dO`` and col2im.

    The settings are read here, once, and travel in the cache to the backward.

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
    sh, sw, pads, dh, dw = normalise(stride, padding, dilation)
    ho, wo = output_shape(h, w, kh, kw, sh, sw, pads, dh, dw)
    settings = current_settings()
    limit = settings.workspace_limit if workspace_limit_bytes is None else int(workspace_limit_bytes)
    algorithm = winograd_for(settings, kh, kw, sh, sw, dh, dw, groups, pads, c, c_out, n, ho, wo, x.itemsize,
                             limit, on_cpu=xp.__name__ == "numpy")
    if algorithm is not None:
        return winograd_forward(x, weight, bias, pads, (ho, wo), algorithm, limit, need_dx, settings)
    return gemm_forward(x, weight, bias, (sh, sw), pads, (dh, dw), groups, (ho, wo), limit, need_dx, settings)
