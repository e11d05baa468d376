"""Resizing: :class:`Resize` and :class:`RandomResizedCrop`, torchvision's
names, parameters, defaults and output sizes, computed by Pillow as
torchvision computes them on a PIL image (so the pixels are the same).

Both need ``uint8`` images (C, H, W), C = 1 (grayscale) or 3 (RGB; other C
work channel by channel). A batch (N, C, H, W) is resized image by image
(Pillow works on one image), each with its own random box.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ...errors import InvalidArgumentError
from .base import Transform, _generators, _make_rng, _per_image, _size
from ._pil import check_uint8_image, interpolation_name, resize_chw

__all__ = ["Resize", "RandomResizedCrop"]


def _antialias(antialias, who: str) -> None:
    if antialias is False:
        warnings.warn(f"{who}: antialias=False is ignored; glassnet resizes as torchvision does a PIL "
                      "image, always antialiased", UserWarning, stacklevel=3)


def _resize_size(size, who: str):
    """``size`` as an int (shorter side) or an (h, w) pair."""
    if isinstance(size, (list, tuple)) and len(size) == 1:
        size = size[0]
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        if size < 1:
            raise InvalidArgumentError(f"{who}: size must be >= 1, got {size}")
        return int(size)
    return _size(size, who)


def output_size(hw, size, max_size=None) -> tuple[int, int]:
    """torchvision's ``_compute_resized_output_size``: the (h, w) that ``Resize(size, max_size=...)``
    gives an ``hw`` = (H, W) image. An int ``size`` is the shorter side; the longer one is
    ``int(size * long / short)`` (truncated), then capped at ``max_size``."""
    h, w = hw
    if not isinstance(size, int):
        return tuple(size)
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    if max_size is not None and new_long > max_size:
        new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if w <= h else (new_short, new_long)


class Resize(Transform):
    """Resize to ``size``: an int matches the shorter side (aspect ratio kept,
    the longer side ``int(size * long / short)``, capped at ``max_size``); an
    (h, w) pair is the exact output size. ``interpolation`` is one of
    ``"bilinear"`` (default), ``"bicubic"``, ``"lanczos"``, ``"box"``,
    ``"hamming"``, ``"nearest"`` (or torchvision's ``InterpolationMode``).
    Antialiased, as torchvision on a PIL image: identical pixels.
    An image already of the output size is returned as is.

    Shape:
        - Input: (C, H, W) or (N, C, H, W), uint8
        - Output: (C, h, w) or (N, C, h, w), uint8
    """

    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=True):
        self.size = _resize_size(size, "Resize")
        self.interpolation = interpolation_name(interpolation, "Resize")
        if max_size is not None:
            if not isinstance(self.size, int):
                raise InvalidArgumentError("Resize: max_size needs an int size (the shorter side), "
                                           f"got size={self.size}")
            if max_size <= self.size:
                raise InvalidArgumentError(f"Resize: max_size = {max_size} must be greater than size = {self.size}")
        self.max_size = max_size
        _antialias(antialias, "Resize")
        self.antialias = antialias

    def __call__(self, x, rng=None):
        x = check_uint8_image(x, "Resize")
        out_hw = output_size(x.shape[-2:], self.size, self.max_size)
        if tuple(x.shape[-2:]) == out_hw:
            return x
        if x.ndim == 4:
            return np.stack([resize_chw(xi, out_hw, self.interpolation) for xi in x])
        return resize_chw(x, out_hw, self.interpolation)

    def _args(self) -> str:
        extra = "" if self.max_size is None else f", max_size={self.max_size}"
        return f"size={self.size}, interpolation={self.interpolation}{extra}"


def _range(v, name: str, who: str) -> tuple[float, float]:
    try:
        lo, hi = (float(a) for a in v)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{who}: {name} must be a (min, max) pair of numbers, got {v!r}") from None
    if not lo <= hi or not (math.isfinite(lo) and math.isfinite(hi)):
        raise InvalidArgumentError(f"{who}: {name} must be a finite (min, max) pair with min <= max, got {v!r}")
    return lo, hi


class RandomResizedCrop(Transform):
    """Crop a random box of random area and aspect ratio, then resize it to ``size``
    (the Inception / ResNet ImageNet augmentation; torchvision's defaults).

    The box comes from :meth:`get_params`, torchvision's algorithm: up to 10
    tries of an area ``U(scale) * H * W`` and a log-uniform aspect ratio in
    ``ratio``, ``w = round(sqrt(area * ratio))``, ``h = round(sqrt(area / ratio))``,
    accepted when it fits, at a uniform position; otherwise the centred box of
    the whole image clamped to ``ratio``. Crop then resize as
    ``Resize((h, w), interpolation)``. A batch draws one box per image (from
    ``rng[i]``, or from the one generator image after image, so a batch
    equals its images transformed one by one with the same generator).

    Shape:
        - Input: (C, H, W) or (N, C, H, W), uint8
        - Output: (C, h, w) or (N, C, h, w), uint8, ``(h, w) = size``
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation="bilinear",
                 antialias=True, *, seed=None, rng=None):
        who = "RandomResizedCrop"
        self.size = _size(size, who)
        self.scale = _range(scale, "scale", who)
        self.ratio = _range(ratio, "ratio", who)
        if self.scale[0] < 0:
            raise InvalidArgumentError(f"{who}: scale must be >= 0, got {scale!r}")
        if self.ratio[0] <= 0:
            raise InvalidArgumentError(f"{who}: ratio must be > 0, got {ratio!r}")
        self.interpolation = interpolation_name(interpolation, who)
        _antialias(antialias, who)
        self.antialias = antialias
        self.seed = seed
        self.rng = _make_rng(seed, rng, who)

    @staticmethod
    def get_params(img, scale, ratio, rng) -> tuple[int, int, int, int]:
        """A random box ``(top, left, height, width)`` in ``img`` (an array (..., H, W) or an (H, W) pair)
        drawn from ``rng``, by torchvision's ``RandomResizedCrop.get_params``: per try one uniform
        area fraction, one uniform log-ratio and, on success, the top then the left offset."""
        if isinstance(img, np.ndarray):
            height, width = img.shape[-2:]
        else:
            height, width = (int(a) for a in img)
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(scale[0], scale[1])
            aspect_ratio = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                i = int(rng.integers(0, height - h + 1))
                j = int(rng.integers(0, width - w + 1))
                return i, j, h, w
        # Fallback to a central crop
        in_ratio = float(width) / float(height)
        if in_ratio < min(ratio):
            w = width
            h = int(round(w / min(ratio)))
        elif in_ratio > max(ratio):
            h = height
            w = int(round(h * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, x, rng=None):
        x = check_uint8_image(x, "RandomResizedCrop")
        if x.ndim == 3:
            gen = _generators(self.rng, rng, None, "RandomResizedCrop")
            box = self.get_params(x, self.scale, self.ratio, gen)
            return resize_chw(x, self.size, self.interpolation, box)
        gens = _per_image(_generators(self.rng, rng, x.shape[0], "RandomResizedCrop"), x.shape[0])
        return np.stack([resize_chw(xi, self.size, self.interpolation, self.get_params(xi, self.scale, self.ratio, g))
                         for xi, g in zip(x, gens)])

    def _args(self) -> str:
        return (f"size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"interpolation={self.interpolation}, seed={self.seed}")
