"""Functional 2-D convolution (PyTorch's ``torch.nn.functional.conv2d``).

The arguments are checked here, with errors that name the layer, the shapes
and the rule broken; the work is done by the im2col kernel pair in
:mod:`glassnet.ops.conv`.
"""
from __future__ import annotations

from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError
from ..ops import conv as K
from ..op_record import OpRecord
from ..ops.conv.args import ConvArgs
from ..tensor import Tensor, apply_kernel


def _pair(value, name, low, layer):
    """An int or a pair of ints, each >= ``low`` -> (a, b)."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or any(isinstance(v, bool) or int(v) != v or v < low for v in pair):
        raise InvalidArgumentError(f"{layer}: {name} must be an int >= {low} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _resolve_padding(padding, kernel_size, stride, dilation, layer):
    """``padding`` as the kernel takes it: (pH, pW) or ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise InvalidArgumentError(
                    f"{layer}: padding='same' is not supported for strided convolutions "
                    f"(stride={stride}); PyTorch allows it only with stride 1"
                )
            return K.same_padding(kernel_size, dilation)
        raise InvalidArgumentError(f"{layer}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    return _pair(padding, "padding", 0, layer)


def _four_pads(pads):
    """(pH, pW) or ((top, bottom), (left, right)) -> (top, bottom, left, right)."""
    if isinstance(pads[0], tuple):
        (t, b), (l, r) = pads
        return t, b, l, r
    return pads[0], pads[0], pads[1], pads[1]


def _check_shapes(layer, x_shape, w_shape, b_shape, groups):
    if len(x_shape) != 4:
        raise ShapeError(
            f"{layer}: expected a 4-D input (N, C, H, W) or a 3-D unbatched input (C, H, W), "
            f"got a {len(x_shape)}-D input of shape {x_shape}"
        )
    if len(w_shape) != 4:
        raise ShapeError(
            f"{layer}: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape {w_shape}"
        )
    c_out, c_per_group = w_shape[:2]
    if c_out % groups:
        raise ShapeError(
            f"{layer}: weight of shape {w_shape} has {c_out} output channels, "
            f"which groups={groups} does not divide"
        )
    if x_shape[1] != c_per_group * groups:
        raise ShapeError(
            f"{layer}: input of shape {x_shape} has {x_shape[1]} channels, but weight of shape {w_shape} "
            f"with groups={groups} expects in_channels = {c_per_group}*{groups} = {c_per_group * groups} "
            f"(weight is (out_channels, in_channels/groups, kH, kW))"
        )
    if b_shape is not None and b_shape != (c_out,):
        raise ShapeError(f"{layer}: bias must have shape ({c_out},) to match weight {w_shape}, got {b_shape}")


def _check_fit(layer, x_shape, w_shape, pads, dilation):
    """The (dilated) kernel must fit inside the padded input on both axes."""
    (t, b), (l, r) = pads if isinstance(pads[0], tuple) else ((pads[0],) * 2, (pads[1],) * 2)
    for axis, size, k, d, before, after in (
        ("height", x_shape[2], w_shape[2], dilation[0], t, b),
        ("width", x_shape[3], w_shape[3], dilation[1], l, r),
    ):
        eff = d * (k - 1) + 1
        if eff > size + before + after:
            kernel = f"kernel {k}" + (f" with dilation {d} (effective size {d}*({k} - 1) + 1 = {eff})" if d > 1 else "")
            raise ShapeError(
                f"{layer}: {kernel} is larger than the padded input {axis}: "
                f"{size} + {before} + {after} = {size + before + after} < {eff} "
                f"(input {x_shape}, weight {w_shape}); the rule is H + 2P >= d*(k - 1) + 1"
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
    if isinstance(groups, bool) or int(groups) != groups or groups < 1:
        raise InvalidArgumentError(f"{layer}: groups must be a positive integer, got {groups!r}")
    groups = int(groups)
    stride = _pair(stride, "stride", 1, layer)
    dilation = _pair(dilation, "dilation", 1, layer)
    w_shape = tuple(weight.shape)
    x_shape = tuple(input.shape)
    unbatched = len(x_shape) == 3
    if unbatched:
        x_shape = (1,) + x_shape
    b_shape = None if bias is None else tuple(bias.shape)
    _check_shapes(layer, x_shape, w_shape, b_shape, groups)
    pads = _resolve_padding(padding, w_shape[2:], stride, dilation, layer)
    _check_fit(layer, x_shape, w_shape, pads, dilation)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise InvalidTypeError(
                f"{layer}: input is {input.dtype} but {name} is {t.dtype}; glassnet never upcasts "
                "silently, convert one of them first (e.g. module.to(dtype=...) or x.astype(...))"
            )

    x = input.reshape(x_shape) if unbatched else input
    t, b, l, r = _four_pads(pads)
    record = OpRecord("conv2d", ConvArgs(kernel_size=tuple(w_shape[2:]), stride=stride, padding=(t, b, l, r),
                                         dilation=dilation, groups=groups))
    out = apply_kernel(
        record, K.conv2d_forward, K.conv2d_backward, [x, weight, bias], stride, pads, dilation, groups,
        need_dx=x.requires_grad,
    )
    return out.reshape(out.shape[1:]) if unbatched else out
