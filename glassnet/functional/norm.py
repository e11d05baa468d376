"""Functional normalization: batch norm and local response norm."""
from __future__ import annotations

from ..backend import result_dtype
from ..errors import InvalidArgumentError, ShapeError
from ..op_args import BatchNormArgs, LRNArgs
from ..op_record import OpRecord
from ..ops import norm as K
from ..ops import norm_relu as KR
from ..tensor import Tensor, apply_kernel


def _raw(a):
    """The array behind a Tensor (running statistics may be passed either way)."""
    return a.data if isinstance(a, Tensor) else a


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, layer: str = "batch_norm"):
    """y = γ (x − μ)/√(σ² + ε) + β per channel (axis 1), PyTorch's signature.

    ``training=True`` normalises with the batch's statistics and, when
    ``running_mean`` / ``running_var`` are given (arrays or Tensors), updates
    them in place: ``running ← (1 − momentum)·running + momentum·batch``
    (the unbiased batch variance for ``running_var``). ``training=False``
    uses the running statistics. ``momentum`` must be a number here; the
    BatchNorm modules turn ``momentum=None`` into a cumulative average.

    Shape: input (N, C, *) with at least 2 dims; weight, bias, running_mean,
    running_var (C,); output has the input's shape.
    """
    mean, var = _checked_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, layer)
    record = OpRecord("batch_norm", BatchNormArgs(bool(training), momentum, eps, mean, var))
    return apply_kernel(
        record, K.batch_norm_forward, K.batch_norm_backward, [input, weight, bias],
        mean, var, bool(training), momentum, eps,
    )


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
                    momentum: float = 0.1, eps: float = 1e-5, *, layer: str = "batch_norm"):
    """``relu(batch_norm(input, ...))`` in one pass per block of channels
    (:mod:`glassnet.ops.norm_relu`): the same arguments, rules and results, bit for bit, as
    :func:`batch_norm` followed by :func:`~glassnet.functional.relu`, with one trip through
    memory fewer each way. ``BatchNorm`` → ``ReLU`` pairs in ``nn.Sequential`` and the zoo's
    blocks run through it (:mod:`glassnet.nn.fusion`).

    Shape: input (N, C, *) with at least 2 dims; weight, bias, running_mean, running_var (C,);
    output has the input's shape.
    """
    mean, var = _checked_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, layer)
    record = OpRecord("batch_norm_relu", BatchNormArgs(bool(training), momentum, eps, mean, var))
    return apply_kernel(
        record, KR.batch_norm_relu_forward, KR.batch_norm_relu_backward, [input, weight, bias],
        mean, var, bool(training), momentum, eps,
    )


def batch_norm_add_relu(input, residual, running_mean, running_var, weight=None, bias=None,
                        training: bool = False, momentum: float = 0.1, eps: float = 1e-5, *,
                        layer: str = "batch_norm"):
    """``relu(batch_norm(input, ...) + residual)`` in one pass per block of channels: a
    residual block's end (ResNet's ``relu(bn2(conv2(…)) + identity)``), bit for bit the three
    ops' results (:mod:`glassnet.ops.norm_relu`). ``residual`` gets the gradient that reaches
    the sum.

    Shape: input, residual (N, C, *) of one shape; weight, bias, running_mean, running_var (C,);
    output has the input's shape.
    """
    mean, var = _checked_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, layer)
    if tuple(residual.shape) != tuple(input.shape):
        raise ShapeError(f"{layer}: the residual has shape {tuple(residual.shape)} but the input "
                         f"{tuple(input.shape)}; a residual connection adds tensors of one shape")
    result_dtype(layer, input.dtype, residual.dtype)
    record = OpRecord("batch_norm_add_relu", BatchNormArgs(bool(training), momentum, eps, mean, var))
    return apply_kernel(
        record, KR.batch_norm_add_relu_forward, KR.batch_norm_add_relu_backward, [input, residual, weight, bias],
        mean, var, bool(training), momentum, eps,
    )


def _checked_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, layer):
    """The running statistics as arrays, once the arguments obey batch norm's rules (else a
    ShapeError / InvalidArgumentError naming ``layer``, the shapes and the rule)."""
    if input.ndim < 2:
        raise ShapeError(
            f"{layer}: expected input of shape (N, C, *) with at least 2 dimensions, "
            f"got shape {tuple(input.shape)}"
        )
    C = input.shape[1]
    named = {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    for name, a in named.items():
        if a is not None and tuple(a.shape) != (C,):
            raise ShapeError(
                f"{layer}: input of shape {tuple(input.shape)} has {C} channels (axis 1) but "
                f"{name} has shape {tuple(a.shape)}; expected ({C},)"
            )
    if momentum is None:
        raise InvalidArgumentError(
            f"{layer}: momentum=None (cumulative average) is handled by the BatchNorm modules; "
            "pass a number to the functional form"
        )
    result_dtype(layer, *(t.dtype for t in (input, weight, bias) if t is not None))
    if not training and (running_mean is None or running_var is None):
        raise InvalidArgumentError(f"{layer}: running_mean and running_var are required when training=False")
    return _raw(running_mean), _raw(running_var)


def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                        *, layer: str = "local_response_norm"):
    """Local response normalization across channels, PyTorch's definition::

        b_c = a_c · (k + (α/n) Σ_{c' = c − ⌊n/2⌋}^{c + ⌊(n−1)/2⌋} a_{c'}²)^(−β),  n = size

    Shape: input (N, C, *) with at least 3 dimensions; output the same.
    """
    if input.ndim < 3:
        raise ShapeError(
            f"{layer}: expected input of shape (N, C, *) with at least 3 dimensions, "
            f"got shape {tuple(input.shape)}"
        )
    if int(size) != size or size < 1:
        raise InvalidArgumentError(f"{layer}: size must be a positive integer, got {size}")
    return apply_kernel(
        OpRecord("local_response_norm", LRNArgs(int(size), alpha, beta, k)),
        K.local_response_norm_forward, K.local_response_norm_backward,
        [input], int(size), alpha, beta, k,
    )
