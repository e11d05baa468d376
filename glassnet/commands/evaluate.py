"""``glassnet evaluate``: test accuracy (top-1, top-5) of a trained run, per class, or of an ensemble of runs.

    glassnet evaluate runs/mlp                       # accuracy + per-class table -> runs/mlp/evaluation.json
    glassnet evaluate runs/alexnet --ten-crop        # AlexNet's test-time averaging over 10 crops
    glassnet evaluate --ensemble runs/a runs/b runs/c  # members' accuracies and their ensemble's

What is measured (top-5, ten-crop, ensembles) is :mod:`glassnet.inference.evaluation`; this
module parses the options, writes ``evaluation.json`` and prints the results.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError, UsageError
from ..inference.evaluation import ensemble_probabilities, evaluate_run
from ..inference.run_inputs import check_run_data_root
from ..train.history import write_text_atomic
from ..train.metrics import metrics
from ._args import check_int


def add_parser(sub) -> None:
    """Add the ``evaluate`` subcommand to the ``glassnet`` argument parser's subparsers ``sub``."""
    p = sub.add_parser("evaluate", help="test accuracy (top-1, top-5, per class) of trained runs, or of their ensemble")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s) written by `glassnet train`")
    p.add_argument("--ensemble", action="store_true",
                   help="average the runs' softmax outputs and report each member's and the ensemble's accuracy")
    p.add_argument("--ten-crop", action="store_true",
                   help="photo runs: average the softmax over 10 crops (4 corners + centre, and their mirror "
                        "images) of each resized test image, as AlexNet does")
    p.add_argument("--which", choices=["best", "last"], default="best",
                   help="checkpoint to load (default best; falls back to last, then model.npz)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per batch (default: 500 at 28x28, fewer for larger images)")
    p.add_argument("--data-root", default=None,
                   help="folder with the dataset's files (default: the run's, then search)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    p.add_argument("--json", default=None, metavar="PATH", help="--ensemble: also write the results to PATH")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


# ------------------------------------------------------------------ printing
def format_per_class(result: dict) -> str:
    """The per-class accuracy table of an :func:`~glassnet.inference.evaluation.evaluate_run` result."""
    rows = result["per_class"]
    width = max([len("class")] + [len(r["name"]) for r in rows])
    lines = [f"  {'#':>2}  {'class':<{width}}  {'accuracy':>8}  {'correct':>11}"]
    for r in rows:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        lines.append(f"  {r['class']:>2}  {r['name']:<{width}}  {acc:>8}  {r['correct']:>5}/{r['n']:<5}")
    return "\n".join(lines)


def _public(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("probs", "labels")}


def _write_json(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def _accuracy_text(r: dict) -> str:
    top5 = f", top-5 accuracy {r['top5_accuracy']:.4f}" if "top5_accuracy" in r else ""
    return f"accuracy {r['accuracy']:.4f}{top5}"


def run(args) -> int:
    """``glassnet evaluate``: write each run's ``evaluation.json`` and print its top-1 / top-5
    accuracy and per-class table (or, with ``--ensemble``, the members' and the ensemble's
    accuracies). Errors reach :func:`glassnet.cli.main` (one line on stderr)."""
    check_int("batch_size", args.batch_size, 1, optional=True)
    check_int("limit", args.limit, 1, optional=True)
    if args.data_root is not None:
        for run_dir in args.runs:
            check_run_data_root(run_dir, args.data_root)
    progress = not args.no_progress
    if args.ensemble:
        return _run_ensemble(args, progress)
    if args.json:
        raise UsageError("--json is for --ensemble; a single run's results go to RUN/evaluation.json")
    for run_dir in args.runs:
        result = evaluate_run(run_dir, args.which, args.data_root, args.limit, args.batch_size, progress,
                              ten_crop=args.ten_crop)
        out = Path(run_dir) / "evaluation.json"
        _write_json(out, _public(result))
        how = ", 10 crops each" if args.ten_crop else ""
        print(f"{run_dir}: test {_accuracy_text(result)} ({result['n']} images{how}, loss {result['loss']:.4f})")
        print(format_per_class(result))
        print(f"wrote {out}")
    return 0


def _run_ensemble(args, progress: bool) -> int:
    if len(args.runs) < 2:
        raise UsageError("--ensemble: give at least two run folders")
    members = []
    for run_dir in args.runs:
        members.append(evaluate_run(run_dir, args.which, args.data_root, args.limit, args.batch_size, progress,
                                    ten_crop=args.ten_crop))
    first = members[0]
    for m in members[1:]:
        if m["dataset"] != first["dataset"] or m["probs"].shape != first["probs"].shape \
                or not np.array_equal(m["labels"], first["labels"]):
            raise InvalidArgumentError(
                f"--ensemble: {m['run']} ({m['dataset']}, outputs {m['probs'].shape}) does not match "
                f"{first['run']} ({first['dataset']}, outputs {first['probs'].shape}); ensemble members "
                "need the same test set and classes")
    probs = ensemble_probabilities([m["probs"] for m in members])
    names = [r["name"] for r in first["per_class"]]
    ens = metrics(probs, first["labels"], names)
    label = "ensemble (mean softmax)"
    width = max([len(label)] + [len(str(m["run"])) for m in members])
    print(f"ensemble of {len(members)} runs on {first['n']} {first['dataset']} test images:")
    for m in members:
        print(f"  {str(m['run']):<{width}}  {_accuracy_text(m)}  loss {m['loss']:.4f}")
    best = max(m["accuracy"] for m in members)
    mean = float(np.mean([m["accuracy"] for m in members]))
    print(f"  {label:<{width}}  {_accuracy_text(ens)}  loss {ens['loss']:.4f}")
    print(f"  ensemble - best member: {ens['accuracy'] - best:+.4f}; ensemble - mean member: "
          f"{ens['accuracy'] - mean:+.4f}")
    if args.json:
        _write_json(args.json, {"members": [_public(m) for m in members], "ensemble": ens})
        print(f"wrote {args.json}")
    return 0
