"""Classifying image files with a trained run: :func:`load_image` reads one safely, :func:`predict_images`
gives each its top-k classes (what ``glassnet predict`` prints).

    model, config = glassnet.io.load_run("runs/small_cnn")
    for r in predict_images(model, config, ["shirt.png", "boot.jpg"], top_k=3):
        print(r["path"], r["top"])

Each image is converted to the model's channels (RGB for colour runs,
grayscale for Fashion-MNIST models). For MNIST-like runs it is resized to the
model's input size (28×28 by default), optionally inverted (Fashion-MNIST and
MNIST are light objects on a black background), and normalised exactly as in
training (:func:`glassnet.io.preprocess_transform`). Photo runs (a folder or
CIFAR) keep the photo's aspect ratio: its shorter side is resized to the run's
``eval_resize`` (else to the input size) and the run's own evaluation
pipeline does the rest (resize, centre crop to ``image_size``, normalize).
Needs Pillow: ``pip install glassnet[image]``.

Hostile files are refused before they cost anything: an image declaring more
than ``--max-pixels`` (:data:`MAX_PIXELS`) pixels is not decoded (a
"decompression bomb" PNG can declare 50000×50000 in a few hundred bytes);
16-bit, 32-bit and float images are read by their real range; the EXIF
orientation is applied; truncated, corrupt, animated and unsupported files
raise :class:`~glassnet.errors.DataFormatError` naming the file.
"""
from __future__ import annotations

import io
import warnings

import numpy as np

from ..errors import DataFormatError, GlassnetError, InvalidArgumentError, LimitExceededError, MissingDependencyError


class PillowMissingError(MissingDependencyError):
    """Pillow is not installed."""


__all__ = ["MAX_PIXELS", "PillowMissingError", "load_image", "predict_images", "require_pillow"]


