"""``Tensor``: an array plus the bookkeeping reverse-mode autodiff needs.

A tensor wraps a NumPy (or CuPy) array in ``.data``. When it takes part in an
op while gradients are enabled and some input has ``requires_grad=True``, the
result remembers its parents and a backward closure; ``loss.backward()`` then
fills ``.grad`` (a plain array) of every leaf that requires it. See
:mod:`glassnet.autograd` for the rules of the walk (accumulation, reuse).

This module holds the type's core (data, grad bookkeeping, the graph edge
``_make``, ``backward``) and the functions that build tensors (``tensor``,
``zeros``, ``randn``, ...). The ops are inherited: arithmetic, reductions and
elementwise functions from :class:`~glassnet.tensor_math.TensorMath`, shape
ops and indexing from :class:`~glassnet.tensor_shape.TensorShape`; the
kernel path of every functional layer is
:func:`~glassnet.kernel_op.apply_kernel`, importable from here as before,
like :func:`~glassnet.tensor_math.matmul`.
"""

from __future__ import annotations

import numpy as np

from . import autograd
from .backend import (
    device_of,
    get_array_module,
    get_default_dtype,
    is_float,
    to_device,
    to_numpy,
)
from .errors import GlassnetRuntimeError, InvalidArgumentError, InvalidTypeError
from .kernel_op import apply_kernel
from .op_args import CastArgs, ToArgs
from .op_record import OpRecord, as_record
from .tensor_math import TensorMath, matmul, unbroadcast
from .tensor_shape import TensorShape

__all__ = ["Tensor", "tensor", "from_numpy", "zeros", "ones", "randn", "rand", "matmul", "apply_kernel"]


