"""The model side of a training run: build the zoo model for the data, check it fits, load
pretrained weights, freeze layers, and build the optimizer and schedule from the run's options.

    model = build_model(cfg, num_classes=10, plan=plan, data_text="fashion-mnist's 1x28x28 images")
    report = load_weights(model, cfg)          # --weights / --freeze (None without them)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_scheduler(cfg, optimizer)

Every refusal is a :class:`~glassnet.errors.UsageError` (``glassnet train`` exits with status 2)
naming the option: a ``--model-arg`` the builder does not take or cannot build with, and a
model whose layers do not fit the input -- with the smallest input the model accepts
(:func:`glassnet.analysis.input_fit.smallest_side`) and the ``--input`` that would resize the
images to its design size.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..errors import GlassnetError, UsageError

__all__ = ["build_model", "fit_error", "load_weights", "make_optimizer", "make_scheduler", "DEFAULT_LR"]

DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}


def _check_model_args(name: str, kwargs: dict, num_classes: int, channels: int) -> None:
    from ..models.registry import _BUILDERS, builder_accepts

    params = [p for p in inspect.signature(_BUILDERS[name.replace("-", "_").lower()]).parameters
              if p not in ("num_classes", "in_channels")]
    for key in kwargs:
        if key in ("num_classes", "in_channels"):
            raise UsageError(f"--model-arg {key}: set from the dataset ({num_classes} classes, "
                             f"{channels} channel(s)); leave it out")
        if not builder_accepts(name, key):
            raise UsageError(f"--model-arg {key}: model {name!r} has no argument {key!r}; it takes: "
                             + (", ".join(params) or "none"))


def fit_error(model, cfg: dict, plan, data_text: str) -> UsageError:
    """The error for ``model`` (zoo model ``cfg["model"]``) not running on ``plan``'s input:
    names the input it is built for, the smallest it accepts and the ``--input`` to use."""
    from ..analysis.input_fit import design_input, design_side, smallest_side
    from ..models import list_models
    from ..models.registry import builder_accepts

    name, kwargs = cfg["model"], cfg["model_kwargs"]
    given = "".join(f" --model-arg {k}={v!r}" for k, v in kwargs.items())
    design = design_side(name, kwargs)
    ref = design if isinstance(design, int) else max(design)
    channels = plan.in_channels
    small = smallest_side(model, channels, ref)
    h, w = (design, design) if isinstance(design, int) else design
    if small is None:
        accepts = f"it does not run even on {channels}x{h}x{w} images"
    else:
        accepts = f"the smallest input it accepts is {channels}x{small}x{small}"
    hint = f"; pass --input {channels}x{h}x{w} to resize the images to its size"
    if builder_accepts(name, "image_size"):
        hint = "; leave --model-arg image_size out (it is set from the input)" if "image_size" in kwargs else ""
    else:
        hint += ", or use a model for small images: " + ", ".join(
            n for n in list_models() if builder_accepts(n, "image_size"))
    return UsageError(f"--model {name}{given} does not fit {data_text}: {accepts} "
                      f"(it is built for {design_input(name, kwargs)}){hint}")


def build_model(cfg: dict, num_classes: int, plan, data_text: str):
    """Build ``cfg["model"]`` for ``num_classes`` classes and ``plan``'s input (``image_size`` goes to
    the builders that take it, unless ``--model-arg image_size`` is given), and check it fits by a
    forward pass on one blank image (eval mode, no grad).

    Raises :class:`~glassnet.errors.UsageError` for a bad ``--model-arg``, a model that does not fit
    (:func:`fit_error`) and one whose output is not one score per class.
    """
    from ..autograd import no_grad
    from ..models import get_model
    from ..models.registry import builder_accepts
    from ..tensor import Tensor

    name, kwargs = cfg["model"], dict(cfg["model_kwargs"])
    _check_model_args(name, kwargs, num_classes, plan.in_channels)
    build = dict(kwargs)
    if builder_accepts(name, "image_size") and "image_size" not in build:
        h, w = plan.image_size
        build["image_size"] = h if h == w else (h, w)
    try:
        model = get_model(name, num_classes=num_classes, in_channels=plan.in_channels, **build)
    except (GlassnetError, TypeError, ValueError) as exc:
        if not kwargs:
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UsageError(f"--model-arg: cannot build {name} with {given}: {exc}") from exc
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    model.eval()
    try:
        with no_grad():
            out = model(Tensor(np.zeros((1, *plan.shape()), dtype=dtype)))
    except (GlassnetError, ValueError) as exc:  # ShapeError and the layers' other shape complaints
        error = fit_error(model, cfg, plan, data_text)
        raise error from exc
    finally:
        model.train()
    if tuple(out.shape) != (1, num_classes):
        raise UsageError(f"--model {name} gives outputs of shape {tuple(out.shape)[1:]} on {data_text}; "
                         f"training needs ({num_classes},), one score per class")
    return model


def load_weights(model, cfg: dict, resuming: bool = False, log=print):
    """``--weights FILE`` (torchvision layout; a new head for the data's classes) and ``--freeze
    PREFIX...``: load (not when ``resuming``: the checkpoint holds the weights) and freeze; return
    ``{"loaded": [...], "skipped_head": [...], "frozen": [...]}`` or ``None`` without either option.
    ``log`` gets one line for each."""
    from ..models import load_pretrained
    from ..nn import freeze

    weights, prefixes = cfg.get("weights"), cfg.get("freeze") or []
    if not weights and not prefixes:
        return None
    report = {"loaded": [], "skipped_head": [], "frozen": []}
    if weights and not resuming:
        report.update(load_pretrained(model, weights, new_head=True))
        if log is not None:
            head = f"; new head {', '.join(report['skipped_head'])}" if report["skipped_head"] else ""
            log(f"glassnet train: --weights {weights}: loaded {len(report['loaded'])} tensors{head}")
    if prefixes:
        try:
            report["frozen"] = list(freeze(model, prefixes))
        except GlassnetError as exc:
            raise UsageError(f"--freeze: {exc}") from exc
        if log is not None:
            n = sum(int(np.prod(p.data.shape)) for name, p in model.named_parameters() if name in set(report["frozen"]))
            log(f"glassnet train: --freeze {' '.join(prefixes)}: {len(report['frozen'])} parameter tensors "
                f"({n:,} values) frozen")
    return report


def make_optimizer(cfg: dict, params):
    """SGD (momentum, Nesterov, weight decay), Adam or AdamW from the run's options."""
    from .. import optim

    lr = cfg["lr"]
    if cfg["optimizer"] == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                         weight_decay=cfg["weight_decay"])
    cls = optim.Adam if cfg["optimizer"] == "adam" else optim.AdamW
    kwargs = {"weight_decay": cfg["weight_decay"]} if cfg["weight_decay"] or cfg["optimizer"] == "adam" else {}
    return cls(params, lr=lr, **kwargs)


def make_scheduler(cfg: dict, optimizer):
    """The epoch schedule: StepLR, CosineAnnealingLR over the epochs, ReduceLROnPlateau, or ``None``."""
    from ..optim import lr_scheduler as S

    if cfg["scheduler"] == "step":
        return S.StepLR(optimizer, step_size=cfg["step_size"], gamma=cfg["gamma"])
    if cfg["scheduler"] == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    if cfg["scheduler"] == "plateau":
        mode = "max" if cfg["plateau_metric"].endswith("accuracy") else "min"
        return S.ReduceLROnPlateau(optimizer, mode=mode, factor=cfg["gamma"], patience=cfg["patience"])
    return None
