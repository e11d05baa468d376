"""Use a trained run folder: rebuild its model, load its weights, preprocess like training did.

A run folder (written by ``glassnet train``) looks like::

    runs/NAME/config.json                 model, model_kwargs, num_classes, in_channels, dataset, [image_size, dtype]
    runs/NAME/history.json                per-epoch metrics
    runs/NAME/checkpoints/best.safetensors  model state under "model.", optimizer state under "optimizer."
    runs/NAME/checkpoints/last.safetensors
    runs/NAME/model.npz                   older runs: the plain state dict

    from glassnet.io import load_run, preprocess_transform, class_names
    model, config = load_run("runs/mlp")          # best, else last, else model.npz
    x = preprocess_transform(config)(uint8_images)  # (N, 1, 28, 28) uint8 -> normalised floats

:func:`preprocess_transform` is the one place the training/evaluation
normalisation is defined (``ToFloat`` then ``Normalize`` with the dataset's
mean/std); ``glassnet train``, ``evaluate``, ``plot`` and ``predict`` all use it.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import GlassnetError, InvalidArgumentError, StateDictError
from ..models.registry import builder_accepts
from .pth import StateDictFileError
from .state_dict_file import load_state_dict_file

__all__ = ["load_run", "find_weights", "read_config", "read_history", "preprocess_transform",
           "dataset_stats", "class_names", "load_test_set", "image_size", "RunDirError"]

#: dataset name in config.json -> glassnet.data class name
DATASET_CLASSES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}
WHICH = ("best", "last")


class RunDirError(GlassnetError, FileNotFoundError):
    """A run folder is missing, or lacks its config or any weights file."""


def _norm_dataset(name) -> str:
    key = str(name).lower().replace("_", "-")
    return {"fashionmnist": "fashion-mnist"}.get(key, key)


def read_config(run_dir) -> dict:
    """``config.json`` of a run folder, as a dict (clear error when missing or broken)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunDirError(f"run folder {str(run)!r} does not exist"
                          + ("" if run.parent.is_dir() else f" (nor does its parent {str(run.parent)!r})"))
    path = run / "config.json"
    if not path.is_file():
        raise RunDirError(f"run folder {str(run)!r} has no config.json (is it a `glassnet train` output folder?)")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path}: cannot read the run's config: {exc}") from exc
    if not isinstance(config, dict) or "model" not in config:
        raise RunDirError(f"{path}: expected a JSON object with at least a \"model\" key")
    return config


def read_history(run_dir) -> list:
    """``history.json`` of a run folder: a list of per-epoch dicts (``[]`` if absent)."""
    path = Path(run_dir) / "history.json"
    if not path.is_file():
        return []
    with open(path) as f:
        rows = json.load(f)
    return list(rows) if isinstance(rows, list) else []


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


def load_run(run_dir, which: str = "best", log=print):
    """Rebuild a run's model from ``config.json`` and load its weights; return ``(model, config)``.

    The model is ``get_model(config["model"], num_classes=..., in_channels=...,
    **config["model_kwargs"])`` (plus ``image_size`` when the config has one
    and the builder takes it), cast to ``config["dtype"]`` if given, with the
    weights loaded strictly and put in eval mode. Weights come from
    :func:`find_weights`; ``log`` (``None`` = silent) is called with a line
    saying which file was used. The returned config gets ``"weights_file"``
    (the path used) and ``"run_dir"``.

    Raises :class:`RunDirError` for a missing folder, config or weights file,
    and :class:`~glassnet.errors.StateDictError` naming the weights file when
    its tensors do not fit the model (missing/unexpected keys, wrong shapes).
    """
    run = Path(run_dir)
    config = read_config(run)
    path, note = find_weights(run, which)
    model = _build_model(config, run / "config.json")
    state = _model_state(load_state_dict_file(path), path)
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


# ----------------------------------------------------------- preprocessing
def _dataset_name(config) -> str:
    if isinstance(config, str):
        return _norm_dataset(config)
    return _norm_dataset(config.get("dataset", "fashion-mnist"))


def dataset_stats(config) -> tuple[float, float]:
    """``(mean, std)`` of the run's dataset pixels in [0, 1] (config dict or dataset name)."""
    from .. import data

    name = _dataset_name(config)
    if name == "fashion-mnist":
        return data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD
    if name == "mnist":
        return data.MNIST_MEAN, data.MNIST_STD
    raise InvalidArgumentError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASET_CLASSES))}")


def preprocess_transform(config, dtype=None):
    """The input pipeline of training and evaluation: ``Compose([ToFloat(dtype), Normalize(mean, std)])``.

    ``config`` is a run's config dict (``"dataset"``, optional ``"dtype"``) or
    a dataset name (``"fashion-mnist"``, ``"mnist"``). Input: uint8 images,
    (1, H, W) or (N, 1, H, W) (or floats already in [0, 1]); output: the
    normalised float images the model was trained on.
    """
    from ..data import transforms as T

    mean, std = dataset_stats(config)
    if dtype is None and isinstance(config, dict):
        dtype = config.get("dtype")
    return T.Compose([T.ToFloat(dtype), T.Normalize(mean, std)])


def class_names(config) -> list[str]:
    """The run's class names, indexed by label: ``config["classes"]`` if present, else
    the dataset's (``FashionMNIST.classes``), else ``"0", "1", ...``."""
    from .. import data

    if isinstance(config, dict) and config.get("classes"):
        return [str(c) for c in config["classes"]]
    names = None
    try:
        cls_name = DATASET_CLASSES.get(_dataset_name(config))
        names = list(getattr(data, cls_name).classes) if cls_name else None
    except ValueError:
        names = None
    n = config.get("num_classes") if isinstance(config, dict) else None
    if names is not None and (n is None or int(n) == len(names)):
        return names
    return [str(i) for i in range(int(n or 10))]


def image_size(config) -> tuple[int, int]:
    """``(H, W)`` the run's model takes (``config["image_size"]``, default 28×28)."""
    size = (config.get("model_kwargs") or {}).get("image_size") or config.get("image_size") or 28
    return (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))


def load_test_set(config, data_root=None, limit: int | None = None):
    """The run's test split, preprocessed with :func:`preprocess_transform`.

    ``data_root`` defaults to ``config["data_root"]`` (then the usual search);
    ``limit`` keeps only the first N images.
    """
    from .. import data

    name = _dataset_name(config)
    if name not in DATASET_CLASSES:
        raise InvalidArgumentError(f"unknown dataset {name!r} in the run's config; known: "
                         f"{', '.join(sorted(DATASET_CLASSES))}")
    cls = getattr(data, DATASET_CLASSES[name])
    root = data_root if data_root is not None else config.get("data_root")
    test = cls(root=root, train=False, transform=preprocess_transform(config))
    if limit is not None and limit < len(test):
        test = data.Subset(test, np.arange(max(int(limit), 0)))
    return test
