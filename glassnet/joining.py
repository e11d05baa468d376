"""Joining tensors: ``cat`` and ``stack`` (PyTorch's names and rules).

These are the graph ops of branching networks: GoogLeNet's Inception module
concatenates the outputs of its parallel branches along the channel dim
(``cat(branches, dim=1)``); stacking builds batches and ensembles. Both are
differentiable: the gradient of the joined output is split back into one
piece per input (see :mod:`glassnet.ops.shape`), and inputs may mix
``requires_grad=True`` and ``False``.
"""
from __future__ import annotations

from .backend import result_dtype
from .errors import GlassnetRuntimeError, IndexOutOfRangeError, InvalidArgumentError, InvalidTypeError, ShapeError
from .op_args import JoinArgs
from .op_record import OpRecord
from .ops import shape as K
from .tensor import Tensor, apply_kernel


def _check_tensors(op, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise InvalidTypeError(
            f"{op}: expected a list or tuple of Tensors, got {type(tensors).__name__}"
        )
    tensors = list(tensors)
    if not tensors:
        raise InvalidArgumentError(f"{op}: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise InvalidTypeError(f"{op}: expected a list of Tensors, but element {i} is a {type(t).__name__}")
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise GlassnetRuntimeError(f"{op}: tensors are on different devices {sorted(devices)}; move them with .to(...)")
    dtype = result_dtype(op, *(t.dtype for t in tensors))
    return tensors, dtype


def _normalize_dim(op, dim, ndim, shape):
    if not isinstance(dim, int) or isinstance(dim, bool):
        try:
            dim = int(dim.__index__())
        except AttributeError:
            raise InvalidTypeError(f"{op}: dim must be an int, got {type(dim).__name__}") from None
    if not -ndim <= dim < ndim:
        raise IndexOutOfRangeError(
            f"{op}: dim {dim} is out of range for inputs of shape {shape} "
            f"(expected a dim in [{-ndim}, {ndim - 1}])"
        )
    return dim % ndim


def _call(op, forward, backward, tensors, axis, dtype):
    def fwd(*arrays, axis, dtype):
        return forward(arrays, axis, dtype)

    return apply_kernel(OpRecord(op, JoinArgs(axis)), fwd, backward, tensors, axis=axis, dtype=dtype)


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate tensors along an existing dim (``torch.cat``).

    Args:
        tensors: a non-empty list/tuple of Tensors of the same rank (≥ 1)
            whose shapes agree in every dim except ``dim``.
        dim: the dim to join along; negative counts from the end.

    Shape: (…, n₀, …), (…, n₁, …), … -> (…, n₀ + n₁ + …, …).

    Backward: each input receives its slice of the output gradient
    (``dL/dXᵢ = dL/dY[…, oᵢ:oᵢ+nᵢ, …]``).

    Raises:
        ShapeError: ranks differ, a 0-d tensor is given, or a non-joined dim
            differs. TypeError: float32 mixed with float64 (glassnet never
            upcasts silently). IndexError: ``dim`` out of range.
    """
    tensors, dtype = _check_tensors("cat", tensors)
    ref = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ShapeError(f"cat: tensor {i} is zero-dimensional (shape ()); zero-dimensional tensors cannot be concatenated (use stack)")
    for i, t in enumerate(tensors[1:], start=1):
        if t.ndim != ref.ndim:
            raise ShapeError(
                f"cat: tensor {i} has {t.ndim} dims (shape {t.shape}) but tensor 0 has {ref.ndim} "
                f"(shape {ref.shape}); all tensors must have the same number of dims"
            )
    axis = _normalize_dim("cat", dim, ref.ndim, ref.shape)
    for i, t in enumerate(tensors[1:], start=1):
        for a in range(ref.ndim):
            if a != axis and t.shape[a] != ref.shape[a]:
                raise ShapeError(
                    f"cat: tensor {i} has shape {t.shape} but tensor 0 has shape {ref.shape}; sizes must "
                    f"match in every dim except the concatenation dim {dim} (they differ in dim {a}: "
                    f"{t.shape[a]} vs {ref.shape[a]})"
                )
    return _call("cat", K.cat_forward, K.cat_backward, tensors, axis,
                 None if all(t.dtype == dtype for t in tensors) else dtype)


def stack(tensors, dim: int = 0) -> Tensor:
    """Stack equal-shape tensors along a new dim (``torch.stack``).

    Args:
        tensors: a non-empty list/tuple of Tensors, all of the same shape.
        dim: where the new dim goes, in [−(ndim+1), ndim].

    Shape: k tensors of shape S -> S with a new dim of size k at ``dim``.

    Backward: ``dL/dXᵢ = dL/dY[…, i, …]`` (index i along ``dim``).

    Raises:
        ShapeError: shapes differ. TypeError: float32 mixed with float64.
        IndexError: ``dim`` out of range.
    """
    tensors, dtype = _check_tensors("stack", tensors)
    ref = tensors[0]
    for i, t in enumerate(tensors[1:], start=1):
        if t.shape != ref.shape:
            raise ShapeError(
                f"stack: tensor {i} has shape {t.shape} but tensor 0 has shape {ref.shape}; "
                "stack expects every tensor to have the same shape"
            )
    axis = _normalize_dim("stack", dim, ref.ndim + 1, ref.shape)
    return _call("stack", K.stack_forward, K.stack_backward, tensors, axis,
                 None if all(t.dtype == dtype for t in tensors) else dtype)
