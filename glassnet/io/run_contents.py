"""What glassnet writes into a run folder, recognising one, and clearing it (``--overwrite``)."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import GlassnetError
from .run_config import RunDirError, read_config

__all__ = ["is_run_dir", "clear_run_dir", "RUN_FILES", "RUN_FOLDERS"]

#: files glassnet writes into a run folder (``train``, ``evaluate``); ``--overwrite`` removes these ...
RUN_FILES = ("history.json", "history.csv", "test.json", "evaluation.json", "model.npz")
#: ... and these folders (checkpoints, ``glassnet plot``'s PNGs, TensorBoard events), then config.json
RUN_FOLDERS = ("checkpoints", "plots", "tensorboard")


def is_run_dir(path) -> bool:
    """Whether ``path`` is a run folder: it holds a ``config.json`` that :func:`read_config` accepts."""
    try:
        read_config(path)
    except (GlassnetError, OSError):
        return False
    return True


def clear_run_dir(path) -> list[Path]:
    """Remove what glassnet wrote into the run folder ``path`` and return the paths removed.

    Removes ``config.json`` (last, so an interrupted clear still leaves a run
    folder), :data:`RUN_FILES` and their ``.tmp`` leftovers of atomic writes,
    and the folders :data:`RUN_FOLDERS` (a symbolic link is unlinked, never
    followed). Anything else in the folder is left alone. Raises
    :class:`RunDirError` when ``path`` is not a run folder (:func:`is_run_dir`).
    """
    run = Path(path)
    if not is_run_dir(run):
        raise RunDirError(f"{run} is not a glassnet run folder (no readable config.json); nothing was removed")
    removed = []
    for name in RUN_FOLDERS:
        entry = run / name
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry)
        else:
            continue
        removed.append(entry)
    for name in RUN_FILES + ("config.json",):
        for entry in (run / (name + ".tmp"), run / name):
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
                removed.append(entry)
    return removed
