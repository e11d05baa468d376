"""The batches of one training epoch, from a given batch on, served so that a resumed run sees
exactly the batches an uninterrupted one does."""
from __future__ import annotations

from ..data.datasets import fetch_batch

__all__ = ["epoch_batches"]


def epoch_batches(loader, epoch: int, start: int):
    """Batches ``start, start+1, ...`` of the loader's epoch ``epoch`` (those before ``start`` are not fetched).

    A :class:`~glassnet.data.DataLoader` serves them through ``iter_epoch(epoch, start)``:
    its worker processes (``num_workers``) build them, and they are bitwise those of
    ``num_workers=0``; the loader's epoch counter is then moved past ``epoch``. A loader with
    only ``order``/``set_epoch`` is read batch by batch with ``fetch_batch``; a plain
    iterable is fetched from its start (the skipped batches are fetched, not trained on).
    Closing this generator closes the epoch's iterator (and stops its workers' work).

    Shape:
        each batch: ``(x, y)`` with x (B, ...) and y (B,), as the loader gives them.
    """
    if callable(getattr(loader, "iter_epoch", None)) and hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch + 1)
        with loader.iter_epoch(epoch, start_batch=start) as it:
            yield from it
    elif hasattr(loader, "order") and hasattr(loader, "set_epoch") and hasattr(loader, "dataset"):
        order = loader.order(epoch)
        loader.set_epoch(epoch + 1)
        b = loader.batch_size
        for k in range(start, len(loader)):
            yield fetch_batch(loader.dataset, order[k * b:(k + 1) * b])
    else:  # a plain iterable: skipped batches are fetched, but not trained on
        it = iter(loader)
        for _ in range(start):
            next(it)
        yield from it
