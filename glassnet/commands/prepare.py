"""``glassnet prepare``: decode a folder of photos once into an image cache.

    glassnet prepare photos/train --size 256 --out cache/train
    glassnet prepare photos/train --size 256 --out cache/train --workers 4 --skip-bad

Each image's shorter side is resized to ``--size`` and its centre ``size x size`` kept, into one
memory-mapped uint8 array plus an index (file list, labels, classes, a fingerprint of the
folder): see :mod:`glassnet.data.image_cache`. Read it with ``glassnet.data.ImageCache``;
rerun the same command to rebuild a stale cache (the old one stays valid until the new one is
complete).
"""
from __future__ import annotations

import sys
import warnings

from ._args import check_int


def add_parser(sub) -> None:
    """Add the ``prepare`` subcommand to the ``glassnet`` argument parser's subparsers ``sub``."""
    p = sub.add_parser("prepare", help="decode a class-per-folder image folder once into a memory-mapped cache")
    p.add_argument("folder", metavar="DIR", help="image folder: one subfolder of images per class")
    p.add_argument("--out", required=True, metavar="CACHE", help="the cache folder to write (created)")
    p.add_argument("--size", type=int, default=256,
                   help="shorter side resized to this, then the centre SIZE x SIZE kept (default 256)")
    p.add_argument("--mode", choices=["RGB", "L"], default="RGB", help="RGB (3 channels, default) or L (grayscale)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per CPU, up to 8)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out files that cannot be decoded (listed) instead of stopping at the first")
    p.add_argument("--fast-decode", action="store_true",
                   help="decode JPEGs at a reduced DCT scale still >= SIZE (faster on large photos; "
                        "pixels differ slightly from a full decode)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="refuse images declaring more than N pixels, before decoding them")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args) -> int:
    """``glassnet prepare``: write the cache, print one line describing it; errors reach cli.main."""
    from ..data.cache_prepare import prepare_image_cache
    from ..data.decode import MAX_PIXELS
    from ..data.image_cache import ImageCache

    check_int("size", args.size, 1)
    check_int("workers", args.workers, 1, optional=True)
    check_int("max_pixels", args.max_pixels, 1, optional=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = prepare_image_cache(args.folder, args.out, size=args.size, mode=args.mode, workers=args.workers,
                                  on_error="skip" if args.skip_bad else "raise", fast_decode=args.fast_decode,
                                  max_pixels=args.max_pixels or MAX_PIXELS, progress=not args.no_progress)
    for w in caught:
        print(f"glassnet prepare: warning: {w.message}", file=sys.stderr)
    cache = ImageCache(out, source=None)
    n, c, h, w = cache.images.shape
    print(f"wrote {out}: {n} images of {c}x{h}x{w} ({cache.images.nbytes / 2**20:.1f} MiB), "
          f"{len(cache.classes)} classes" + (f", {len(cache.skipped)} files skipped" if cache.skipped else ""))
    return 0
