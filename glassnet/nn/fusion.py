"""Layer fusion: adjacent layers run in fewer passes over memory where nothing can tell.

``relu(bn(x))`` — every ResNet block, GoogLeNet's convolutions, VGG-BN's features — becomes
``bn.forward_relu(x)`` (:func:`glassnet.functional.batch_norm_relu`, one pass per block of
channels instead of two trips through memory each way; the results are bitwise the same).
Modules keep their names, parameters and ``state_dict``: only the call changes, and only when

* the batch norm is exactly ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` (not ``SyncBatchNorm`` or
  another subclass, whose forward may differ) and the activation exactly ``nn.ReLU``;
* neither module has a forward hook (``glassnet summary``, the ONNX exporter and feature plots
  hook modules and must see the ReLU's own call and output);
* no graph capture is running (``glassnet.autograd.tracer``);
* fusion is on: :func:`no_fusion` turns it off for a block (the off switch).

A ``ReLU`` followed by a ``MaxPool2d`` runs in the other order, ``relu(max_pool(x))``
(:func:`can_pool_first`): ReLU is monotone, so ``max_window relu(x) = relu(max_window x)``
value for value, and the gradient reaches the same elements (a window whose maximum is
positive routes to the same first maximum; one whose maximum is ≤ 0 passes no gradient either
way). The ReLU then runs on the pooled output, a quarter of the size for a 2×2 pool, and in
place (the pool's backward reads its arg-max, never its output): no new array, which also
kept glibc from trimming and re-faulting the heap every SmallCNN step (2,400 page faults per
step without it). Same conditions (exact types, no hooks, no capture, fusion on), and not with
``return_indices`` (the arg-max of a window of zeros may differ).

A ``ReLU`` right after a ``Conv2d`` or ``Linear`` runs in place on that layer's output
(``F.relu_``, :func:`can_relu_in_place`): inside ``nn.Sequential`` nothing else reads it (the
layer's backward needs its input, not its output), so no second activation-sized array is
made, as torchvision's ``ReLU(inplace=True)`` does in PyTorch. Same conditions, hooks on the
producer included (a hook may keep its output), and only while gradients are recorded: a training
step keeps every activation until its backward, so one array fewer per layer is memory saved
(VGG16 b2: page faults per step 9,600–10,000 → 3,800–4,700); without a graph the arrays die at
once and the in-place pass measured no faster (VGG16 b1 forward 185.9 / 171.7 against 183.5 /
167.2 ms) and, under glibc's defaults, faulted more pages.

``nn.Sequential`` applies these rewrites to adjacent pairs by itself; the zoo's blocks call
:func:`batch_norm_relu` where their ``forward`` applies the two in a row, and
:func:`batch_norm_add_relu` for a residual block's ``relu(bn(x) + identity)``.
"""
from __future__ import annotations

import contextlib
import contextvars

from .. import autograd
from .. import functional as F
from ..functional.activation import relu_
from .activation import ReLU
from .conv import Conv2d
from .linear import Linear
from .normalization import BatchNorm1d, BatchNorm2d
from .pooling import MaxPool2d

__all__ = ["batch_norm_relu", "batch_norm_add_relu", "can_fuse", "can_pool_first", "can_relu_in_place",
           "sequential_step", "no_fusion", "fusion_enabled"]

_FUSION = contextvars.ContextVar("glassnet_layer_fusion", default=True)
_FUSABLE_NORMS = (BatchNorm1d, BatchNorm2d)


def fusion_enabled() -> bool:
    """Whether layer fusion is on in this context (thread, task); it is by default."""
    return _FUSION.get()


@contextlib.contextmanager
def no_fusion():
    """Run a block with every layer called on its own (``relu(bn(x))`` as two kernels).

    Shape: not applicable.
    """
    token = _FUSION.set(False)
    try:
        yield
    finally:
        _FUSION.reset(token)


