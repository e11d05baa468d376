"""Pixel-value transforms: :class:`ToFloat`, :class:`Normalize`, :class:`Flatten`.

Deterministic, whole-array NumPy on one image or a batch; ``rng`` is accepted
and ignored.
"""
from __future__ import annotations

import numpy as np

from ...backend import get_default_dtype
from ...errors import InvalidArgumentError, InvalidTypeError, ShapeError
from .base import Transform, _is_batch

__all__ = ["ToFloat", "Normalize", "Flatten"]


class ToFloat(Transform):
    """Convert pixels to floats: unsigned ints scaled to ``[0, 1]``.

    ``uint8`` becomes ``x / 255`` (``uint16`` ``x / 65535``); float input is
    only cast. ``dtype`` defaults to glassnet's default float (float32). The
    values are those of torchvision's ``ToTensor`` (``x.float() / 255``) bit
    for bit; the layout (C, H, W) is unchanged (``ToTensor`` also moves HWC to
    CHW, which glassnet's images already are).

    Shape:
        - Input: any shape
        - Output: same shape as the input
    """

    def __init__(self, dtype=None):
        self.dtype = None if dtype is None else np.dtype(dtype)
        if self.dtype is not None and self.dtype.kind != "f":
            raise InvalidTypeError(f"ToFloat: dtype must be a float type, got {self.dtype}")

    def __call__(self, x, rng=None):
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

    ``mean`` and ``std`` are numbers or one value per channel, e.g.
    ``Normalize(IMAGENET_MEAN, IMAGENET_STD)``. With single values it works on
    any shape; with per-channel values on (C, H, W) or (N, C, H, W). Needs
    float input (use :class:`ToFloat` first); the output keeps the input's
    float dtype and equals torchvision's ``Normalize`` (same float ops).

    Shape:
        - Input: any shape with single ``mean``/``std`` values; (C, H, W) or
          (N, C, H, W) with per-channel values (C of them)
        - Output: same shape as the input

    Examples:
        >>> import numpy as np
        >>> from glassnet.data.transforms import Normalize
        >>> x = np.full((3, 2, 2), 0.5, dtype=np.float32)          # (C, H, W)
        >>> Normalize((0.5, 0.25, 0.0), (0.5, 0.25, 0.5))(x)[:, 0, 0]
        array([0., 1., 1.], dtype=float32)
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
        self._cache = {}

    def _constants(self, dtype):
        """(mean, std) as arrays of ``dtype`` shaped to broadcast over (C, H, W)."""
        got = self._cache.get(dtype)
        if got is None:
            shape = () if len(self.mean) == 1 else (-1, 1, 1)
            got = (np.asarray(self.mean, dtype=dtype).reshape(shape),
                   np.asarray(self.std, dtype=dtype).reshape(shape))
            self._cache[dtype] = got
        return got

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise InvalidTypeError(
                f"Normalize: got {x.dtype} input; it expects floats in [0, 1]. "
                "Datasets pass uint8 images to transforms, so put ToFloat() first: "
                "Compose([..., ToFloat(), Normalize(mean, std)])"
            )
        if len(self.mean) > 1:
            batched = _is_batch(x, "Normalize")
            c = x.shape[1] if batched else x.shape[0]
            if c != len(self.mean):
                raise ShapeError(
                    f"Normalize: input {tuple(x.shape)} has {c} channels but mean/std have "
                    f"{len(self.mean)} values"
                )
        mean, std = self._constants(x.dtype)
        out = x - mean
        out /= std
        return out

    def _args(self) -> str:
        return f"mean={self.mean}, std={self.std}"


class Flatten(Transform):
    """Flatten each image to a vector, e.g. for an MLP. Put it last.

    Shape:
        - Input: (C, H, W) or (N, C, H, W)
        - Output: (C*H*W,) or (N, C*H*W)
    """

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if _is_batch(x, "Flatten"):
            return x.reshape(x.shape[0], -1)
        return x.reshape(-1)
