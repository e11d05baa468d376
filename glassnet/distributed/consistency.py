"""The start-of-training check: every rank must hold the same model and data.

A rank whose model differs (another depth, width or dtype; a layer added on
one rank only) would make the gradient buckets disagree — at best an MPI
error about buffer sizes, at worst silently wrong sums — and a rank whose
dataset has another length would run another number of steps and leave the
others waiting. :func:`check_consistency` gathers a small signature from
every rank (parameter and buffer names, shapes and dtypes in registration
order, the dataset length, any other named values) and compares each rank's
with rank 0's. Every rank computes the same verdict, so every rank raises
the same :class:`~glassnet.distributed.errors.RankMismatchError` (and none is
left waiting); the message names each differing rank and what differs.
"""
from __future__ import annotations

from .errors import RankMismatchError

__all__ = ["model_signature", "check_consistency"]

_MAX_LISTED = 8  # differences named per rank


def model_signature(model) -> list:
    """``[(kind, name, shape, dtype), ...]`` of ``model``'s parameters then buffers, in order."""
    sig = [("parameter", n, tuple(p.shape), str(p.dtype)) for n, p in model.named_parameters()]
    sig += [("buffer", n, tuple(b.shape), str(b.dtype)) for n, b in model.named_buffers()]
    return sig


def _model_differences(mine, ref, r) -> list:
    out = []
    ref_by_name = {(k, n): (s, d) for k, n, s, d in ref}
    my_by_name = {(k, n): (s, d) for k, n, s, d in mine}
    for (kind, name), (shape, dtype) in my_by_name.items():
        if (kind, name) not in ref_by_name:
            out.append(f"{kind} {name!r} {shape} exists on rank {r} but not on rank 0")
            continue
        rshape, rdtype = ref_by_name[(kind, name)]
        if shape != rshape:
            out.append(f"{kind} {name!r} has shape {shape} on rank {r} but {rshape} on rank 0")
        if dtype != rdtype:
            out.append(f"{kind} {name!r} has dtype {dtype} on rank {r} but {rdtype} on rank 0")
    for (kind, name), (shape, _) in ref_by_name.items():
        if (kind, name) not in my_by_name:
            out.append(f"{kind} {name!r} {shape} exists on rank 0 but not on rank {r}")
    if not out and [e[:2] for e in mine] != [e[:2] for e in ref]:
        out.append(f"the parameters/buffers are registered in a different order on rank {r} than on rank 0 "
                   "(the gradient buckets follow that order)")
    return out


def check_consistency(model=None, *, dataset=None, dataset_length=None, comm=None, **values) -> None:
    """Raise :class:`RankMismatchError` on every rank unless all ranks agree with rank 0.

    Args:
        model: compared by :func:`model_signature` (names, shapes, dtypes, order).
        dataset: compared by ``len(dataset)`` (or give ``dataset_length``).
        comm: the communicator (default: the world's).
        **values: any other picklable values that must be equal on every rank
            (e.g. ``batch_size=64``, ``epochs=90``), compared with ``==``.

    Collective: every rank must call it, with the same keyword names.
    """
    if comm is None:
        from .process_group import get_communicator

        comm = get_communicator()
    if dataset is not None and dataset_length is None:
        dataset_length = len(dataset)
    mine = {"model": None if model is None else model_signature(model),
            "dataset length": None if dataset_length is None else int(dataset_length), **values}
    if comm.size == 1:
        return
    every = comm.allgather_object(mine)
    ref, problems = every[0], []
    for r, theirs in enumerate(every[1:], start=1):
        found = []
        if theirs["model"] is not None or ref["model"] is not None:
            if theirs["model"] is None or ref["model"] is None:
                found.append(f"a model was checked on {'rank 0' if theirs['model'] is None else f'rank {r}'} only")
            else:
                found += _model_differences(theirs["model"], ref["model"], r)
        for key in sorted(set(theirs) | set(ref), key=str):
            if key == "model":
                continue
            a, b = theirs.get(key, "<not given>"), ref.get(key, "<not given>")
            if a != b:
                found.append(f"{key} is {a!r} on rank {r} but {b!r} on rank 0")
        if len(found) > _MAX_LISTED:
            found = found[:_MAX_LISTED] + [f"... and {len(found) - _MAX_LISTED} more differences"]
        problems += [f"rank {r}: {text}" for text in found]
    if problems:
        raise RankMismatchError(
            f"glassnet.distributed: the {comm.size} ranks do not hold the same model/data (checked at the "
            f"start of training against rank 0):\n  " + "\n  ".join(problems)
        )
