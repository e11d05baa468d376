"""The map-style dataset protocol and the generic datasets: in-memory arrays,
subsets and random splits.

The protocol
------------
A dataset has ``len(ds)`` and ``ds[i] -> (x, y)``. For speed it may also
implement the **batch protocol**::

    get_batch(indices) -> (x_batch, y_batch)

taking a 1-D integer array and returning the stacked samples (``x_batch``
with a leading axis of ``len(indices)``; ``y_batch`` a NumPy array, int64
for class labels), with the transform applied to the whole batch at once.
``get_batch(idx)`` must equal stacking ``ds[i]`` for ``i in idx`` up to the
random draws of random transforms. :class:`~glassnet.data.DataLoader` uses
``get_batch`` when a dataset has it, and otherwise calls ``ds[i]`` per sample
(:func:`fetch_batch` does this choice).

:mod:`glassnet.data.datasets` re-exports everything here.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import IndexOutOfRangeError, InvalidArgumentError, InvalidTypeError, ShapeError
from .transforms import apply_transform

__all__ = ["Dataset", "ArrayDataset", "Subset", "random_split", "fetch_batch"]


def _as_indices(indices, n: int, owner: str) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.dtype == bool or idx.dtype.kind not in "iu":
        if idx.size == 0:
            return np.zeros(0, dtype=np.intp)
        raise InvalidTypeError(f"{owner}: indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.intp, copy=False).reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)][0]
        raise IndexOutOfRangeError(f"{owner}: index {bad} is out of range for a dataset of {n} samples")
    return idx


def _as_index(i, n: int, owner: str) -> int:
    try:
        i = int(np.asarray(i).item()) if isinstance(i, np.ndarray) else i.__index__()
    except (AttributeError, TypeError, ValueError):
        raise InvalidTypeError(f"{owner}: index must be an integer, got {type(i).__name__}") from None
    if not -n <= i < n:
        raise IndexOutOfRangeError(f"{owner}: index {i} is out of range for a dataset of {n} samples")
    return i + n if i < 0 else i


def _label(y):
    """A 0-d label as a Python scalar; anything else unchanged."""
    if isinstance(y, np.ndarray) and y.ndim == 0 or isinstance(y, np.generic):
        return y.item()
    return y


def _apply_target(target_transform, y: np.ndarray) -> np.ndarray:
    if target_transform is None:
        return y
    if getattr(target_transform, "supports_batch", False):
        return np.asarray(target_transform(y))
    return np.asarray([target_transform(_label(v)) for v in y])


def _stack_labels(ys) -> np.ndarray:
    y = np.asarray(ys)
    if y.dtype.kind in "iub" and y.dtype != np.int64:
        y = y.astype(np.int64)
    return y


def fetch_batch(dataset, indices):
    """``(x_batch, y_batch)`` for ``indices``: ``dataset.get_batch`` when the
    dataset implements it, else ``dataset[i]`` for each index, stacked.

    Shape:
        - indices: (B,) integers
        - Output: ``x_batch`` (B, *sample_shape); ``y_batch`` (B,) (int64 for
          integer labels)
    """
    get_batch = getattr(dataset, "get_batch", None)
    if get_batch is not None:
        return get_batch(indices)
    xs, ys = [], []
    for i in np.asarray(indices).reshape(-1).tolist():
        x, y = dataset[i]
        xs.append(x)
        ys.append(y)
    if not xs:
        raise InvalidArgumentError(f"fetch_batch: no indices given for {type(dataset).__name__}")
    return np.stack(xs), _stack_labels(ys)


class Dataset:
    """Base class of map-style datasets: ``len(ds)`` and ``ds[i] -> (x, y)``.

    Subclasses may add ``get_batch(indices)`` (see the module docstring).
    """

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement __getitem__")

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement __len__")


class ArrayDataset(Dataset):
    """A dataset over in-memory arrays: sample ``i`` is ``(x[i], y[i])``.

    ``transform`` gets ``x[i]`` (or ``x[indices]`` in :meth:`get_batch`) as
    stored; with ``transform=None`` samples are returned unconverted. Integer
    labels are kept as int64; ``ds[i]`` returns a 1-D ``y``'s entry as a
    Python scalar.

    Shape:
        - x: (N, *sample_shape), e.g. (N, 1, 28, 28); y: (N,) or (N, *target_shape)
        - ``ds[i]``: ``(x[i], y[i])``, shapes ``sample_shape`` and a scalar (before transforms)
        - ``get_batch(indices)`` with indices (B,): (B, *sample_shape) and (B,)
    """

    def __init__(self, x, y, transform=None, target_transform=None):
        x = np.asarray(x)
        y = np.asarray(y)
        if x.ndim == 0 or y.ndim == 0:
            raise ShapeError(
                f"ArrayDataset: x and y need a leading sample axis, got shapes {x.shape} and {y.shape}"
            )
        if len(x) != len(y):
            raise ShapeError(
                f"ArrayDataset: x has {len(x)} samples (shape {x.shape}) but y has {len(y)} (shape {y.shape})"
            )
        if y.dtype.kind in "iu":
            y = y.astype(np.int64, copy=False)
        self.x, self.y = x, y
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        i = _as_index(i, len(self), "ArrayDataset")
        x = apply_transform(self.transform, self.x[i], batched=False)
        y = _label(self.y[i])
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def get_batch(self, indices):
        idx = _as_indices(indices, len(self), "ArrayDataset")
        x = apply_transform(self.transform, self.x[idx], batched=True)
        return x, _apply_target(self.target_transform, self.y[idx])

    def __repr__(self) -> str:
        return (f"ArrayDataset(n={len(self)}, x={self.x.shape} {self.x.dtype}, "
                f"y={self.y.shape} {self.y.dtype}, transform={self.transform!r})")


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (PyTorch's ``torch.utils.data.Subset``).

    ``subset[i]`` is ``dataset[indices[i]]``; ``subset.dataset`` and ``subset.indices`` (an int64
    array) are the arguments. The access paths of ``dataset`` carry over, so the DataLoader reads
    a subset as it reads the dataset: ``get_batch(idx)`` is ``dataset``'s batch of
    ``indices[idx]``, and when ``dataset`` follows the per-sample RNG contract so does the
    subset -- ``get_item(i, rng)`` is ``dataset.get_item(indices[i], rng)``, where the DataLoader
    passes ``rng = sample_rng(seed, epoch, i)`` of the position ``i`` in the subset: a fresh
    augmentation every epoch, the same whatever the number of workers or the sampler.

    Shape:
        - indices: (M,) integers in ``[-len(dataset), len(dataset))``
        - samples and batches: as ``dataset`` gives them; ``len(subset) == M``
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = _as_indices(indices, len(dataset), "Subset").astype(np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[_as_index(i, len(self), "Subset")])]

    @property
    def get_item(self):
        """``get_item(i, rng)``, when ``dataset`` has one (else ``None``): ``dataset.get_item(indices[i], rng)``."""
        return self._get_item if callable(getattr(self.dataset, "get_item", None)) else None

    def _get_item(self, i, rng):
        return self.dataset.get_item(int(self.indices[_as_index(i, len(self), "Subset")]), rng)

    def get_batch(self, indices):
        idx = _as_indices(indices, len(self), "Subset")
        return fetch_batch(self.dataset, self.indices[idx])

    def __repr__(self) -> str:
        return f"Subset(n={len(self)}, of {type(self.dataset).__name__} with {len(self.dataset)})"


def random_split(dataset, lengths, seed=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s.

    ``lengths`` are sample counts summing to ``len(dataset)``, or fractions
    summing to 1 (floored, the remainder handed out one by one from the
    first subset on, as PyTorch does). ``seed`` (int or Generator) makes the
    split reproducible. Typical validation split::

        train, val = random_split(FashionMNIST(), [55000, 5000], seed=0)

    Shape:
        - Output: ``len(lengths)`` subsets whose ``indices`` are 1-D int64
          arrays of ``lengths[k]`` (or the rounded fractions) entries,
          together a permutation of ``range(len(dataset))``
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise InvalidArgumentError("random_split: lengths is empty")
    if all(isinstance(v, numbers.Integral) for v in lengths):
        counts = [int(v) for v in lengths]
        if min(counts) < 0 or sum(counts) != n:
            raise InvalidArgumentError(
                f"random_split: lengths {counts} must be >= 0 and sum to the dataset size {n} "
                f"(they sum to {sum(counts)})"
            )
    else:
        fracs = [float(v) for v in lengths]
        if min(fracs) < 0 or abs(sum(fracs) - 1.0) > 1e-6:
            raise InvalidArgumentError(
                f"random_split: fractions {fracs} must be >= 0 and sum to 1 (they sum to {sum(fracs)})"
            )
        counts = [int(np.floor(n * f)) for f in fracs]
        for k in range(n - sum(counts)):
            counts[k % len(counts)] += 1
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
