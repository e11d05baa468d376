"""glassnet.data: datasets, the DataLoader, transforms, IDX files and downloads.

Quick start::

    from glassnet.data import FashionMNIST, DataLoader
    train = FashionMNIST(train=True)          # found on disk, or download=True
    for x, y in DataLoader(train, batch_size=128, shuffle=True, seed=0):
        ...                                   # x float32 (B,1,28,28), y int64 (B,)

Photos: ``ImageFolder(root)`` (one subfolder per class, torchvision's rules), ``CIFAR10`` /
``CIFAR100`` (the python-format files, ``download=True``), and the decoded-image cache written
by ``prepare_image_cache`` / ``glassnet prepare`` and read by ``ImageCache`` -- or, checked
against its folder, by ``ImageFolder(root, transform, cache=CACHE)`` (in ``mode="RGB"`` or
``"L"`` whatever mode the cache was built in).
"""
from . import transforms
from .dataloader import DataLoader
from .datasets import (
    ENV_VAR, ArrayDataset, Dataset, DatasetNotFoundError, FashionMNIST, MNIST, MNISTLike,
    Subset, fetch_batch, random_split,
)
from .download import ChecksumError, DownloadError, download_from_mirrors, download_url, md5sum
from .idx import IDX_TYPES, read_idx, write_idx
from .cache_prepare import prepare_image_cache
from .cifar import CIFAR10, CIFAR100
from .cifar_pickle import UnsafePickleError
from .decode import decode_image
from .image_cache import CacheError, ImageCache
from .image_folder import IMG_EXTENSIONS, ImageFolder, find_classes, make_dataset
from .transforms import FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD

__all__ = [
    "transforms", "DataLoader",
    "Dataset", "ArrayDataset", "Subset", "random_split", "fetch_batch",
    "MNISTLike", "MNIST", "FashionMNIST", "DatasetNotFoundError", "ENV_VAR",
    "ChecksumError", "DownloadError", "download_url", "download_from_mirrors", "md5sum",
    "IDX_TYPES", "read_idx", "write_idx",
    "ImageFolder", "IMG_EXTENSIONS", "find_classes", "make_dataset", "decode_image",
    "CIFAR10", "CIFAR100", "UnsafePickleError", "ImageCache", "CacheError", "prepare_image_cache",
    "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "MNIST_MEAN", "MNIST_STD",
]
