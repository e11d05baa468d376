"""A run's data as training saw it: the evaluation pipeline, class names, image size, test split.

:func:`preprocess_transform` is the one place the evaluation pipeline is
rebuilt from a run's config, and :func:`load_test_set` the one place its
test split is (see :mod:`glassnet.io.run_dir`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataFormatError, InvalidArgumentError

__all__ = ["preprocess_transform", "dataset_stats", "class_names", "load_test_set", "image_size",
           "check_data_root", "DATASET_CLASSES"]

#: dataset name in config.json -> glassnet.data class name
DATASET_CLASSES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}


def _norm_dataset(name) -> str:
    key = str(name).lower().replace("_", "-")
    return {"fashionmnist": "fashion-mnist"}.get(key, key)


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
