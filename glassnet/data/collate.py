"""Building one batch: the same code in the main process and in every DataLoader worker.

A dataset with ``get_item(index, rng)`` is read sample by sample, sample
``i`` of epoch ``e`` with the generator ``sample_rng(seed, e, i)``
(:mod:`glassnet.data.sample_rng`), and the samples are collated by
:func:`collate_items`. Any other dataset goes through
:func:`~glassnet.data.datasets.fetch_batch` (``get_batch(indices)``, or
``dataset[i]`` stacked). Because a batch depends only on
``(dataset, indices, seed, epoch)``, it is bitwise the same whichever
process builds it.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError, InvalidTypeError
from .datasets import fetch_batch
from .sample_rng import sample_rng

__all__ = ["has_get_item", "iter_items", "collate_items", "stack_labels", "load_batch"]


def has_get_item(dataset) -> bool:
    """True when ``dataset`` follows the per-sample RNG contract (``get_item(index, rng)``)."""
    return callable(getattr(dataset, "get_item", None))


def iter_items(dataset, indices, seed: int, epoch: int):
    """Yield ``(index, (sample, target))`` for each index, from
    ``dataset.get_item(index, sample_rng(seed, epoch, index))``."""
    get_item = dataset.get_item
    for i in np.asarray(indices).reshape(-1).tolist():
        item = get_item(i, sample_rng(seed, epoch, i))
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidTypeError(f"{type(dataset).__name__}.get_item({i}, rng) must return (sample, target), "
                                   f"got {type(item).__name__}")
        yield i, item


def stack_labels(ys) -> np.ndarray:
    """Targets as one array; integer and bool labels become int64.

    Shape:
        - ys: B labels (scalars or equal-shape arrays)
        - Output: (B,) or (B, *target_shape)
    """
    y = np.asarray(ys)
    if y.dtype.kind in "iub" and y.dtype != np.int64:
        y = y.astype(np.int64)
    return y


def collate_items(items, owner: str = "DataLoader") -> tuple[np.ndarray, np.ndarray]:
    """``(np.stack(samples), stack_labels(targets))`` of a list of ``(sample, target)``.

    Shape:
        - items: B pairs, each sample of one shape ``S`` (e.g. (3, 224, 224))
        - Output: x (B, *S); y (B,) int64 for integer labels
    """
    if not items:
        raise InvalidArgumentError(f"{owner}: no samples to collate")
    xs = [x for x, _ in items]
    shapes = {np.shape(x) for x in xs}
    if len(shapes) > 1:
        raise InvalidArgumentError(f"{owner}: the samples of one batch must have one shape to be stacked, "
                                   f"got {sorted(shapes)}")
    return np.stack(xs), stack_labels([y for _, y in items])


def load_batch(dataset, indices, seed: int, epoch: int):
    """The batch of ``indices`` in epoch ``epoch``, as the DataLoader yields it.

    Shape:
        - indices: (B,) integers
        - Output: ``(x, y)``; x (B, *sample_shape), y (B,) (int64 for class labels)
    """
    if has_get_item(dataset):
        return collate_items([item for _, item in iter_items(dataset, indices, seed, epoch)],
                             type(dataset).__name__)
    return fetch_batch(dataset, indices)
