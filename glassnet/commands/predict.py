"""``glassnet predict``: classify image files with a trained run.

    glassnet predict runs/small_cnn shirt.png boot.jpg --top-k 3
    glassnet predict runs/small_cnn photo.jpg --invert     # dark object on a light background
    glassnet predict runs/resnet18_flowers rose.jpg        # a colour photo run

How images are read, converted and refused (``--max-pixels``) is
:mod:`glassnet.inference.images`; this module parses the options and prints the top-k classes.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InvalidArgumentError, UsageError
from ..inference.images import MAX_PIXELS, predict_images, require_pillow
from ..inference.run_inputs import is_photo_run


def add_parser(sub) -> None:
    """Add the ``predict`` subcommand to the ``glassnet`` argument parser's subparsers ``sub``."""
    p = sub.add_parser("predict", help="classify image files with a trained run (top-k classes)")
    p.add_argument("run", metavar="RUN", help="run folder written by `glassnet train`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image file(s): PNG, JPEG, ...")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to print per image (default 3)")
    p.add_argument("--invert", action="store_true",
                   help="invert the pixels (for dark objects on a light background; the datasets are light-on-dark)")
    p.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint to load (default best)")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, metavar="N",
                   help=f"refuse images declaring more than N pixels, before decoding them (default {MAX_PIXELS})")
    p.set_defaults(handler=run)


def run(args) -> int:
    """Run ``glassnet predict`` with parsed ``args``. Bad input raises glassnet errors
    (:class:`~glassnet.errors.UsageError` for an option, a
    :class:`~glassnet.errors.DataFormatError` naming an image it cannot read...), which
    :func:`glassnet.cli.main` prints as one line on stderr."""
    from ..io.run_dir import load_run

    if isinstance(args.top_k, bool) or args.top_k < 1:
        raise UsageError(f"--top-k must be >= 1, got {args.top_k!r}")
    max_pixels = getattr(args, "max_pixels", MAX_PIXELS)
    if isinstance(max_pixels, bool) or max_pixels < 1:
        raise UsageError(f"--max-pixels must be >= 1, got {max_pixels!r}")
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise InvalidArgumentError(f"no such image file: {', '.join(missing)}")
    require_pillow()
    model, config = load_run(args.run, which=args.which)
    results = predict_images(model, config, args.images, args.invert, args.top_k, max_pixels=max_pixels)
    width = max(len(name) for r in results for name, _ in r["top"])
    for r in results:
        print(f"{r['path']}:")
        for rank, (name, prob) in enumerate(r["top"], 1):
            print(f"  {rank}. {name:<{width}}  {100 * prob:6.2f}%")
        if not args.invert and r["border_mean"] > 0.5 and not is_photo_run(config):
            print("  note: this image has a light background; the training images are light objects on "
                  "a black background, so --invert may give better predictions")
    return 0
