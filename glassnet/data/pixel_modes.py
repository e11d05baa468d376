"""Converting decoded uint8 pixels between ``"RGB"`` and ``"L"``, bit for bit as Pillow's ``convert``.

The decoded-image cache records the mode it was built in; a cache read in the other mode
(:class:`~glassnet.data.ImageCache` ``mode=``, ``ImageFolder(..., cache=...)``) converts each
image here as it is read:

* ``"L"`` -> ``"RGB"``: the gray plane replicated into R, G and B (``Image.convert("RGB")``);
* ``"RGB"`` -> ``"L"``: ITU-R 601-2 luma, ``L = R * 299/1000 + G * 587/1000 + B * 114/1000``,
  computed as Pillow computes it (``libImaging/Convert.c``, ``L24``): in 16-bit fixed point,
  ``(R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`` -- the weights are 299/1000 etc. times
  65536, rounded, and ``0x8000`` rounds the result to nearest.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError, ShapeError

__all__ = ["MODE_CHANNELS", "convert_mode", "rgb_to_luma"]

#: channels of each mode
MODE_CHANNELS = {"RGB": 3, "L": 1}
#: Pillow's luma weights in 16-bit fixed point (299/1000, 587/1000, 114/1000 times 2**16, rounded)
_LUMA = (19595, 38470, 7471)


def rgb_to_luma(x: np.ndarray) -> np.ndarray:
    """Pillow's ``convert("L")`` of RGB planes.

    Shape:
        - x: (..., 3, H, W) uint8 (channel axis third from last)
        - Output: (..., 1, H, W) uint8
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim < 3 or x.shape[-3] != 3:
        raise ShapeError(f"rgb_to_luma: expected uint8 (..., 3, H, W), got {x.dtype} {x.shape}")
    r, g, b = (x[..., c:c + 1, :, :].astype(np.uint32) for c in range(3))
    acc = r * _LUMA[0]
    acc += g * _LUMA[1]
    acc += b * _LUMA[2]
    acc += 0x8000
    acc >>= 16
    return acc.astype(np.uint8)


def convert_mode(x: np.ndarray, have: str, want: str) -> np.ndarray:
    """``x`` (mode ``have``) in mode ``want``, as Pillow's ``convert`` gives it; ``x`` itself when the
    modes agree.

    Shape:
        - x: (..., C_have, H, W) uint8
        - Output: (..., C_want, H, W) uint8, C = 3 for "RGB", 1 for "L"
    """
    for m in (have, want):
        if m not in MODE_CHANNELS:
            raise InvalidArgumentError(f"convert_mode: mode must be 'RGB' or 'L', got {m!r}")
    if have == want:
        return x
    if have == "RGB":
        return rgb_to_luma(x)
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim < 3 or x.shape[-3] != 1:
        raise ShapeError(f"convert_mode: expected uint8 (..., 1, H, W) for mode 'L', got {x.dtype} {x.shape}")
    return np.repeat(x, 3, axis=-3)
