"""The edge between glassnet's CHW uint8 arrays and Pillow images.

Resizing goes through Pillow's ``Image.resize`` because that is what
torchvision runs on a PIL image: the same C code, so glassnet's output equals
torchvision's bit for bit (Pillow's antialiased filters are separable
fixed-point convolutions whose support grows with the scale factor, with a
``uint8`` rounding between the horizontal and the vertical pass; a float
NumPy filter is neither bit-identical nor faster).

The conversion copies only the crop box in (Pillow unpacks straight from the
array's memory: an (H, W, C)-contiguous view such as
``np.asarray(pil_image).transpose(2, 0, 1)`` in one pass, a (C, H, W)-contiguous
array plane by plane) and the result out as planes, so the output is a
C-contiguous (C, h, w) array and no NumPy transpose ever runs. Images mapped
from NumPy memory are read-only and never returned.
"""
from __future__ import annotations

import numbers

import numpy as np

from ...errors import InvalidArgumentError, InvalidTypeError, MissingDependencyError, ShapeError

#: Interpolation names (torchvision's ``InterpolationMode`` values) -> Pillow filter numbers.
FILTERS = {"nearest": 0, "nearest-exact": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}
_FROM_PIL = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def pil_image_module(who: str):
    """``PIL.Image``, or MissingDependencyError naming the extra to install."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise MissingDependencyError(f"{who} resizes with Pillow: pip install glassnet[image]") from exc
    return Image


def interpolation_name(value, who: str) -> str:
    """A torchvision interpolation (a name, an ``InterpolationMode``, or a Pillow filter number) as its name."""
    name = getattr(value, "value", value)      # torchvision's InterpolationMode is an Enum of names
    if isinstance(name, numbers.Integral) and not isinstance(name, bool):
        name = _FROM_PIL.get(int(name), name)
    if isinstance(name, str) and name.lower() in FILTERS:
        return name.lower()
    raise InvalidArgumentError(f"{who}: interpolation must be one of {sorted(FILTERS)}, got {value!r}")


def check_uint8_image(x, who: str, batch_ok: bool = True):
    """``x`` as an array; ShapeError/InvalidTypeError unless (C, H, W) (or (N, C, H, W)) uint8 with H, W >= 1."""
    x = np.asarray(x)
    if x.ndim != 3 and not (batch_ok and x.ndim == 4):
        want = "one image (C, H, W) or a batch (N, C, H, W)" if batch_ok else "one image (C, H, W)"
        raise ShapeError(f"{who}: expected {want}, got shape {tuple(x.shape)}")
    if x.dtype != np.uint8:
        raise InvalidTypeError(
            f"{who}: needs uint8 pixels (as datasets and decoders produce), got {x.dtype}; "
            "put it before ToFloat()")
    if x.shape[-1] < 1 or x.shape[-2] < 1 or x.shape[-3] < 1:
        raise ShapeError(f"{who}: got an empty image, shape {tuple(x.shape)}")
    return x


def _rows(a):
    """``a`` (rows, ...) if its rows are C-contiguous, else a C-contiguous copy."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def to_pil(x, box=None):
    """One (C, H, W) uint8 image, cropped to ``box`` = (top, left, height, width), as a Pillow image
    ("L" for C = 1, "RGB" for C = 3), copying only the box. Reads an (H, W, C)-contiguous view
    (what ``np.asarray(pil).transpose(2, 0, 1)`` gives) and a (C, H, W)-contiguous array alike."""
    Image = pil_image_module("resize")
    c, h_img, w_img = x.shape
    top, left, h, w = (0, 0, h_img, w_img) if box is None else box
    if c == 3 and _pixel_interleaved(x):
        buf = x.transpose(1, 2, 0)[top:top + h].reshape(-1)[left * 3:]
        return Image.frombuffer("RGB", (w, h), buf, "raw", "RGB", w_img * 3, 1)
    planes = []
    for k in range(c):                                           # planar memory: one "L" per channel
        rows = _rows(x[k, top:top + h])
        im = Image.frombuffer("L", (rows.shape[1], h), rows, "raw", "L", 0, 1)
        planes.append(im.crop((left, 0, left + w, h)) if w != rows.shape[1] or left else im)
    return planes[0] if c == 1 else Image.merge("RGB", planes)


def from_pil(im):
    """A Pillow "L" or "RGB" image as a C-contiguous (C, h, w) uint8 array (writable)."""
    w, h = im.size
    out = np.empty((len(im.mode), h, w), np.uint8)
    for k, band in enumerate(im.mode):
        out[k] = np.frombuffer(im.tobytes("raw", band), np.uint8).reshape(h, w)
    return out


def _pixel_interleaved(x) -> bool:
    """True when a (C, H, W) array's memory is (H, W, C)-contiguous (a decoder's or Pillow's layout)."""
    return x.transpose(1, 2, 0).flags.c_contiguous


def _resize_planes(x, box, out_hw, filt):
    """Each channel of a (C, H, W) array cropped to ``box`` and resized as its own "L" image, written
    plane by plane into a new C-contiguous (C, h, w) array.

    Pillow resamples every band of an 8-bit image with the same fixed-point
    filter (one band of "L", four interleaved bytes of "RGB"), so this equals
    the "RGB" resize bit for bit; on planar memory (the image cache's rows) it
    skips the merge into 4-byte pixels and the split back, and each band
    resampled on its own is one byte per pixel: 0.73 -> 0.64 ms per 224 crop
    of a 256 x 256 image (BENCHMARKS.md, 2026-12-04)."""
    Image = pil_image_module("resize")
    top, left, h, w = box
    oh, ow = out_hw
    out = np.empty((x.shape[0], oh, ow), np.uint8)
    for k in range(x.shape[0]):
        band = Image.fromarray(x[k, top:top + h, left:left + w])   # copies the box only
        out[k] = np.asarray(band.resize((ow, oh), filt))
    return out


def resize_chw(x, out_hw, interpolation: str, box=None):
    """Resize one (C, H, W) uint8 image to ``out_hw`` = (h, w) with Pillow, after cropping to
    ``box`` = (top, left, height, width) when given (crop first, then resize, as torchvision's
    ``resized_crop``: pixels outside the box never contribute).

    Pixel-interleaved RGB memory (a decoded photo) goes through one "RGB"
    image; planar memory (the image cache) and other channel counts are
    resized one channel at a time as "L" images -- the same result: Pillow
    filters each band on its own with the same coefficients. Returns a
    C-contiguous, writable (C, h, w) array.
    """
    c, height, width = x.shape
    box = (0, 0, height, width) if box is None else box
    top, left, h, w = box
    oh, ow = out_hw
    if (h, w) == (oh, ow):
        return np.array(x[:, top:top + h, left:left + w], order="C")
    filt = FILTERS[interpolation]
    if c == 3 and _pixel_interleaved(x):
        return from_pil(to_pil(x, box).resize((ow, oh), filt))
    return _resize_planes(x, box, out_hw, filt)
