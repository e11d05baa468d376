"""What a trained run's model is fed (by ``glassnet evaluate``, ``predict`` and ``plot``): its evaluation pipeline,
its test set, the ten-crop variant, batch sizes.

Everything goes through :mod:`glassnet.io.run_dir` (``preprocess_transform``,
``load_test_set``, ``check_data_root``), the one place a run's input pipeline is
defined. For photo runs (config.json ``"dataset"``: ``"folder"``, ``"cifar10"``,
``"cifar100"``) that glassnet.io does not know yet, a private fallback reads the
keys ``glassnet train`` writes for them (``"data"``, ``"in_channels"``,
``"image_size"``, ``"normalize"``, ``"eval_resize"``): it is used only while
glassnet.io answers "unknown dataset" for such a run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError, UsageError

__all__ = ["PHOTO_DATASETS", "run_preprocess", "run_test_set", "ten_crop_transform", "default_batch_size",
           "check_run_data_root", "is_photo_run"]


#: datasets of photo runs (config.json "dataset"), whose pipeline resizes and centre-crops
PHOTO_DATASETS = ("folder", "cifar10", "cifar100")


def _dataset(config) -> str:
    return str(config.get("dataset", "fashion-mnist")).lower().replace("_", "-")


def _unsupported(config, exc) -> bool:
    """glassnet.io does not know this photo dataset yet (its 'unknown dataset' error)."""
    return _dataset(config) in PHOTO_DATASETS and str(exc).startswith("unknown dataset")


def _fallback_preprocess(config, dtype=None):
    """Photo runs until glassnet.io.preprocess_transform knows them: ``Resize(eval_resize)``
    (when given), ``CenterCrop(image_size)``, ``ToFloat``, ``Normalize(config["normalize"])``."""
    from ..data import transforms as T
    from ..io.run_dir import image_size

    norm = config.get("normalize") or {}
    gray = int(config.get("in_channels") or 3) == 1
    mean = norm.get("mean", (float(np.mean(T.IMAGENET_MEAN)),) if gray else T.IMAGENET_MEAN)
    std = norm.get("std", (float(np.mean(T.IMAGENET_STD)),) if gray else T.IMAGENET_STD)
    steps = [T.Resize(int(config["eval_resize"]))] if config.get("eval_resize") else []
    steps += [T.CenterCrop(image_size(config)), T.ToFloat(dtype or config.get("dtype")), T.Normalize(mean, std)]
    return T.Compose(steps)


def run_preprocess(config, dtype=None):
    """The run's evaluation pipeline, uint8 (C, H, W) of any size -> the model's input:
    :func:`glassnet.io.preprocess_transform` (with a fallback for photo runs it does not know yet)."""
    from ..io.run_dir import preprocess_transform

    try:
        return preprocess_transform(config, dtype)
    except InvalidArgumentError as exc:
        if not _unsupported(config, exc):
            raise
    return _fallback_preprocess(config, dtype)


def _fallback_test_set(config, data_root=None, limit=None):
    """Photo runs until glassnet.io.load_test_set knows them: a folder's ``val/`` (or ``test/``,
    else the whole tree) as an ImageFolder, or CIFAR's test batch."""
    from .. import data

    transform = _fallback_preprocess(config)
    name = _dataset(config)
    if name == "folder":
        root = Path(data_root or config.get("data") or config.get("data_root") or ".").expanduser()
        root = next((root / s for s in ("val", "test") if (root / s).is_dir()), root)
        mode = "L" if int(config.get("in_channels") or 3) == 1 else "RGB"
        test = data.ImageFolder(root, transform=transform, mode=mode)
    else:
        cls = data.CIFAR10 if name == "cifar10" else data.CIFAR100
        test = cls(root=data_root or config.get("data_root"), train=False, transform=transform)
    if limit is not None and limit < len(test):
        test = data.Subset(test, np.arange(max(int(limit), 0)))
    return test


def run_test_set(config, data_root=None, limit=None, transform=None):
    """The run's test split (:func:`glassnet.io.load_test_set`, with a fallback for photo runs),
    its samples through ``transform`` instead of the run's pipeline when one is given."""
    from ..io.run_dir import load_test_set

    try:
        test = load_test_set(config, data_root=data_root, limit=limit)
    except InvalidArgumentError as exc:
        if not _unsupported(config, exc):
            raise
        test = _fallback_test_set(config, data_root, limit)
    if transform is not None:
        inner = test
        while not hasattr(inner, "transform") and hasattr(inner, "dataset"):
            inner = inner.dataset  # a Subset of the dataset
        if not hasattr(inner, "transform"):
            raise InvalidArgumentError(f"the run's test set {type(inner).__name__} takes no transform")
        inner.transform = transform
    return test


def _replace_crop(transform, T):
    """``transform`` with its (first) CenterCrop replaced by TenCrop, or None if it has none."""
    steps = list(getattr(transform, "transforms", []))
    for i, step in enumerate(steps):
        if isinstance(step, T.CenterCrop):
            steps[i] = T.TenCrop(step.size)
            return T.Compose(steps)
        inner = _replace_crop(step, T)
        if inner is not None:
            steps[i] = inner
            return T.Compose(steps)
    return None


def ten_crop_transform(config):
    """The run's pipeline with ``CenterCrop(size)`` replaced by ``TenCrop(size)``: one uint8
    image (C, H, W) -> its 10 normalised crops (10, C, h, w), applied image by image."""
    from ..data import transforms as T

    base = run_preprocess(config)
    pipeline = _replace_crop(base, T)
    if pipeline is None:
        raise UsageError(f"--ten-crop: the run's evaluation pipeline has no centre crop ({base!r}); ten-crop "
                         "testing is for photo runs, whose test images are resized (config.json "
                         "\"eval_resize\") and centre-cropped to \"image_size\"")
    return T.Lambda(pipeline, batched=False)


def default_batch_size(config) -> int:
    """500 images of 28x28 (as many pixels for larger images), at least 8."""
    from ..io.run_dir import image_size

    h, w = image_size(config)
    return int(max(8, min(500, 500 * 28 * 28 // max(h * w, 1))))


def is_photo_run(config) -> bool:
    """Whether the run trained on photos (a folder or CIFAR), whose pipeline resizes and crops."""
    return _dataset(config) in PHOTO_DATASETS or bool(config.get("eval_resize"))


def check_run_data_root(run_dir, data_root, option: str = "--data-root") -> None:
    """:func:`glassnet.io.check_data_root` for the run's dataset (photo runs glassnet.io does not
    know yet: the folder must exist)."""
    from ..data import DatasetNotFoundError
    from ..io.run_dir import check_data_root, read_config

    config = read_config(run_dir)
    try:
        check_data_root(config.get("dataset", "fashion-mnist"), data_root, ("test",), option=option)
    except InvalidArgumentError as exc:
        if not _unsupported(config, exc):
            raise
        if not Path(data_root).expanduser().is_dir():
            raise DatasetNotFoundError(f"{option} {str(data_root)!r} is not a folder") from exc
