"""``glassnet train``: train a zoo model on a dataset and report its test accuracy.

    glassnet train --model mlp --dataset fashion-mnist --epochs 10 --out runs/mlp
    glassnet train --model small_cnn --recipe alexnet --epochs 30 --out runs/cnn
    glassnet train --data photos/ --model resnet18 --workers 2 --out runs/photos
    glassnet train --data photos/ --model alexnet_lecture --recipe alexnet --input 3x227x227
    glassnet train --data photos/ --model resnet18 --weights resnet18-f37072fd.pth --freeze conv1 bn1 layer1
    glassnet train --resume runs/cnn          # after a kill or Ctrl-C
    mpiexec -n 2 glassnet train --model small_cnn --out runs/cnn2   # data-parallel (or --nproc 2)

``--data`` is a folder of photos (one subfolder per class, or an ImageNet-style tree with
``train/`` and ``val/``; how the splits are made: :mod:`glassnet.data.data_spec`), a prepared
cache, or ``fashion-mnist`` / ``mnist`` / ``cifar10`` / ``cifar100``. The input size, the
pipeline and the splits come from :mod:`glassnet.train.data`; the model, ``--weights`` and
``--freeze`` from :mod:`glassnet.train.setup`; the options' defaults and checks from
:mod:`glassnet.commands._train_options`. This module holds the command line.

The run folder ``runs/NAME`` holds:

* ``config.json`` -- every (resolved) option, ``model_kwargs``, ``num_classes``, and the input:
  ``dataset`` ("folder", "cifar10", "cifar100", "fashion-mnist", "mnist"), ``data`` (the folder,
  absolute, or the name), ``in_channels``, ``image_size`` [H, W], ``pipeline``, ``eval_resize``,
  ``normalize`` {"mean", "std"}, ``classes`` (and ``test_split`` for a single tree) -- what
  :func:`glassnet.io.run_dir.preprocess_transform` and ``load_test_set`` rebuild the
  evaluation pipeline and the test set from;
* ``history.json`` / ``history.csv`` -- per-epoch metrics;
* ``checkpoints/last.safetensors`` (every epoch and every ``--checkpoint-every`` steps) and
  ``checkpoints/best.safetensors`` (best validation accuracy);
* ``test.json`` -- test loss/accuracy at the end.

``--resume runs/NAME`` reads ``config.json`` and continues exactly where the last checkpoint
left off (with any ``--workers``); options given with it must agree with the saved config
(except ``--no-progress``, ``--data-root``, ``--download``, ``--tensorboard``, ``--threads``,
``--device``, ``--workers``). Exit status 130 after Ctrl-C (a checkpoint is saved first), 1
when the loss diverges (NaN/inf).

Every option is checked before anything is written (a wrong one is a one-line error, exit
status 2): the numbers' ranges, the model's name, its ``--model-arg`` keywords, whether the
model fits the input (naming the smallest input it accepts), ``--weights`` and ``--freeze``.
An existing run folder is never reused silently: ``--out`` of a folder that is not empty is
refused unless it is a run folder and ``--overwrite`` is given, which removes only what
glassnet wrote there (:func:`glassnet.io.run_dir.clear_run_dir`).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..data.data_spec import NAMED_DATASETS
from ..errors import UsageError
from ..train.setup import DEFAULT_LR
from ._args import input_size_type
from ._train_options import (BASE_DEFAULTS, RESUME_FREE, SCHEDULERS, check_out, parse_model_args,  # noqa: F401
                             resolve_config, resume_config, validate_config)


def add_parser(sub) -> None:
    """Add the ``train`` subcommand to the ``glassnet`` argument parser's subparsers ``sub``."""
    S = argparse.SUPPRESS  # absent options stay absent, so explicit ones can be told apart
    t = sub.add_parser("train", help="train a zoo model on a dataset and report test accuracy",
                       argument_default=S)
    t.add_argument("--model", help="zoo model name (see `glassnet models`); default mlp")
    t.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="keyword argument for the model builder, e.g. dropout=0.5 (repeatable)")
    t.add_argument("--data", metavar="PATH|NAME",
                   help="what to train on: a folder of images with one subfolder per class, an ImageNet-style "
                        "tree with train/ and val/ (or test/), a prepared cache (glassnet prepare), or "
                        "fashion-mnist (default), mnist, cifar10, cifar100")
    t.add_argument("--dataset", choices=sorted(NAMED_DATASETS),
                   help="a named dataset, as --data NAME (default fashion-mnist)")
    t.add_argument("--data-root", help="folder with a named dataset's files (default: search)")
    t.add_argument("--input", type=input_size_type("3x224x224"), metavar="CxHxW",
                   help="the model's input, e.g. 3x227x227 (images are resized to it); default: from the "
                        "data and the model (alexnet_lecture 227, the ImageNet models 224, the small-image "
                        "models the data's own size up to 64 px, else 28)")
    t.add_argument("--workers", type=int, metavar="N",
                   help="worker processes building the batches (default 0: in this process; the batches "
                        "are the same with any N)")
    t.add_argument("--weights", metavar="FILE",
                   help="start from these weights (.pth/.safetensors/.npz in torchvision's layout, a "
                        "checkpoint or a run folder); the classifier head is new, sized to the data's classes")
    t.add_argument("--freeze", nargs="+", metavar="PREFIX",
                   help="do not train the parameters under these module names (e.g. conv1 bn1 layer1)")
    t.add_argument("--download", action="store_true", help="download the dataset if it is not found")
    t.add_argument("--epochs", type=int, help="default 10")
    t.add_argument("--batch-size", type=int, help="default 128")
    t.add_argument("--optimizer", choices=sorted(DEFAULT_LR), help="default sgd")
    t.add_argument("--lr", type=float, help="learning rate (default: 0.05 for sgd, 1e-3 for adam/adamw)")
    t.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--weight-decay", type=float, help="default 0")
    t.add_argument("--scheduler", choices=SCHEDULERS,
                   help="learning-rate schedule over the epochs (default cosine)")
    t.add_argument("--step-size", type=int, help="StepLR: epochs between decays (default 5)")
    t.add_argument("--gamma", type=float, help="StepLR/plateau decay factor (default 0.1)")
    t.add_argument("--patience", type=int, help="ReduceLROnPlateau patience in epochs (default 2)")
    t.add_argument("--plateau-metric", choices=["val_accuracy", "val_loss"],
                   help="what ReduceLROnPlateau watches (default val_accuracy, mode max)")
    t.add_argument("--val-size", type=int, help="training images held out for validation (default 5000)")
    t.add_argument("--augment", action="store_true",
                   help="on-the-fly seeded augmentation: photos resized to the model: random resized crop "
                        "and flip (the default for them); images at their own size: random crop (padding 2), "
                        "flip, translation")
    t.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no training augmentation (photos: resize and centre crop, as for evaluation)")
    t.add_argument("--recipe", choices=["alexnet"],
                   help="set defaults from a recipe: alexnet = SGD momentum 0.9, weight decay 5e-4, "
                        "lr 1e-2 /10 on val-accuracy plateau, dropout 0.5, batch 128, --augment; for photos "
                        "the paper's augmentation: random crops of the 256-px images, flips, PCA lighting")
    t.add_argument("--seed", type=int, help="default 0")
    t.add_argument("--dtype", choices=["float32", "float64"], help="default float32")
    t.add_argument("--limit-train", type=int, help="use only the first N training images (quick runs)")
    t.add_argument("--limit-test", type=int, help="evaluate on only the first N test images")
    t.add_argument("--out", help="output folder (default runs/<model>-<time>); must be new or empty "
                                 "unless --overwrite")
    t.add_argument("--overwrite", action="store_true",
                   help="--out is an existing run folder: delete what glassnet wrote there (config, history, "
                        "checkpoints, plots...) and train afresh; other files are kept")
    t.add_argument("--checkpoint-every", type=int,
                   help="also checkpoint every N optimizer steps (default 200; 0 = epoch ends only)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--threads", type=int, metavar="N",
                   help="threads for the kernels' passes and GEMMs (glassnet.threads; results are "
                        "bitwise the same with any N); default: every core (OMP_NUM_THREADS if set)")
    t.add_argument("--device", choices=["cpu", "cuda"],
                   help="where the model trains: cpu (NumPy, default) or cuda (CuPy on the first GPU; "
                        "pip install glassnet[gpu]); a run may resume on the other device")
    t.add_argument("--nproc", type=int, metavar="N",
                   help="train data-parallel on N ranks: starts mpiexec -n N (as does `mpiexec -n N glassnet "
                        "train ...`); --batch-size is per rank (glassnet.distributed.training)")
    t.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard scalars to <out>/tensorboard (pip install glassnet[tensorboard])")
    t.set_defaults(handler=run)



