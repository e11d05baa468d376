"""``glassnet predict``: classify image files with a trained run.

    glassnet predict runs/small_cnn shirt.png boot.jpg --top-k 3
    glassnet predict runs/small_cnn photo.jpg --invert     # dark object on a light background

Each image is converted to the model's channels (grayscale for Fashion-MNIST
models), resized to the model's input size (28×28 by default), scaled to
[0, 1], optionally inverted (Fashion-MNIST and MNIST are light objects on a
black background), and normalised exactly as in training
(:func:`glassnet.io.preprocess_transform`). Needs Pillow: ``pip install glassnet[image]``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ..errors import InvalidArgumentError, MissingDependencyError


class PillowMissingError(MissingDependencyError):
    """Pillow is not installed."""


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify image files with a trained run (top-k classes)")
    p.add_argument("run", metavar="RUN", help="run folder written by `glassnet train`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image file(s): PNG, JPEG, ...")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to print per image (default 3)")
    p.add_argument("--invert", action="store_true",
                   help="invert the pixels (for dark objects on a light background; the datasets are light-on-dark)")
    p.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint to load (default best)")
    p.set_defaults(handler=run)


def _pil_image():
    try:
        from PIL import Image
    except ImportError as exc:
        raise PillowMissingError(
            f"reading images needs Pillow, which is not installed ({exc}); install it with: "
            "pip install glassnet[image]") from exc
    return Image


def load_image(path, in_channels: int = 1, size=(28, 28), invert: bool = False) -> np.ndarray:
    """Read an image file as uint8 (in_channels, H, W) the way the model wants it.

    Transparent pixels are composited onto white; colour becomes grayscale
    for ``in_channels=1`` (grayscale is replicated for ``in_channels=3``);
    the image is resized (bilinear, antialiased) to ``size`` (H, W);
    ``invert`` maps each pixel v to 255 - v.
    """
    Image = _pil_image()
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            if in_channels == 1:
                img = img.convert("L")
            elif in_channels == 3:
                img = img.convert("RGB")
            else:
                raise InvalidArgumentError(f"{path}: the model takes {in_channels} input channels; "
                                 "only 1 (grayscale) and 3 (RGB) images are supported")
            h, w = size
            if img.size != (w, h):
                img = img.resize((w, h), Image.BILINEAR)
            a = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError) as exc:  # PIL.UnidentifiedImageError is an OSError
        raise InvalidArgumentError(f"{path}: cannot read the image: {exc}") from exc
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    if invert:
        a = 255 - a
    return np.ascontiguousarray(a)


def predict_images(model, config, paths, invert: bool = False, top_k: int = 3) -> list[dict]:
    """Classify image files with a loaded run (``glassnet.io.load_run``).

    Returns one dict per image: ``path``, ``probs`` ((num_classes,) float64
    softmax), ``top`` (the ``top_k`` (class name, probability) pairs, most
    probable first) and ``mean_pixel`` (in [0, 1], after any inversion).
    """
    from ..autograd import no_grad
    from ..backend import to_numpy
    from ..io.run_dir import class_names, image_size, preprocess_transform
    from ..tensor import Tensor
    from .evaluate import softmax

    names = class_names(config)
    in_channels = int(config.get("in_channels") or 1)
    size = image_size(config)
    images = [load_image(p, in_channels, size, invert) for p in paths]
    if not images:
        return []
    batch = np.stack(images)
    x = preprocess_transform(config)(batch)
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


def run(args) -> int:
    from ..errors import StateDictError
    from ..io.run_dir import load_run

    if args.top_k < 1:
        raise SystemExit(f"glassnet predict: --top-k must be >= 1, got {args.top_k}")
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"glassnet predict: no such image file: {', '.join(missing)}")
    try:
        _pil_image()
        model, config = load_run(args.run, which=args.which)
        results = predict_images(model, config, args.images, args.invert, args.top_k)
    except PillowMissingError as exc:
        raise SystemExit(f"glassnet predict: {exc}")
    except (FileNotFoundError, StateDictError, ValueError) as exc:
        raise SystemExit(f"glassnet predict: {exc}")
    width = max(len(name) for r in results for name, _ in r["top"])
    for r in results:
        print(f"{r['path']}:")
        for rank, (name, prob) in enumerate(r["top"], 1):
            print(f"  {rank}. {name:<{width}}  {100 * prob:6.2f}%")
        if not args.invert and r["border_mean"] > 0.5:
            print("  note: this image has a light background; the training images are light objects on "
                  "a black background, so --invert may give better predictions")
    return 0
