"""Image transforms and augmentation, vectorised over batches.

What a transform receives
-------------------------
Every transform here accepts either

* one image, shape ``(C, H, W)``, or
* a batch of images, shape ``(N, C, H, W)``,

and tells them apart by rank (3 vs 4). On a batch it does the work for all
``N`` images with whole-array NumPy operations, never a Python loop over the
samples. Random transforms draw independent parameters for every image in
the batch.

The MNIST-like datasets pass their images to ``transform`` **as stored:
``uint8`` in ``[0, 255]``**, shape ``(1, 28, 28)`` from ``dataset[i]`` and
``(N, 1, 28, 28)`` from ``dataset.get_batch(indices)`` (the fast path the
DataLoader uses). So a user pipeline starts with :class:`ToFloat` (just as a
torchvision pipeline starts with ``ToTensor``)::

    Compose([RandomCrop(28, padding=4), RandomHorizontalFlip(),
             ToFloat(), Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)])

Geometric transforms work on any dtype (cheapest on ``uint8``, so put them
before ``ToFloat``); :class:`Normalize` needs floats and says so if it gets
integers. ``transform=None`` on a dataset means ``ToFloat()``: float32 in
``[0, 1]``.

Randomness
----------
Random transforms take ``seed`` (an int) or ``rng`` (a
``numpy.random.Generator``, e.g. one shared by a whole pipeline). With a seed
the sequence of outputs is reproducible. A batch call draws its parameters
in one go, so it gives different (equally distributed) results than the same
images passed one at a time.

Custom callables
----------------
Any callable works as a dataset transform. Unless it has an attribute
``supports_batch = True`` (as every class here does, or wrap it in
``Lambda(fn, batched=True)``), the dataset applies it image by image when it
builds a batch: correct, just slower.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..backend import get_default_dtype
from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError

__all__ = [
    "Transform", "Compose", "Lambda", "ToFloat", "Normalize", "Flatten",
    "RandomCrop", "RandomHorizontalFlip", "RandomTranslate", "apply_transform",
    "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "MNIST_MEAN", "MNIST_STD",
]

#: Pixel mean / std of the Fashion-MNIST training set after ``ToFloat``.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
#: Pixel mean / std of the MNIST training set after ``ToFloat``.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def _is_batch(x, who: str) -> bool:
    """True for (N, C, H, W), False for (C, H, W); ShapeError otherwise."""
    if x.ndim == 4:
        return True
    if x.ndim == 3:
        return False
    raise ShapeError(
        f"{who}: expected one image (C, H, W) or a batch (N, C, H, W), got shape {tuple(x.shape)}"
    )


def _pair(v, name: str, who: str) -> tuple[int, int]:
    if isinstance(v, numbers.Integral):
        v = (int(v), int(v))
    else:
        v = tuple(v)
        if len(v) != 2 or not all(isinstance(a, numbers.Integral) for a in v):
            raise InvalidArgumentError(f"{who}: {name} must be an int or a pair of ints, got {v!r}")
        v = (int(v[0]), int(v[1]))
    if min(v) < 0:
        raise InvalidArgumentError(f"{who}: {name} must be >= 0, got {v}")
    return v


def _make_rng(seed, rng, who: str) -> np.random.Generator:
    if rng is not None:
        if seed is not None:
            raise InvalidArgumentError(f"{who}: pass seed or rng, not both")
        if not isinstance(rng, np.random.Generator):
            raise InvalidTypeError(f"{who}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    return np.random.default_rng(seed)


def apply_transform(transform, x, batched: bool):
    """Apply ``transform`` to one image, or to a batch (``batched=True``).

    A batch goes through ``transform`` in one call when the transform has
    ``supports_batch = True``; otherwise image by image, then stacked.
    ``transform=None`` returns ``x`` unchanged.

    Shape:
        - Input: one sample, e.g. (C, H, W), or a batch (N, C, H, W) with ``batched=True``
        - Output: what ``transform`` returns; per-image results are stacked along axis 0
    """
    if transform is None:
        return x
    if not batched or getattr(transform, "supports_batch", False):
        return transform(x)
    return np.stack([transform(xi) for xi in x])


class Transform:
    """Base class: a callable on an image (C, H, W) or a batch (N, C, H, W).

    Shape:
        - Input: (C, H, W) or (N, C, H, W), told apart by rank
        - Output: same rank as the input (see each transform)
    """

    supports_batch = True

    def __call__(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _args(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


class Compose(Transform):
    """Apply transforms in order: ``Compose([t1, t2])(x) == t2(t1(x))``.

    Batch-capable when every member is (see :func:`apply_transform`).

    Shape:
        - Input: what the first transform takes
        - Output: what the last transform returns
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise InvalidTypeError(f"Compose: {t!r} is not callable")

    @property
    def supports_batch(self) -> bool:  # type: ignore[override]
        return all(getattr(t, "supports_batch", False) for t in self.transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        if not self.transforms:
            return "Compose([])"
        body = "".join(f"    {t!r},\n" for t in self.transforms)
        return f"Compose([\n{body}])"


class Lambda(Transform):
    """Wrap a function as a transform.

    ``batched=True`` promises that ``fn`` also handles (N, C, H, W) batches
    in one call; otherwise batches are mapped image by image.

    Shape:
        - Input: (C, H, W); also (N, C, H, W) if ``batched=True``
        - Output: what ``fn`` returns
    """

    def __init__(self, fn, batched: bool = False):
        if not callable(fn):
            raise InvalidTypeError(f"Lambda: {fn!r} is not callable")
        self.fn = fn
        self.supports_batch = bool(batched)

    def __call__(self, x):
        return self.fn(x)

    def _args(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"{name}, batched={self.supports_batch}"


class ToFloat(Transform):
    """Convert pixels to floats: unsigned ints scaled to ``[0, 1]``.

    ``uint8`` becomes ``x / 255`` (``uint16`` ``x / 65535``); float input is
    only cast. ``dtype`` defaults to glassnet's default float (float32).

    Shape:
        - Input: any shape
        - Output: same shape as the input
    """

    def __init__(self, dtype=None):
        self.dtype = None if dtype is None else np.dtype(dtype)
        if self.dtype is not None and self.dtype.kind != "f":
            raise InvalidTypeError(f"ToFloat: dtype must be a float type, got {self.dtype}")

    def __call__(self, x):
        x = np.asarray(x)
        dtype = self.dtype if self.dtype is not None else get_default_dtype()
        if x.dtype.kind == "u":
            out = x.astype(dtype)
            out /= np.iinfo(x.dtype).max
            return out
        if x.dtype.kind == "f":
            return x.astype(dtype, copy=False)
        raise InvalidTypeError(
            f"ToFloat: cannot scale dtype {x.dtype} to [0, 1]; expected unsigned-int pixels or floats"
        )

    def _args(self) -> str:
        return "" if self.dtype is None else f"dtype={self.dtype}"


class Normalize(Transform):
    """Per-channel standardisation: ``(x - mean[c]) / std[c]``.

    ``mean`` and ``std`` are numbers or one value per channel. With single
    values it works on any shape; with per-channel values on (C, H, W) or
    (N, C, H, W). Needs float input (use :class:`ToFloat` first); the output
    keeps the input's float dtype.

    Shape:
        - Input: any shape with single ``mean``/``std`` values; (C, H, W) or
          (N, C, H, W) with per-channel values (C of them)
        - Output: same shape as the input
    """

    def __init__(self, mean, std):
        self.mean = tuple(float(m) for m in np.atleast_1d(np.asarray(mean, dtype=np.float64)))
        self.std = tuple(float(s) for s in np.atleast_1d(np.asarray(std, dtype=np.float64)))
        if len(self.mean) != len(self.std):
            raise InvalidArgumentError(f"Normalize: mean has {len(self.mean)} values but std has {len(self.std)}")
        if not self.mean:
            raise InvalidArgumentError("Normalize: mean and std must not be empty")
        if min(self.std) <= 0:
            raise InvalidArgumentError(f"Normalize: std must be > 0, got {self.std}")

    def __call__(self, x):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise InvalidTypeError(
                f"Normalize: got {x.dtype} input; it expects floats in [0, 1]. "
                "Datasets pass uint8 images to transforms, so put ToFloat() first: "
                "Compose([..., ToFloat(), Normalize(mean, std)])"
            )
        if len(self.mean) == 1:
            mean = np.asarray(self.mean[0], dtype=x.dtype)
            std = np.asarray(self.std[0], dtype=x.dtype)
        else:
            batched = _is_batch(x, "Normalize")
            c = x.shape[1] if batched else x.shape[0]
            if c != len(self.mean):
                raise ShapeError(
                    f"Normalize: input {tuple(x.shape)} has {c} channels but mean/std have "
                    f"{len(self.mean)} values"
                )
            mean = np.asarray(self.mean, dtype=x.dtype).reshape(-1, 1, 1)
            std = np.asarray(self.std, dtype=x.dtype).reshape(-1, 1, 1)
        return (x - mean) / std

    def _args(self) -> str:
        return f"mean={self.mean}, std={self.std}"


class Flatten(Transform):
    """Flatten each image to a vector, e.g. for an MLP. Put it last.

    Shape:
        - Input: (C, H, W) or (N, C, H, W)
        - Output: (C*H*W,) or (N, C*H*W)
    """

    def __call__(self, x):
        x = np.asarray(x)
        if _is_batch(x, "Flatten"):
            return x.reshape(x.shape[0], -1)
        return x.reshape(-1)


def _random_windows(x, out_hw, pad_hw, fill, rng, who):
    """Cut an ``out_hw`` window at a random position from every image, after
    padding H and W by ``pad_hw`` on both sides with ``fill``."""
    x = np.asarray(x)
    batched = _is_batch(x, who)
    xb = x if batched else x[None]
    n, c, h, w = xb.shape
    ph, pw = pad_hw
    oh, ow = out_hw
    hp, wp = h + 2 * ph, w + 2 * pw
    if oh > hp or ow > wp:
        raise ShapeError(
            f"{who}: a {oh}x{ow} window does not fit in a {h}x{w} image padded by "
            f"{pad_hw} (= {hp}x{wp})"
        )
    if ph or pw:
        xb = np.pad(xb, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=fill)
    top = rng.integers(0, hp - oh + 1, size=n)
    left = rng.integers(0, wp - ow + 1, size=n)
    rows = (top[:, None] + np.arange(oh))[:, None, :, None]      # (N, 1, oh, 1)
    cols = (left[:, None] + np.arange(ow))[:, None, None, :]     # (N, 1, 1, ow)
    out = xb[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]
    return out if batched else out[0]


class RandomCrop(Transform):
    """Pad by ``padding`` (with ``fill``), then cut a random ``size`` window.

    ``size`` and ``padding`` are an int or an (h, w) pair. The classic
    CIFAR/AlexNet-style augmentation: ``RandomCrop(28, padding=4)`` on 28x28
    images shifts each image by up to 4 pixels.

    Shape:
        - Input: (C, H, W) or (N, C, H, W)
        - Output: (C, h, w) or (N, C, h, w) with ``(h, w) = size``; needs
          ``h <= H + 2*padding_h`` and ``w <= W + 2*padding_w``
    """

    def __init__(self, size, padding=0, fill=0, seed=None, *, rng=None):
        self.size = _pair(size, "size", "RandomCrop")
        if min(self.size) < 1:
            raise InvalidArgumentError(f"RandomCrop: size must be >= 1, got {self.size}")
        self.padding = _pair(padding, "padding", "RandomCrop")
        self.fill = fill
        self.seed = seed
        self.rng = _make_rng(seed, rng, "RandomCrop")

    def __call__(self, x):
        return _random_windows(x, self.size, self.padding, self.fill, self.rng, "RandomCrop")

    def _args(self) -> str:
        return f"size={self.size}, padding={self.padding}, fill={self.fill}, seed={self.seed}"


class RandomTranslate(Transform):
    """Shift each image by a random whole number of pixels, at most
    ``max_shift`` (an int or a (dy, dx) pair) in each direction; the
    uncovered border is filled with ``fill``. The image size is unchanged.

    Shape:
        - Input: (C, H, W) or (N, C, H, W)
        - Output: same shape as the input
    """

    def __init__(self, max_shift, fill=0, seed=None, *, rng=None):
        self.max_shift = _pair(max_shift, "max_shift", "RandomTranslate")
        self.fill = fill
        self.seed = seed
        self.rng = _make_rng(seed, rng, "RandomTranslate")

    def __call__(self, x):
        x = np.asarray(x)
        _is_batch(x, "RandomTranslate")
        # Shifting by (dy, dx) = cutting an HxW window at offset
        # (m - dy, m - dx) from the image padded by m.
        return _random_windows(x, x.shape[-2:], self.max_shift, self.fill, self.rng, "RandomTranslate")

    def _args(self) -> str:
        return f"max_shift={self.max_shift}, fill={self.fill}, seed={self.seed}"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right (along W) with probability ``p``.

    Shape:
        - Input: (C, H, W) or (N, C, H, W)
        - Output: same shape as the input (a copy when a batch or flipped)
    """

    def __init__(self, p=0.5, seed=None, *, rng=None):
        if not 0.0 <= p <= 1.0:
            raise InvalidArgumentError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.seed = seed
        self.rng = _make_rng(seed, rng, "RandomHorizontalFlip")

    def __call__(self, x):
        x = np.asarray(x)
        if _is_batch(x, "RandomHorizontalFlip"):
            flip = self.rng.random(x.shape[0]) < self.p
            out = x.copy()
            out[flip] = x[flip, ..., ::-1]
            return out
        if self.rng.random() < self.p:
            return x[..., ::-1].copy()
        return x

    def _args(self) -> str:
        return f"p={self.p}, seed={self.seed}"
