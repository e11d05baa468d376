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
"""
from __future__ import annotations

import json
import os
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, GlassnetError, InvalidArgumentError, StateDictError
from ..limits import check_json_depth
from ..models.registry import builder_accepts
from .pth import StateDictFileError
from .state_dict_file import load_state_dict_file

__all__ = ["load_run", "find_weights", "read_config", "read_history", "preprocess_transform",
           "dataset_stats", "class_names", "load_test_set", "image_size", "RunDirError",
           "is_run_dir", "clear_run_dir", "check_data_root", "check_finite_state", "RUN_FILES", "RUN_FOLDERS"]

#: dataset name in config.json -> glassnet.data class name
DATASET_CLASSES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}
WHICH = ("best", "last")


class RunDirError(GlassnetError, FileNotFoundError):
    """A run folder is missing, or lacks its config or any weights file."""


def _norm_dataset(name) -> str:
    key = str(name).lower().replace("_", "-")
    return {"fashionmnist": "fashion-mnist"}.get(key, key)


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


# ------------------------------------------------------ run folder contents
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


def _has_pipeline(config) -> bool:
    """The run's config records its evaluation pipeline (runs written since ``--data``)."""
    return isinstance(config, dict) and all(config.get(k) is not None
                                            for k in ("normalize", "image_size", "eval_resize"))


def preprocess_transform(config, dtype=None):
    """The run's evaluation pipeline: uint8 images (C, H, W) or (N, C, H, W) -> the model's normalised input.

    ``config`` is a run's config dict or a dataset name (``"fashion-mnist"``, ``"mnist"``).
    A config that records its pipeline (``"image_size"``, ``"eval_resize"``, ``"normalize"``,
    as ``glassnet train`` writes them) gives ``Resize(eval_resize) -> CenterCrop(image_size) ->
    ToFloat -> Normalize(mean, std)`` (:func:`glassnet.data.pipelines.eval_transform`): photos of
    any size in, ``image_size`` out; for images already at the run's own size (the
    ``"native"`` pipeline) the resize and crop change nothing. Otherwise (older runs, names):
    ``Compose([ToFloat(dtype), Normalize(mean, std)])`` with the dataset's statistics, on
    (1, H, W) / (N, 1, H, W) uint8 or floats already in [0, 1].
    """
    from ..data import transforms as T
    from ..data.pipelines import eval_transform_from_config

    if _has_pipeline(config):
        return eval_transform_from_config(config, dtype)
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


def check_data_root(dataset, root, splits=("train", "test"), option: str = "data_root") -> None:
    """Raise :class:`~glassnet.data.DatasetNotFoundError` naming ``root`` (and ``option``, the
    argument it came from) unless ``root`` is a folder holding ``dataset``'s IDX files
    (plain or ``.gz``) for every split in ``splits``. The datasets themselves would
    fall back to the other places they search; an explicit root must not."""
    from .. import data

    name = _dataset_name(dataset)
    if name not in DATASET_CLASSES:
        raise InvalidArgumentError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASET_CLASSES))}")
    cls = getattr(data, DATASET_CLASSES[name])
    folder = Path(root).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise data.DatasetNotFoundError(f"{option} {str(root)!r} {what} (it should be the folder holding "
                                        f"the {cls.title} IDX files; leave {option} out to search the usual places)")
    missing = []
    for split in splits:
        for gz_name, _ in cls.resources[split]:
            plain = gz_name[:-3] if gz_name.endswith(".gz") else gz_name
            if not any((folder / n).is_file() for n in (plain, plain + ".gz")):
                missing.append(f"{plain}[.gz]")
    if missing:
        raise data.DatasetNotFoundError(f"{option} {str(root)!r} does not hold the {cls.title} files: "
                                        f"missing {', '.join(missing)}")


def load_test_set(config, data_root=None, limit: int | None = None):
    """The run's test split, preprocessed with :func:`preprocess_transform`.

    Fashion-MNIST / MNIST: the IDX test files (``data_root`` defaults to
    ``config["data_root"]``, then the usual search; an explicit ``data_root`` must hold the
    files, :func:`check_data_root`). CIFAR-10/100: the ``test_batch``. A folder run
    (``"dataset": "folder"``): the folder ``config["data"]`` (or ``data_root``, where it has
    moved) split as training split it (:mod:`glassnet.data.data_spec`: ``val/`` or ``test/``
    of an ImageNet-style tree, or the fixed tenth held out of a single tree, which must still
    hold the number of images it had). ``limit`` keeps only the first N images (of a folder,
    N evenly spaced ones, as ``glassnet train --limit-test`` does).
    """
    from .. import data

    name = _dataset_name(config)
    if name in DATASET_CLASSES and (not _has_pipeline(config) or config.get("pipeline", "native") == "native"):
        cls = getattr(data, DATASET_CLASSES[name])
        if data_root is not None:
            check_data_root(name, data_root, ("test",), option="data_root")
        root = data_root if data_root is not None else config.get("data_root")
        test = cls(root=root, train=False, transform=preprocess_transform(config))
        if limit is not None and limit < len(test):
            test = data.Subset(test, np.arange(max(int(limit), 0)))
        return test
    if name not in ("folder", "cifar10", "cifar100", *DATASET_CLASSES):
        raise InvalidArgumentError(f"unknown dataset {name!r} in the run's config; known: "
                                   f"folder, cifar10, cifar100, {', '.join(sorted(DATASET_CLASSES))}")
    return _photo_test_set(config, name, data_root, limit)


def _photo_test_set(config, name, data_root, limit):
    """The test split of a run with a recorded pipeline that is not the IDX one (see load_test_set)."""
    from ..data.data_spec import PipelineDataset, limit_indices, open_splits, resolve_data

    if not _has_pipeline(config):
        raise InvalidArgumentError(f"the run's config has dataset {name!r} but no \"image_size\", \"eval_resize\" "
                                   "and \"normalize\" to preprocess it with")
    if name == "folder":
        where = data_root if data_root is not None else config.get("data")
        if not where:
            raise InvalidArgumentError("the run's config has \"dataset\": \"folder\" but no \"data\" folder")
        spec = resolve_data(where)
    else:
        root = data_root if data_root is not None else config.get("data_root")
        spec = resolve_data(name, root)
    channels = int(config.get("in_channels") or spec.channels)
    _, _, test = open_splits(spec, channels, test_only=True)
    split = config.get("test_split") or {}
    whole = getattr(test, "source", None)
    if spec.layout == "single" and split.get("of") is not None and len(whole) != split["of"]:
        raise DataFormatError(f"{spec.data}: the run held out its test images from {split['of']} images, but the "
                              f"folder now has {len(whole)}; the held-out split cannot be rebuilt (restore the "
                              "folder, or evaluate on a separate test tree)")
    keep = limit_indices(len(test), limit, spread=name == "folder")
    return PipelineDataset(test, keep, preprocess_transform(config))
