"""``glassnet evaluate``: test accuracy (top-1, top-5) of a trained run, per class, or of an ensemble of runs.

    glassnet evaluate runs/mlp                       # accuracy + per-class table -> runs/mlp/evaluation.json
    glassnet evaluate runs/alexnet --ten-crop        # AlexNet's test-time averaging over 10 crops
    glassnet evaluate --ensemble runs/a runs/b runs/c  # members' accuracies and their ensemble's

Top-5 accuracy (the label is among the 5 most probable classes; ties go to
the lower class index, as ``argmax`` does for top-1) is reported when the run
has at least 5 classes. ``--ten-crop`` (photo runs) classifies each test image
by the mean softmax over its 10 crops -- the four corners and the centre of
the resized image, and the same of its mirror image -- as AlexNet's paper
does; the crops come from the run's own evaluation pipeline
(:func:`glassnet.io.preprocess_transform`) with its centre crop replaced by ``TenCrop``.

An ensemble averages the members' softmax probabilities and predicts the
class of highest mean probability; independently trained networks make
partly different mistakes, so the ensemble is usually a little more
accurate than its best member (the lecture's "model ensembles" effect).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError, UsageError
from ._args import check_int
from ._run_inputs import check_run_data_root, default_batch_size, run_test_set, ten_crop_transform


def add_parser(sub) -> None:
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


# ------------------------------------------------------------------ library
def softmax(logits) -> np.ndarray:
    """Row-wise softmax in float64 (the softmax kernel: max-subtracted, so no overflow)."""
    from ..ops.softmax import softmax_forward

    return softmax_forward(np.asarray(logits, dtype=np.float64), axis=1)[0]


def _crop_average(model):
    """A module running ``model`` on (N, K, C, h, w) crops and returning log(mean softmax over K),
    so that softmax of its output is the crops' mean probability."""
    from ..nn import Module

    class CropAverage(Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            n, k = x.shape[:2]
            p = self.inner(x.reshape(n * k, *x.shape[2:])).softmax(-1)
            return p.reshape(n, k, p.shape[-1]).mean(axis=1).log()

    return CropAverage(model)


def predict_probabilities(model, dataset, batch_size: int = 500, progress: bool = False, desc: str = "evaluate",
                          *, crops: bool = False):
    """The model's class probabilities on every sample of ``dataset`` (eval mode, no grad).

    With ``crops=True`` each sample is a stack of K crops (K, C, h, w) and its probability the
    mean of the crops' softmax outputs. Returns ``(probs, labels)``: (N, num_classes) float64
    and (N,) int64.
    """
    from ..data import DataLoader
    from ..train import predict_logits

    net = _crop_average(model) if crops else model
    logits, labels = predict_logits(net, DataLoader(dataset, batch_size=batch_size), progress, desc)
    return softmax(logits), labels.astype(np.int64)


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(predictions)), 1)
    return cm


def topk_accuracy(probs, labels, k: int) -> float:
    """Fraction of rows whose label is among their ``k`` most probable classes (ties: lower index first)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if not len(labels):
        return float("nan")
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def metrics(probs, labels, names) -> dict:
    """Top-1 (``accuracy``) and, with >= 5 classes, top-5 accuracy, mean cross-entropy,
    per-class accuracy and the confusion matrix of ``probs``."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    n = len(labels)
    num_classes = probs.shape[1]
    cm = confusion_matrix(labels, pred, num_classes)
    per_class = []
    for c in range(num_classes):
        count = int(cm[c].sum())
        per_class.append({"class": c, "name": names[c] if c < len(names) else str(c), "n": count,
                          "correct": int(cm[c, c]), "accuracy": (cm[c, c] / count) if count else None})
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(n), labels], 1e-300, None)))) if n else float("nan")
    acc = float((pred == labels).mean()) if n else float("nan")
    out = {"n": int(n), "accuracy": acc, "top1_accuracy": acc}
    if num_classes >= 5:
        out["top5_accuracy"] = topk_accuracy(probs, labels, 5)
    out.update({"loss": loss, "per_class": per_class, "confusion_matrix": cm.tolist()})
    return out


def evaluate_run(run_dir, which: str = "best", data_root=None, limit=None, batch_size=None,
                 progress: bool = False, log=print, *, ten_crop: bool = False) -> dict:
    """Load a run (:func:`glassnet.io.load_run`) and measure it on its test set; return :func:`metrics`
    plus ``run``, ``weights_file``, ``which``, ``dataset``, ``split``, ``ten_crop``, and
    ``probs``/``labels`` arrays. ``batch_size=None``: :func:`default_batch_size` (a tenth of it
    with ``ten_crop``, whose batches hold 10 crops per image)."""
    from ..io.run_dir import class_names, load_run

    model, config = load_run(run_dir, which=which, log=log)
    if batch_size is None:
        batch_size = max(1, default_batch_size(config) // (10 if ten_crop else 1))
    transform = ten_crop_transform(config) if ten_crop else None
    test = run_test_set(config, data_root=data_root, limit=limit, transform=transform)
    probs, labels = predict_probabilities(model, test, batch_size, progress, desc=f"evaluate {Path(run_dir).name}",
                                          crops=ten_crop)
    if len(labels) and labels.max() >= probs.shape[1]:
        raise InvalidArgumentError(f"{run_dir}: the model has {probs.shape[1]} outputs but the "
                         f"{config.get('dataset', 'fashion-mnist')} test set has labels up to {int(labels.max())}")
    result = {"run": str(run_dir), "weights_file": config["weights_file"], "which": which,
              "model": config["model"], "dataset": config.get("dataset", "fashion-mnist"), "split": "test",
              "ten_crop": bool(ten_crop)}
    result.update(metrics(probs, labels, class_names(config)))
    result["probs"], result["labels"] = probs, labels
    return result


def ensemble_probabilities(member_probs) -> np.ndarray:
    """The ensemble's prediction: the mean of the members' (N, C) softmax outputs."""
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in member_probs])
    return stack.mean(axis=0)


# ------------------------------------------------------------------ printing
def format_per_class(result: dict) -> str:
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
    from ..train import _atomic_write

    _atomic_write(path, json.dumps(obj, indent=2) + "\n")


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
