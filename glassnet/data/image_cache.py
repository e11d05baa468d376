"""The decoded-image cache: a folder of photos decoded and resized once, read as a memory map.

    glassnet prepare photos/train --size 256 --out cache/train     # or prepare_image_cache(...)
    ds = ImageCache("cache/train", transform=Compose([RandomResizedCrop(224), RandomHorizontalFlip(),
                                                      ToFloat(), Normalize(IMAGENET_MEAN, IMAGENET_STD)]))

Decoding a JPEG costs more CPU time than a small CNN's step on it, and an epoch decodes every
photo again. The cache decodes each image once, resizes its shorter side to ``size`` (bilinear,
antialiased: :class:`~glassnet.data.transforms.Resize`) and crops the centre ``size x size``
(:class:`~glassnet.data.transforms.CenterCrop`) -- AlexNet's preprocessing ("rescaled such that
the shorter side was of length 256, and then cropped out the central 256x256 patch"), after
which its random 224 crops and flips run on the cached pixels. A fixed square per image makes
the cache one (N, C, size, size) uint8 array, memory-mapped: no per-image offsets, no decoding,
the page cache shared by every DataLoader worker. (Photos much wider than tall lose their
sides; keep the folder for a pipeline that needs them.)

Layout (format version :data:`FORMAT_VERSION`)
-------------------------------------------
``CACHE/images-<token>.npy``: a standard ``.npy`` file, uint8 (N, C, size, size), C-order,
data at byte 128 (``np.load(path, mmap_mode="r")`` reads it). ``CACHE/index.json``:
``format`` (``"glassnet-image-cache"``), ``version``, ``images`` (the ``.npy`` file's name),
``shape``, ``size``, ``mode``, ``fast_decode``, ``source`` (the folder, absolute),
``extensions``, ``classes``, ``samples`` (``[relative path, class index]`` per row of the
array), ``skipped`` (``[relative path, reason]``), ``files`` (``[relative path, bytes,
mtime_ns]`` of every image file the folder held) and ``fingerprint`` (SHA-256 of the classes
and ``files``).

Refusals: a folder without ``index.json``, an index of another format or version, an images
file missing, truncated or of another shape, and -- when the source folder is checked -- a
folder whose files differ from the fingerprint (added, removed, resized or touched) each raise
:class:`CacheError` saying how to rebuild the cache (``glassnet prepare ...``).

Writing is atomic (:mod:`glassnet.data.cache_prepare`): the array goes to ``*.part``, is
fsynced and renamed, and ``index.json`` is replaced last, so a prepare killed at any point
leaves the previous cache or none -- never an index that points at a half-written array.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, InvalidArgumentError
from ..limits import ReadBudget, check_json_depth
from .base import Dataset, _as_index
from .folder_index import IMG_EXTENSIONS, find_classes, make_dataset
from .pixel_modes import MODE_CHANNELS, convert_mode
from .sample_rng import sample_rng
from .transforms import apply_transform

__all__ = ["ImageCache", "CacheError", "scan_folder", "fingerprint", "FORMAT", "FORMAT_VERSION", "INDEX_NAME"]

FORMAT = "glassnet-image-cache"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"
#: bytes before the pixels in the images file
HEADER_BYTES = 128


class CacheError(DataFormatError):
    """An image cache is missing, foreign, truncated or stale; the message says how to rebuild it."""


def scan_folder(root, extensions=IMG_EXTENSIONS):
    """``(classes, class_to_idx, samples, files)`` of an image folder: ImageFolder's scan, plus
    ``files`` = ``[[relative path with "/", size, mtime_ns], ...]`` in sample order."""
    root = os.path.abspath(os.path.expanduser(str(root)))
    classes, class_to_idx = find_classes(root)
    samples = make_dataset(root, class_to_idx, tuple(extensions))
    files = []
    for path, _ in samples:
        st = os.stat(path)
        files.append([os.path.relpath(path, root).replace(os.sep, "/"), st.st_size, st.st_mtime_ns])
    return classes, class_to_idx, samples, files


def fingerprint(classes, files) -> str:
    """SHA-256 (hex) of the class names and the ``[path, size, mtime_ns]`` rows."""
    blob = json.dumps({"classes": list(classes), "files": [list(f) for f in files]}, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def rebuild_command(source, size, mode, out, skip=False, fast=False) -> str:
    """The ``glassnet prepare`` command line that (re)builds a cache."""
    cmd = f"glassnet prepare {source} --size {size} --mode {mode} --out {out}"
    return cmd + (" --skip-bad" if skip else "") + (" --fast-decode" if fast else "")


def _read_index(path: Path, max_bytes):
    index_path = path / INDEX_NAME
    hint = f"build one with: glassnet prepare FOLDER --size 256 --out {path}"
    if not path.is_dir():
        raise CacheError(f"{path}: no image cache here (not a folder); {hint}")
    if not index_path.is_file():
        what = "an interrupted glassnet prepare (no index.json)" if any(path.glob("*.part")) else "no index.json"
        raise CacheError(f"{path}: not an image cache ({what}); {hint}")
    try:
        size = index_path.stat().st_size
        ReadBudget(index_path, max_bytes, file_size=size).take(size, "the index")
        text = index_path.read_text(encoding="utf-8")
        check_json_depth(text, index_path, 8)
        index = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f"{index_path}: the cache index cannot be read ({type(exc).__name__}: {exc}); "
                         f"rebuild the cache: {hint}") from exc
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise CacheError(f"{index_path}: not a glassnet image cache index (no \"format\": \"{FORMAT}\"); {hint}")
    return index


def _field(index, key, kind, index_path, fix):
    value = index.get(key)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise CacheError(f"{index_path}: the index's \"{key}\" is missing or of the wrong type; {fix}")
    return value


def _check_header(images_path: Path, shape, fix):
    try:
        with open(images_path, "rb") as f:
            version = np.lib.format.read_magic(f)
            reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            got_shape, fortran, dtype = reader[version](f)
            offset = f.tell()
        actual = images_path.stat().st_size
    except FileNotFoundError:
        raise CacheError(f"{images_path}: the cache's images file is missing; {fix}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise CacheError(f"{images_path}: not a .npy images file ({exc}); {fix}") from exc
    if tuple(got_shape) != tuple(shape) or fortran or dtype != np.uint8:
        raise CacheError(f"{images_path}: holds {dtype} {tuple(got_shape)} but the index expects uint8 "
                         f"{tuple(shape)}; {fix}")
    expected = offset + int(np.prod(shape, dtype=np.int64))
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise CacheError(f"{images_path}: {state} ({actual} bytes, expected {expected}); {fix}")
    return offset


class ImageCache(Dataset):
    """A cache written by ``glassnet prepare`` / :func:`~glassnet.data.prepare_image_cache`, as a dataset.

    Args:
        path: the cache folder.
        transform: applied as ``transform(x, rng=rng)`` to each cached (C, size, size) uint8 image.
        target_transform: applied to the class index.
        source: the image folder to check the cache against: ``"auto"`` (the folder recorded in
            the index, when it exists; a cache moved without its photos is read as is), a path
            (must match; ``samples`` then lie under it), or ``None`` (no check). A stale cache
            raises :class:`CacheError`.
        mode: the mode the images are read in, ``"RGB"`` or ``"L"``; ``None``: the cache's own.
            A cache built in the other mode is converted as each image is read, bit for bit as
            Pillow's ``convert`` (:mod:`glassnet.data.pixel_modes`).
        max_bytes: the most bytes the index may take (``None``: 1 GiB or 16x the file).

    Attributes as :class:`~glassnet.data.ImageFolder`'s: ``classes``, ``class_to_idx``,
    ``samples`` (absolute source paths), ``targets``, ``skipped``; plus ``images`` (the
    read-only memory map, in the cache's own mode), ``size``, ``mode`` (the mode read),
    ``cache_mode`` (the mode the cache was built in), ``source``, ``extensions``.

    Shape:
        - ``images``: (N, C_cache, size, size) uint8, C = 3 ("RGB") or 1 ("L")
        - ``read(i)`` and ``ds[i]`` with ``transform=None``: x (C, size, size) uint8 (a copy),
          C that of ``mode``; y ``int``
    """

    def __init__(self, path, transform=None, target_transform=None, *, source="auto", mode=None,
                 max_bytes=None):
        if mode is not None and mode not in MODE_CHANNELS:
            raise InvalidArgumentError(f"ImageCache: mode must be 'RGB', 'L' or None, got {mode!r}")
        self.path = Path(path).expanduser()
        self.transform, self.target_transform = transform, target_transform
        index = _read_index(self.path, max_bytes)
        ipath = self.path / INDEX_NAME
        base_fix = f"rebuild it with: glassnet prepare FOLDER --size 256 --out {self.path}"
        version = index.get("version")
        if version != FORMAT_VERSION:
            raise CacheError(f"{ipath}: cache format version {version!r}; this glassnet reads version "
                             f"{FORMAT_VERSION}; {base_fix}")
        self.source = _field(index, "source", str, ipath, base_fix)
        self.size = _field(index, "size", int, ipath, base_fix)
        if source not in ("auto", None):
            self.source = os.path.abspath(os.path.expanduser(str(source)))
        self.cache_mode = _field(index, "mode", str, ipath, base_fix)
        self.mode = self.cache_mode if mode is None else mode
        self.extensions = tuple(index.get("extensions") or IMG_EXTENSIONS)
        skip = bool(index.get("skipped"))
        self.rebuild = rebuild_command(self.source, self.size, self.cache_mode, self.path, skip,
                                       bool(index.get("fast_decode")))
        fix = f"rebuild it with: {self.rebuild}"
        self.classes = _field(index, "classes", list, ipath, fix)
        rows = _field(index, "samples", list, ipath, fix)
        shape = _field(index, "shape", list, ipath, fix)
        channels = MODE_CHANNELS.get(self.cache_mode)
        if channels is None or shape != [len(rows), channels, self.size, self.size] or \
                not all(isinstance(c, str) for c in self.classes):
            raise CacheError(f"{ipath}: the index's shape {shape}, mode {self.cache_mode!r}, size {self.size} and "
                             f"{len(rows)} samples do not agree; {fix}")
        n_classes = len(self.classes)
        if not all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and isinstance(r[1], int)
                   and not isinstance(r[1], bool) and 0 <= r[1] < n_classes for r in rows):
            raise CacheError(f"{ipath}: a sample row is not [relative path, class index in 0..{n_classes - 1}]; {fix}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = [(os.path.join(self.source, *r.split("/")), label) for r, label in rows]
        self.targets = [label for _, label in rows]
        self.skipped = [tuple(s) for s in index.get("skipped") or []]
        self._images_name = _field(index, "images", str, ipath, fix)
        if os.path.basename(self._images_name) != self._images_name:
            raise CacheError(f"{ipath}: \"images\" must be a file name inside the cache; {fix}")
        self._shape = tuple(shape)
        self._offset = _check_header(self.path / self._images_name, self._shape, fix)
        if source is not None:
            self._check_source(index, self.source, source == "auto", fix)
        self._images = None

    def _check_source(self, index, folder, optional, fix):
        if optional and not os.path.isdir(folder):
            return
        extensions = index.get("extensions") or list(IMG_EXTENSIONS)
        try:
            classes, _, _, files = scan_folder(folder, extensions)
        except (OSError, DataFormatError) as exc:
            raise CacheError(f"{self.path}: cannot check the cache against {folder}: {exc}; {fix}") from exc
        if fingerprint(classes, files) == index.get("fingerprint"):
            return
        old = {f[0]: tuple(f[1:]) for f in index.get("files") or [] if isinstance(f, list) and f}
        new = {f[0]: tuple(f[1:]) for f in files}
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])
        example = (added + removed + changed)[:3]
        raise CacheError(f"{self.path}: the cache is stale: {folder} has changed since it was built "
                         f"({len(added)} files added, {len(removed)} removed, {len(changed)} modified"
                         f"{', e.g. ' + ', '.join(example) if example else '; classes differ'}); {fix}")

    @property
    def images(self) -> np.memmap:
        """The cached pixels, (N, C, size, size) uint8, memory-mapped read-only (opened on first use)."""
        if self._images is None:
            self._images = np.memmap(self.path / self._images_name, dtype=np.uint8, mode="r",
                                     offset=self._offset, shape=self._shape)
        return self._images

    def __getstate__(self):  # a worker process maps the file itself instead of receiving a copy
        state = self.__dict__.copy()
        state["_images"] = None
        return state

    def __len__(self) -> int:
        return self._shape[0]

    def read(self, index) -> np.ndarray:
        """Cached image ``index`` in ``mode``, before the transform: a writable uint8 (C, size, size) copy."""
        i = _as_index(index, len(self), "ImageCache")
        if self.mode == self.cache_mode:
            return np.array(self.images[i])
        return convert_mode(self.images[i], self.cache_mode, self.mode)

    def get_item(self, index, rng):
        """``(transform(image, rng=rng), target_transform(class_index))`` of cached image ``index``."""
        i = _as_index(index, len(self), "ImageCache")
        x = apply_transform(self.transform, self.read(i), batched=False, rng=rng)
        y = self.targets[i]
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __getitem__(self, index):
        i = _as_index(index, len(self), "ImageCache")
        return self.get_item(i, sample_rng(0, 0, i))

    def __repr__(self) -> str:
        return (f"ImageCache(path={str(self.path)!r}, n={len(self)}, size={self.size}, mode={self.mode!r}, "
                f"cache_mode={self.cache_mode!r}, "
                f"source={self.source!r}, transform={self.transform!r})")
