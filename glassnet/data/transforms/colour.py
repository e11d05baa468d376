"""Colour augmentation: :class:`ColorJitter` (torchvision's) and :class:`PCALighting` (AlexNet's).

ColorJitter works on ``uint8`` images exactly as torchvision does on a PIL
image (Pillow's ``ImageEnhance``): each adjustment is a blend
``out = trunc(clip(degenerate + f * (img - degenerate), 0, 255))`` computed in
float32 and stored back as uint8 before the next one, where ``degenerate`` is

* brightness: black;
* contrast: the mean of the grayscale image, ``int(mean + 0.5)``;
* saturation: the grayscale image;

and grayscale is Pillow's ``L = (19595 R + 38470 G + 7471 B + 2**15) >> 16``
(0.299 / 0.587 / 0.114 in 16-bit fixed point). Hue rotates H in Pillow's
8-bit HSV by ``int(hue_factor * 255)`` (mod 256): done by Pillow itself.
"""
from __future__ import annotations

import numbers

import numpy as np

from ...errors import InvalidArgumentError, InvalidTypeError, ShapeError
from .base import Transform, _generators, _is_batch, _make_rng, _per_image
from ._pil import check_uint8_image, from_pil, pil_image_module, to_pil
from .constants import IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC

__all__ = ["ColorJitter", "PCALighting"]


def _grayscale(x):
    """Pillow's "L" of a (3, H, W) uint8 image, as int32 (H, W)."""
    r, g, b = (x[k].astype(np.int32) for k in range(3))
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16


def _blend(degenerate, x, factor):
    """Pillow's ``Image.blend(degenerate, x, factor)`` on uint8 arrays (``degenerate`` broadcasts)."""
    deg = np.asarray(degenerate, dtype=np.float32)
    out = x.astype(np.float32)
    out -= deg
    out *= np.float32(factor)
    out += deg
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)


def _adjust_brightness(x, f):
    return _blend(np.float32(0), x, f)


def _adjust_contrast(x, f):
    gray = _grayscale(x) if x.shape[0] == 3 else x[0]
    mean = int(float(gray.sum(dtype=np.int64)) / gray.size + 0.5)
    return _blend(np.float32(mean), x, f)


def _adjust_saturation(x, f):
    if x.shape[0] != 3:
        return x      # Pillow: a grayscale image is its own degenerate
    return _blend(_grayscale(x)[None], x, f)


def _adjust_hue(x, f):
    if x.shape[0] != 3:
        return x
    Image = pil_image_module("ColorJitter(hue=...)")
    hsv = to_pil(x).convert("HSV")
    planes = np.array(hsv)
    planes[..., 0] += np.int32(f * 255).astype(np.uint8)     # wraps around, as torchvision's
    return from_pil(Image.frombytes("HSV", hsv.size, planes.tobytes()).convert("RGB"))


_ADJUST = (_adjust_brightness, _adjust_contrast, _adjust_saturation, _adjust_hue)


def _check_input(value, name, center=1.0, bound=(0.0, float("inf")), clip_first_on_zero=True):
    """torchvision's ``ColorJitter._check_input``: a number v -> [center - v, center + v], or a pair."""
    who = "ColorJitter"
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        if value < 0:
            raise InvalidArgumentError(f"{who}: {name} must be a non-negative number, got {value}")
        value = [center - float(value), center + float(value)]
        if clip_first_on_zero:
            value[0] = max(value[0], 0.0)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        value = [float(value[0]), float(value[1])]
    else:
        raise InvalidTypeError(f"{who}: {name} must be a number or a (min, max) pair, got {value!r}")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise InvalidArgumentError(f"{who}: {name} must satisfy {bound[0]} <= min <= max <= {bound[1]}, "
                                   f"got {tuple(value)}")
    return None if value[0] == value[1] == center else tuple(value)


