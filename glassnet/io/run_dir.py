"""Use a trained run folder: rebuild its model, load its weights, preprocess like training did.

A run folder (written by ``glassnet train``) looks like::

    runs/NAME/config.json                 model, model_kwargs, num_classes, in_channels, dataset, [image_size, dtype],
                                          and since --data: data, normalize, eval_resize, pipeline, classes
    runs/NAME/history.json                per-epoch metrics
    runs/NAME/checkpoints/best.safetensors  model state under "model.", optimizer state under "optimizer."
    runs/NAME/checkpoints/last.safetensors
    runs/NAME/model.npz                   older runs: the plain state dict

    from glassnet.io import load_run, preprocess_transform, class_names
    model, config = load_run("runs/mlp")          # best, else last, else model.npz
    x = preprocess_transform(config)(uint8_images)  # (N, 1, 28, 28) uint8 -> normalised floats

Reading is strict: ``config.json`` and ``history.json`` must have the JSON
types listed in :data:`CONFIG_TYPES` (else :class:`~glassnet.errors.DataFormatError`
naming the file and key), nest at most :data:`glassnet.limits.MAX_DEPTH`
levels, and weights holding NaN or infinity are refused unless
``load_run(..., allow_nonfinite=True)``. :func:`clear_run_dir` (``glassnet
train --overwrite``) removes only what glassnet writes into a run folder
(:data:`RUN_FILES`, :data:`RUN_FOLDERS`).

:func:`preprocess_transform` is the one place the evaluation pipeline is
rebuilt from a run's config (``Resize(eval_resize)``, ``CenterCrop(image_size)``,
``ToFloat``, ``Normalize(normalize)`` -- :mod:`glassnet.data.pipelines`; for
older runs ``ToFloat`` then ``Normalize`` with the dataset's mean/std), and
:func:`load_test_set` the one place its test split is (Fashion-MNIST/MNIST,
CIFAR-10/100, or a folder split as :mod:`glassnet.data.data_spec` splits it);
``glassnet train``, ``evaluate``, ``plot`` and ``predict`` all use them.

The pieces live in :mod:`glassnet.io.run_config` (reading ``config.json`` /
``history.json``), :mod:`glassnet.io.run_contents` (recognising and clearing a
run folder), :mod:`glassnet.io.run_data` (preprocessing, class names, the
test split) and :mod:`glassnet.io.weights_files` (finding the weights file,
refusing non-finite weights); this module loads the weights and re-exports them all.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import StateDictError
from ..models.registry import builder_accepts
from .pth import StateDictFileError
from .run_config import CONFIG_TYPES, RunDirError, read_config, read_history
from .run_contents import RUN_FILES, RUN_FOLDERS, clear_run_dir, is_run_dir
from .run_data import (DATASET_CLASSES, check_data_root, class_names, dataset_stats, image_size, load_test_set,
                       preprocess_transform)
from .state_dict_file import load_state_dict_file
from .weights_files import check_finite_state, find_weights

__all__ = ["load_run", "find_weights", "read_config", "read_history", "preprocess_transform",
           "dataset_stats", "class_names", "load_test_set", "image_size", "RunDirError",
           "is_run_dir", "clear_run_dir", "check_data_root", "check_finite_state", "RUN_FILES", "RUN_FOLDERS"]
__all__ += ["CONFIG_TYPES", "DATASET_CLASSES"]  # documented here, defined in run_config / run_data

def _model_state(raw: "OrderedDict[str, np.ndarray]", path: Path) -> "OrderedDict[str, np.ndarray]":
    """The model's tensors of a checkpoint: keys under ``model.`` with the prefix removed
    (optimizer state is dropped); a file without any ``model.`` key is a plain state dict."""
    if any(k.startswith("model.") for k in raw):
        return OrderedDict((k[len("model."):], v) for k, v in raw.items() if k.startswith("model."))
    if raw and all(k.startswith("optimizer.") for k in raw):
        raise StateDictFileError(f"{path}: holds only optimizer state, no model.* tensors")
    return OrderedDict(raw)


def _build_model(config: dict, config_path: Path):
    from ..models import get_model

    kwargs = dict(config.get("model_kwargs") or {})
    kwargs["num_classes"] = int(config.get("num_classes") or len(class_names(config)))
    kwargs["in_channels"] = int(config.get("in_channels") or 1)
    if config.get("image_size") is not None and "image_size" not in kwargs \
            and builder_accepts(config["model"], "image_size"):
        size = config["image_size"]
        kwargs["image_size"] = tuple(size) if isinstance(size, list) else size
    try:
        model = get_model(config["model"], **kwargs)
    except KeyError as exc:
        raise RunDirError(f"{config_path}: {exc.args[0]}") from exc
    except (TypeError, ValueError) as exc:
        raise RunDirError(f"{config_path}: cannot build model {config['model']!r} with {kwargs}: {exc}") from exc
    if config.get("dtype"):
        model.to(dtype=np.dtype(config["dtype"]))
    return model


def load_run(run_dir, which: str = "best", log=print, *, allow_nonfinite: bool = False):
    """Rebuild a run's model from ``config.json`` and load its weights; return ``(model, config)``.

    The model is ``get_model(config["model"], num_classes=..., in_channels=...,
    **config["model_kwargs"])`` (plus ``image_size`` when the config has one
    and the builder takes it), cast to ``config["dtype"]`` if given, with the
    weights loaded strictly and put in eval mode. Weights come from
    :func:`find_weights`; ``log`` (``None`` = silent) is called with a line
    saying which file was used. The returned config gets ``"weights_file"``
    (the path used) and ``"run_dir"``.

    Raises :class:`RunDirError` for a missing folder, config or weights file;
    :class:`~glassnet.errors.DataFormatError` for a malformed ``config.json``
    (see :func:`read_config`) and, unless ``allow_nonfinite=True``, for
    weights holding NaN or infinity (naming the file and the first such
    tensor); and :class:`~glassnet.errors.StateDictError` naming the weights
    file when its tensors do not fit the model (missing/unexpected keys, wrong shapes).
    """
    run = Path(run_dir)
    config = read_config(run)
    path, note = find_weights(run, which)
    model = _build_model(config, run / "config.json")
    state = _model_state(load_state_dict_file(path), path)
    if not allow_nonfinite:
        check_finite_state(state, path)
    try:
        model.load_state_dict(state, strict=True)
    except StateDictError as exc:
        raise StateDictError(f"{path}: the weights do not fit model {config['model']!r} built from "
                             f"{run / 'config.json'}:\n{exc}") from exc
    model.eval()
    if log is not None:
        log(note)
    config = dict(config, weights_file=os.fspath(path), run_dir=os.fspath(run))
    return model, config
