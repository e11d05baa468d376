"""The input pipelines of a training run: what a sample goes through before the model sees it.

Two pipelines, chosen by :func:`glassnet.train.data.plan_input` from the data and the model:

``"native"`` -- the images are used at their own size (Fashion-MNIST, MNIST, CIFAR at 32 px, a
folder of such images written as PNGs). Evaluation and training alike::

    Resize(side) -> CenterCrop(side) -> ToFloat -> Normalize(mean, std)

(the first two are the identity on images already ``side x side``; they only make a stray
image of another size fit). Training augmentation, with ``--augment``, is the seeded batch
augmentation of :class:`glassnet.train.augment.BatchAugment`, as for the IDX sets.

``"photo"`` -- photos of any size, resized to the model's input ``size``. Evaluation::

    Resize(eval_resize) -> CenterCrop(size) -> ToFloat -> Normalize(mean, std)

with ``eval_resize = round(max(size) * 256 / 224)`` (:func:`eval_resize_for`; 256 for the 224
and 227 inputs of the ImageNet models and AlexNet). Training (:func:`photo_train_transform`)::

    RandomResizedCrop(size) -> RandomHorizontalFlip -> ToFloat -> Normalize      (default)
    Resize(eval_resize) -> RandomCrop(size) -> RandomHorizontalFlip -> ToFloat
        -> PCALighting(0.1) -> Normalize                                           (--recipe alexnet)

the second being AlexNet's: random 224 (227) crops of the 256-px images, flips and the PCA
colour shift (RGB only). Every random draw comes from the per-sample generator
(:mod:`glassnet.data.sample_rng`), so a sample is augmented the same with any number of
workers and again after a resume.

``mean``/``std``: ImageNet's for RGB photos, the datasets' own constants for Fashion-MNIST /
MNIST, and for other grayscale data the pixel statistics of (a sample of) its training images
(:func:`pixel_stats`). A run's ``config.json`` records them under ``"normalize"``, with
``"image_size"`` and ``"eval_resize"``; :func:`eval_transform_from_config` rebuilds the
evaluation pipeline from those keys (``glassnet.io.preprocess_transform``).
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError
from . import transforms as T

__all__ = ["PIPELINES", "eval_resize_for", "eval_transform", "photo_train_transform", "train_transform",
           "eval_transform_from_config", "default_stats", "pixel_stats", "STATS_SAMPLES"]

PIPELINES = ("native", "photo")
#: how many training images :func:`pixel_stats` looks at
STATS_SAMPLES = 256


def _hw(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def eval_resize_for(size, pipeline: str = "photo") -> int:
    """The shorter side images are resized to before the centre crop of ``size`` ((H, W) or an int).

    ``"native"``: the larger side itself (no rescaling); ``"photo"``: ``round(max(H, W) * 256 / 224)``,
    except 256 for 224 and 227 (AlexNet's "256 x 256 images" for both of its crop sizes).
    """
    h, w = _hw(size)
    side = max(h, w)
    if pipeline == "native":
        return side
    if side in (224, 227):
        return 256
    return int(round(side * 256 / 224))


def _normalize(mean, std) -> T.Normalize:
    mean, std = list(np.atleast_1d(mean)), list(np.atleast_1d(std))
    if len(mean) == 1 and len(std) == 1:  # one channel: scalars, as the IDX pipeline has always used
        return T.Normalize(float(mean[0]), float(std[0]))
    return T.Normalize(mean, std)


def eval_transform(size, eval_resize: int, mean, std, dtype=None) -> T.Compose:
    """``Resize(eval_resize) -> CenterCrop(size) -> ToFloat(dtype) -> Normalize(mean, std)``.

    Shape:
        - Input: (C, H, W) or (N, C, H, W) uint8, any H, W
        - Output: (C, *size) or (N, C, *size) floats
    """
    return T.Compose([T.Resize(int(eval_resize)), T.CenterCrop(_hw(size)), T.ToFloat(dtype), _normalize(mean, std)])


def photo_train_transform(size, mean, std, *, channels: int = 3, recipe: str | None = None,
                          eval_resize: int | None = None, pca_lighting: float = 0.1, flip_p: float = 0.5,
                          dtype=None) -> T.Compose:
    """The photo pipeline's training augmentation (see the module docstring).

    ``recipe=None``: ``RandomResizedCrop(size)`` (scale (0.08, 1), ratio (3/4, 4/3)) and a flip;
    ``recipe="alexnet"``: ``Resize(eval_resize)``, ``RandomCrop(size)``, flip and, for RGB,
    ``PCALighting(pca_lighting)`` after ``ToFloat``.

    Shape:
        - Input: (C, H, W) uint8, any H, W
        - Output: (C, *size) floats
    """
    size = _hw(size)
    flip = [T.RandomHorizontalFlip(flip_p)] if flip_p else []
    if recipe is None:
        return T.Compose([T.RandomResizedCrop(size), *flip, T.ToFloat(dtype), _normalize(mean, std)])
    if recipe != "alexnet":
        raise InvalidArgumentError(f"photo_train_transform: unknown recipe {recipe!r}; known: alexnet")
    resize = eval_resize if eval_resize is not None else eval_resize_for(size)
    colour = [T.PCALighting(pca_lighting)] if channels == 3 and pca_lighting else []
    return T.Compose([T.Resize(int(resize)), T.RandomCrop(size), *flip, T.ToFloat(dtype), *colour,
                      _normalize(mean, std)])


def train_transform(pipeline: str, size, eval_resize: int, mean, std, *, augment: bool, channels: int = 3,
                    recipe: str | None = None, dtype=None) -> T.Compose:
    """The per-sample training transform: the photo augmentation when ``pipeline == "photo"``
    and ``augment``, else the evaluation pipeline (the native pipeline augments whole batches
    in the Trainer instead)."""
    if pipeline not in PIPELINES:
        raise InvalidArgumentError(f"train_transform: pipeline must be one of {PIPELINES}, got {pipeline!r}")
    if pipeline == "photo" and augment:
        return photo_train_transform(size, mean, std, channels=channels, recipe=recipe, eval_resize=eval_resize,
                                     dtype=dtype)
    return eval_transform(size, eval_resize, mean, std, dtype)


def eval_transform_from_config(config: dict, dtype=None) -> T.Compose:
    """:func:`eval_transform` from a run's ``config.json`` keys ``image_size``, ``eval_resize``,
    ``normalize`` (``{"mean": [...], "std": [...]}``) and ``dtype``."""
    norm = config.get("normalize") or {}
    if "mean" not in norm or "std" not in norm:
        raise InvalidArgumentError("the run's config has no \"normalize\" {\"mean\": [...], \"std\": [...]}")
    size = config.get("image_size")
    if size is None or config.get("eval_resize") is None:
        raise InvalidArgumentError("the run's config needs \"image_size\" and \"eval_resize\" for its pipeline")
    return eval_transform(size, int(config["eval_resize"]), norm["mean"], norm["std"],
                          dtype if dtype is not None else config.get("dtype"))


def default_stats(dataset: str, channels: int):
    """``(mean, std)`` lists known without looking at the images, else ``None``: Fashion-MNIST's and
    MNIST's constants, ImageNet's for any 3-channel data."""
    if dataset == "fashion-mnist" and channels == 1:
        return [T.FASHION_MNIST_MEAN], [T.FASHION_MNIST_STD]
    if dataset == "mnist" and channels == 1:
        return [T.MNIST_MEAN], [T.MNIST_STD]
    if channels == 3:
        return [float(v) for v in T.IMAGENET_MEAN], [float(v) for v in T.IMAGENET_STD]
    return None


def pixel_stats(dataset, samples: int = STATS_SAMPLES):
    """Per-channel ``(mean, std)`` lists of the pixels in [0, 1] of up to ``samples`` images of
    ``dataset`` (evenly spaced over it; read untransformed with ``get_item(i, None)``), rounded
    to 4 decimals. Images may differ in size: every pixel counts once."""
    n = len(dataset)
    if n == 0:
        raise InvalidArgumentError("pixel_stats: the dataset is empty")
    idx = np.unique(np.linspace(0, n - 1, min(n, samples)).round().astype(np.int64))
    s1 = s2 = None
    count = 0
    for i in idx.tolist():
        x, _ = dataset.get_item(i, None)
        x = np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1) / 255.0
        s1 = x.sum(axis=1) if s1 is None else s1 + x.sum(axis=1)
        s2 = (x * x).sum(axis=1) if s2 is None else s2 + (x * x).sum(axis=1)
        count += x.shape[1]
    mean = s1 / count
    std = np.sqrt(np.maximum(s2 / count - mean * mean, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return [round(float(m), 4) for m in mean], [round(float(s), 4) for s in std]
