"""Decoding image files to (C, H, W) uint8 arrays, with Pillow and, for JPEG, simplejpeg.

    x = decode_image("photo.jpg")                       # (3, H, W) uint8
    x = decode_image("photo.jpg", decode_size=256)      # shorter side >= 256, via reduced DCT

What comes out is what torchvision's ``pil_loader`` gives (``Image.open(f).convert("RGB")``),
as an array: grayscale is replicated, a palette is looked up (transparency ignored), CMYK goes
through Pillow's conversion, and the alpha of RGBA / LA / PA is dropped, not composited (as
``convert("RGB")`` does). ``mode="L"`` gives Pillow's ``convert("L")`` (ITU-R 601-2 luma). GIF,
animated PNG/WebP and multi-page TIFF give their first frame. The EXIF orientation is ignored,
as torchvision ignores it. Where glassnet differs from ``convert``:

* 16-bit grayscale (``"I;16"`` PNG/TIFF) and 32-bit integer (``"I"``, holding 0..65535) pixels
  ``v`` become ``(v + 128) // 257`` -- ``round(v / 257)``, so 65535 -> 255 and an 8-bit value
  ``k`` stored as ``257 k`` comes back as ``k``. Pillow's ``convert`` clips them to 255 instead,
  which turns most 16-bit photos white. Float (``"F"``) pixels must lie in [0, 1] and become
  ``round(255 v)``. Other ranges raise :class:`~glassnet.errors.DataFormatError`.

Limits: an image declaring more than ``max_pixels`` pixels (:data:`MAX_PIXELS`) is refused
before a pixel is decoded (:class:`~glassnet.errors.LimitExceededError`), as is a file larger
than :data:`MAX_FILE_BYTES`; Pillow's own decompression-bomb warning is an error too. A file
that cannot be decoded (not an image, truncated, corrupt) raises
:class:`~glassnet.errors.DataFormatError` naming the file.

Reduced-size decoding
---------------------
A JPEG can be decoded at 1/2, 1/4 or 1/8 of its size for much less work (the scaled inverse
DCT). ``decode_size=S`` means "this image's shorter side will be resized to S or less": the
image is decoded at the smallest of those scales whose shorter side is still >= S (Pillow's
``draft`` rule: scale ``s`` is the largest of 8, 4, 2, 1 with ``s <= min(W // S, H // S)``;
the decoded size is ``ceil(W / s) x ceil(H / s)``). Other formats ignore it. Pillow
(``draft``) and simplejpeg (``min_height``/``min_width``) decode the same pixels at the same
scale (checked in tests), so the backend never changes the data. Without ``decode_size`` the
full image is decoded, bit-identical to torchvision's loader.
"""
from __future__ import annotations

import io
import os
import warnings

import numpy as np

from ..errors import DataFormatError, InvalidArgumentError, LimitExceededError, MissingDependencyError

__all__ = ["decode_image", "verify_image", "check_decode_args", "jpeg_scale", "have_simplejpeg", "MAX_PIXELS", "MAX_FILE_BYTES",
           "BACKENDS"]

#: the most pixels (width x height) an image may declare: 64 Mi, above a 48-megapixel photo
MAX_PIXELS = 64 * 1024 * 1024
#: the largest image file read into memory (1 GiB)
MAX_FILE_BYTES = 1 << 30
#: the ``backend`` values: "auto" (simplejpeg for JPEG where installed), "pil", "simplejpeg"
BACKENDS = ("auto", "pil", "simplejpeg")

_JPEG_MAGIC = b"\xff\xd8\xff"
_WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_SJ_COLOUR = ("YCbCr", "RGB", "Gray")          # JPEG colour spaces simplejpeg decodes as Pillow does

try:  # pragma: no cover - depends on the machine
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover
    _simplejpeg = None


def have_simplejpeg() -> bool:
    """Whether simplejpeg is installed (``pip install glassnet[image]`` brings it)."""
    return _simplejpeg is not None


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise MissingDependencyError(f"decoding images needs Pillow ({exc}): pip install glassnet[image]") from exc
    return Image