def require_pillow():
    """The ``PIL.Image`` module; :class:`PillowMissingError` (how to install it) without Pillow."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise PillowMissingError(
            f"reading images needs Pillow, which is not installed ({exc}); install it with: "
            "pip install glassnet[image]") from exc
    return Image


#: the most pixels (width x height) an image may declare before glassnet refuses to
#: decode it: 64 Mi pixels, above a 48-megapixel photo (8064 x 6048), far below the
#: 50000 x 50000 a few-kilobyte "decompression bomb" PNG can declare
MAX_PIXELS = 64 * 1024 * 1024
# 8-bit modes Pillow converts to L / RGB by itself (CMYK without a colour profile)
_MODES_8BIT = ("1", "L", "P", "LA", "PA", "La", "RGB", "RGBA", "RGBX", "RGBa", "YCbCr", "CMYK")
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
# single-channel modes with more than 8 bits, read by their real range
_MODES_WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _read_image_file(path) -> bytes:
    from ..data.decode import _read

    return _read(path, str(path))


def _open_checked(path, max_pixels: int):
    """Open ``path`` with Pillow, check its declared size and kind, decode it and
    apply its EXIF orientation; every failure is a glassnet error naming the file."""
    Image = require_pillow()
    from PIL import ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # from the bytes in memory: a file's read(n) allocates n bytes, and a PNG chunk may declare 2 GiB
            img = Image.open(io.BytesIO(_read_image_file(path)))  # lazy: reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceededError(
            f"{path}: the image declares more pixels than Pillow decodes safely ({exc}); refusing to "
            f"decode it (glassnet's limit is max_pixels={max_pixels}, Pillow's Image.MAX_IMAGE_PIXELS "
            f"applies too)", limit_name="max_pixels", limit=max_pixels) from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many kinds for a malformed file
        raise _unreadable(path, exc) from exc
    with img:
        w, h = img.size
        if w * h > max_pixels:
            raise LimitExceededError(
                f"{path}: the image declares {w}x{h} = {w * h} pixels, more than max_pixels={max_pixels}; "
                "refusing to decode it (a decompression bomb, or pass a larger max_pixels / --max-pixels "
                "if the file is trusted)", limit_name="max_pixels", needed=w * h, limit=max_pixels)
        if w == 0 or h == 0:
            raise DataFormatError(f"{path}: the image is empty ({w}x{h} pixels)")
        try:
            animated = bool(getattr(img, "is_animated", False))
        except MemoryError:
            raise
        except Exception as exc:  # is_animated seeks to the second frame
            raise _unreadable(path, exc) from exc
        if animated:
            raise DataFormatError(f"{path}: the image has several frames (animated or multi-page); "
                                  "glassnet predict classifies single images: save the frame you mean as a PNG")
        if img.mode not in _MODES_8BIT + _MODES_WIDE:
            raise DataFormatError(
                f"{path}: images of mode {img.mode!r} are not supported; supported: "
                f"{', '.join(_MODES_8BIT + _MODES_WIDE)} (convert it to RGB or grayscale first)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
                return ImageOps.exif_transpose(img)  # a new image, upright
        except MemoryError:
            raise
        except Exception as exc:  # truncated data, a decoder error, broken EXIF
            raise _unreadable(path, exc) from exc


def _unreadable(path, exc) -> DataFormatError:
    return DataFormatError(f"{path}: cannot read the image: {type(exc).__name__}: {exc}")


def _wide_to_unit(path, img) -> np.ndarray:
    """A 16-bit ("I;16"), 32-bit int ("I") or float ("F") image as float32 in [0, 1],
    scaled by its real range (not clipped to 255 as Pillow's own conversion does)."""
    a = np.asarray(img)
    if img.mode.startswith("I;16"):
        return a.astype(np.float32) / 65535.0
    if img.mode == "I":  # how Pillow holds 16-bit TIFFs and PNGs from other writers
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 65535:
            raise DataFormatError(
                f"{path}: 32-bit integer pixels range over {lo}..{hi}; glassnet reads mode 'I' images "
                "as 16-bit (0..65535) and cannot tell what range these have (save it as 8- or 16-bit)")
        return a.astype(np.float32) / 65535.0
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise DataFormatError(f"{path}: the float image has NaN or infinite pixels")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise DataFormatError(
            f"{path}: float pixels range over {lo:g}..{hi:g}; float images must hold values in [0, 1] "
            "(save it as an 8- or 16-bit image, or scale it to [0, 1])")
    return a


def load_image(path, in_channels: int = 1, size=(28, 28), invert: bool = False, *,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 (in_channels, H, W) the way the model wants it.

    The image's declared size is checked before anything is decoded (more than
    ``max_pixels`` pixels, or more than Pillow's own ``Image.MAX_IMAGE_PIXELS``,
    raises :class:`~glassnet.errors.LimitExceededError`); its EXIF orientation
    is applied. Transparent pixels are composited onto white; colour becomes
    grayscale for ``in_channels=1`` (grayscale is replicated for ``in_channels=3``);
    16-bit, 32-bit integer and float grayscale images are scaled by their real
    range (65535, or [0, 1] for floats) before being quantised to 8 bits; the
    image is resized (bilinear, antialiased) to ``size`` (H, W), or kept at its
    own size with ``size=None``; ``invert`` maps each pixel v to 255 - v.

    Raises :class:`~glassnet.errors.DataFormatError` naming the file for
    anything it cannot read properly: not an image, truncated or corrupt data,
    several frames (animated GIF/PNG, multi-page TIFF), an unsupported mode,
    float pixels outside [0, 1].

    Shape:
        - Output: (in_channels, H, W) uint8 with (H, W) = ``size`` (the image's own with ``size=None``)
    """
    if in_channels not in (1, 3):
        raise InvalidArgumentError(f"{path}: the model takes {in_channels} input channels; "
                                   "only 1 (grayscale) and 3 (RGB) images are supported")
    Image = require_pillow()
    img = _open_checked(path, int(max_pixels))
    w, h = img.size if size is None else (size[1], size[0])
    try:
        if img.mode in _MODES_WIDE:
            unit = Image.fromarray(_wide_to_unit(path, img))  # mode "F"
            if unit.size != (w, h):
                unit = unit.resize((w, h), Image.BILINEAR)
            a = np.clip(np.rint(np.asarray(unit, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
            if in_channels == 3:
                a = np.repeat(a[:, :, None], 3, axis=2)
        else:
            if img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            img = img.convert("L" if in_channels == 1 else "RGB")
            if img.size != (w, h):
                img = img.resize((w, h), Image.BILINEAR)
            a = np.asarray(img, dtype=np.uint8)
    except (GlassnetError, MemoryError):
        raise
    except Exception as exc:  # a conversion Pillow cannot do for this file
        raise _unreadable(path, exc) from exc
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    if invert:
        a = 255 - a
    return np.ascontiguousarray(a)


def _model_inputs(config, images) -> np.ndarray:
    """The model's input batch for decoded uint8 images: MNIST-like runs' images are already at the
    input size; a photo run's go one by one through ``Resize(shorter side)`` and the run's pipeline."""
    from ..data import transforms as T
    from ..io.run_dir import image_size
    from .run_inputs import is_photo_run, run_preprocess

    pipeline = run_preprocess(config)
    if not is_photo_run(config):
        return pipeline(np.stack(images))
    shorter = int(config.get("eval_resize") or min(image_size(config)))
    resize = T.Resize(shorter)  # a no-op when the run's pipeline resizes to the same size
    return np.stack([pipeline(resize(img)) for img in images])


def predict_images(model, config, paths, invert: bool = False, top_k: int = 3, *,
                   max_pixels: int = MAX_PIXELS) -> list[dict]:
    """Classify image files with a loaded run (``glassnet.io.load_run``).

    Returns one dict per image: ``path``, ``probs`` ((num_classes,) float64
    softmax), ``top`` (the ``top_k`` (class name, probability) pairs, most
    probable first) and ``border_mean`` (the mean of the outermost pixels, in
    [0, 1], after any inversion). Images are read by :func:`load_image`
    (``max_pixels`` is its limit; photo runs decode at full size, RGB for 3 input
    channels); a file it cannot read raises a glassnet error naming the file.
    """
    from ..autograd import no_grad
    from ..backend import to_numpy
    from ..io.run_dir import class_names, image_size
    from ..tensor import Tensor
    from .run_inputs import is_photo_run
    from ..train.metrics import softmax

    names = class_names(config)
    in_channels = int(config.get("in_channels") or 1)
    size = None if is_photo_run(config) else image_size(config)
    images = [load_image(p, in_channels, size, invert, max_pixels=max_pixels) for p in paths]
    if not images:
        return []
    x = _model_inputs(config, images)
    model.eval()
    with no_grad():
        probs = softmax(to_numpy(model(Tensor(x)).data))
    k = max(1, min(int(top_k), probs.shape[1]))
    results = []
    for path, img, p in zip(paths, images, probs):
        order = np.argsort(-p, kind="stable")[:k]
        frame = np.concatenate([img[:, 0].ravel(), img[:, -1].ravel(), img[:, :, 0].ravel(), img[:, :, -1].ravel()])
        results.append({"path": str(path), "probs": p, "border_mean": float(frame.mean() / 255.0),
                        "top": [(names[i] if i < len(names) else str(i), float(p[i])) for i in order]})
    return results
