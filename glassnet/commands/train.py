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
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..io.run_dir import DATASET_CLASSES as DATASETS
from ..models.registry import builder_accepts
from ..errors import InvalidArgumentError

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
    t.add_argument("--scheduler", choices=["none", "step", "cosine", "plateau"],
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
    t.add_argument("--out", help="output folder (default runs/<model>-<time>)")
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
    """``["dropout=0.5", "hidden=(256,128)"]`` -> ``{"dropout": 0.5, "hidden": (256, 128)}``."""
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise InvalidArgumentError(f"--model-arg {item!r}: expected KEY=VALUE, e.g. dropout=0.5")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        out[key] = value
    return out


def resolve_config(explicit: dict) -> dict:
    """Options given on the command line > the recipe's defaults > :data:`BASE_DEFAULTS`.

    Returns the config dict (all options plus ``model_kwargs``); raises ``ValueError``.
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
    model_kwargs = {k: v for k, v in recipe_model_kwargs.items() if builder_accepts(cfg["model"], k)}
    model_kwargs.update(parse_model_args(cfg["model_arg"]))
    cfg["model_kwargs"] = model_kwargs
    if cfg["lr"] is None:
        cfg["lr"] = DEFAULT_LR[cfg["optimizer"]]
    if cfg["checkpoint_every"] is not None and cfg["checkpoint_every"] < 0:
        raise InvalidArgumentError(f"--checkpoint-every must be >= 0, got {cfg['checkpoint_every']}")
    return cfg


def _load_data(cfg):
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
    val_size = min(cfg["val_size"], len(train) // 5)
    if val_size > 0:
        train, val = data.random_split(train, [len(train) - val_size, val_size], seed=cfg["seed"])
    else:
        val = None
    return train, val, test, len(cls.classes), (mean, std)


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


def _make_augment(cfg, mean, std):
    from ..train import RECIPES, alexnet_recipe

    recipe = RECIPES[cfg["recipe"]]() if cfg.get("recipe") else alexnet_recipe()
    return recipe.make_augment(mean=mean, std=std, image_size=28, seed=cfg["seed"])


def _resume_config(explicit: dict) -> dict:
    run_dir = Path(explicit["resume"])
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidArgumentError(f"--resume {run_dir}: {path} not found (not a glassnet run folder?)") from None
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"--resume {run_dir}: {path} is not valid JSON: {exc}") from None
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
        raise InvalidArgumentError(f"--resume {run_dir}: options conflict with {path}: " + "; ".join(conflicts))
    cfg = {**BASE_DEFAULTS, **saved}
    for key in RESUME_FREE - {"resume"}:
        if key in explicit:
            cfg[key] = explicit[key]
    cfg["out"] = str(run_dir)
    return cfg


def run(args) -> int:
    import glassnet as gn

    from ..backend import cupy_available, retain_freed_memory
    from ..data import DataLoader
    from ..models import get_model
    from ..train import Trainer, TrainingDivergedError, evaluate

    from ..threads import blas_threads_spin, set_num_threads

    retain_freed_memory()  # reuse big per-step buffers instead of re-faulting them (see its docstring)

    explicit = {k: v for k, v in vars(args).items() if k != "handler"}
    resuming = "resume" in explicit
    try:
        cfg = _resume_config(explicit) if resuming else resolve_config(explicit)
    except (ValueError, KeyError) as exc:
        print(f"glassnet train: error: {exc}", file=sys.stderr)
        return 2
    if cfg["device"] == "cuda" and not cupy_available():
        print("glassnet train: error: --device cuda needs CuPy and a GPU (pip install glassnet[gpu]); "
              "none was found", file=sys.stderr)
        return 2
    threads = explicit.get("threads")
    set_num_threads(threads if threads is not None else (1 if blas_threads_spin() else None))
    out = Path(cfg["out"] or f"runs/{cfg['model']}-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg["out"] = str(out)
    out.mkdir(parents=True, exist_ok=True)
    gn.manual_seed(cfg["seed"])
    train, val, test, num_classes, (mean, std) = _load_data(cfg)
    model = get_model(cfg["model"], num_classes=num_classes, in_channels=1, **cfg["model_kwargs"])
    model.to(device=cfg["device"], dtype=np.dtype(cfg["dtype"]))
    optimizer = _make_optimizer(cfg, model.parameters())
    scheduler = _make_scheduler(cfg, optimizer)
    if not resuming:
        cfg.update(num_classes=num_classes, in_channels=1, train_size=len(train),
                   val_size=len(val) if val else 0, parameters=model.num_parameters())
        cfg.pop("resume", None)
        _write_json(out / "config.json", cfg)
    print(f"glassnet train: {cfg['model']} ({model.num_parameters():,} parameters) on {cfg['dataset']}: "
          f"{len(train)} train / {len(val) if val else 0} val / {len(test)} test images -> {out}")

    progress = not cfg["no_progress"]
    train_loader = DataLoader(train, batch_size=cfg["batch_size"], shuffle=True, seed=cfg["seed"])
    val_loader = DataLoader(val, batch_size=512) if val else None
    augment = _make_augment(cfg, mean, std) if cfg["augment"] else None
    on_epoch_end = None
    if cfg.get("tensorboard"):
        from ..tensorboard import TensorBoardLogger

        on_epoch_end = TensorBoardLogger(out / "tensorboard")
    trainer = Trainer(model, train_loader, optimizer, cfg["epochs"], val_loader=val_loader, scheduler=scheduler,
                      out_dir=out, checkpoint_every=cfg["checkpoint_every"], augment=augment, config=cfg,
                      progress=progress, plateau_metric=cfg["plateau_metric"], on_epoch_end=on_epoch_end,
                      resume_hint=f"glassnet train --resume {out}")
    try:
        history = trainer.fit(resume=resuming)
    except KeyboardInterrupt:
        _close(on_epoch_end)
        sys.stdout.flush()
        return 130
    except TrainingDivergedError as exc:
        _close(on_epoch_end)
        print(f"glassnet train: training diverged: {exc}", file=sys.stderr)
        return 1
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
