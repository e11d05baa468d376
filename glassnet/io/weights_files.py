"""A run folder's weights file, and the check that weights hold no NaN or infinity.

:func:`find_weights` picks ``checkpoints/best.safetensors``, ``checkpoints/last.safetensors``
or ``model.npz``; :func:`check_finite_state` refuses a state dict holding NaN or infinity.
:func:`glassnet.io.run_dir.load_run` and :func:`glassnet.models.load_pretrained` both use
them; this module imports no model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataFormatError, InvalidArgumentError
from .run_config import RunDirError

__all__ = ["find_weights", "check_finite_state", "WHICH"]

WHICH = ("best", "last")


def find_weights(run_dir, which: str = "best") -> tuple[Path, str]:
    """The weights file to use and a note saying which one it is.

    ``which="best"`` tries ``checkpoints/best.safetensors``, then
    ``checkpoints/last.safetensors``, then ``model.npz``; ``which="last"``
    tries ``last`` then ``model.npz``. Raises :class:`RunDirError` naming the
    folder and every file looked for when none exists.
    """
    if which not in WHICH:
        raise InvalidArgumentError(f"which must be one of {WHICH}, got {which!r}")
    run = Path(run_dir)
    if not run.is_dir():
        raise RunDirError(f"run folder {str(run)!r} does not exist")
    candidates = [run / "checkpoints" / f"{name}.safetensors"
                  for name in (("best", "last") if which == "best" else ("last",))]
    candidates.append(run / "model.npz")
    for k, path in enumerate(candidates):
        if path.is_file():
            if k == 0:
                note = f"using {which} weights: {path}"
            else:
                missing = ", ".join(p.name for p in candidates[:k])
                note = f"no {missing} in {run}; using {path}"
            return path, note
    looked = ", ".join(str(p.relative_to(run)) for p in candidates)
    raise RunDirError(f"run folder {str(run)!r} has no weights: looked for {looked}")


def check_finite_state(state, path) -> None:
    """Raise :class:`~glassnet.errors.DataFormatError` naming ``path`` and the first tensor
    of ``state`` (name -> array) that holds NaN or infinity."""
    for name, value in state.items():
        a = np.asarray(value)
        if a.dtype.kind not in "fc" or a.size == 0:
            continue
        finite = np.isfinite(a)
        if not finite.all():
            bad = a.size - int(finite.sum())
            raise DataFormatError(
                f"{path}: tensor {name!r} {tuple(a.shape)} holds {bad} non-finite value(s) (NaN or inf) of "
                f"{a.size}; the run diverged or the file is corrupt (load_run(..., allow_nonfinite=True) "
                "loads it anyway)")
