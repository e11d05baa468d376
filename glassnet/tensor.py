"""``Tensor``: an array plus the bookkeeping reverse-mode autodiff needs.

A tensor wraps a NumPy (or CuPy) array in ``.data``. When it takes part in an
op while gradients are enabled and some input has ``requires_grad=True``, the
result remembers its parents and a backward closure; ``loss.backward()`` then
fills ``.grad`` (a plain array) of every leaf that requires it. See
:mod:`glassnet.autograd` for the rules of the walk (accumulation, reuse).

The backward rule of each elementary op sits next to its forward, in the
lecture's "gate" language: add distributes, multiply swaps, max routes.
"""
# Over 500 lines: this session touched it only for the error family (and, in train.py/tensor.py, the
# checkpoint resume checks and gradient hooks); splitting it by job is issue 13's restructuring (ops layer,
# train/ package), planned with farm-studio, not done piecemeal here.

from __future__ import annotations

import numpy as np

import dataclasses

from . import autograd, threads
from .backend import (
    device_of,
    get_array_module,
    get_default_dtype,
    is_float,
    result_dtype,
    to_device,
    to_numpy,
)
from .errors import GlassnetRuntimeError, InvalidArgumentError, InvalidTypeError
from .op_args import (CastArgs, IndexArgs, PermuteArgs, PowArgs, ReduceArgs, ReshapeArgs, SoftmaxArgs,
                      ToArgs)
from .op_record import OpRecord, as_record
from .ops import activations as A
from .ops import softmax as S


def _unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Leading axes that broadcasting added are summed away; axes where the input
    had size 1 are summed with ``keepdims``.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _is_basic_index(index) -> bool:
    """True for indices made only of ints, slices, None and Ellipsis (no duplicates possible)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items
    )


def _scatter_add(target, index, values):
    """target[index] += values, summing repeated indices (NumPy or CuPy)."""
    xp = get_array_module(target)
    if xp is np:
        np.add.at(target, index, values)
    else:  # pragma: no cover - GPU only
        import cupyx

        cupyx.scatter_add(target, index, values)


class _HookHandle:
    """Returned by :meth:`Tensor.register_post_accumulate_grad_hook`; ``remove()`` unregisters."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


