"""glassnet.data: datasets, the DataLoader, transforms, IDX files and downloads.

Quick start::

    from glassnet.data import FashionMNIST, DataLoader
    train = FashionMNIST(train=True)          # found on disk, or download=True
    for x, y in DataLoader(train, batch_size=128, shuffle=True, seed=0):
        ...                                   # x float32 (B,1,28,28), y int64 (B,)
"""
from . import transforms
from .dataloader import DataLoader
from .datasets import (
    ENV_VAR, ArrayDataset, Dataset, DatasetNotFoundError, FashionMNIST, MNIST, MNISTLike,
    Subset, fetch_batch, random_split,
)
from .download import ChecksumError, DownloadError, download_from_mirrors, download_url, md5sum
from .idx import IDX_TYPES, read_idx, write_idx
from .transforms import FASHION_MNIST_MEAN, FASHION_MNIST_STD, MNIST_MEAN, MNIST_STD

__all__ = [
    "transforms", "DataLoader",
    "Dataset", "ArrayDataset", "Subset", "random_split", "fetch_batch",
    "MNISTLike", "MNIST", "FashionMNIST", "DatasetNotFoundError", "ENV_VAR",
    "ChecksumError", "DownloadError", "download_url", "download_from_mirrors", "md5sum",
    "IDX_TYPES", "read_idx", "write_idx",
    "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "MNIST_MEAN", "MNIST_STD",
]