def _may_rewrite(*modules) -> bool:
    """The conditions every rewrite shares: fusion on, no graph capture, no forward hook on any of
    ``modules`` (``None`` stands for a functional ``F.relu``, which has none)."""
    return (fusion_enabled() and autograd.tracer is None
            and not any(m is not None and m.__dict__.get("_forward_hooks") for m in modules))


def can_fuse(norm, activation) -> bool:
    """Whether ``activation(norm(x))`` may run as one fused kernel (the rules of the module
    docstring). ``activation``: an ``nn.ReLU``, or ``None`` for the functional ``F.relu``.

    Shape: not applicable.
    """
    return (type(norm) in _FUSABLE_NORMS and (activation is None or type(activation) is ReLU)
            and _may_rewrite(norm, activation))


def can_pool_first(activation, pool) -> bool:
    """Whether ``pool(activation(x))`` may run as ``activation(pool(x))`` (the same values and
    gradients; the module docstring says why and when).

    Shape: not applicable.
    """
    return (type(activation) is ReLU and type(pool) is MaxPool2d and not pool.return_indices
            and _may_rewrite(activation, pool))


def can_relu_in_place(producer, activation) -> bool:
    """Whether ``activation(producer(x))`` may run the ReLU in place on the producer's output
    (exactly ``nn.Conv2d`` or ``nn.Linear``, then exactly ``nn.ReLU``; the module docstring's
    conditions).

    Shape: not applicable.
    """
    return (type(producer) in (Conv2d, Linear) and type(activation) is ReLU and autograd.is_grad_enabled()
            and _may_rewrite(producer, activation))


def _activate(activation, y):
    """The unfused ReLU: the module's call, or ``F.relu`` for ``activation=None``."""
    return F.relu(y) if activation is None else activation(y)


def batch_norm_relu(norm, activation, x):
    """``activation(norm(x))`` (``activation=None``: ``F.relu(norm(x))``): fused where
    :func:`can_fuse` allows, else the two calls.

    Shape: x (N, C, *) as ``norm`` takes it; output the same shape.
    """
    if can_fuse(norm, activation):
        return norm.forward_relu(x)
    return _activate(activation, norm(x))


def batch_norm_add_relu(norm, activation, x, residual):
    """``activation(norm(x) + residual)``, a residual block's end: one fused kernel where
    :func:`can_fuse` allows (``activation``: an ``nn.ReLU`` or ``None`` for ``F.relu``), else
    the three ops.

    Shape: x, residual (N, C, *) of one shape; output the same.
    """
    if can_fuse(norm, activation):
        return norm.forward_add_relu(x, residual)
    return _activate(activation, norm(x) + residual)


def sequential_step(modules, i, x):
    """Run ``modules[i]`` — or the pair ``modules[i], modules[i + 1]`` where a rule of this module
    applies — on ``x``, for ``nn.Sequential``. Returns ``(output, index of the next module)``.

    The rules, first match: batch norm → ReLU fused (:func:`can_fuse`); ReLU → max-pool as the
    pool first (:func:`can_pool_first`); conv/linear → ReLU in place (:func:`can_relu_in_place`),
    unless that ReLU is followed by a max-pool (the pool-first rewrite then pays more: the ReLU
    runs on the pooled output).

    Shape: x as ``modules[i]`` takes it.
    """
    pair = modules[i:i + 2]
    if len(pair) == 2:
        first, second = pair
        if can_fuse(first, second):
            return first.forward_relu(x), i + 2
        if can_pool_first(first, second):
            return relu_(second.forward(x)), i + 2  # relu(max_pool(x)), in place: the pool keeps no output
        pool_next = i + 2 < len(modules) and can_pool_first(second, modules[i + 2])
        if can_relu_in_place(first, second) and not pool_next:
            return relu_(first.forward(x)), i + 2  # nothing else reads the layer's output
    return modules[i](x), i + 1
