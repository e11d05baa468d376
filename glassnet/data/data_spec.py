"""What ``glassnet train --data`` names, and the splits a run trains, validates and tests on.

    spec = resolve_data("photos/")                     # or "cifar10", "fashion-mnist", "mnist", a cache
    pool, val, test = open_splits(spec, channels=3)    # raw uint8 samples, untransformed
    train = PipelineDataset(pool, indices, transform)  # the run's view, per-sample RNG contract

``--data`` is one of

* ``fashion-mnist`` / ``mnist`` (the IDX files; ``--data-root`` to point at them) or
  ``cifar10`` / ``cifar100`` (the python-pickle batches): the sets' own train and test splits;
* ``PATH``, a folder laid out as one of

  - ``PATH/train/`` + ``PATH/val/`` (ImageNet's layout) or ``PATH/train/`` + ``PATH/test/``:
    the training images come from ``train/``, the test images from ``val/`` (``test/``) -- as
    ImageNet's validation set serves as its held-out test set; the validation split of the
    run is cut out of ``train/`` with ``--val-size``, as for the IDX sets;
  - ``PATH/train/`` + ``PATH/val/`` + ``PATH/test/``: all three used as they are (``--val-size``
    does not apply);
  - one class-per-folder tree ``PATH/<class>/...`` (or ``PATH/train/`` alone): a fixed tenth of its images
    (:data:`TEST_FRACTION`, drawn with seed :data:`TEST_SEED` whatever the run's ``--seed``, so
    every run and ``glassnet evaluate`` hold out the same images) is the test split, the rest
    is split into training and validation images as above;

  where each tree may also be a decoded-image cache (``glassnet prepare``; a folder holding
  ``index.json``), read by :class:`~glassnet.data.ImageCache`. Classes are the (sorted) class
  folders; the trees of one layout must have the same classes.

A folder's channels are sniffed from the headers of up to :data:`SNIFF_FILES` of its images
(all grayscale: 1, else 3; :func:`sniff_images`), and so is whether all its images share one
square size (``native_size``; Fashion-MNIST or CIFAR written out as PNGs).

Samples stay raw (uint8 (C, H, W), the decoder's pixels) until a :class:`PipelineDataset`
applies the run's transform with the sample's own generator (``get_item(index, rng)``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, InvalidArgumentError
from .base import Dataset, _as_index
from .datasets import DatasetNotFoundError
from .transforms import apply_transform

__all__ = ["DataSpec", "resolve_data", "open_splits", "PipelineDataset", "RawImages", "NAMED_DATASETS",
           "DATASET_KINDS", "TEST_FRACTION", "TEST_SEED", "SNIFF_FILES", "sniff_images", "test_indices",
           "limit_indices"]

#: --data names and the glassnet.data classes behind them
NAMED_DATASETS = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}
#: config.json "dataset" values
DATASET_KINDS = ("folder", *NAMED_DATASETS)
TEST_FRACTION = 0.1
TEST_SEED = 0
SNIFF_FILES = 32
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def _norm_name(name) -> str:
    key = str(name).lower().replace("_", "-")
    return {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}.get(key, key)


@dataclass
class DataSpec:
    """A resolved ``--data``.

    Attributes:
        dataset: ``"folder"`` or a :data:`NAMED_DATASETS` name (config.json ``"dataset"``).
        data: the absolute folder path, or the name (config.json ``"data"``).
        root: the named set's folder (``--data-root``), ``None`` to search the usual places.
        trees: for a folder: ``{"train": path, "val": path, "test": path}`` (those present); a single
            tree is ``{"all": path}``.
        channels: the data's own channels (1 or 3).
        native_size: ``(H, W)`` when every image is that (square) size, else ``None``.
        classes: the class names, by label.
        cache: the (training) tree is a prepared cache (read in the run's mode, converted as read).
    """

    dataset: str
    data: str
    root: str | None = None
    download: bool = False
    trees: dict = field(default_factory=dict)
    channels: int = 3
    native_size: tuple | None = None
    classes: list = field(default_factory=list)
    cache: bool = False

    @property
    def layout(self) -> str:
        """``"named"``, ``"single"`` (one tree, test split held out) or ``"split"`` (train/ + val/...)."""
        if self.dataset != "folder":
            return "named"
        return "single" if "all" in self.trees else "split"


def _is_cache(path: Path) -> bool:
    from .image_cache import INDEX_NAME

    return (path / INDEX_NAME).is_file()


def _open_tree(path, mode="RGB"):
    """The raw dataset of one tree: an ImageCache or an ImageFolder (transform None: uint8 as decoded),
    read in ``mode`` (a cache built in the other mode converted as Pillow converts; ``None``: its own)."""
    from .image_cache import ImageCache
    from .image_folder import ImageFolder

    path = Path(path)
    if _is_cache(path):
        return ImageCache(path, mode=mode)
    return ImageFolder(path, mode=mode)


def sniff_images(paths, limit: int = SNIFF_FILES):
    """``(channels, native_size)`` from the headers of up to ``limit`` of ``paths`` (evenly spaced):
    1 channel when all are grayscale (Pillow modes 1, L, LA, I, I;16, F), else 3; ``native_size``
    ``(n, n)`` when all are ``n x n``, else ``None``. A file Pillow cannot open raises
    :class:`~glassnet.errors.DataFormatError` naming it."""
    from PIL import Image

    paths = list(paths)
    if not paths:
        return 3, None
    idx = np.unique(np.linspace(0, len(paths) - 1, min(len(paths), limit)).round().astype(np.int64))
    modes, sizes = set(), set()
    for i in idx.tolist():
        try:
            with Image.open(paths[i]) as im:
                modes.add(im.mode)
                sizes.add(im.size)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataFormatError(f"{paths[i]}: cannot read the image header: {exc}") from exc
    channels = 1 if modes <= set(_GRAY_MODES) else 3
    native = None
    if len(sizes) == 1:
        w, h = next(iter(sizes))
        native = (h, h) if w == h else None
    return channels, native


def _tree_facts(ds):
    """``(channels, native_size)`` of an opened tree."""
    from .image_cache import ImageCache

    if isinstance(ds, ImageCache):
        return (1 if ds.mode == "L" else 3), (ds.size, ds.size)
    return sniff_images([p for p, _ in ds.samples])


def resolve_data(data, data_root=None, download: bool = False) -> DataSpec:
    """The :class:`DataSpec` of ``--data`` (a name or a folder; see the module docstring).

    Raises :class:`~glassnet.data.DatasetNotFoundError` for a path that is not a folder, a
    layout with a missing part, or trees whose classes differ.
    """
    name = _norm_name(data)
    if name in NAMED_DATASETS:
        from .. import data as D

        cls = getattr(D, NAMED_DATASETS[name])
        channels = 1 if name in ("fashion-mnist", "mnist") else 3
        side = 28 if channels == 1 else 32
        classes = list(getattr(cls, "classes", ()) or [])
        return DataSpec(name, name, None if data_root is None else str(data_root), download, {}, channels,
                        (side, side), classes)
    path = Path(str(data)).expanduser()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise DatasetNotFoundError(f"--data {data}: {what}; give a folder of images with one subfolder per "
                                   f"class (or train/ and val/ trees of such), a prepared cache, or one of "
                                   f"{', '.join(NAMED_DATASETS)}")
    path = Path(os.path.abspath(path))
    splits = {s: path / s for s in ("train", "val", "test") if (path / s).is_dir()}
    if _is_cache(path) or "train" not in splits:
        trees = {"all": str(path)}
    elif len(splits) == 1:  # train/ alone: that is the tree
        trees = {"all": str(splits["train"])}
    else:
        trees = {s: str(p) for s, p in splits.items()}
    first = _open_tree(trees.get("train", trees.get("all")))
    classes = list(first.classes)
    for split, tree in trees.items():
        if split in ("train", "all"):
            continue
        other = _open_tree(tree)
        if list(other.classes) != classes:
            raise DatasetNotFoundError(f"--data {path}: {split}/ has the classes {_short(other.classes)} but "
                                       f"train/ has {_short(classes)}; the trees must have the same class folders")
    channels, native = _tree_facts(first)
    return DataSpec("folder", str(path), None, False, trees, channels, native, classes,
                    _is_cache(Path(trees.get("train", trees.get("all")))))


def _short(names, n: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


class RawImages(Dataset):
    """Images held in one array (the IDX and CIFAR sets), read raw: ``get_item(i, rng)`` is
    ``(images[i] as (C, H, W) uint8, int(targets[i]))``; ``rng`` is unused.

    Shape:
        - images: (N, C, H, W) or (N, H, W) uint8; targets: (N,)
    """

    def __init__(self, images, targets, classes=()):
        images = np.asarray(images)
        self.images = images[:, None] if images.ndim == 3 else images
        self.targets = np.asarray(targets).astype(np.int64)
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.images)

    def get_item(self, index, rng):
        i = _as_index(index, len(self), "RawImages")
        return np.array(self.images[i]), int(self.targets[i])

    def __getitem__(self, index):
        return self.get_item(index, None)


class PipelineDataset(Dataset):
    """The samples ``indices`` of a raw dataset, transformed with the generator of each sample.

    ``get_item(i, rng)`` reads sample ``indices[i]`` of ``source`` raw and returns
    ``(transform(x, rng=rng), y)``: the DataLoader's per-sample RNG contract
    (:mod:`glassnet.data.sample_rng`), with ``i`` -- the position in this dataset -- as the
    sample's index. ``ds[i]`` is ``get_item(i, None)`` (random transforms then draw from their
    own generators).

    Shape:
        - Output x: what ``transform`` returns for (C, H, W) uint8 input, e.g. (3, 224, 224) float32
    """

    def __init__(self, source, indices=None, transform=None):
        self.source = source
        n = len(source)
        self.indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise InvalidArgumentError(f"PipelineDataset: indices must lie in 0..{n - 1}")
        self.transform = transform

    @property
    def classes(self):
        return getattr(self.source, "classes", None)

    def __len__(self) -> int:
        return len(self.indices)

    def get_item(self, index, rng):
        i = _as_index(index, len(self), "PipelineDataset")
        x, y = self.source.get_item(int(self.indices[i]), rng)
        return apply_transform(self.transform, x, batched=False, rng=rng), y

    def __getitem__(self, index):
        return self.get_item(index, None)

    def __repr__(self) -> str:
        return f"PipelineDataset(n={len(self)}, of {type(self.source).__name__}, transform={self.transform!r})"


def test_indices(n: int) -> np.ndarray:
    """The held-out test images of a single tree of ``n`` images: ``max(1, round(n * TEST_FRACTION))``
    of them drawn with seed :data:`TEST_SEED`, sorted."""
    if n < 3:
        raise DatasetNotFoundError(f"a single image tree needs at least 3 images to hold out a test split, got {n}")
    k = max(1, int(round(n * TEST_FRACTION)))
    return np.sort(np.random.default_rng(TEST_SEED).permutation(n)[:k])


def limit_indices(n: int, limit: int | None, spread: bool) -> np.ndarray:
    """The samples ``--limit-train`` / ``--limit-test`` ``limit`` keeps of ``n``: the first ``limit``,
    or with ``spread`` (folders, whose samples are sorted by class) ``limit`` evenly spaced ones,
    so that every class keeps its share. All ``n`` when ``limit`` is ``None`` or >= ``n``."""
    if limit is None or limit >= n:
        return np.arange(n, dtype=np.int64)
    limit = max(int(limit), 0)
    if not spread:
        return np.arange(limit, dtype=np.int64)
    return np.floor(np.arange(limit) * (n / limit)).astype(np.int64)


def _named(spec: DataSpec, train: bool):
    from .. import data as D

    cls = getattr(D, NAMED_DATASETS[spec.dataset])
    ds = cls(root=spec.root, train=train, download=spec.download)
    data = ds.data
    return RawImages(data, ds.targets, getattr(ds, "classes", ()))


def open_splits(spec: DataSpec, channels: int | None = None, *, test_only: bool = False):
    """``(pool, val, test)`` raw datasets (``get_item(i, rng)`` -> uint8 (C, H, W), label) of ``spec``.

    ``pool`` is what the training and validation images are split from; ``val`` is a fixed
    validation set (a ``val/`` tree beside ``test/``) or ``None``. ``channels`` converts a folder's
    images on decoding and a cache's as they are read (1: ``"L"``, 3: ``"RGB"``; Pillow's
    ``convert``); the named sets must already have them.
    ``test_only``: ``pool`` and ``val`` are ``None`` (the test split of a single tree still needs
    the whole tree).
    """
    channels = spec.channels if channels is None else int(channels)
    if spec.layout == "named":
        if channels != spec.channels:
            raise InvalidArgumentError(f"{spec.dataset}'s images have {spec.channels} channel(s), not {channels}")
        test = _named(spec, False)
        return (None, None, test) if test_only else (_named(spec, True), None, test)
    mode = "L" if channels == 1 else "RGB"

    def tree(split):
        return _open_tree(spec.trees[split], mode)

    if spec.layout == "single":
        whole = tree("all")
        held = test_indices(len(whole))
        test = PipelineDataset(whole, held)
        if test_only:
            return None, None, test
        keep = np.setdiff1d(np.arange(len(whole)), held)
        return PipelineDataset(whole, keep), None, test
    test_split = "test" if "test" in spec.trees else "val"
    test = tree(test_split)
    if test_only:
        return None, None, test
    val = tree("val") if "test" in spec.trees and "val" in spec.trees else None
    return tree("train"), val, test
