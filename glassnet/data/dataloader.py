"""DataLoader: batches of NumPy arrays from a dataset, reproducibly shuffled.

Epochs and seeds
----------------
The loader counts epochs: each ``iter(loader)`` (each ``for`` loop) uses the
current epoch ``e`` and then advances the counter. With ``shuffle=True``,
epoch ``e``'s order is ``default_rng(SeedSequence([seed, e])).permutation(N)``:
a fresh permutation every epoch that depends only on ``(seed, e)``. A resumed
run calls ``loader.set_epoch(e)`` and gets exactly the order epoch ``e`` had.
Without a ``seed`` one is drawn from OS entropy at construction (readable as
``loader.seed``, so even such a run can be replayed).
"""
from __future__ import annotations

import numbers

import numpy as np

from .datasets import fetch_batch
from ..errors import InvalidArgumentError

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``dataset`` in batches of ``(x, y)`` NumPy arrays.

    For the MNIST-like datasets with the default transform, ``x`` is float32
    (B, 1, 28, 28) and ``y`` int64 (B,). The last batch is smaller when
    ``len(dataset)`` is not a multiple of ``batch_size``, unless
    ``drop_last=True`` drops it. ``len(loader)`` is the number of batches.

    When the dataset implements ``get_batch(indices)`` (all glassnet
    datasets do) each batch is one vectorised call; otherwise samples are
    fetched one by one with ``dataset[i]`` and stacked
    (``loader.uses_get_batch`` tells which).

    Shape:
        - x: (B, *sample_shape), e.g. (B, 1, 28, 28) float32 in [0, 1]
        - y: (B,) int64
        - B is ``batch_size``, except the last batch of an epoch, which has
          ``len(dataset) % batch_size`` samples when that is not 0 and
          ``drop_last=False``
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise InvalidArgumentError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        elif isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise InvalidArgumentError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will use."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (its shuffle order included)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise InvalidArgumentError(f"DataLoader.set_epoch: epoch must be a non-negative int, got {epoch!r}")
        self._epoch = int(epoch)

    @property
    def uses_get_batch(self) -> bool:
        """True when batches come from one ``dataset.get_batch`` call each."""
        return callable(getattr(self.dataset, "get_batch", None))

    def order(self, epoch: int | None = None) -> np.ndarray:
        """The sample indices of ``epoch`` (default: the next one), in visiting order."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        e = self._epoch if epoch is None else int(epoch)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, e]))
        return rng.permutation(n)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        # Claim the epoch now (not at the first next()), so that
        # ``it = iter(loader)`` twice gives two different epochs.
        order = self.order(self._epoch)
        self._epoch += 1
        return self._batches(order)

    def _batches(self, order):
        b = self.batch_size
        for k in range(len(self)):
            yield fetch_batch(self.dataset, order[k * b:(k + 1) * b])

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} n={len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, epoch={self._epoch})")
