"""``glassnet plot``: pictures of a trained run, written as PNGs into ``RUN/plots/``.

    glassnet plot runs/small_cnn                 # curves, confusion matrix, filters, activations
    glassnet plot runs/small_cnn --image-index 7 --out /tmp/plots

What is drawn is :func:`glassnet.inference.plots.make_plots`; this module parses the options.
Needs matplotlib: ``pip install glassnet[plot]``.
"""
from __future__ import annotations

from ..inference.plots import make_plots
from ..inference.run_inputs import check_run_data_root
from ._args import check_int


def add_parser(sub) -> None:
    """Add the ``plot`` subcommand to the ``glassnet`` argument parser's subparsers ``sub``."""
    p = sub.add_parser("plot", help="PNG plots of a run: learning curves, confusion matrix, filters, activations")
    p.add_argument("run", metavar="RUN", help="run folder written by `glassnet train`")
    p.add_argument("--image-index", type=int, default=0, help="test image whose activations are drawn (default 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default RUN/plots)")
    p.add_argument("--which", choices=["best", "last"], default="best", help="checkpoint to load (default best)")
    p.add_argument("--data-root", default=None, help="folder with the dataset's files (default: the run's)")
    p.add_argument("--limit", type=int, default=None, help="confusion matrix on the first N test images only")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per batch (default: 500 at 28x28, fewer for larger images)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args) -> int:
    """``glassnet plot``: write the run's PNGs (see :func:`make_plots`); errors reach
    :func:`glassnet.cli.main` (one line on stderr)."""
    check_int("batch_size", args.batch_size, 1, optional=True)
    check_int("limit", args.limit, 1, optional=True)
    if args.data_root is not None:
        check_run_data_root(args.run, args.data_root)
    make_plots(args.run, args.out, args.image_index, args.which, args.data_root, args.limit,
               args.batch_size, progress=not args.no_progress)
    return 0
