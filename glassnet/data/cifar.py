"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009): 32x32 colour photos, from the python-format files.

    train = CIFAR10(download=True)                    # ~/.cache/glassnet/cifar-10-batches-py
    test = CIFAR100("data", train=False, coarse=True) # data/cifar-100-python, 20 superclasses

The files are torchvision's: ``cifar-10-batches-py/data_batch_1..5``, ``test_batch``,
``batches.meta``; ``cifar-100-python/train``, ``test``, ``meta``. They are looked up under
``root`` (if given), ``$GLASSNET_DATA``, then ``~/.cache/glassnet``; with ``download=True`` a
missing set is fetched from torchvision's address (MD5-checked, with
:func:`~glassnet.data.download.download_url`) into ``root`` or ``~/.cache/glassnet`` and
extracted safely (:func:`~glassnet.data.archive.extract_tar`). The pickles are read with an
allow-list unpickler (:mod:`glassnet.data.cifar_pickle`): nothing in them is ever executed. Each
file is validated (uint8 ``data`` of shape (n, 3072), n labels in range, the class names)
and a bad one raises :class:`~glassnet.errors.DataFormatError` naming it.

Each row of ``data`` is the R, G and B planes of one image, 1024 bytes each, so
``data.reshape(-1, 3, 32, 32)`` is already glassnet's (N, C, H, W) layout. Unlike torchvision
(which keeps (N, 32, 32, 3) and a list of labels) ``.data`` is (N, 3, 32, 32) and ``.targets``
an int64 array, as in glassnet's MNIST. ``transform=None`` means
:class:`~glassnet.data.transforms.ToFloat` (float32 in [0, 1]), as for MNIST.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from .archive import extract_tar
from .base import Dataset, _as_index
from .cifar_pickle import load_cifar_pickle
from .datasets import ENV_VAR, DatasetNotFoundError
from .download import download_url, md5sum
from .sample_rng import sample_rng
from .transforms import ToFloat, apply_transform

__all__ = ["CIFAR10", "CIFAR100"]


class CIFAR10(Dataset):
    """CIFAR-10: 50000 training and 10000 test images of 10 classes, 32x32 RGB.

    ``CIFAR10(root=None, train=True, transform=None, target_transform=None, download=False,
    *, max_bytes=None)``; ``max_bytes`` is each file's read limit (``None``: 1 GiB or 16x
    the file). ``get_item(i, rng)`` applies ``transform(x, rng=rng)``; ``ds[i]`` is
    ``get_item(i, sample_rng(0, 0, i))``.

    Shape:
        - ``.data``: (N, 3, 32, 32) uint8 (R, G, B planes); ``.targets``: (N,) int64 in ``0..9``
        - ``ds[i]`` with the default transform: x (3, 32, 32) float32 in [0, 1], y ``int``
    """

    base_folder = "cifar-10-batches-py"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    filename = "cifar-10-python.tar.gz"
    tgz_md5 = "c58f30108f718f92721af3b95e74349a"
    train_list = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]
    test_list = ["test_batch"]
    meta_file = "batches.meta"
    n_classes = 10

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None,
                 download: bool = False, *, max_bytes: int | None = None):
        self.root = Path(root).expanduser() if root is not None else None
        self.train = bool(train)
        self.transform = ToFloat() if transform is None else transform
        self.target_transform = target_transform
        self.max_bytes = max_bytes
        folder = self._find()
        if folder is None:
            if not download:
                raise DatasetNotFoundError(self._not_found_message())
            folder = self.download()
        self.folder = folder
        self.classes = self._load_meta(folder / self.meta_file)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.data, self.targets = self._load_split(folder)

    # -- lookup --------------------------------------------------------------
    @property
    def split(self) -> str:
        return "train" if self.train else "test"

    def _files(self) -> list[str]:
        return (self.train_list if self.train else self.test_list) + [self.meta_file]

    @classmethod
    def cache_dir(cls) -> Path:
        """``~/.cache/glassnet``: where ``download=True`` puts the set when no ``root`` is given."""
        return Path.home() / ".cache" / "glassnet"

    def search_dirs(self) -> list[tuple[Path, str]]:
        """The folders searched for ``<base_folder>/``, in order, with where each comes from."""
        dirs = [(self.root, "the root argument")] if self.root is not None else []
        if os.environ.get(ENV_VAR):
            dirs.append((Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"))
        return dirs + [(self.cache_dir(), "user cache")]

    def _complete(self, folder: Path) -> bool:
        try:
            return all((folder / f).is_file() for f in self._files())
        except OSError:
            return False

    def _find(self) -> Path | None:
        for base, _ in self.search_dirs():
            if self._complete(base / self.base_folder):
                return base / self.base_folder
        return None

    def _not_found_message(self) -> str:
        name = type(self).__name__
        lines = [f"{name} ({self.split} split): cannot find {self.base_folder}/ with "
                 f"{', '.join(self._files())}. Looked in:"]
        for k, (base, origin) in enumerate(self.search_dirs(), 1):
            lines.append(f"  {k}. {base / self.base_folder}  ({origin})")
        dest = self.root if self.root is not None else self.cache_dir()
        lines.append(f"Pass download=True to fetch {self.url} into {dest}, or put the extracted "
                     f"{self.base_folder}/ in one of those folders.")
        return "\n".join(lines)

    def download(self, opener=None, progress: bool = True) -> Path:
        """Fetch and extract the archive into ``root`` (or :meth:`cache_dir`); return the data folder.
        An archive already there with the right MD5 is not fetched again."""
        dest = self.root if self.root is not None else self.cache_dir()
        archive = dest / self.filename
        if not (archive.is_file() and md5sum(archive) == self.tgz_md5):
            download_url(self.url, archive, self.tgz_md5, opener=opener, progress=progress)
        folder = extract_tar(archive, dest, self.base_folder)
        if not self._complete(folder):
            missing = [f for f in self._files() if not (folder / f).is_file()]
            raise DataFormatError(f"{archive}: the archive has no {', '.join(missing)} under {self.base_folder}/")
        return folder

    # -- loading -------------------------------------------------------------
    def _load_meta(self, path: Path) -> list[str]:
        meta = load_cifar_pickle(path, self.max_bytes)
        return _names(meta, path, self._meta_key(), self._meta_count())

    def _meta_key(self) -> str:
        return "label_names"

    def _meta_count(self) -> int:
        return self.n_classes

    def _label_key(self) -> str:
        return "labels"

    def _load_split(self, folder: Path):
        parts, labels = [], []
        for name in (self.train_list if self.train else self.test_list):
            path = folder / name
            entry = load_cifar_pickle(path, self.max_bytes)
            data = entry.get("data")
            if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
                got = f"shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
                raise DataFormatError(f"{path}: 'data' must be a uint8 array of shape (n, 3072) "
                                      f"(n images of 3 x 32 x 32), got {got}")
            y = _labels(entry, path, self._label_key(), len(data), self._meta_count())
            parts.append(data)
            labels.append(y)
        data = np.concatenate(parts).reshape(-1, 3, 32, 32)   # a copy: no view on the file's bytes
        return data, np.concatenate(labels)

    # -- access --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.data)

    def get_item(self, index, rng):
        """``(transform(image, rng=rng), target_transform(label))`` of image ``index``."""
        i = _as_index(index, len(self), type(self).__name__)
        x = apply_transform(self.transform, self.data[i], batched=False, rng=rng)
        y = int(self.targets[i])
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __getitem__(self, index):
        i = _as_index(index, len(self), type(self).__name__)
        return self.get_item(i, sample_rng(0, 0, i))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.split!r}, n={len(self)}, folder={str(self.folder)!r}, "
                f"transform={self.transform!r})")


