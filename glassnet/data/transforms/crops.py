"""Deterministic crops: :class:`CenterCrop` and the test-time :class:`FiveCrop` / :class:`TenCrop`.

Pure slicing, any dtype, torchvision's offsets: the centre box starts at
``round((H - h) / 2)`` (Python's round, halves to even), the corners at 0 and
``H - h`` / ``W - w``. A batch (N, C, H, W) is cut in one slice for all images.
"""
from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from .base import Transform, _is_batch, _size

__all__ = ["CenterCrop", "FiveCrop", "TenCrop"]


def _center_crop(x, oh: int, ow: int):
    """torchvision's ``center_crop`` on the last two axes: zero-pad (left/top get the smaller half)
    where the crop is larger than the image, then cut the centred box."""
    h, w = x.shape[-2:]
    if oh > h or ow > w:
        pad_t, pad_b = ((oh - h) // 2, (oh - h + 1) // 2) if oh > h else (0, 0)
        pad_l, pad_r = ((ow - w) // 2, (ow - w + 1) // 2) if ow > w else (0, 0)
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad_t, pad_b), (pad_l, pad_r)])
        h, w = x.shape[-2:]
        if (h, w) == (oh, ow):
            return x
    top = int(round((h - oh) / 2.0))
    left = int(round((w - ow) / 2.0))
    return x[..., top:top + oh, left:left + ow].copy()


def _five(x, oh: int, ow: int, who: str):
    """(tl, tr, bl, br, centre) of (..., H, W) stacked on a new axis just before C."""
    h, w = x.shape[-2:]
    if oh > h or ow > w:
        raise ShapeError(f"{who}: a {oh}x{ow} crop is larger than the {h}x{w} image "
                         f"(input {tuple(x.shape)}); resize first, e.g. Resize({max(oh, ow)})")
    crops = [x[..., :oh, :ow], x[..., :oh, w - ow:], x[..., h - oh:, :ow], x[..., h - oh:, w - ow:],
             _center_crop(x, oh, ow)]
    return np.stack(crops, axis=x.ndim - 3)


class CenterCrop(Transform):
    """Cut the central ``size`` box (an int or (h, w)), as torchvision's ``CenterCrop``:
    offset ``round((H - h) / 2)``; a crop larger than the image zero-pads it first
    (the extra ``(h - H) // 2`` rows on top, the rest below; the same for columns).

    Shape:
        - Input: (C, H, W) or (N, C, H, W), any dtype
        - Output: (C, h, w) or (N, C, h, w)

    Examples:
        >>> import numpy as np
        >>> from glassnet.data.transforms import CenterCrop
        >>> CenterCrop(3)(np.arange(25).reshape(1, 5, 5))[0]
        array([[ 6,  7,  8],
               [11, 12, 13],
               [16, 17, 18]])
        >>> CenterCrop(224)(np.zeros((3, 256, 256))).shape
        (3, 224, 224)
    """

    def __init__(self, size):
        self.size = _size(size, "CenterCrop")

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        _is_batch(x, "CenterCrop")
        return _center_crop(x, *self.size)

    def _args(self) -> str:
        return f"size={self.size}"


class FiveCrop(Transform):
    """The four corner crops and the central crop of ``size`` (AlexNet's test-time crops),
    in torchvision's order (top-left, top-right, bottom-left, bottom-right, centre),
    stacked into one array instead of torchvision's tuple. A crop larger than the
    image is a ShapeError (torchvision raises too).

    To classify, run the model on the crops and average: for a batch
    ``y = model(x.reshape(-1, C, h, w)).reshape(N, 5, -1).mean(1)``.

    Shape:
        - Input: (C, H, W) or (N, C, H, W), any dtype
        - Output: (5, C, h, w) or (N, 5, C, h, w)
    """

    def __init__(self, size):
        self.size = _size(size, "FiveCrop")

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        _is_batch(x, "FiveCrop")
        return _five(x, *self.size, "FiveCrop")

    def _args(self) -> str:
        return f"size={self.size}"


class TenCrop(Transform):
    """:class:`FiveCrop` of the image, then of its mirror image (left-right, or
    top-bottom with ``vertical_flip=True``): torchvision's ``TenCrop`` order, stacked.

    Shape:
        - Input: (C, H, W) or (N, C, H, W), any dtype
        - Output: (10, C, h, w) or (N, 10, C, h, w)
    """

    def __init__(self, size, vertical_flip: bool = False):
        self.size = _size(size, "TenCrop")
        self.vertical_flip = bool(vertical_flip)

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        _is_batch(x, "TenCrop")
        flipped = x[..., ::-1, :] if self.vertical_flip else x[..., ::-1]
        axis = x.ndim - 3
        return np.concatenate([_five(x, *self.size, "TenCrop"), _five(flipped, *self.size, "TenCrop")], axis=axis)

    def _args(self) -> str:
        return f"size={self.size}, vertical_flip={self.vertical_flip}"
