"""Functional 2-D convolution (PyTorch's ``torch.nn.functional.conv2d``).

The arguments are normalised and checked by
:meth:`~glassnet.ops.conv.args.ConvArgs.from_user`, with errors that name the
layer, the shapes and the rule broken; the work is done by the kernel pair in
:mod:`glassnet.ops.conv`.
"""
from __future__ import annotations

from ..errors import InvalidTypeError, ShapeError
from ..ops import conv as K
from ..op_record import OpRecord
from ..ops.conv.args import ConvArgs
from ..tensor import Tensor, apply_kernel


def _check_ranks(layer, x_shape, w_shape):
    if len(x_shape) != 4:
        raise ShapeError(
            f"{layer}: expected a 4-D input (N, C, H, W) or a 3-D unbatched input (C, H, W), "
            f"got a {len(x_shape)}-D input of shape {x_shape}"
        )
    if len(w_shape) != 4:
        raise ShapeError(
            f"{layer}: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape {w_shape}"
        )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, layer: str = "conv2d"):
    """2-D convolution (cross-correlation, like PyTorch) lowered to one matmul.

    ``O = W_row · im2col(X) + b``: every receptive field of the padded input
    becomes a column of ``X_col`` and every filter a row of ``W_row``; see
    :mod:`glassnet.ops.conv`.

    Args:
        input: (N, C_in, H, W), or (C_in, H, W) unbatched (the output is then 3-D).
        weight: (C_out, C_in/groups, kH, kW). bias: (C_out,) or None.
        stride, dilation: int or (sH, sW) / (dH, dW), each >= 1.
        padding: int or (pH, pW) zero padding, ``'valid'`` (none) or
            ``'same'`` (output as large as the input; stride 1 only; with an
            even effective kernel the extra row/column goes bottom/right, as
            in PyTorch).
        groups: input and output channels are split into ``groups`` blocks
            that are convolved separately (``groups = C_in``: depthwise).
        layer: name used in error messages (modules pass their repr).

    Shape:
        Input: (N, C_in, H, W) or (C_in, H, W).
        Output: (N, C_out, H_out, W_out) or (C_out, H_out, W_out), with
        H_out = floor((H + 2p − d·(k − 1) − 1)/s) + 1 (likewise W_out).

    Raises:
        ShapeError: wrong rank, channel mismatch, or a kernel larger than the padded input.
        ValueError: bad stride/padding/dilation/groups, or ``'same'`` with stride > 1.
        TypeError: input, weight and bias of different dtypes (nothing upcasts silently).
    """
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None and not isinstance(t, Tensor):
            raise InvalidTypeError(f"{layer}: {name} must be a glassnet Tensor, got {type(t).__name__}")
    w_shape = tuple(weight.shape)
    x_shape = tuple(input.shape)
    unbatched = len(x_shape) == 3
    if unbatched:
        x_shape = (1,) + x_shape
    _check_ranks(layer, x_shape, w_shape)
    args = ConvArgs.from_user(w_shape[2:], stride, padding, dilation, groups, layer=layer)
    args.check_shapes(x_shape, w_shape, None if bias is None else tuple(bias.shape))
    args.check_fit(x_shape, w_shape)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise InvalidTypeError(
                f"{layer}: input is {input.dtype} but {name} is {t.dtype}; glassnet never upcasts "
                "silently, convert one of them first (e.g. module.to(dtype=...) or x.astype(...))"
            )

    x = input.reshape(x_shape) if unbatched else input
    out = apply_kernel(
        OpRecord("conv2d", args), K.conv2d_forward, K.conv2d_backward, [x, weight, bias],
        args.stride, args.padding_pairs, args.dilation, args.groups, need_dx=x.requires_grad,
    )
    return out.reshape(out.shape[1:]) if unbatched else out
