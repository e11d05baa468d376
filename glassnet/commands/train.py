"""``glassnet train``: train a zoo model on a dataset and report its test accuracy.

    glassnet train --model mlp --dataset fashion-mnist --epochs 10 --out runs/mlp
    glassnet train --model small_cnn --recipe alexnet --epochs 30 --out runs/cnn
    glassnet train --resume runs/cnn          # after a kill or Ctrl-C

The run folder ``runs/NAME`` holds:

* ``config.json`` -- ``model`` (zoo name), ``model_kwargs`` (passed to
  ``get_model`` besides ``num_classes``/``in_channels``), ``num_classes``,
  ``in_channels``, ``dataset`` and every (resolved) option;
* ``history.json`` / ``history.csv`` -- per-epoch metrics;
* ``checkpoints/last.safetensors`` + ``last.json`` (every epoch and every
  ``--checkpoint-every`` steps) and ``checkpoints/best.safetensors`` +
  ``best.json`` (best validation accuracy);
* ``test.json`` -- test loss/accuracy at the end.

``--resume runs/NAME`` reads ``config.json`` and continues exactly where the
last checkpoint left off; options given with it must agree with the saved
config (except ``--no-progress``, ``--data-root``, ``--download``,
``--tensorboard``, ``--threads``, ``--device``). Exit
status 130 after Ctrl-C (a checkpoint is saved first), 1 when the loss
diverges (NaN/inf).

Every option is checked before anything is written (:func:`validate_config`;
a wrong one is a one-line error, exit status 2): the numbers' ranges, the
model's name, its ``--model-arg`` keywords, and whether the model fits the
dataset's images (a model built for 3x224x224 cannot train on 1x28x28
Fashion-MNIST). An explicit ``--data-root`` must hold the dataset. An
existing run folder is never reused silently: ``--out`` of a folder that is
not empty is refused unless it is a run folder and ``--overwrite`` is given,
which removes only what glassnet wrote there
(:func:`glassnet.io.run_dir.clear_run_dir`); ``--resume`` continues one.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import json
import time
from pathlib import Path

import numpy as np

from ..errors import GlassnetError, ShapeError, UsageError
from ..io.run_dir import DATASET_CLASSES as DATASETS
from ..models.registry import builder_accepts
from ._args import check_choice, check_float, check_int, check_model_name

DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}

#: option defaults when neither the command line nor a recipe sets them
BASE_DEFAULTS = {
    "model": "mlp", "dataset": "fashion-mnist", "data_root": None, "download": False, "epochs": 10,
    "batch_size": 128, "optimizer": "sgd", "lr": None, "momentum": 0.9, "nesterov": False,
    "weight_decay": 0.0, "scheduler": "cosine", "step_size": 5, "gamma": 0.1, "patience": 2,
    "plateau_metric": "val_accuracy", "val_size": 5000, "seed": 0, "dtype": "float32",
    "limit_train": None, "limit_test": None, "out": None, "no_progress": False, "tensorboard": False,
    "checkpoint_every": 200, "model_arg": [], "augment": False, "recipe": None, "threads": None,
    "device": "cpu",
}
#: options that may differ from the saved config when resuming
RESUME_FREE = {"resume", "no_progress", "data_root", "download", "tensorboard", "threads", "device"}
#: integer options and their minimum (``None`` allowed for the OPTIONAL ones)
INT_MINIMUMS = {"epochs": 1, "batch_size": 1, "step_size": 1, "patience": 0, "val_size": 0, "seed": 0}
OPTIONAL_INT_MINIMUMS = {"limit_train": 1, "limit_test": 1, "threads": 1, "checkpoint_every": 0}
SCHEDULERS = ("none", "step", "cosine", "plateau")
CHOICES = {"dataset": sorted(DATASETS), "optimizer": sorted(DEFAULT_LR), "scheduler": SCHEDULERS,
           "plateau_metric": ("val_accuracy", "val_loss"), "dtype": ("float32", "float64"),
           "device": ("cpu", "cuda")}
#: the input a zoo model without an ``image_size`` keyword is built for (default 224x224)
DESIGN_SIDE = {"alexnet_lecture": "227x227", "zfnet": "224x224 (or 227x227)"}


def add_parser(sub) -> None:
    S = argparse.SUPPRESS  # absent options stay absent, so explicit ones can be told apart
    t = sub.add_parser("train", help="train a zoo model on a dataset and report test accuracy",
                       argument_default=S)
    t.add_argument("--model", help="zoo model name (see `glassnet models`); default mlp")
    t.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="keyword argument for the model builder, e.g. dropout=0.5 (repeatable)")
    t.add_argument("--dataset", choices=sorted(DATASETS), help="default fashion-mnist")
    t.add_argument("--data-root", help="folder with the dataset's IDX files (default: search)")
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
                   help="on-the-fly seeded augmentation: random crop (padding 2), flip, translation")
    t.add_argument("--recipe", choices=["alexnet"],
                   help="set defaults from a recipe: alexnet = SGD momentum 0.9, weight decay 5e-4, "
                        "lr 1e-2 /10 on val-accuracy plateau, dropout 0.5, batch 128, --augment")
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
                   help="threads for the kernels' memory-bound passes (glassnet.threads; results are "
                        "bitwise the same); default: every core, or 1 when OpenBLAS's threads spin "
                        "after each GEMM (OPENBLAS_THREAD_TIMEOUT unset or >= 20; the glassnet "
                        "command sets it to 4)")
    t.add_argument("--device", choices=["cpu", "cuda"],
                   help="where the model trains: cpu (NumPy, default) or cuda (CuPy on the first GPU; "
                        "pip install glassnet[gpu]); a run may resume on the other device")
    t.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard scalars to <out>/tensorboard (pip install glassnet[tensorboard])")
    t.set_defaults(handler=run)


def parse_model_args(items) -> dict:
    """``["dropout=0.5", "hidden=(256,128)"]`` -> ``{"dropout": 0.5, "hidden": (256, 128)}``.

    A value is read as a Python literal, else kept as a string; an item that
    is not ``KEY=VALUE`` raises :class:`~glassnet.errors.UsageError`.
    """
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise UsageError(f"--model-arg {item!r}: expected KEY=VALUE, e.g. dropout=0.5")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = text.strip()
        out[key] = value
    return out


def resolve_config(explicit: dict) -> dict:
    """Options given on the command line > the recipe's defaults > :data:`BASE_DEFAULTS`.

    Returns the config dict (all options plus ``model_kwargs``), checked by
    :func:`validate_config`; raises :class:`~glassnet.errors.UsageError`.
    """
    from ..train import RECIPES

    cfg = dict(BASE_DEFAULTS)
    recipe_name = explicit.get("recipe")
    recipe_model_kwargs = {}
    if recipe_name:
        rd = RECIPES[recipe_name]().cli_defaults()
        recipe_model_kwargs = rd.pop("model_kwargs")
        cfg.update(rd)
    cfg.update(explicit)
    check_model_name(cfg["model"])
    model_kwargs = {k: v for k, v in recipe_model_kwargs.items() if builder_accepts(cfg["model"], k)}
    model_kwargs.update(parse_model_args(cfg["model_arg"]))
    cfg["model_kwargs"] = model_kwargs
    if cfg["lr"] is None:
        cfg["lr"] = DEFAULT_LR[cfg["optimizer"]]
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict, source=None, command_line=()) -> None:
    """Check every option of ``cfg`` against its rule (the numbers' ranges, the choices,
    the model's name): raise :class:`~glassnet.errors.UsageError` naming the option, or,
    with ``source`` (the ``config.json`` a resumed run's options come from), a
    :class:`~glassnet.errors.DataFormatError` naming that file, except for the keys
    in ``command_line``, which were given on the command line.

    Rules: epochs, batch size, step size >= 1; patience, val-size, seed,
    checkpoint-every >= 0; limit-train, limit-test, threads >= 1; lr finite
    and > 0; momentum in [0, 1); weight decay finite and >= 0; gamma in (0, 1].
    """
    def src(key):
        return None if key in command_line else source

    check_model_name(cfg["model"], source=src("model"))
    for key, minimum in INT_MINIMUMS.items():
        check_int(key, cfg[key], minimum, source=src(key))
    for key, minimum in OPTIONAL_INT_MINIMUMS.items():
        check_int(key, cfg[key], minimum, optional=True, source=src(key))
    check_float("lr", cfg["lr"], low=0, low_open=True, source=src("lr"))
    check_float("momentum", cfg["momentum"], low=0, high=1, high_open=True, source=src("momentum"))
    check_float("weight_decay", cfg["weight_decay"], low=0, source=src("weight_decay"))
    check_float("gamma", cfg["gamma"], low=0, high=1, low_open=True, source=src("gamma"))
    for key, choices in CHOICES.items():
        check_choice(key, cfg[key], choices, source=src(key))
    if not isinstance(cfg.get("model_kwargs"), dict):
        check_choice("model_kwargs", cfg.get("model_kwargs"), ["an object of keyword arguments"], source=source)


def _check_data_root(cfg, explicit: dict) -> None:
    """An explicit ``--data-root`` must hold the dataset (without ``--download``, which fills it)."""
    from ..io.run_dir import check_data_root

    if explicit.get("data_root") is not None and not cfg["download"]:
        check_data_root(cfg["dataset"], explicit["data_root"], option="--data-root")


def _load_data(cfg, exact_val_size: bool):
    """``(train, val, test, num_classes, (mean, std), sample_shape)`` of the run's dataset.

    ``exact_val_size``: ``cfg["val_size"]`` was asked for (on the command line or by the
    run being resumed) and must be smaller than the training set; otherwise the
    default is capped at a fifth of it.
    """
    from .. import data
    from ..io.run_dir import dataset_stats, preprocess_transform

    cls = getattr(data, DATASETS[cfg["dataset"]])
    mean, std = dataset_stats(cfg["dataset"])
    transform = preprocess_transform(cfg["dataset"], dtype=cfg["dtype"])  # the same pipeline evaluate/predict use
    train = cls(root=cfg["data_root"], train=True, download=cfg["download"], transform=transform)
    test = cls(root=cfg["data_root"], train=False, download=cfg["download"], transform=transform)
    if cfg["limit_train"] is not None:
        train = data.Subset(train, np.arange(min(cfg["limit_train"], len(train))))
    if cfg["limit_test"] is not None:
        test = data.Subset(test, np.arange(min(cfg["limit_test"], len(test))))
    if exact_val_size:
        val_size = cfg["val_size"]
        if val_size >= len(train):
            limited = f" (--limit-train {cfg['limit_train']})" if cfg["limit_train"] is not None else ""
            raise UsageError(f"--val-size must be smaller than the training set, {len(train)} {cfg['dataset']} "
                             f"images{limited}, so that some are left to train on; got {val_size}")
    else:
        val_size = min(cfg["val_size"], len(train) // 5)
    if val_size > 0:
        train, val = data.random_split(train, [len(train) - val_size, val_size], seed=cfg["seed"])
    else:
        val = None
    sample_shape = (1, *cls.image_shape)  # the MNIST-format datasets are grayscale
    return train, val, test, len(cls.classes), (mean, std), sample_shape


def _design_input(name: str, kwargs: dict) -> str:
    """The input ``CxHxW`` zoo model ``name`` is built for (its builder's defaults)."""
    from ..models.registry import _BUILDERS

    params = inspect.signature(_BUILDERS[name.replace("-", "_").lower()]).parameters
    channels = params["in_channels"].default if "in_channels" in params else "C"
    if "image_size" in params:
        size = kwargs.get("image_size", params["image_size"].default)
        side = f"{size}x{size}" if isinstance(size, int) else "x".join(map(str, size))
    else:
        side = DESIGN_SIDE.get(name, "224x224")
    return f"{channels}x{side}"


def build_model(cfg: dict, num_classes: int, sample_shape: tuple):
    """Build ``cfg["model"]`` for ``num_classes`` and images of ``sample_shape`` (C, H, W), and
    check it fits them by a forward pass on one blank image (eval mode, no grad).

    Raises :class:`~glassnet.errors.UsageError` for a ``--model-arg`` the builder
    does not take or cannot build with, and for a model whose layers do not
    fit the images, naming the input it is built for and the one the dataset gives.
    """
    from ..autograd import no_grad
    from ..models import get_model, list_models
    from ..models.registry import _BUILDERS
    from ..tensor import Tensor

    name, kwargs = cfg["model"], dict(cfg["model_kwargs"])
    params = [p for p in inspect.signature(_BUILDERS[name.replace("-", "_").lower()]).parameters
              if p not in ("num_classes", "in_channels")]
    for key in kwargs:
        if key in ("num_classes", "in_channels"):
            raise UsageError(f"--model-arg {key}: set from the dataset ({num_classes} classes, "
                             f"{sample_shape[0]} channel(s)); leave it out")
        if not builder_accepts(name, key):
            raise UsageError(f"--model-arg {key}: model {name!r} has no argument {key!r}; it takes: "
                             + (", ".join(params) or "none"))
    try:
        model = get_model(name, num_classes=num_classes, in_channels=sample_shape[0], **kwargs)
    except (GlassnetError, TypeError, ValueError) as exc:
        if not kwargs:
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UsageError(f"--model-arg: cannot build {name} with {given}: {exc}") from exc
    dataset = f"{cfg['dataset']}'s {'x'.join(map(str, sample_shape))} images"
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    model.eval()
    try:
        with no_grad():
            out = model(Tensor(np.zeros((1, *sample_shape), dtype=dtype)))
    except ShapeError as exc:
        small = [n for n in list_models() if builder_accepts(n, "image_size")]
        given = "".join(f" --model-arg {k}={v!r}" for k, v in kwargs.items())
        raise UsageError(f"--model {name}{given} does not fit {dataset}: it is built for "
                         f"{_design_input(name, kwargs)} input ({exc}); models for small images: "
                         f"{', '.join(small)}") from exc
    finally:
        model.train()
    if tuple(out.shape) != (1, num_classes):
        raise UsageError(f"--model {name} gives outputs of shape {tuple(out.shape)[1:]} on {dataset}; "
                         f"training needs ({num_classes},), one score per class")
    return model


def _check_out(out: Path, overwrite: bool) -> bool:
    """Refuse an ``--out`` that would mix two runs; return whether it must be cleared first.

    New or empty folder: fine. A run folder (``config.json``): refused unless
    ``overwrite``. Any other non-empty folder, or a file: refused, with or
    without ``overwrite``.
    """
    from ..io.run_dir import is_run_dir

    if not out.exists() and not out.is_symlink():
        return False
    if not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if not any(out.iterdir()):
        return False
    if is_run_dir(out):
        if overwrite:
            return True
        raise UsageError(f"--out {out}: is an existing run folder; pass --resume {out} to continue it "
                         f"or --overwrite to replace it")
    entries = sorted(p.name for p in out.iterdir())
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    if overwrite:
        raise UsageError(f"--out {out}: --overwrite only replaces a glassnet run folder (one with a valid "
                         f"config.json), and this folder is not one (it holds {shown}); nothing was removed")
    raise UsageError(f"--out {out}: is a folder that is not empty and not a glassnet run folder "
                     f"(it holds {shown}); choose a new or empty folder")


def _make_optimizer(cfg, params):
    from .. import optim

    lr = cfg["lr"]
    if cfg["optimizer"] == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                         weight_decay=cfg["weight_decay"])
    cls = optim.Adam if cfg["optimizer"] == "adam" else optim.AdamW
    kwargs = {"weight_decay": cfg["weight_decay"]} if cfg["weight_decay"] or cfg["optimizer"] == "adam" else {}
    return cls(params, lr=lr, **kwargs)


def _make_scheduler(cfg, optimizer):
    from ..optim import lr_scheduler as S

    if cfg["scheduler"] == "step":
        return S.StepLR(optimizer, step_size=cfg["step_size"], gamma=cfg["gamma"])
    if cfg["scheduler"] == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    if cfg["scheduler"] == "plateau":
        mode = "max" if cfg["plateau_metric"].endswith("accuracy") else "min"
        return S.ReduceLROnPlateau(optimizer, mode=mode, factor=cfg["gamma"], patience=cfg["patience"])
    return None


def _make_augment(cfg, mean, std, image_shape):
    from ..train import RECIPES, alexnet_recipe

    recipe = RECIPES[cfg["recipe"]]() if cfg.get("recipe") else alexnet_recipe()
    h, w = image_shape
    return recipe.make_augment(mean=mean, std=std, image_size=h if h == w else (h, w), seed=cfg["seed"])


def _resume_config(explicit: dict) -> dict:
    """The config of the run ``explicit["resume"]`` continues: its ``config.json`` (checked),
    with the :data:`RESUME_FREE` options given on the command line; any other option given
    must agree with the saved one (else :class:`~glassnet.errors.UsageError`)."""
    from ..io.run_dir import read_config

    run_dir = Path(explicit["resume"])
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise UsageError(f"--resume {run_dir}: no such folder")
    if not path.is_file():
        raise UsageError(f"--resume {run_dir}: {path} not found (not a glassnet run folder?)")
    saved = read_config(run_dir)  # DataFormatError naming the file when it is broken
    conflicts = []
    for key, value in explicit.items():
        if key in RESUME_FREE:
            continue
        if key == "out":
            if Path(value).resolve() != run_dir.resolve():
                conflicts.append(f"--out {value} (the run folder is {run_dir})")
            continue
        if saved.get(key) != value:
            conflicts.append(f"--{key.replace('_', '-')} {value!r} (the run used {saved.get(key)!r})")
    if conflicts:
        raise UsageError(f"--resume {run_dir}: options conflict with {path}: " + "; ".join(conflicts))
    cfg = {**BASE_DEFAULTS, **saved}
    free = RESUME_FREE - {"resume"}
    for key in free:
        if key in explicit:
            cfg[key] = explicit[key]
    validate_config(cfg, source=path, command_line=free & set(explicit))
    cfg["out"] = str(run_dir)
    return cfg


def run(args) -> int:
    """``glassnet train``: check every option, train, write the run folder, print the test accuracy.

    Errors reach :func:`glassnet.cli.main` (one line, exit status 2 for a wrong option);
    Ctrl-C saves a checkpoint and exits with 130.
    """
    import glassnet as gn

    from ..backend import cupy_available, retain_freed_memory
    from ..data import DataLoader
    from ..io.run_dir import clear_run_dir
    from ..train import Trainer, TrainingDivergedError, evaluate

    from ..threads import blas_threads_spin, set_num_threads

    explicit = {k: v for k, v in vars(args).items() if k not in ("handler", "command")}
    overwrite = explicit.pop("overwrite", False)
    resuming = "resume" in explicit
    if resuming and overwrite:
        raise UsageError("--overwrite cannot be combined with --resume (which continues the run folder)")
    cfg = _resume_config(explicit) if resuming else resolve_config(explicit)
    if cfg["device"] == "cuda" and not cupy_available():
        raise UsageError("--device cuda needs CuPy and a GPU (pip install glassnet[gpu]); none was found")
    _check_data_root(cfg, explicit)
    out = Path(cfg["out"] or f"runs/{cfg['model']}-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg["out"] = str(out)
    clear = False if resuming else _check_out(out, overwrite)

    retain_freed_memory()  # reuse big per-step buffers instead of re-faulting them (see its docstring)
    threads = explicit.get("threads")
    set_num_threads(threads if threads is not None else (1 if blas_threads_spin() else None))
    gn.manual_seed(cfg["seed"])
    train, val, test, num_classes, (mean, std), sample_shape = _load_data(
        cfg, exact_val_size=resuming or "val_size" in explicit)
    model = build_model(cfg, num_classes, sample_shape)
    model.to(device=cfg["device"], dtype=np.dtype(cfg["dtype"]))
    optimizer = _make_optimizer(cfg, model.parameters())
    scheduler = _make_scheduler(cfg, optimizer)
    if clear:
        removed = clear_run_dir(out)
        print(f"glassnet train: --overwrite: removed {len(removed)} entries of the previous run in {out}")
    out.mkdir(parents=True, exist_ok=True)
    if not resuming:
        cfg.update(num_classes=num_classes, in_channels=sample_shape[0], train_size=len(train),
                   val_size=len(val) if val else 0, parameters=model.num_parameters())
        cfg.pop("resume", None)
        _write_json(out / "config.json", cfg)
    print(f"glassnet train: {cfg['model']} ({model.num_parameters():,} parameters) on {cfg['dataset']}: "
          f"{len(train)} train / {len(val) if val else 0} val / {len(test)} test images -> {out}")

    progress = not cfg["no_progress"]
    train_loader = DataLoader(train, batch_size=cfg["batch_size"], shuffle=True, seed=cfg["seed"])
    val_loader = DataLoader(val, batch_size=512) if val else None
    augment = _make_augment(cfg, mean, std, sample_shape[1:]) if cfg["augment"] else None
    on_epoch_end = None
    if cfg.get("tensorboard"):
        from ..tensorboard import TensorBoardLogger

        on_epoch_end = TensorBoardLogger(out / "tensorboard")
    trainer = Trainer(model, train_loader, optimizer, cfg["epochs"], val_loader=val_loader, scheduler=scheduler,
                      out_dir=out, checkpoint_every=cfg["checkpoint_every"], augment=augment, config=cfg,
                      progress=progress, plateau_metric=cfg["plateau_metric"], on_epoch_end=on_epoch_end,
                      resume_hint=f"glassnet train --resume {out}")
    try:  # Ctrl-C (a checkpoint is saved first) reaches glassnet.cli.main: exit status 130
        history = trainer.fit(resume=resuming)
    except TrainingDivergedError as exc:  # exit status 1
        raise TrainingDivergedError(f"training diverged: {exc}") from exc
    finally:
        _close(on_epoch_end)
    result = evaluate(model, DataLoader(test, batch_size=512), progress=progress)
    result["mean_epoch_time_s"] = float(np.mean(history.column("epoch_time_s")))
    result["best_val_accuracy"] = trainer.best_val_accuracy
    _write_json(out / "test.json", result)
    print(f"test accuracy: {result['accuracy']:.4f}  (test loss {result['loss']:.4f}, "
          f"{result['mean_epoch_time_s']:.1f} s/epoch)")
    return 0


def _close(logger) -> None:
    """Flush and close the TensorBoard writer (its events are written by a background thread)."""
    if logger is not None:
        logger.close()


def _write_json(path, obj) -> None:
    from ..train import _atomic_write

    _atomic_write(path, json.dumps(obj, indent=2) + "\n")
