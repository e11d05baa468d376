"""Seeded batch augmentation: :class:`BatchAugment`, whose draws are a pure function of ``(seed, epoch, step)``.

    augment = BatchAugment(T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip()]), seed=0)
    x = augment(x, epoch, step)

So a resumed run augments exactly as an uninterrupted one; photos resized to the model are
augmented per sample instead (:mod:`glassnet.data.pipelines`).
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = ["BatchAugment"]


def _set_generator(transform, rng) -> int:
    """Point every random transform inside ``transform`` at ``rng``; return how many."""
    count = 0
    members = getattr(transform, "transforms", None)
    if isinstance(members, (list, tuple)):
        for t in members:
            count += _set_generator(t, rng)
    if isinstance(getattr(transform, "rng", None), np.random.Generator):
        transform.rng = rng
        count += 1
    return count


class BatchAugment:
    """On-the-fly augmentation of training batches, reseeded for every batch.

    ``augment(x, epoch, step)`` applies ``transform`` (e.g. a ``Compose`` of
    ``RandomCrop``/``RandomHorizontalFlip``/``RandomTranslate``) to the batch
    ``x`` with all its random transforms drawing from one fresh generator
    ``default_rng(SeedSequence([seed, epoch, step]))``. The draws are
    therefore a pure function of ``(seed, epoch, step)``: nothing has to be
    saved in a checkpoint, and a run resumed at any batch (or one that skips
    batches) augments exactly as an uninterrupted run. This is why training
    augmentation goes here rather than into the dataset's ``transform``
    (whose generators move forward with every call and are not replayed by
    ``DataLoader.set_epoch``).

    Every random transform inside must take its randomness from an ``rng``
    attribute (all of :mod:`glassnet.data.transforms` do).
    """

    def __init__(self, transform, seed: int = 0):
        if not callable(transform):
            raise InvalidTypeError(f"BatchAugment: {transform!r} is not callable")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidArgumentError(f"BatchAugment: seed must be a non-negative int, got {seed!r}")
        self.transform = transform
        self.seed = int(seed)

    def generator(self, epoch: int, step: int) -> np.random.Generator:
        """The fresh generator of batch ``step`` of epoch ``epoch``."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch), int(step)]))

    def __call__(self, x, epoch: int, step: int):
        """``transform(x)`` with every random transform drawing from :meth:`generator`.

        Shape:
            x: a batch (N, C, H, W) -> the transform's output batch.
        """
        _set_generator(self.transform, self.generator(epoch, step))
        return self.transform(x)

    def state(self) -> dict:
        """What a checkpoint records of the augmentation (its seed and scheme; nothing to restore)."""
        return {"seed": self.seed, "scheme": "default_rng(SeedSequence([seed, epoch, step]))",
                "transform": repr(self.transform)}

    def __repr__(self) -> str:
        return f"BatchAugment(seed={self.seed}, transform={self.transform!r})"