def jpeg_scale(width: int, height: int, decode_size) -> int:
    """The reduced-DCT divisor (1, 2, 4 or 8) for a ``width x height`` JPEG whose shorter side
    is to stay >= ``decode_size`` (``None``: 1). Pillow's ``draft`` rule, see the module docstring."""
    if decode_size is None:
        return 1
    scale = min(width // decode_size, height // decode_size)
    for s in (8, 4, 2, 1):
        if scale >= s:
            return s
    return 1


def check_decode_args(who: str, mode, decode_size, backend, max_pixels) -> None:
    """Raise InvalidArgumentError (naming ``who``) unless the decoding options are valid."""
    if mode not in ("RGB", "L"):
        raise InvalidArgumentError(f"{who}: mode must be 'RGB' or 'L', got {mode!r}")
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"{who}: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "simplejpeg" and _simplejpeg is None:
        raise MissingDependencyError(f"{who}: backend='simplejpeg' needs simplejpeg: pip install simplejpeg")
    if decode_size is not None and (isinstance(decode_size, bool) or not isinstance(decode_size, int)
                                    or decode_size < 1):
        raise InvalidArgumentError(f"{who}: decode_size must be None or an int >= 1, got {decode_size!r}")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise InvalidArgumentError(f"{who}: max_pixels must be an int >= 1, got {max_pixels!r}")


def _check_pixels(name, w, h, max_pixels):
    if w * h > max_pixels:
        raise LimitExceededError(
            f"{name}: the image declares {w}x{h} = {w * h} pixels, more than max_pixels={max_pixels}; "
            "refusing to decode it (a decompression bomb, or pass a larger max_pixels if the file is trusted)",
            limit_name="max_pixels", needed=w * h, limit=max_pixels)
    if w < 1 or h < 1:
        raise DataFormatError(f"{name}: the image is empty ({w}x{h} pixels)")


def _read(path, name) -> bytes:
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise LimitExceededError(f"{name}: the file is {size} bytes, more than an image file may be "
                                     f"({MAX_FILE_BYTES} bytes, MAX_FILE_BYTES)", limit_name="MAX_FILE_BYTES",
                                     needed=size, limit=MAX_FILE_BYTES)
        with open(path, "rb") as f:  # read(n) allocates n bytes up front: ask for what the file holds
            return f.read(size)
    except OSError as exc:
        raise DataFormatError(f"{name}: cannot read the file: {exc.strerror or exc}") from exc


def _unreadable(name, exc) -> DataFormatError:
    return DataFormatError(f"{name}: cannot decode the image: {type(exc).__name__}: {exc}")


def _to_chw(a: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (C, H, W), a view of the pixel-interleaved memory (no copy)."""
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _simplejpeg_decode(data, name, mode, decode_size, max_pixels):
    """The image via simplejpeg, or None where Pillow must decide (CMYK, a recoverable error)."""
    try:
        h, w, colour, _ = _simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None                      # let Pillow give its verdict on a broken header
    if colour not in _SJ_COLOUR:
        return None                      # CMYK / YCCK: Pillow's own conversion
    _check_pixels(name, w, h, max_pixels)
    s = jpeg_scale(w, h, decode_size)
    want = ((h + s - 1) // s, (w + s - 1) // s)
    kind = "GRAY" if mode == "L" and colour == "Gray" else "RGB"
    try:
        a = _simplejpeg.decode_jpeg(data, kind, min_height=want[0] if s > 1 else 0,
                                    min_width=want[1] if s > 1 else 0)
    except ValueError:
        return None                      # truncated or corrupt: Pillow decides (it may accept a warning)
    if a.shape[:2] != want:              # pragma: no cover - a libjpeg-turbo that scales otherwise
        return None
    if kind == "GRAY":
        return a[:, :, 0][None]
    if mode == "L":                      # Pillow's own luma, so both backends agree bit for bit
        Image = _pil()
        return np.asarray(Image.frombuffer("RGB", (a.shape[1], a.shape[0]), a, "raw", "RGB", 0, 1)
                          .convert("L"))[None]
    return _to_chw(a)


def _wide(img, name, mode):
    """A 16-bit / 32-bit integer / float single-channel image as uint8 (see the module docstring)."""
    a = np.asarray(img)
    if img.mode == "F":
        a = a.astype(np.float32)
        if not np.isfinite(a).all() or (a.size and (a.min() < 0 or a.max() > 1)):
            raise DataFormatError(f"{name}: float pixels must lie in [0, 1], got {np.nanmin(a):g}..{np.nanmax(a):g} "
                                  "(save it as an 8- or 16-bit image)")
        u8 = np.rint(a * 255).astype(np.uint8)
    else:
        a = a.astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise DataFormatError(f"{name}: 32-bit integer pixels range over {a.min()}..{a.max()}; glassnet reads "
                                  "mode 'I' images as 16-bit (0..65535) (save it as an 8- or 16-bit image)")
        u8 = ((a + 128) // 257).astype(np.uint8)
    return u8[None] if mode == "L" else np.repeat(u8[:, :, None], 3, axis=2).transpose(2, 0, 1)


def _open(Image, source, name, max_pixels):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if not isinstance(source, io.IOBase):  # a path: Pillow must read from the bytes in memory, where
                source = io.BytesIO(_read(source, name))  # read(n) gives what is there (a file's read(n) allocates n:
            img = Image.open(source)                       # a PNG chunk declaring 2 GiB) -- lazy: the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceededError(f"{name}: Pillow refuses to decode the image as a decompression bomb ({exc})",
                                 limit_name="max_pixels", limit=max_pixels) from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many kinds for a malformed file
        raise _unreadable(name, exc) from exc
    try:
        _check_pixels(name, *img.size, max_pixels)
    except BaseException:
        img.close()
        raise
    return img


def _pil_decode(source, name, mode, decode_size, max_pixels):
    Image = _pil()
    img = _open(Image, source, name, max_pixels)
    with img:
        try:
            if img.format == "JPEG" and decode_size is not None:
                s = jpeg_scale(*img.size, decode_size)
                if s > 1:
                    img.draft(img.mode, (img.size[0] // s, img.size[1] // s))
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                warnings.simplefilter("ignore", UserWarning)   # "palette with transparency": ignored as by convert
                img.load()
                if img.mode in _WIDE or img.mode == "F":
                    return _wide(img, name, mode)
                out = img if img.mode == mode else img.convert(mode)
                return _to_chw(np.asarray(out))
        except (DataFormatError, MemoryError):
            raise
        except Exception as exc:  # truncated data, a decoder error, a mode Pillow cannot convert
            raise _unreadable(name, exc) from exc


def decode_image(source, mode: str = "RGB", *, decode_size: int | None = None, max_pixels: int = MAX_PIXELS,
                 backend: str = "auto", name=None) -> np.ndarray:
    """Decode an image file (a path, or its bytes) to a (C, H, W) uint8 array.

    Args:
        source: a path, or the file's bytes.
        mode: ``"RGB"`` (C = 3) or ``"L"`` (C = 1); see the module docstring for the conversions.
        decode_size: decode a JPEG at a reduced DCT scale whose shorter side stays >= this
            (``None``: full size).
        max_pixels: refuse images declaring more pixels than this, before decoding.
        backend: ``"auto"`` (simplejpeg for JPEG where installed, else Pillow), ``"pil"``, ``"simplejpeg"``
            (JPEG only through simplejpeg; other formats still go through Pillow).
        name: what errors call the file (default: ``source`` itself, or ``"<bytes>"``).

    Shape:
        - Output: (C, H, W) uint8, C = 3 for "RGB", 1 for "L": a view of pixel-interleaved
          (H, W, C) memory, as ``np.asarray(pil_image).transpose(2, 0, 1)`` (read-only; copy it
          to write into it). With ``decode_size`` a JPEG comes out at ``ceil(W / s) x ceil(H / s)``.
    """
    check_decode_args("decode_image", mode, decode_size, backend, max_pixels)
    is_bytes = isinstance(source, (bytes, bytearray, memoryview))
    name = str(name if name is not None else ("<bytes>" if is_bytes else source))
    data = bytes(source) if is_bytes else None
    if backend != "pil" and _simplejpeg is not None:
        if data is None:
            data = _read(source, name)
        if data[:3] == _JPEG_MAGIC:
            out = _simplejpeg_decode(data, name, mode, decode_size, max_pixels)
            if out is not None:
                return out
    import io
    return _pil_decode(io.BytesIO(data) if data is not None else source, name, mode, decode_size, max_pixels)


def verify_image(path, *, max_pixels: int = MAX_PIXELS) -> None:
    """Raise what :func:`decode_image` would raise for ``path``, more cheaply where possible.

    Every byte of the file is still read and entropy-decoded (a JPEG is decoded at 1/8 scale,
    which finds truncated and corrupt data as a full decode does; other formats are decoded
    whole), so a file that passes decodes. Used by ``ImageFolder(on_error="skip")`` and
    ``glassnet prepare``.
    """
    Image = _pil()
    name = str(path)
    img = _open(Image, path, name, max_pixels)
    with img:
        try:
            if img.format == "JPEG":
                img.draft(img.mode, (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                warnings.simplefilter("ignore", UserWarning)
                img.load()
                if img.mode in _WIDE or img.mode == "F":
                    _wide(img, name, "L")
                elif img.mode not in ("RGB", "L"):
                    img.convert("RGB")
        except (DataFormatError, MemoryError):
            raise
        except Exception as exc:
            raise _unreadable(name, exc) from exc