def _data_text(cfg: dict, plan) -> str:
    """How the input is named in a fit error: ``fashion-mnist's 1x28x28 images``, ``--input 3x100x100``."""
    if plan.source.startswith("--input"):
        return plan.source
    what = cfg["dataset"] if cfg["dataset"] != "folder" else cfg["data"]
    return f"{what}'s {plan.text()} images" + ("" if plan.pipeline == "native" else " (resized)")


def run(args) -> int:
    """``glassnet train``: check every option, train, write the run folder, print the test accuracy.

    Errors reach :func:`glassnet.cli.main` (one line, exit status 2 for a wrong option);
    Ctrl-C saves a checkpoint and exits with 130.
    """
    import glassnet as gn

    from ..backend import cupy_available, retain_freed_memory
    from ..data.data_spec import resolve_data
    from ..io.run_dir import clear_run_dir
    from ..threads import set_num_threads
    from ..distributed.training import training_role
    from ..train import TrainingDivergedError, evaluate
    from ..train.distributed_run import DistributedTrainer
    from ..train.data import build_training_data, check_named_root, make_loaders, plan_input
    from ..train.setup import build_model, load_weights, make_optimizer, make_scheduler

    explicit = {k: v for k, v in vars(args).items() if k not in ("handler", "command")}
    overwrite = explicit.pop("overwrite", False)
    resuming = "resume" in explicit
    if resuming and overwrite:
        raise UsageError("--overwrite cannot be combined with --resume (which continues the run folder)")
    cfg = resume_config(explicit) if resuming else resolve_config(explicit)
    if cfg["device"] == "cuda" and not cupy_available():
        raise UsageError("--device cuda needs CuPy and a GPU (pip install glassnet[gpu]); none was found")
    spec = resolve_data(cfg["data"], cfg["data_root"], cfg["download"])
    if explicit.get("data_root") is not None:
        check_named_root(spec)
    role = training_role()  # one rank of N, or alone; only rank 0 writes (glassnet.distributed.training)
    out = Path(role.on_main(lambda: cfg["out"] or f"runs/{cfg['model']}-{time.strftime('%Y%m%d-%H%M%S')}"))
    cfg["out"] = str(out)
    clear = False if resuming else role.on_main(check_out, out, overwrite)

    retain_freed_memory()  # reuse big per-step buffers instead of re-faulting them (see its docstring)
    threads = explicit.get("threads")
    if threads is not None:  # else glassnet's default: every core, BLAS held to one thread in the kernels
        set_num_threads(threads)
    gn.manual_seed(cfg["seed"])
    plan = plan_input(cfg, spec)
    if cfg["augment"] is None:
        cfg["augment"] = plan.pipeline == "photo"
    data = build_training_data(cfg, spec, plan, exact_val_size=resuming or "val_size" in explicit,
                               val_size_given="val_size" in explicit)
    model = build_model(cfg, len(data.classes), plan, _data_text(cfg, plan))
    model.to(device=cfg["device"], dtype=np.dtype(cfg["dtype"]))
    load_weights(model, cfg, resuming=resuming)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_scheduler(cfg, optimizer)
    if clear and role.writes_files:
        removed = clear_run_dir(out)
        print(f"glassnet train: --overwrite: removed {len(removed)} entries of the previous run in {out}")
    if role.writes_files:
        out.mkdir(parents=True, exist_ok=True)
    train_loader, val_loader, test_loader = make_loaders(cfg, data)
    model, train_loader = role.prepare(model, train_loader, batch_size=cfg["batch_size"], lengths={
        "train": len(data.train), "val": len(data.val) if data.val is not None else 0, "test": len(data.test)})
    n_val = len(data.val) if data.val is not None else 0
    if not resuming:
        cfg.update(data.config)
        cfg.update(num_classes=len(data.classes), train_size=len(data.train), val_size=n_val,
                   parameters=model.num_parameters())
        cfg.pop("resume", None)
        if role.writes_files:
            _write_json(out / "config.json", cfg)
    where = cfg["dataset"] if cfg["dataset"] != "folder" else cfg["data"]
    print(f"glassnet train: {cfg['model']} ({model.num_parameters():,} parameters) on {where}: "
          f"{len(data.train)} train / {n_val} val / {len(data.test)} test images at {plan.text()} "
          f"({plan.pipeline} pipeline{', augmented' if cfg['augment'] else ''}"
          f"{', %d workers' % cfg['workers'] if cfg['workers'] else ''}) -> {out}")
    if role.distributed:
        print(f"glassnet train: data-parallel on {role.world_size} ranks: {role.batch_text(cfg['batch_size'])}")

    progress = not cfg["no_progress"] and role.writes_files
    on_epoch_end = None
    if cfg.get("tensorboard") and role.writes_files:
        from ..tensorboard import TensorBoardLogger

        on_epoch_end = TensorBoardLogger(out / "tensorboard")
    trainer = DistributedTrainer(model, train_loader, optimizer, cfg["epochs"], val_loader=val_loader,
                                 scheduler=scheduler, out_dir=out, checkpoint_every=cfg["checkpoint_every"],
                                 augment=data.augment, config=cfg, progress=progress,
                                 plateau_metric=cfg["plateau_metric"], on_epoch_end=on_epoch_end,
                                 resume_hint=f"glassnet train --resume {out}", role=role)
    try:  # Ctrl-C (a checkpoint is saved first) reaches glassnet.cli.main: exit status 130
        try:
            history = trainer.fit(resume=resuming)
        except TrainingDivergedError as exc:  # exit status 1
            raise TrainingDivergedError(f"training diverged: {exc}") from exc
        finally:
            _close(on_epoch_end, train_loader, val_loader)
        result = evaluate(model, test_loader, progress=progress)
    finally:
        _close(None, test_loader)
    result["mean_epoch_time_s"] = float(np.mean(history.column("epoch_time_s")))
    result["best_val_accuracy"] = trainer.best_val_accuracy
    if role.writes_files:
        _write_json(out / "test.json", result)
    print(f"test accuracy: {result['accuracy']:.4f}  (test loss {result['loss']:.4f}, "
          f"{result['mean_epoch_time_s']:.1f} s/epoch)")
    return 0


def _close(logger, *loaders) -> None:
    """Flush and close the TensorBoard writer (its events are written by a background thread) and
    stop the loaders' worker processes."""
    for loader in loaders:
        if loader is not None:
            loader.close()
    if logger is not None:
        logger.close()


def _write_json(path, obj) -> None:
    from ..train.history import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
