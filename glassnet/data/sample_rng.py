"""Per-sample random generators: a sample's augmentation depends only on (seed, epoch, index).

Random transforms never draw from a generator shared across samples.
Whoever fetches sample ``index`` during epoch ``epoch`` (the main process or
any DataLoader worker) builds its generator with :func:`sample_rng` and
passes it down the pipeline as ``transform(x, rng=rng)``. So a sample is
augmented the same way whatever the number of workers, in whatever order
the workers run, and a resumed run replays exactly the draws it would have
made.

    rng = sample_rng(seed=0, epoch=3, index=1234)
    x = RandomResizedCrop(224)(image, rng=rng)

The contract between the pieces:

* ``Dataset.get_item(index, rng)`` returns ``(sample, target)`` with the
  dataset's transform applied using ``rng`` (``dataset[index]`` is
  ``get_item(index, sample_rng(0, 0, index))``: deterministic);
* ``Transform.__call__(x, rng=None)`` -- random transforms use ``rng`` when
  given (``Compose`` passes the same generator to each member in turn), and
  their own seeded generator otherwise;
* the :class:`~glassnet.data.DataLoader` calls ``get_item(i, sample_rng(loader.seed, epoch, i))``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sample_rng"]


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """``numpy.random.default_rng(SeedSequence([seed, epoch, index]))``: the generator of one sample's draws."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))
