"""``TensorMath``: the arithmetic, reductions and elementwise functions of
:class:`~glassnet.tensor.Tensor`, with their backward rules next to their
forwards, in the lecture's "gate" language: add distributes, multiply swaps,
max routes. Also :func:`matmul` and :func:`unbroadcast`, the adjoint of
NumPy broadcasting.

A mixin: ``Tensor`` inherits these methods. They build their results with
``self._make`` (:meth:`Tensor._make <glassnet.tensor.Tensor._make>`) and
coerce operands with ``self._coerce``, so this module never imports
:mod:`glassnet.tensor` (which imports it).
"""
from __future__ import annotations

import numpy as np

from . import threads
from .backend import get_array_module, result_dtype
from .errors import InvalidArgumentError
from .gemm import matmul as gemm_matmul
from .kernel_op import apply_kernel
from .op_args import PowArgs, ReduceArgs, SoftmaxArgs
from .op_record import OpRecord
from .ops import activations as A
from .ops import softmax as S


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Leading axes that broadcasting added are summed away; axes where the input
    had size 1 are summed with ``keepdims``.

    Shape: grad (*broadcast shape) -> ``shape``.
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


class TensorMath:
    """Arithmetic operators, reductions and elementwise functions of a tensor
    (mixed into :class:`~glassnet.tensor.Tensor`; see there for the attributes).

    Shape:
        Binary operators broadcast as NumPy does; the gradient of each input
        is summed back to that input's shape (:func:`unbroadcast`).
    """

    __slots__ = ()

    # ------------------------------------------------------------- arithmetic
    def _binary(self, other, op, forward, backward, reverse=False):
        other = self._coerce(other)
        a, b = (other, self) if reverse else (self, other)
        result_dtype(op, a.dtype, b.dtype)
        out = forward(a.data, b.data)
        ashape, bshape = a.shape, b.shape

        def backward_fn(g):
            ga, gb = backward(g, a.data, b.data, out)
            return (
                None if ga is None else unbroadcast(ga, ashape),
                None if gb is None else unbroadcast(gb, bshape),
            )

        return self._make(out, (a, b), backward_fn, op)

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
        if isinstance(exponent, TensorMath):  # a Tensor
            xp = get_array_module(self.data)
            return self._binary(
                exponent,
                "pow",
                lambda a, b: a ** b,
                lambda g, a, b, o: (g * b * a ** (b - 1), g * o * xp.log(a)),
            )
        p = exponent
        x = self.data
        return self._make(x ** p, (self,), lambda g: (g * p * x ** (p - 1),), OpRecord("pow", PowArgs(p)))

    def __rpow__(self, base):
        return self._coerce(base) ** self

    def __neg__(self):
        return self._make(-self.data, (self,), lambda g: (-g,), "neg")

    def __pos__(self):
        return self

    def __matmul__(self, other):
        other = self._coerce(other)
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(self._coerce(other), self)

    # --------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims: bool = False):
        """Sum over ``axis`` (all axes by default). Backward: broadcast dL/dsum back."""
        xp = get_array_module(self.data)
        shape = self.shape
        out = xp.asarray(self.data.sum(axis=axis, keepdims=keepdims))

        def backward_fn(g):
            if not keepdims and axis is not None:
                g = xp.expand_dims(g, axis)
            return (xp.broadcast_to(g, shape),)

        return self._make(out, (self,), backward_fn, OpRecord("sum", ReduceArgs(axis, keepdims)))

    def mean(self, axis=None, keepdims: bool = False):
        """Mean over ``axis``. Backward: dL/dmean ÷ count, broadcast back."""
        n = self.data.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        return self.sum(axis=axis, keepdims=keepdims) / n

    def max(self, axis=None, keepdims: bool = False):
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

        return self._make(out, (self,), backward_fn, OpRecord("max", ReduceArgs(axis, keepdims)))

    def min(self, axis=None, keepdims: bool = False):
        return -((-self).max(axis=axis, keepdims=keepdims))

    def argmax(self, axis=None):
        xp = get_array_module(self.data)
        return self._wrap(xp.asarray(self.data.argmax(axis=axis)))

    # --------------------------------------------------------------- elementwise
    def exp(self):
        """eˣ. Backward: dL/dx = dL/df ⊙ eˣ."""
        xp = get_array_module(self.data)
        out = xp.exp(self.data)
        return self._make(out, (self,), lambda g: (g * out,), "exp")

    def log(self):
        """ln x. Backward: dL/dx = dL/df / x."""
        xp = get_array_module(self.data)
        x = self.data
        return self._make(xp.log(x), (self,), lambda g: (g / x,), "log")

    def sqrt(self):
        """√x. Backward: dL/dx = dL/df / (2√x)."""
        xp = get_array_module(self.data)
        out = xp.sqrt(self.data)
        return self._make(out, (self,), lambda g: (g / (2 * out),), "sqrt")

    def abs(self):
        """|x|. Backward: dL/dx = dL/df ⊙ sign(x)."""
        xp = get_array_module(self.data)
        x = self.data
        return self._make(xp.abs(x), (self,), lambda g: (g * xp.sign(x),), "abs")

    def relu(self):
        """max(0, x), the kernel pair :func:`glassnet.ops.activations.relu_forward` /
        ``relu_backward`` (dL/dx = dL/dy ⊙ [x > 0])."""
        return apply_kernel("relu", A.relu_forward, A.relu_backward, [self])

    def sigmoid(self):
        """1 / (1 + e^(−x)) (dL/dx = dL/dy ⊙ y(1 − y)); kernels in :mod:`glassnet.ops.activations`."""
        return apply_kernel("sigmoid", A.sigmoid_forward, A.sigmoid_backward, [self])

    def tanh(self):
        """tanh(x) (dL/dx = dL/dy ⊙ (1 − y²)); kernels in :mod:`glassnet.ops.activations`."""
        return apply_kernel("tanh", A.tanh_forward, A.tanh_backward, [self])

    def softmax(self, dim: int = -1):
        """e^(s_j) / Σ_k e^(s_k) along ``dim`` (numerically stable); kernels in :mod:`glassnet.ops.softmax`."""
        return apply_kernel(OpRecord("softmax", SoftmaxArgs(dim)), S.softmax_forward, S.softmax_backward, [self], dim)

    def log_softmax(self, dim: int = -1):
        """log softmax along ``dim`` (numerically stable); kernels in :mod:`glassnet.ops.softmax`."""
        return apply_kernel(OpRecord("log_softmax", SoftmaxArgs(dim)), S.log_softmax_forward, S.log_softmax_backward,
                            [self], dim)


def matmul(a, b):
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
    out = gemm_matmul(A, B)
    ashape, bshape = a.shape, b.shape

    def backward_fn(g):
        if a.ndim == 1:
            g = xp.expand_dims(g, -2)
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        ga = gemm_matmul(g, xp.swapaxes(B, -1, -2))
        gb = gemm_matmul(xp.swapaxes(A, -1, -2), g)
        ga = ga.reshape(ga.shape[:-2] + (ga.shape[-1],)) if a.ndim == 1 else ga
        gb = gb.reshape(gb.shape[:-1]) if b.ndim == 1 else gb
        return unbroadcast(ga, ashape), unbroadcast(gb, bshape)

    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return a._make(out, (a, b), backward_fn, "matmul")