class Tensor:
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

    @property
    def T(self) -> "Tensor":
        return self.transpose()

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
            g = _unbroadcast(g, self.data.shape)
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

    def _binary(self, other, op, forward, backward, reverse=False):
        other = self._coerce(other)
        a, b = (other, self) if reverse else (self, other)
        result_dtype(op, a.dtype, b.dtype)
        out = forward(a.data, b.data)
        ashape, bshape = a.shape, b.shape

        def backward_fn(g):
            ga, gb = backward(g, a.data, b.data, out)
            return (
                None if ga is None else _unbroadcast(ga, ashape),
                None if gb is None else _unbroadcast(gb, bshape),
            )

        return Tensor._make(out, (a, b), backward_fn, op)

    def __add__(self, other):
        # add gate: distributes the gradient unchanged to both inputs
        return self._binary(other, "add", threads.add, lambda g, a, b, o: (g, g))

    def __radd__(self, other):
        return self._binary(other, "add", threads.add, lambda g, a, b, o: (g, g), reverse=True)

    def __sub__(self, other):
        return self._binary(other, "sub", lambda a, b: a - b, lambda g, a, b, o: (g, -g))

    def __rsub__(self, other):
        return self._binary(other, "sub", lambda a, b: a - b, lambda g, a, b, o: (g, -g), reverse=True)

    def __mul__(self, other):
        # multiply gate: each input's gradient is the upstream times the *other* input
        return self._binary(other, "mul", lambda a, b: a * b, lambda g, a, b, o: (g * b, g * a))

    def __rmul__(self, other):
        return self._binary(other, "mul", lambda a, b: a * b, lambda g, a, b, o: (g * b, g * a), reverse=True)

    def __truediv__(self, other):
        # d(a/b)/da = 1/b ; d(a/b)/db = −a/b²
        return self._binary(
            other, "div", lambda a, b: a / b, lambda g, a, b, o: (g / b, -g * o / b)
        )

    def __rtruediv__(self, other):
        return self._binary(
            other, "div", lambda a, b: a / b, lambda g, a, b, o: (g / b, -g * o / b), reverse=True
        )

    def __pow__(self, exponent):
        """x ** p. For a constant p: d/dx = p·x^(p−1). For a tensor exponent
        also d/dp = x^p · ln x (defined for x > 0)."""
        if isinstance(exponent, Tensor):
            xp = get_array_module(self.data)
            return self._binary(
                exponent,
                "pow",
                lambda a, b: a ** b,
                lambda g, a, b, o: (g * b * a ** (b - 1), g * o * xp.log(a)),
            )
        p = exponent
        x = self.data
        return Tensor._make(x ** p, (self,), lambda g: (g * p * x ** (p - 1),), OpRecord("pow", PowArgs(p)))

    def __rpow__(self, base):
        return self._coerce(base) ** self

    def __neg__(self):
        return Tensor._make(-self.data, (self,), lambda g: (-g,), "neg")

    def __pos__(self):
        return self

    def __matmul__(self, other):
        other = self._coerce(other)
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(self._coerce(other), self)

    # --------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Sum over ``axis`` (all axes by default). Backward: broadcast dL/dsum back."""
        xp = get_array_module(self.data)
        shape = self.shape
        out = xp.asarray(self.data.sum(axis=axis, keepdims=keepdims))

        def backward_fn(g):
            if not keepdims and axis is not None:
                g = xp.expand_dims(g, axis)
            return (xp.broadcast_to(g, shape),)

        return Tensor._make(out, (self,), backward_fn, OpRecord("sum", ReduceArgs(axis, keepdims)))

    def mean(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Mean over ``axis``. Backward: dL/dmean ÷ count, broadcast back."""
        n = self.data.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        return self.sum(axis=axis, keepdims=keepdims) / n

    def max(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Maximum over ``axis``. Backward ("max gate routes"): the gradient goes
        to the maximal element; ties share it equally (PyTorch's ``amax`` rule)."""
        xp = get_array_module(self.data)
        x = self.data
        out = xp.asarray(x.max(axis=axis, keepdims=keepdims))

        def backward_fn(g):
            o = out
            if not keepdims and axis is not None:
                g = xp.expand_dims(g, axis)
                o = xp.expand_dims(o, axis)
            mask = (x == o).astype(x.dtype)
            mask /= mask.sum(axis=axis, keepdims=True)
            return (mask * g,)

        return Tensor._make(out, (self,), backward_fn, OpRecord("max", ReduceArgs(axis, keepdims)))

    def min(self, axis=None, keepdims: bool = False) -> "Tensor":
        return -((-self).max(axis=axis, keepdims=keepdims))

    def argmax(self, axis=None) -> "Tensor":
        xp = get_array_module(self.data)
        return Tensor(xp.asarray(self.data.argmax(axis=axis)))

    # --------------------------------------------------------------- elementwise
    def exp(self) -> "Tensor":
        """eˣ. Backward: dL/dx = dL/df ⊙ eˣ."""
        xp = get_array_module(self.data)
        out = xp.exp(self.data)
        return Tensor._make(out, (self,), lambda g: (g * out,), "exp")

    def log(self) -> "Tensor":
        """ln x. Backward: dL/dx = dL/df / x."""
        xp = get_array_module(self.data)
        x = self.data
        return Tensor._make(xp.log(x), (self,), lambda g: (g / x,), "log")

    def sqrt(self) -> "Tensor":
        """√x. Backward: dL/dx = dL/df / (2√x)."""
        xp = get_array_module(self.data)
        out = xp.sqrt(self.data)
        return Tensor._make(out, (self,), lambda g: (g / (2 * out),), "sqrt")

    def abs(self) -> "Tensor":
        """|x|. Backward: dL/dx = dL/df ⊙ sign(x)."""
        xp = get_array_module(self.data)
        x = self.data
        return Tensor._make(xp.abs(x), (self,), lambda g: (g * xp.sign(x),), "abs")

    def relu(self) -> "Tensor":
        """max(0, x), the kernel pair :func:`glassnet.ops.activations.relu_forward` /
        ``relu_backward`` (dL/dx = dL/dy ⊙ [x > 0])."""
        return apply_kernel("relu", A.relu_forward, A.relu_backward, [self])

    def sigmoid(self) -> "Tensor":
        """1 / (1 + e^(−x)) (dL/dx = dL/dy ⊙ y(1 − y)); kernels in :mod:`glassnet.ops.activations`."""
        return apply_kernel("sigmoid", A.sigmoid_forward, A.sigmoid_backward, [self])

    def tanh(self) -> "Tensor":
        """tanh(x) (dL/dx = dL/dy ⊙ (1 − y²)); kernels in :mod:`glassnet.ops.activations`."""
        return apply_kernel("tanh", A.tanh_forward, A.tanh_backward, [self])

    def softmax(self, dim: int = -1) -> "Tensor":
        """e^(s_j) / Σ_k e^(s_k) along ``dim`` (numerically stable); kernels in :mod:`glassnet.ops.softmax`."""
        return apply_kernel(OpRecord("softmax", SoftmaxArgs(dim)), S.softmax_forward, S.softmax_backward, [self], dim)

    def log_softmax(self, dim: int = -1) -> "Tensor":
        """log softmax along ``dim`` (numerically stable); kernels in :mod:`glassnet.ops.softmax`."""
        return apply_kernel(OpRecord("log_softmax", SoftmaxArgs(dim)), S.log_softmax_forward, S.log_softmax_backward, [self], dim)

    # ------------------------------------------------------------------ shapes
    def reshape(self, *shape) -> "Tensor":
        """Same data, new shape. Backward: reshape the gradient back."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        src = self.shape
        return Tensor._make(self.data.reshape(shape), (self,), lambda g: (g.reshape(src),),
                            OpRecord("reshape", ReshapeArgs(tuple(shape))))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Merge dims ``start_dim..end_dim`` into one (PyTorch's semantics)."""
        shape = self.shape
        if not shape:
            return self.reshape(1)
        start = start_dim % len(shape)
        end = end_dim % len(shape)
        merged = int(np.prod(shape[start : end + 1]))
        return self.reshape(shape[:start] + (merged,) + shape[end + 1 :])

    def transpose(self, dim0=None, dim1=None) -> "Tensor":
        """Swap two dims (PyTorch's ``transpose(dim0, dim1)``); with no
        arguments reverse all dims (like ``.T``). Backward: swap them back."""
        if dim0 is None and dim1 is None:
            return self.permute(tuple(reversed(range(self.ndim))))
        if dim0 is None or dim1 is None:
            raise InvalidTypeError("transpose: give both dims (dim0, dim1), or none to reverse all")
        perm = list(range(self.ndim))
        perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
        return self.permute(perm)

    def permute(self, *dims) -> "Tensor":
        """Reorder dims by the permutation ``dims``. Backward: apply the inverse
        permutation to the gradient."""
        xp = get_array_module(self.data)
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise InvalidArgumentError(f"permute: {dims} is not a permutation of the {self.ndim} dims of {self.shape}")
        dims = tuple(d % self.ndim for d in dims)
        inverse = tuple(int(i) for i in np.argsort(dims))
        return Tensor._make(
            xp.transpose(self.data, dims), (self,), lambda g: (xp.transpose(g, inverse),),
            OpRecord("permute", PermuteArgs(dims))
        )

    def __getitem__(self, index) -> "Tensor":
        """Indexing and slicing (basic and advanced). Backward: scatter the
        gradient into zeros at the same positions, summing repeated indices."""
        xp = get_array_module(self.data)
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        x = self.data
        basic = _is_basic_index(index)

        def backward_fn(g):
            full = xp.zeros_like(x)
            if basic:
                full[index] = g
            else:
                _scatter_add(full, index, g)
            return (full,)

        return Tensor._make(xp.asarray(x[index]), (self,), backward_fn, OpRecord("index", IndexArgs(index)))


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules (1-D promotion, batch broadcasting).

    Backward: dL/dA = dL/dC · Bᵀ,  dL/dB = Aᵀ · dL/dC  (batch dims summed back).

    Shape: (…, n, m) @ (…, m, p) -> (…, n, p); 1-D operands as in NumPy.
    """
    xp = get_array_module(a.data)
    result_dtype("matmul", a.dtype, b.dtype)
    if a.ndim == 0 or b.ndim == 0:
        raise InvalidArgumentError("matmul: operands must have at least one dimension; use * for scalars")
    if a.shape[-1] != (b.shape[0] if b.ndim == 1 else b.shape[-2]):
        raise InvalidArgumentError(
            f"matmul: inner dimensions differ: {a.shape} @ {b.shape} "
            f"(last dim of the left must equal the {'only' if b.ndim == 1 else 'second-to-last'} dim of the right)"
        )
    A = a.data[None, :] if a.ndim == 1 else a.data
    B = b.data[:, None] if b.ndim == 1 else b.data
    out = A @ B
    ashape, bshape = a.shape, b.shape

    def backward_fn(g):
        if a.ndim == 1:
            g = xp.expand_dims(g, -2)
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        ga = g @ xp.swapaxes(B, -1, -2)
        gb = xp.swapaxes(A, -1, -2) @ g
        ga = ga.reshape(ga.shape[:-2] + (ga.shape[-1],)) if a.ndim == 1 else ga
        gb = gb.reshape(gb.shape[:-1]) if b.ndim == 1 else gb
        return _unbroadcast(ga, ashape), _unbroadcast(gb, bshape)

    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return Tensor._make(out, (a, b), backward_fn, "matmul")


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


def apply_kernel(op, forward, backward, inputs, *args, **kwargs) -> Tensor:
    """Run a kernel pair as one differentiable op.

    ``op`` is the op's :class:`~glassnet.op_record.OpRecord` (or a bare name);
    when the kernel's cache has an ``algorithm`` field, the record that lands
    on the tape names it.

    ``inputs`` are Tensors (or ``None`` for absent optional inputs such as a
    bias); their arrays go to ``forward(*arrays, *args, **kwargs) -> (out,
    cache)``. On backward, ``backward(dout, cache)`` must return one gradient
    per input (a single array when there is one input).
    """
    present = [t for t in inputs if t is not None]
    arrays = [None if t is None else t.data for t in inputs]
    out, cache = forward(*arrays, *args, **kwargs)
    op = as_record(op)
    algorithm = getattr(cache, "algorithm", None)
    if isinstance(algorithm, str) and algorithm != op.algorithm:
        op = dataclasses.replace(op, algorithm=algorithm)
    if not (autograd.is_grad_enabled() and any(t.requires_grad for t in present)):
        result = Tensor(out)
    else:
        positions = [i for i, t in enumerate(inputs) if t is not None]

        def backward_fn(g):
            grads = backward(g, cache)
            if not isinstance(grads, tuple):
                grads = (grads,)
            return tuple(grads[i] for i in positions)

        # Kernel backwards compute new arrays for their inputs' gradients, so
        # run_backward may hand them to leaves without a defensive copy
        # (it still checks they share no memory with dout or each other).
        backward_fn.fresh_grads = True
        result = Tensor._make(out, present, backward_fn, op)
    if autograd.tracer is not None:
        autograd.tracer(result, present, op, None, args, kwargs)
    return result
