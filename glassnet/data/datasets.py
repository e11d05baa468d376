"""Datasets: the map-style protocol, in-memory arrays, MNIST and Fashion-MNIST.

The protocol and the generic datasets (:class:`Dataset`, :class:`ArrayDataset`,
:class:`Subset`, :func:`random_split`, :func:`fetch_batch`) live in
:mod:`glassnet.data.base` and are re-exported here; see its docstring for the
batch protocol ``get_batch(indices)``.

MNIST-like datasets
-------------------
``.data`` holds the images as stored, uint8 (N, 28, 28); ``.targets`` the
labels, int64 (N,). ``transform`` receives uint8 (1, 28, 28) from
``ds[i]`` and uint8 (N, 1, 28, 28) from ``get_batch``; ``transform=None``
means :class:`~glassnet.data.transforms.ToFloat`, so by default samples are
float32 in [0, 1]. ``target_transform`` receives an ``int`` from ``ds[i]``;
in ``get_batch`` it gets the whole int64 label array if it has
``supports_batch = True``, else it is mapped label by label.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, GlassnetError
from .base import (  # noqa: F401  (ArrayDataset, Subset, fetch_batch, random_split: re-exported)
    ArrayDataset, Dataset, Subset, _apply_target, _as_index, _as_indices, fetch_batch, random_split,
)
from .download import download_from_mirrors
from .idx import read_idx
from .transforms import ToFloat, apply_transform

__all__ = [
    "Dataset", "ArrayDataset", "Subset", "random_split", "fetch_batch",
    "MNISTLike", "MNIST", "FashionMNIST", "DatasetNotFoundError", "ENV_VAR",
]

#: Environment variable naming a data folder searched before the user cache.
ENV_VAR = "GLASSNET_DATA"


class DatasetNotFoundError(GlassnetError, FileNotFoundError):
    """A dataset's files are in none of the places searched (the message lists them)."""


def _exists(path: Path, test) -> bool:
    """``test(path)`` (``Path.is_file``...), False where the path cannot even be
    examined (a folder without permission, a path too long)."""
    try:
        return test(path)
    except OSError:
        return False


# --------------------------------------------------------------------------
# MNIST and Fashion-MNIST


