"""``TensorShape``: reshaping, permuting and indexing a
:class:`~glassnet.tensor.Tensor`. Each op's backward puts the gradient back
into the input's layout (reshape back, inverse permutation, scatter).

A mixin: ``Tensor`` inherits these methods, which build their results with
``self._make``, so this module never imports :mod:`glassnet.tensor`.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .errors import InvalidArgumentError, InvalidTypeError
from .op_args import IndexArgs, PermuteArgs, ReshapeArgs
from .op_record import OpRecord


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


class TensorShape:
    """Shape ops of a tensor (mixed into :class:`~glassnet.tensor.Tensor`).

    Shape:
        As each method says; the data is never reordered in memory except by
        ``permute``'s result (a NumPy transpose view).
    """

    __slots__ = ()

    @property
    def T(self):
        return self.transpose()


    # ------------------------------------------------------------------ shapes
    def reshape(self, *shape):
        """Same data, new shape. Backward: reshape the gradient back."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        src = self.shape
        return self._make(self.data.reshape(shape), (self,), lambda g: (g.reshape(src),),
                            OpRecord("reshape", ReshapeArgs(tuple(shape))))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        """Merge dims ``start_dim..end_dim`` into one (PyTorch's semantics)."""
        shape = self.shape
        if not shape:
            return self.reshape(1)
        start = start_dim % len(shape)
        end = end_dim % len(shape)
        merged = int(np.prod(shape[start : end + 1]))
        return self.reshape(shape[:start] + (merged,) + shape[end + 1 :])

    def transpose(self, dim0=None, dim1=None):
        """Swap two dims (PyTorch's ``transpose(dim0, dim1)``); with no
        arguments reverse all dims (like ``.T``). Backward: swap them back."""
        if dim0 is None and dim1 is None:
            return self.permute(tuple(reversed(range(self.ndim))))
        if dim0 is None or dim1 is None:
            raise InvalidTypeError("transpose: give both dims (dim0, dim1), or none to reverse all")
        perm = list(range(self.ndim))
        perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
        return self.permute(perm)

    def permute(self, *dims):
        """Reorder dims by the permutation ``dims``. Backward: apply the inverse
        permutation to the gradient."""
        xp = get_array_module(self.data)
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise InvalidArgumentError(f"permute: {dims} is not a permutation of the {self.ndim} dims of {self.shape}")
        dims = tuple(d % self.ndim for d in dims)
        inverse = tuple(int(i) for i in np.argsort(dims))
        return self._make(
            xp.transpose(self.data, dims), (self,), lambda g: (xp.transpose(g, inverse),),
            OpRecord("permute", PermuteArgs(dims))
        )

    def __getitem__(self, index):
        """Indexing and slicing (basic and advanced). Backward: scatter the
        gradient into zeros at the same positions, summing repeated indices."""
        xp = get_array_module(self.data)
        if isinstance(index, TensorShape):  # a Tensor
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, TensorShape) else i for i in index)
        x = self.data
        basic = _is_basic_index(index)

        def backward_fn(g):
            full = xp.zeros_like(x)
            if basic:
                full[index] = g
            else:
                _scatter_add(full, index, g)
            return (full,)

        return self._make(xp.asarray(x[index]), (self,), backward_fn, OpRecord("index", IndexArgs(index)))
