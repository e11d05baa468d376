"""Functional padding: ``pad`` with PyTorch's signature and pad-tuple convention."""
from __future__ import annotations

import numbers

from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError
from ..op_args import PadArgs
from ..op_record import OpRecord
from ..ops import shape as K
from ..tensor import apply_kernel


def _check_pad(input, pad, mode):
    if isinstance(pad, (str, bytes)) or not hasattr(pad, "__len__"):
        raise InvalidTypeError(f"pad: pad must be a tuple/list of ints, got {type(pad).__name__}")
    pad = tuple(pad)
    for p in pad:
        if not isinstance(p, numbers.Integral) or isinstance(p, bool):
            raise InvalidTypeError(f"pad: pad must contain ints, got {pad!r}")
    pad = tuple(int(p) for p in pad)
    if mode not in K.PAD_MODES:
        raise InvalidArgumentError(f"pad: unknown mode {mode!r}; expected one of {', '.join(map(repr, K.PAD_MODES))}")
    if len(pad) % 2:
        raise InvalidArgumentError(
            f"pad: padding length must be even (one (before, after) pair per dim, last dim first), "
            f"got {len(pad)} values {pad}"
        )
    if len(pad) // 2 > input.ndim:
        raise ShapeError(
            f"pad: padding length {len(pad)} pads {len(pad) // 2} dims but the input of shape "
            f"{input.shape} has only {input.ndim}; the length must be <= 2 * ndim = {2 * input.ndim}"
        )
    shape = input.shape
    for k in range(len(pad) // 2):
        a = input.ndim - 1 - k
        n, before, after = shape[a], pad[2 * k], pad[2 * k + 1]
        m = n + before + after
        where = f"dim {a} (size {n}) of input of shape {shape} padded by ({before}, {after})"
        if mode == "constant":
            if m < 0:
                raise ShapeError(f"pad: {where} would have negative size {m}; a crop cannot remove more than the dim holds")
            continue
        if m < 1:
            raise ShapeError(f"pad: {where} would have size {m}; {mode} padding needs an output size of at least 1")
        if mode == "reflect" and (before >= n or after >= n):
            raise ShapeError(
                f"pad: {where}: reflect padding must be less than the input size ({max(before, after)} >= {n})"
            )
        if mode == "replicate" and n < 1:
            raise ShapeError(f"pad: {where}: replicate padding needs a non-empty dim")
        if mode == "circular":
            kept = n - max(-before, 0) - max(-after, 0)
            if kept < 1 or before > kept or after > kept:
                raise ShapeError(
                    f"pad: {where}: circular padding can wrap around at most once "
                    f"(each pad <= the {kept} element(s) left after cropping) and must keep at least one element"
                )
    return pad


def pad(input, pad, mode: str = "constant", value=0.0):
    """Pad (or crop, with negative entries) the last dims of ``input``.

    Args:
        input: a Tensor of any rank.
        pad: ints, last dim first, as in ``torch.nn.functional.pad``:
            ``(left, right)`` pads the last dim, ``(left, right, top,
            bottom)`` the last two, and so on; at most 2·ndim entries.
            Negative entries crop.
        mode: ``'constant'`` (fill with ``value``), ``'reflect'`` (mirror,
            edge not repeated; each pad must be < the dim's size),
            ``'replicate'`` (repeat the edge) or ``'circular'`` (wrap).
            Unlike PyTorch, the non-constant modes work on any number of
            trailing dims, not only those that follow batch/channel dims.
        value: fill value for ``'constant'`` mode (``None`` means 0).

    Shape: a padded dim of size n becomes n + before + after.

    Backward: constant → the output gradient cropped to the input's window;
    reflect/replicate/circular → border gradients scatter-added onto the
    input positions they were copied from (see
    :func:`glassnet.ops.shape.pad_backward`).
    """
    pads = _check_pad(input, pad, mode)
    if value is None:
        value = 0.0
    if mode != "constant" and value != 0:
        raise InvalidArgumentError(f"pad: padding mode {mode!r} doesn't take a value argument (got value={value})")
    return apply_kernel(OpRecord("pad", PadArgs(pads, mode, value)), K.pad_forward, K.pad_backward, [input], pads, mode, value)