class MNISTLike(Dataset):
    """Shared machinery of the MNIST-format datasets (IDX files, 28x28 uint8).

    Files are looked up, in this order, in

    1. ``root``, if given;
    2. ``$GLASSNET_DATA/<folder_name>``, then ``$GLASSNET_DATA`` itself;
    3. ``~/.cache/glassnet/<folder_name>``;
    4. the system folder ``system_dir`` (where the Debian package puts them).

    In each folder both the ``.gz`` and the uncompressed name are accepted
    (uncompressed first); a folder counts only if it holds both the images
    and the labels of the split. If none does and ``download=True``, the
    split's two files are downloaded from ``mirrors`` into ``root`` (or
    ``~/.cache/glassnet/<folder_name>``) and their MD5s checked. Files found
    on disk are not MD5-checked: repackaged copies (such as Debian's, which
    rewrites the gzip header) differ in bytes but not in content, and
    :func:`~glassnet.data.idx.read_idx` validates the structure: a corrupt,
    truncated or oversized file, images and labels whose counts disagree, or
    a label outside ``classes`` raise :class:`~glassnet.errors.DataFormatError`
    naming the file; ``max_bytes`` is each file's read limit
    (:func:`~glassnet.data.idx.read_idx`; ``None`` = 1 GiB or 16x the file).

    Subclasses set the class attributes below.

    Shape:
        - ``.data``: (N, 28, 28) uint8; ``.targets``: (N,) int64, in ``0..9``
        - ``ds[i]`` with the default transform: x (1, 28, 28) float32 in [0, 1], y ``int``
        - ``get_batch(indices)`` with indices (B,): x (B, 1, 28, 28) float32 in
          [0, 1], y (B,) int64 (other shapes if ``transform`` changes them)
    """

    #: Human-readable name used in messages.
    title = "MNIST-like"
    #: Folder name under $GLASSNET_DATA and ~/.cache/glassnet.
    folder_name = ""
    #: Folder a system package installs the files in.
    system_dir = ""
    #: Debian/Ubuntu package providing the files, if any.
    apt_package: str | None = None
    #: Base URLs tried in order by download=True.
    mirrors: tuple[str, ...] = ()
    #: split -> ((images file, md5), (labels file, md5)); names are the .gz ones.
    resources: dict = {}
    #: Class names, indexed by label.
    classes: tuple[str, ...] = ()
    #: (H, W) of every image.
    image_shape = (28, 28)

    def __init__(self, root=None, train: bool = True, download: bool = False,
                 transform=None, target_transform=None, *, max_bytes: int | None = None):
        self.max_bytes = max_bytes
        self.root = Path(root).expanduser() if root is not None else None
        self.train = bool(train)
        self.transform = ToFloat() if transform is None else transform
        self.target_transform = target_transform
        folder = self._find()
        if folder is None:
            if not download:
                raise DatasetNotFoundError(self._not_found_message())
            folder = self._download()
        self.folder = folder
        self.images_file = self._file_in(folder, self.resources[self.split][0][0])
        self.labels_file = self._file_in(folder, self.resources[self.split][1][0])
        if self.images_file is None or self.labels_file is None:  # removed since the lookup
            raise DatasetNotFoundError(self._not_found_message())
        self.data, self.targets = self._load(self.images_file, self.labels_file)

    # -- lookup --------------------------------------------------------------
    @property
    def split(self) -> str:
        return "train" if self.train else "test"

    @classmethod
    def search_dirs(cls, root=None) -> list[tuple[Path, str]]:
        """The folders searched, in order, each with a note on where it comes from."""
        dirs = []
        if root is not None:
            dirs.append((Path(root).expanduser(), "the root argument"))
        env = os.environ.get(ENV_VAR)
        if env:
            base = Path(env).expanduser()
            dirs.append((base / cls.folder_name, f"${ENV_VAR}/{cls.folder_name}"))
            dirs.append((base, f"${ENV_VAR}"))
        dirs.append((cls.cache_dir(), "user cache"))
        dirs.append((Path(cls.system_dir), "system folder"))
        return dirs

    @classmethod
    def cache_dir(cls) -> Path:
        """``~/.cache/glassnet/<folder_name>``: where ``download=True`` saves
        the files when no ``root`` is given."""
        return Path.home() / ".cache" / "glassnet" / cls.folder_name

    @staticmethod
    def _file_in(folder: Path, gz_name: str) -> Path | None:
        plain = gz_name[:-3] if gz_name.endswith(".gz") else gz_name
        for name in (plain, plain + ".gz"):
            p = folder / name
            if _exists(p, Path.is_file):
                return p
        return None

    def _split_files(self) -> list[str]:
        return [name for name, _ in self.resources[self.split]]

    def _find(self) -> Path | None:
        for folder, _ in self.search_dirs(self.root):
            if all(self._file_in(folder, f) is not None for f in self._split_files()):
                return folder
        return None

    def _not_found_message(self) -> str:
        wanted = " and ".join(f"{f[:-3]}[.gz]" for f in self._split_files())
        lines = [f"{self.title} ({self.split} split): cannot find {wanted}. Looked in:"]
        for k, (folder, origin) in enumerate(self.search_dirs(self.root), 1):
            if not _exists(folder, Path.is_dir):
                state = "no such folder" if not _exists(folder, Path.exists) else "not a readable folder"
            else:
                missing = [f[:-3] for f in self._split_files() if self._file_in(folder, f) is None]
                state = "missing " + ", ".join(missing)
            lines.append(f"  {k}. {folder}  ({origin}; {state})")
        if not os.environ.get(ENV_VAR):
            lines.append(f"     (${ENV_VAR} is not set)")
        dest = self.root if self.root is not None else self.cache_dir()
        lines.append("To fix, do one of:")
        if self.mirrors:
            lines.append(f"  * pass download=True to fetch them from {self.mirrors[0]} into {dest}")
        if self.apt_package:
            lines.append(f"  * install the system package: sudo apt-get install {self.apt_package}"
                         f" (puts them in {self.system_dir})")
        lines.append(f"  * put the files in a folder and set {ENV_VAR} to it "
                     f"(or to its parent, naming the folder {self.folder_name})")
        return "\n".join(lines)

    def _download(self, opener=None, progress: bool = True) -> Path:
        dest = self.root if self.root is not None else self.cache_dir()
        for name, md5 in self.resources[self.split]:
            if self._file_in(dest, name) is None:
                download_from_mirrors(name, self.mirrors, dest, md5, opener=opener, progress=progress)
        return dest

    # -- loading -------------------------------------------------------------
    def _load(self, images_file: Path, labels_file: Path):
        try:
            images = read_idx(images_file, max_bytes=self.max_bytes)
            labels = read_idx(labels_file, max_bytes=self.max_bytes)
        except FileNotFoundError as exc:  # removed between the lookup and the read
            raise DatasetNotFoundError(f"{self.title} ({self.split}): {exc.filename} disappeared "
                                       f"while being read ({exc.strerror})") from exc
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != tuple(self.image_shape):
            raise DataFormatError(
                f"{images_file}: expected uint8 images of shape (N, {self.image_shape[0]}, "
                f"{self.image_shape[1]}), got {images.dtype} {images.shape}"
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataFormatError(
                f"{labels_file}: expected a 1-D array of integer labels, got {labels.dtype} {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataFormatError(
                f"{self.title} ({self.split}): {images_file} has {len(images)} images but "
                f"{labels_file} has {len(labels)} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            bad = labels[(labels < 0) | (labels >= len(self.classes))][0]
            raise DataFormatError(
                f"{labels_file}: label {int(bad)} is outside 0..{len(self.classes) - 1}"
            )
        return images, labels.astype(np.int64)

    # -- access --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        i = _as_index(i, len(self), type(self).__name__)
        x = apply_transform(self.transform, self.data[i][None], batched=False)
        y = int(self.targets[i])
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def get_batch(self, indices):
        """Transformed images and labels for ``indices``, without a per-sample loop."""
        idx = _as_indices(indices, len(self), type(self).__name__)
        x = apply_transform(self.transform, self.data[idx][:, None], batched=True)
        return x, _apply_target(self.target_transform, self.targets[idx])

    def arrays(self):
        """The whole split as ``(x, y)`` via :meth:`get_batch` (60000 float32
        images take 188 MB)."""
        return self.get_batch(np.arange(len(self)))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.split!r}, n={len(self)}, "
                f"folder={str(self.folder)!r}, transform={self.transform!r})")