class ColorJitter(Transform):
    """Randomly change brightness, contrast, saturation and hue, torchvision's ``ColorJitter``.

    ``brightness``, ``contrast``, ``saturation``: a number ``v`` draws the factor
    from ``U(max(0, 1 - v), 1 + v)``, a pair ``(lo, hi)`` from ``U(lo, hi)``;
    ``hue``: ``v`` in [0, 0.5] draws from ``U(-v, v)``. Per image the four are
    applied in a random order (:meth:`get_params`: a permutation, then one
    factor per enabled adjustment, in that order), each with Pillow's
    semantics (module docstring), so with the same parameters the pixels equal
    torchvision's on a PIL image. Grayscale images (C = 1) get brightness and
    contrast; saturation and hue leave them unchanged (as Pillow does).

    Shape:
        - Input: (C, H, W) or (N, C, H, W), uint8, C = 1 or 3
        - Output: same shape, uint8
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, *, seed=None, rng=None):
        self.brightness = _check_input(brightness, "brightness")
        self.contrast = _check_input(contrast, "contrast")
        self.saturation = _check_input(saturation, "saturation")
        self.hue = _check_input(hue, "hue", center=0.0, bound=(-0.5, 0.5), clip_first_on_zero=False)
        self.seed = seed
        self.rng = _make_rng(seed, rng, "ColorJitter")

    @staticmethod
    def get_params(brightness, contrast, saturation, hue, rng):
        """``(order, b, c, s, h)``: a permutation of the adjustments (0 brightness, 1 contrast,
        2 saturation, 3 hue) and a factor for each (None where it is off), drawn from ``rng``
        in torchvision's order."""
        order = rng.permutation(4)
        factors = [None if r is None else float(rng.uniform(r[0], r[1]))
                   for r in (brightness, contrast, saturation, hue)]
        return (order, *factors)

    @staticmethod
    def apply(x, order, brightness=None, contrast=None, saturation=None, hue=None):
        """Apply the adjustments with the given factors to one uint8 image (C, H, W), in ``order``."""
        factors = (brightness, contrast, saturation, hue)
        for k in order:
            if factors[k] is not None:
                x = _ADJUST[k](x, factors[k])
        return x

    def _one(self, x, gen):
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation, self.hue, gen)
        return self.apply(x, order, *factors)

    def __call__(self, x, rng=None):
        x = check_uint8_image(x, "ColorJitter")
        if x.shape[-3] not in (1, 3):
            raise ShapeError(f"ColorJitter: needs 1 (grayscale) or 3 (RGB) channels, got input {tuple(x.shape)}")
        if x.ndim == 3:
            return self._one(x, _generators(self.rng, rng, None, "ColorJitter"))
        gens = _per_image(_generators(self.rng, rng, x.shape[0], "ColorJitter"), x.shape[0])
        return np.stack([self._one(xi, g) for xi, g in zip(x, gens)])

    def _args(self) -> str:
        return (f"brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation}, "
                f"hue={self.hue}, seed={self.seed}")


class PCALighting(Transform):
    """AlexNet's PCA colour augmentation ("fancy PCA", Krizhevsky et al. 2012, section 4.1),
    as fb.resnet.torch's ``Lighting``: every pixel of an image gets the same RGB shift
    ``eigvec @ (alpha * eigval)`` with ``alpha ~ N(0, alphastd)`` (three draws per image).

    ``eigval`` / ``eigvec`` (columns are eigenvectors) default to ImageNet's
    RGB covariance on the ``[0, 1]`` scale (:data:`IMAGENET_PCA_EIGVAL`,
    :data:`IMAGENET_PCA_EIGVEC`), so this works on floats after
    :class:`ToFloat` and before :class:`Normalize`; the result is not
    clipped. ``alphastd=0`` is the identity (no draws). torchvision has no
    equivalent.

    Shape:
        - Input: (3, H, W) or (N, 3, H, W), float
        - Output: same shape and dtype
    """

    def __init__(self, alphastd=0.1, eigval=IMAGENET_PCA_EIGVAL, eigvec=IMAGENET_PCA_EIGVEC, *, seed=None, rng=None):
        self.alphastd = float(alphastd)
        if not self.alphastd >= 0:
            raise InvalidArgumentError(f"PCALighting: alphastd must be >= 0, got {alphastd}")
        self.eigval = np.asarray(eigval, dtype=np.float64)
        self.eigvec = np.asarray(eigvec, dtype=np.float64)
        if self.eigval.shape != (3,) or self.eigvec.shape != (3, 3):
            raise ShapeError(f"PCALighting: eigval must be (3,) and eigvec (3, 3), got "
                             f"{self.eigval.shape} and {self.eigvec.shape}")
        self.seed = seed
        self.rng = _make_rng(seed, rng, "PCALighting")

    def shift(self, alpha):
        """The RGB shift(s) for ``alpha`` (3,) or (N, 3): ``eigvec @ (alpha * eigval)``."""
        return (np.asarray(alpha) * self.eigval) @ self.eigvec.T

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        batched = _is_batch(x, "PCALighting")
        if x.dtype.kind != "f":
            raise InvalidTypeError(f"PCALighting: got {x.dtype} input; it works on floats in [0, 1] (the scale "
                                   "of its eigenvalues), so put ToFloat() first")
        if x.shape[-3] != 3:
            raise ShapeError(f"PCALighting: needs RGB images (3 channels), got input {tuple(x.shape)}")
        if self.alphastd == 0:
            return x
        n = x.shape[0] if batched else None
        gens = _generators(self.rng, rng, n, "PCALighting")
        if isinstance(gens, list):
            alpha = np.stack([g.normal(0.0, self.alphastd, size=3) for g in gens])
        else:
            alpha = gens.normal(0.0, self.alphastd, size=3 if n is None else (n, 3))
        rgb = self.shift(alpha).astype(x.dtype)
        return x + rgb[..., None, None]

    def _args(self) -> str:
        return f"alphastd={self.alphastd}, seed={self.seed}"
