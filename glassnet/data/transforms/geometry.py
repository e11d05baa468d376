"""Random geometry on equal-size images: :class:`RandomCrop`, :class:`RandomTranslate`,
:class:`RandomHorizontalFlip`.

Any dtype (cheapest on ``uint8``, so put them before ``ToFloat``). On a batch
the work is one fancy-indexing gather for all ``N`` images. With one
generator (a transform's own, or ``rng=g``) a batch draws all its parameters
in one go; with a list of ``N`` generators image ``i`` draws from ``rng[i]``
exactly as a per-image call would.
"""
from __future__ import annotations

import numpy as np

from ...errors import InvalidArgumentError, ShapeError
from .base import Transform, _generators, _is_batch, _make_rng, _pair

__all__ = ["RandomCrop", "RandomTranslate", "RandomHorizontalFlip"]


def _random_windows(x, out_hw, pad_hw, fill, gens, who):
    """Cut an ``out_hw`` window at a random position from every image, after
    padding H and W by ``pad_hw`` on both sides with ``fill``."""
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
    if isinstance(gens, list):      # image i: top then left from rng[i]
        top = np.empty(n, np.int64)
        left = np.empty(n, np.int64)
        for i, g in enumerate(gens):
            top[i] = g.integers(0, hp - oh + 1, size=1)[0]
            left[i] = g.integers(0, wp - ow + 1, size=1)[0]
    else:
        top = gens.integers(0, hp - oh + 1, size=n)
        left = gens.integers(0, wp - ow + 1, size=n)
    if n == 1:
        t, l = int(top[0]), int(left[0])
        out = xb[:, :, t:t + oh, l:l + ow].copy()
    else:
        rows = (top[:, None] + np.arange(oh))[:, None, :, None]      # (N, 1, oh, 1)
        cols = (left[:, None] + np.arange(ow))[:, None, None, :]     # (N, 1, 1, ow)
        out = xb[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]
    return out if batched else out[0]


class RandomCrop(Transform):
    """Pad by ``padding`` (with ``fill``), then cut a random ``size`` window.

    ``size`` and ``padding`` are an int or an (h, w) pair. The classic
    CIFAR/AlexNet-style augmentation: ``RandomCrop(28, padding=4)`` on 28x28
    images shifts each image by up to 4 pixels. ``rng`` in the call (a
    Generator, or a list of one per image of a batch) replaces the
    transform's own generator for that call.

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

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        gens = _generators(self.rng, rng, x.shape[0] if _is_batch(x, "RandomCrop") else None, "RandomCrop")
        return _random_windows(x, self.size, self.padding, self.fill, gens, "RandomCrop")

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

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        batched = _is_batch(x, "RandomTranslate")
        gens = _generators(self.rng, rng, x.shape[0] if batched else None, "RandomTranslate")
        # Shifting by (dy, dx) = cutting an HxW window at offset
        # (m - dy, m - dx) from the image padded by m.
        return _random_windows(x, x.shape[-2:], self.max_shift, self.fill, gens, "RandomTranslate")

    def _args(self) -> str:
        return f"max_shift={self.max_shift}, fill={self.fill}, seed={self.seed}"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right (along W) with probability ``p``
    (torchvision's ``RandomHorizontalFlip(p=0.5)``: one uniform draw per image,
    flipped when it is below ``p``).

    Shape:
        - Input: (C, H, W) or (N, C, H, W)
        - Output: same shape as the input (a copy when a batch or flipped)

    Examples:
        >>> import numpy as np
        >>> from glassnet.data.transforms import RandomHorizontalFlip
        >>> x = np.arange(6).reshape(1, 2, 3)
        >>> RandomHorizontalFlip(p=1.0)(x)[0]
        array([[2, 1, 0],
               [5, 4, 3]])
        >>> batch = np.stack([x] * 8)
        >>> a = RandomHorizontalFlip(seed=0)(batch)
        >>> bool(np.array_equal(a, RandomHorizontalFlip(seed=0)(batch)))    # seeded: the same draws
        True
    """

    def __init__(self, p=0.5, seed=None, *, rng=None):
        if not 0.0 <= p <= 1.0:
            raise InvalidArgumentError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.seed = seed
        self.rng = _make_rng(seed, rng, "RandomHorizontalFlip")

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if _is_batch(x, "RandomHorizontalFlip"):
            gens = _generators(self.rng, rng, x.shape[0], "RandomHorizontalFlip")
            if isinstance(gens, list):
                flip = np.array([g.random() < self.p for g in gens], dtype=bool)
            else:
                flip = gens.random(x.shape[0]) < self.p
            out = x.copy()
            out[flip] = x[flip, ..., ::-1]
            return out
        if _generators(self.rng, rng, None, "RandomHorizontalFlip").random() < self.p:
            return x[..., ::-1].copy()
        return x

    def _args(self) -> str:
        return f"p={self.p}, seed={self.seed}"