class FashionMNIST(MNISTLike):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 28x28 grayscale images of
    10 kinds of clothing; 60000 training and 10000 test images.

    ``FashionMNIST(root=None, train=True, download=False, transform=None,
    target_transform=None)``; see :class:`MNISTLike` for where the files are
    looked for and what ``transform`` receives.

    Shape:
        - ``.data``: (60000, 28, 28) uint8 (train) or (10000, 28, 28) (test);
          ``.targets``: (N,) int64 in ``0..9`` (indices into ``classes``)
        - ``ds[i]``: x (1, 28, 28) float32 in [0, 1], y ``int``
        - ``get_batch(indices)``, one DataLoader batch: x (B, 1, 28, 28)
          float32, y (B,) int64
    """

    title = "Fashion-MNIST"
    folder_name = "fashion-mnist"
    system_dir = "/usr/share/datasets/fashion-mnist"
    apt_package = "dataset-fashion-mnist"
    mirrors = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    # The published MD5s of the official .gz files. (The Debian package's
    # files differ only in the gzip header: no file name, a 2020 mtime.)
    resources = {
        "train": (("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                  ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe")),
        "test": (("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                 ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")),
    }
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class MNIST(MNISTLike):
    """MNIST handwritten digits (LeCun et al.): 28x28 grayscale, 60000
    training and 10000 test images, labels 0-9.

    Same interface as :class:`FashionMNIST`.

    Shape:
        - ``.data``: (60000, 28, 28) uint8 (train) or (10000, 28, 28) (test);
          ``.targets``: (N,) int64 in ``0..9``
        - ``ds[i]``: x (1, 28, 28) float32 in [0, 1], y ``int``
        - ``get_batch(indices)``: x (B, 1, 28, 28) float32, y (B,) int64
    """

    title = "MNIST"
    folder_name = "mnist"
    system_dir = "/usr/share/datasets/mnist"
    apt_package = None
    mirrors = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )
    resources = {
        "train": (("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                  ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432")),
        "test": (("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                 ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")),
    }
    classes = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine")
