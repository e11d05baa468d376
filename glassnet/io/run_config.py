"""Reading a run folder's ``config.json`` and ``history.json``, strictly.

Both files must have the JSON types listed in :data:`CONFIG_TYPES` (else
:class:`~glassnet.errors.DataFormatError` naming the file and key) and nest at
most :data:`glassnet.limits.MAX_DEPTH` levels.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataFormatError, GlassnetError
from ..limits import check_json_depth

__all__ = ["read_config", "read_history", "RunDirError", "CONFIG_TYPES"]


class RunDirError(GlassnetError, FileNotFoundError):
    """A run folder is missing, or lacks its config or any weights file."""


#: config.json keys glassnet reads, and the JSON types each may have (``None`` = JSON null)
CONFIG_TYPES = {
    "model": (str,), "model_kwargs": (dict, type(None)), "num_classes": (int, type(None)),
    "in_channels": (int, type(None)), "dataset": (str,), "dtype": (str, type(None)),
    "image_size": (int, list, type(None)), "classes": (list, type(None)), "data_root": (str, type(None)),
    "data": (str, type(None)), "normalize": (dict, type(None)), "eval_resize": (int, type(None)),
    "pipeline": (str, type(None)), "test_split": (dict, type(None)),
}


def _read_json(path: Path, what: str):
    """Parse the JSON file ``path`` (depth-checked first); errors name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: cannot read the run's {what}: not UTF-8 text ({exc.reason})") from exc
    check_json_depth(text, path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DataFormatError(f"{path}: cannot read the run's {what}: not valid JSON ({exc})") from exc


def _type_names(types) -> str:
    names = {str: "a string", dict: "an object", int: "an integer", list: "a list", type(None): "null"}
    return " or ".join(names[t] for t in types)


def _check_config_types(config: dict, path: Path) -> None:
    for key, types in CONFIG_TYPES.items():
        if key not in config:
            continue
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise DataFormatError(f"{path}: \"{key}\" must be {_type_names(types)}, got {_short(value)}")
    for key in ("num_classes", "in_channels"):
        if config.get(key) is not None and config[key] < 1:
            raise DataFormatError(f"{path}: \"{key}\" must be >= 1, got {config[key]}")
    size = config.get("image_size")
    if isinstance(size, list) and (len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                                         for v in size)):
        raise DataFormatError(f"{path}: \"image_size\" must be an integer or a list [H, W] of two "
                              f"positive integers, got {_short(size)}")
    if config.get("classes") is not None and not all(isinstance(c, str) for c in config["classes"]):
        raise DataFormatError(f"{path}: \"classes\" must be a list of strings")
    if config.get("dtype") not in (None, "float32", "float64"):
        raise DataFormatError(f"{path}: \"dtype\" must be \"float32\" or \"float64\", got {_short(config['dtype'])}")
    norm = config.get("normalize")
    if norm is not None and not all(
            isinstance(norm.get(k), list) and norm[k] and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                             for v in norm[k]) for k in ("mean", "std")):
        raise DataFormatError(f"{path}: \"normalize\" must be {{\"mean\": [numbers], \"std\": [numbers]}}, "
                              f"got {_short(norm)}")
    if config.get("eval_resize") is not None and config["eval_resize"] < 1:
        raise DataFormatError(f"{path}: \"eval_resize\" must be >= 1, got {config['eval_resize']}")
    if config.get("pipeline") not in (None, "native", "photo"):
        raise DataFormatError(f"{path}: \"pipeline\" must be \"native\" or \"photo\", got {_short(config['pipeline'])}")
    if any(not isinstance(k, str) for k in (config.get("model_kwargs") or {})):
        raise DataFormatError(f"{path}: \"model_kwargs\" keys must be strings")


def _short(value, n: int = 60) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, list, dict, type(None))) else repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def read_config(run_dir) -> dict:
    """``config.json`` of a run folder, as a dict.

    Raises :class:`RunDirError` when the folder or its ``config.json`` is
    missing, and :class:`~glassnet.errors.DataFormatError` naming the file
    when it is not UTF-8 JSON, nests deeper than :data:`glassnet.limits.MAX_DEPTH`,
    is not an object with a string ``"model"``, or a key of
    :data:`CONFIG_TYPES` has the wrong JSON type.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise RunDirError(f"run folder {str(run)!r} does not exist"
                          + ("" if run.parent.is_dir() else f" (nor does its parent {str(run.parent)!r})"))
    path = run / "config.json"
    if not path.is_file():
        raise RunDirError(f"run folder {str(run)!r} has no config.json (is it a `glassnet train` output folder?)")
    config = _read_json(path, "config")
    if not isinstance(config, dict) or "model" not in config:
        raise DataFormatError(f"{path}: expected a JSON object with at least a \"model\" key, "
                              f"got {_short(config)}")
    _check_config_types(config, path)
    return config


def read_history(run_dir) -> list:
    """``history.json`` of a run folder: a list of per-epoch dicts (``[]`` if absent).

    Raises :class:`~glassnet.errors.DataFormatError` naming the file when it is
    not JSON, nests too deep, is not a list of objects, or an entry's
    ``"epoch"`` is not a positive integer or a metric is neither a number nor null.
    """
    path = Path(run_dir) / "history.json"
    if not path.is_file():
        return []
    rows = _read_json(path, "history")
    if not isinstance(rows, list):
        raise DataFormatError(f"{path}: expected a JSON list of per-epoch objects, got {_short(rows)}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataFormatError(f"{path}: entry {i} must be an object of per-epoch metrics, got {_short(row)}")
        epoch = row.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise DataFormatError(f"{path}: entry {i}: \"epoch\" must be a positive integer, got {_short(epoch)}")
        for key, value in row.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise DataFormatError(f"{path}: entry {i}: \"{key}\" must be a number or null, "
                                      f"got {_short(value)}")
    return rows
