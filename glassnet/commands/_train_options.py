"""The options of ``glassnet train``: defaults, recipes, checks, and a resumed run's saved ones.

:func:`resolve_config` merges the command line over a recipe's defaults over
:data:`BASE_DEFAULTS` and checks every option (:func:`validate_config`);
:func:`resume_config` reads a run folder's ``config.json`` and refuses options that
disagree with it; :func:`check_out` refuses an ``--out`` that would mix two runs.
Every refusal is a :class:`~glassnet.errors.UsageError` naming the option (exit status 2),
or for a broken saved config a :class:`~glassnet.errors.DataFormatError` naming the file.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

from ..data.data_spec import DATASET_KINDS, NAMED_DATASETS
from ..errors import UsageError
from ..models.registry import builder_accepts
from ..train.setup import DEFAULT_LR
from ._args import check_choice, check_float, check_int, check_model_name

__all__ = ["BASE_DEFAULTS", "RESUME_FREE", "parse_model_args", "resolve_config", "validate_config",
           "resume_config", "check_out", "normalize_data"]

#: option defaults when neither the command line nor a recipe sets them
BASE_DEFAULTS = {
    "model": "mlp", "dataset": "fashion-mnist", "data": None, "data_root": None, "download": False,
    "epochs": 10, "batch_size": 128, "optimizer": "sgd", "lr": None, "momentum": 0.9, "nesterov": False,
    "weight_decay": 0.0, "scheduler": "cosine", "step_size": 5, "gamma": 0.1, "patience": 2,
    "plateau_metric": "val_accuracy", "val_size": 5000, "seed": 0, "dtype": "float32",
    "limit_train": None, "limit_test": None, "out": None, "no_progress": False, "tensorboard": False,
    "checkpoint_every": 200, "model_arg": [], "augment": None, "recipe": None, "threads": None,
    "device": "cpu", "input": None, "workers": 0, "weights": None, "freeze": [],
}
#: options that may differ from the saved config when resuming
RESUME_FREE = {"resume", "no_progress", "data_root", "download", "tensorboard", "threads", "device", "workers"}
#: integer options and their minimum (``None`` allowed for the OPTIONAL ones)
INT_MINIMUMS = {"epochs": 1, "batch_size": 1, "step_size": 1, "patience": 0, "val_size": 0, "seed": 0,
                "workers": 0}
OPTIONAL_INT_MINIMUMS = {"limit_train": 1, "limit_test": 1, "threads": 1, "checkpoint_every": 0}
SCHEDULERS = ("none", "step", "cosine", "plateau")
CHOICES = {"dataset": DATASET_KINDS, "optimizer": sorted(DEFAULT_LR), "scheduler": SCHEDULERS,
           "plateau_metric": ("val_accuracy", "val_loss"), "dtype": ("float32", "float64"),
           "device": ("cpu", "cuda")}


def normalize_data(value) -> tuple[str, str]:
    """``(dataset, data)`` of a ``--data`` value: a named set's ``(name, name)``, else
    ``("folder", absolute path)``."""
    key = str(value).lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}.get(key, key)
    if key in NAMED_DATASETS:
        return key, key
    return "folder", os.path.abspath(os.path.expanduser(str(value)))


def _resolve_data(cfg: dict, explicit: dict) -> None:
    """Set ``cfg["dataset"]`` / ``cfg["data"]`` from ``--data`` or ``--dataset``; check ``--input``,
    ``--data-root``, ``--weights``."""
    if "data" in explicit:
        dataset, data = normalize_data(explicit["data"])
        if "dataset" in explicit and explicit["dataset"] != dataset:
            raise UsageError(f"--dataset {explicit['dataset']} disagrees with --data {explicit['data']}; "
                             "give one of them")
    else:
        dataset, data = normalize_data(cfg["dataset"])
    cfg["dataset"], cfg["data"] = dataset, data
    if dataset == "folder" and explicit.get("data_root") is not None:
        raise UsageError("--data-root is the folder of a named dataset (fashion-mnist, mnist, cifar10, cifar100); "
                         f"with --data {explicit['data']} the folder itself holds the images")
    if cfg.get("input") is not None:
        cfg["input"] = [int(v) for v in cfg["input"]]
        if cfg["input"][0] not in (1, 3):
            raise UsageError(f"--input {'x'.join(map(str, cfg['input']))}: the channels must be 1 (grayscale) "
                             "or 3 (RGB)")
    if cfg.get("weights"):
        path = Path(cfg["weights"]).expanduser()
        if not path.exists():
            raise UsageError(f"--weights {cfg['weights']}: no such file")
        cfg["weights"] = os.path.abspath(path)
    cfg["freeze"] = list(cfg.get("freeze") or [])


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
    from ..train.recipes import RECIPES

    cfg = dict(BASE_DEFAULTS)
    recipe_name = explicit.get("recipe")
    recipe_model_kwargs = {}
    if recipe_name:
        rd = RECIPES[recipe_name]().cli_defaults()
        recipe_model_kwargs = rd.pop("model_kwargs")
        cfg.update(rd)
    cfg.update(explicit)
    if "augment" not in explicit and not recipe_name:  # None: decided by the pipeline (photos: on)
        cfg["augment"] = None if normalize_data(explicit.get("data", cfg["dataset"]))[0] not in \
            ("fashion-mnist", "mnist") else False
    _resolve_data(cfg, explicit)
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


def check_out(out: Path, overwrite: bool) -> bool:
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


def resume_config(explicit: dict) -> dict:
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
        if key == "data":
            value = normalize_data(value)[1]
        elif key == "weights":
            value = os.path.abspath(os.path.expanduser(str(value)))
        elif key in ("input", "freeze"):
            value = list(value)
        if saved.get(key, BASE_DEFAULTS.get(key)) != value:
            conflicts.append(f"--{key.replace('_', '-')} {value!r} (the run used {saved.get(key)!r})")
    if conflicts:
        raise UsageError(f"--resume {run_dir}: options conflict with {path}: " + "; ".join(conflicts))
    cfg = {**BASE_DEFAULTS, **saved}
    if cfg.get("data") is None:  # a run from before --data
        cfg["dataset"], cfg["data"] = normalize_data(cfg["dataset"])
    free = RESUME_FREE - {"resume"}
    for key in free:
        if key in explicit:
            cfg[key] = explicit[key]
    validate_config(cfg, source=path, command_line=free & set(explicit))
    cfg["out"] = str(run_dir)
    return cfg