class _HookHandle:
    """Returned by :meth:`Tensor.register_post_accumulate_grad_hook`; ``remove()`` unregisters."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


class Tensor(TensorMath, TensorShape):
    """A multi-dimensional array that can record operations for autodiff.

    Args:
        data: an array (NumPy or CuPy), already of the wanted dtype. Use
            :func:`glassnet.tensor` to build one from Python data.
        requires_grad: track operations on this tensor so ``backward()`` can
            compute ``.grad`` for it. Only floating-point tensors can.

    Attributes:
        data: the underlying array.
        grad: an array of the same shape holding dL/d(this), or ``None``.
        requires_grad: whether gradients flow to this tensor.

    Shape:
        Any. Binary operators broadcast as NumPy does; the gradient of each
        input is summed back to that input's shape.
    """

    __array_ufunc__ = None  # make NumPy defer: ndarray + Tensor -> Tensor.__radd__
    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward_fn", "_op", "_retains_grad",
                 "_post_accumulate_grad_hooks", "__weakref__")

    def __init__(self, data, requires_grad: bool = False):
        xp = get_array_module(data)
        if not hasattr(data, "dtype") or not hasattr(data, "shape") or isinstance(data, np.generic):
            data = xp.asarray(data)
        self.data = data
        self.grad = None
        if requires_grad and not is_float(data.dtype):
            raise InvalidTypeError(
                f"Tensor: only floating-point tensors can require gradients, got dtype {data.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward_fn = None
        self._op = None
        self._retains_grad = False
        self._post_accumulate_grad_hooks = None

    # ------------------------------------------------------------------ basics
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def device(self) -> str:
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (not produced by a tracked op)."""
        return self._backward_fn is None

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return self.shape[0]

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied off the GPU if needed; a view on CPU)."""
        return to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise InvalidArgumentError(f"item(): tensor has {self.data.size} elements, expected exactly 1")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, cut from the graph (no grad)."""
        return Tensor(self.data)

    def astype(self, dtype) -> "Tensor":
        """A copy converted to ``dtype`` (differentiable between float types)."""
        dtype = np.dtype(dtype)
        src_dtype = self.dtype
        return self._make(
            self.data.astype(dtype), (self,), lambda g: (g.astype(src_dtype),), OpRecord("astype", CastArgs(dtype))
        )

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        return self.astype(np.float64)

    def to(self, device: str) -> "Tensor":
        """A copy on ``'cpu'`` or ``'cuda'`` (differentiable)."""
        src = self.device
        if device == src:
            return self
        return self._make(
            to_device(self.data, device), (self,), lambda g: (to_device(g, src),), OpRecord("to", ToArgs(device))
        )

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and not is_float(self.dtype):
            raise InvalidTypeError(f"requires_grad_: tensor of dtype {self.dtype} cannot require gradients")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after ``backward()``."""
        self._retains_grad = True

    def zero_grad(self) -> None:
        self.grad = None

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` during ``backward()`` right after this leaf's
        gradient for that backward has been added into ``.grad`` — as soon as
        it is final, while the rest of the graph is still being walked
        (PyTorch's name and timing). A data-parallel wrapper uses it to start
        reducing gradients early. Hooks run in registration order; a hook
        that raises aborts the backward. Returns a handle whose ``remove()``
        unregisters the hook.
        """
        if not self.is_leaf:
            raise GlassnetRuntimeError("register_post_accumulate_grad_hook: only leaf tensors "
                                       "(parameters, inputs) accumulate a .grad; this one was made by "
                                       f"the op {str(self._op)!r}")
        if not self.requires_grad:
            raise GlassnetRuntimeError("register_post_accumulate_grad_hook: this tensor does not "
                                       "require grad, so backward() never gives it a gradient")
        if self._post_accumulate_grad_hooks is None:
            self._post_accumulate_grad_hooks = {}
        handle = _HookHandle(self._post_accumulate_grad_hooks)
        self._post_accumulate_grad_hooks[handle.id] = hook
        return handle

    def _accumulate_grad(self, g, owned: bool = False) -> None:
        """Add ``g`` into ``.grad``. ``owned``: no other tensor or graph edge
        holds ``g``, so it can become ``.grad`` without a copy."""
        if g.shape != self.data.shape:
            g = unbroadcast(g, self.data.shape)
            owned = False
        if g.dtype != self.data.dtype:
            g = g.astype(self.data.dtype)
        if self.grad is None:
            self.grad = g if owned else g.copy()  # else own it: g may alias another tensor's gradient
        else:
            self.grad += g

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", precision=4, threshold=50)
        extra = f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self._op is not None:
            extra += f", grad_fn=<{self._op}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---------------------------------------------------------------- autograd
    @staticmethod
    def _make(data, parents, backward_fn, op) -> "Tensor":
        """Wrap an op's result; record the graph edge if any parent needs grad.

        ``op`` is an :class:`~glassnet.op_record.OpRecord` (or a bare op name)."""
        out = Tensor(data)
        record = as_record(op)
        if autograd.is_grad_enabled() and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = tuple(parents)
            out._backward_fn = backward_fn
            out._op = record
        if autograd.tracer is not None:
            autograd.tracer(out, parents, record, backward_fn, (), {})
        return out

    @staticmethod
    def _wrap(data) -> "Tensor":
        """A plain Tensor around an op's result array (no graph edge, nothing traced)."""
        return Tensor(data)

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad, adding it
        into ``leaf.grad``; then free the graph (the arrays each op saved for
        its backward), as PyTorch does.

        Args:
            grad: dL/d(self). May be omitted for a one-element tensor (taken
                as 1), as in PyTorch; otherwise an array or Tensor of
                ``self.shape``.
            retain_graph: keep the graph, so that backward() can run through
                it again (the gradients then add up again).
        """
        if not self.requires_grad:
            raise GlassnetRuntimeError(
                "backward(): this tensor does not require grad and has no graph "
                "(did an input have requires_grad=True? was it computed under no_grad()?)"
            )
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise GlassnetRuntimeError(
                    f"backward(): grad can be implicit only for one-element outputs; "
                    f"this tensor has shape {self.shape}. Pass grad= explicitly."
                )
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if tuple(grad.shape) != self.shape:
                raise InvalidArgumentError(
                    f"backward(): grad has shape {tuple(grad.shape)}, expected {self.shape}"
                )
        autograd.run_backward(self, grad, retain_graph=retain_graph)

    # ------------------------------------------------------------- arithmetic
    def _coerce(self, other) -> "Tensor":
        if isinstance(other, Tensor):
            return other
        xp = get_array_module(self.data)
        if isinstance(other, (int, float, bool, np.number)) and not isinstance(other, np.ndarray):
            dtype = self.dtype if is_float(self.dtype) or isinstance(other, (int, bool)) else get_default_dtype()
            return Tensor(xp.asarray(other, dtype=dtype))
        return tensor(other)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Build a :class:`Tensor` from Python data, an array or another tensor.

    Dtype rule: an explicit ``dtype`` wins; a floating array keeps its dtype
    (float64 stays float64); Python floats become the default dtype
    (float32); integers stay integers (labels). The data is copied.
    """
    if isinstance(data, Tensor):
        data = data.data
    xp = get_array_module(data)
    if dtype is not None:
        arr = xp.array(data, dtype=np.dtype(dtype))
    elif hasattr(data, "dtype") and not isinstance(data, np.generic):
        arr = xp.array(data)
    else:
        arr = xp.array(data)
        if arr.dtype.kind == "f":
            arr = arr.astype(get_default_dtype())
    return Tensor(arr, requires_grad=requires_grad)


def from_numpy(array) -> Tensor:
    """A tensor sharing memory with ``array`` (no copy, dtype kept)."""
    return Tensor(array)


def _shape_args(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape_args(shape), dtype=dtype or get_default_dtype()), requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape_args(shape), dtype=dtype or get_default_dtype()), requires_grad)


def randn(*shape, dtype=None, requires_grad: bool = False, rng=None) -> Tensor:
    """Standard normal samples from ``rng`` (the global glassnet generator by default)."""
    from .random import get_rng

    rng = rng or get_rng()
    data = rng.standard_normal(_shape_args(shape)).astype(dtype or get_default_dtype())
    return Tensor(data, requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False, rng=None) -> Tensor:
    """Uniform [0, 1) samples from ``rng`` (the global glassnet generator by default)."""
    from .random import get_rng

    rng = rng or get_rng()
    data = rng.random(_shape_args(shape)).astype(dtype or get_default_dtype())
    return Tensor(data, requires_grad)