class CIFAR100(CIFAR10):
    """CIFAR-100: 50000 training and 10000 test images of 100 classes (``fine_labels``), or of
    their 20 superclasses with ``coarse=True`` (``coarse_labels``; ``classes`` then the
    superclass names). Same interface as :class:`CIFAR10` otherwise.

    Shape:
        - ``.data``: (N, 3, 32, 32) uint8; ``.targets``: (N,) int64 in ``0..99`` (``0..19`` coarse)
        - ``ds[i]`` with the default transform: x (3, 32, 32) float32 in [0, 1], y ``int``
    """

    base_folder = "cifar-100-python"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    filename = "cifar-100-python.tar.gz"
    tgz_md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    train_list = ["train"]
    test_list = ["test"]
    meta_file = "meta"
    n_classes = 100

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None,
                 download: bool = False, *, coarse: bool = False, max_bytes: int | None = None):
        self.coarse = bool(coarse)
        super().__init__(root, train, transform, target_transform, download, max_bytes=max_bytes)

    def _meta_key(self) -> str:
        return "coarse_label_names" if self.coarse else "fine_label_names"

    def _meta_count(self) -> int:
        return 20 if self.coarse else 100

    def _label_key(self) -> str:
        return "coarse_labels" if self.coarse else "fine_labels"


def _names(meta, path, key, count) -> list[str]:
    names = meta.get(key)
    if not isinstance(names, list) or len(names) != count or \
            not all(isinstance(n, (str, bytes)) for n in names):
        got = f"{len(names)} entries" if isinstance(names, list) else type(names).__name__
        raise DataFormatError(f"{path}: '{key}' must be a list of {count} class names, got {got}")
    try:
        return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: a class name in '{key}' is not UTF-8 text") from None


def _labels(entry, path, key, n, count) -> np.ndarray:
    y = entry.get(key)
    if not isinstance(y, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in y):
        raise DataFormatError(f"{path}: '{key}' must be a list of integer labels, got "
                              f"{type(y).__name__ if not isinstance(y, list) else 'a list with other values'}")
    if len(y) != n:
        raise DataFormatError(f"{path}: 'data' holds {n} images but '{key}' has {len(y)} labels")
    bad = [v for v in y if not 0 <= v < count]
    if bad:
        raise DataFormatError(f"{path}: label {bad[0]} in '{key}' is outside 0..{count - 1}")
    return np.asarray(y, dtype=np.int64)
