"""Image transforms and augmentation, with torchvision's names, parameters and defaults.

What a transform receives
-------------------------
Every transform accepts either

* one image, shape ``(C, H, W)``, or
* a batch of images, shape ``(N, C, H, W)``,

and tells them apart by rank (3 vs 4). Images are NumPy arrays, ``uint8`` in
``[0, 255]`` as datasets and decoders produce them (C = 1 grayscale or 3
RGB); photos in a dataset may differ in H and W until a crop or resize makes
them equal. The MNIST-like datasets pass ``(1, 28, 28)`` images from
``dataset[i]`` and ``(N, 1, 28, 28)`` from ``dataset.get_batch(indices)``. A
pipeline starts with the uint8 transforms and converts with :class:`ToFloat`
(just as a torchvision pipeline calls ``ToTensor``)::

    Compose([RandomResizedCrop(224), RandomHorizontalFlip(),
             ToFloat(), Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    Compose([RandomCrop(28, padding=4), RandomHorizontalFlip(),
             ToFloat(), Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)])

The modules
-----------
* :mod:`.base` -- :class:`Transform`, :class:`Compose`, :class:`Lambda`, :func:`apply_transform`
* :mod:`.tensor` -- :class:`ToFloat`, :class:`Normalize`, :class:`Flatten` (whole-array NumPy)
* :mod:`.geometry` -- :class:`RandomCrop`, :class:`RandomTranslate`, :class:`RandomHorizontalFlip`
  (any dtype, one vectorised gather per batch)
* :mod:`.resize` -- :class:`Resize`, :class:`RandomResizedCrop` (uint8, through Pillow: the pixels
  torchvision computes on a PIL image)
* :mod:`.crops` -- :class:`CenterCrop`, :class:`FiveCrop`, :class:`TenCrop`
* :mod:`.colour` -- :class:`ColorJitter` (uint8, Pillow's arithmetic), :class:`PCALighting` (floats)
* :mod:`.constants` -- ``IMAGENET_MEAN``/``STD``, the ImageNet PCA eigen-decomposition, MNIST's statistics

Randomness
----------
A random transform draws from the ``rng`` passed to the call,
``transform(x, rng=g)``, and otherwise from its own generator (``seed=`` or
``rng=`` at construction; with a seed the sequence of outputs is
reproducible). The DataLoader passes ``sample_rng(seed, epoch, index)``
(:mod:`glassnet.data.sample_rng`), so a sample's augmentation depends only
on those three numbers. :class:`Compose` hands the same generator to each
member in turn. For a batch, ``rng`` may be a list of N generators: image
``i`` then gets exactly what ``transform(x[i], rng=rng[i])`` gives. With one
generator a batch of :class:`RandomCrop` / :class:`RandomTranslate` /
:class:`RandomHorizontalFlip` draws its parameters in one go (different,
equally distributed results than image by image); the per-image
transforms (:class:`RandomResizedCrop`, :class:`ColorJitter`,
:class:`PCALighting`) draw image after image, equal to a loop.

Custom callables
----------------
Any callable works as a dataset transform; it gets ``rng=`` if its signature
takes one. Unless it has an attribute ``supports_batch = True`` (as every
class here does, or wrap it in ``Lambda(fn, batched=True)``), the dataset
applies it image by image when it builds a batch: correct, just slower.
"""
from .base import Compose, Lambda, Transform, apply_transform
from .colour import ColorJitter, PCALighting
from .constants import (
    FASHION_MNIST_MEAN, FASHION_MNIST_STD, IMAGENET_MEAN, IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC,
    IMAGENET_STD, MNIST_MEAN, MNIST_STD,
)
from .crops import CenterCrop, FiveCrop, TenCrop
from .geometry import RandomCrop, RandomHorizontalFlip, RandomTranslate
from .resize import RandomResizedCrop, Resize
from .tensor import Flatten, Normalize, ToFloat

__all__ = [
    "Transform", "Compose", "Lambda", "ToFloat", "Normalize", "Flatten",
    "RandomCrop", "RandomHorizontalFlip", "RandomTranslate", "apply_transform",
    "Resize", "CenterCrop", "RandomResizedCrop", "ColorJitter", "PCALighting", "FiveCrop", "TenCrop",
    "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "MNIST_MEAN", "MNIST_STD",
    "IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_PCA_EIGVAL", "IMAGENET_PCA_EIGVEC",
]
