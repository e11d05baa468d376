"""Transfer learning: load torchvision-layout weights into a zoo model, keeping a new classifier head.

    from glassnet.models import get_model, load_pretrained
    from glassnet.nn import freeze
    model = get_model("resnet18", num_classes=5)
    report = load_pretrained(model, "resnet18-f37072fd.pth")   # fc: 1000 -> 5 classes, kept fresh
    report["skipped_head"]          # ['fc.weight', 'fc.bias']
    freeze(model, ["conv1", "bn1", "layer1", "layer2"])

The source is a ``.pth`` (read without PyTorch), ``.safetensors`` or ``.npz``
state dict in torchvision's layout, a glassnet checkpoint (``model.*`` keys;
optimizer state ignored) or a run folder written by ``glassnet train`` (its
best weights, then last, then ``model.npz``), or a dict of arrays.

The rules (all-or-nothing: everything is checked before anything is written,
through :meth:`glassnet.nn.Module.prepare_load_state_dict`):

* every key of the model must be in the source, with its shape -- except the
  classifier head (:func:`head_modules`) when ``new_head=True`` and only its
  number of outputs differs (1000 ImageNet classes -> 5): the head keeps its
  fresh initialisation and its keys are reported under ``"skipped_head"``;
* a BatchNorm ``num_batches_tracked`` missing from an old file starts at 0,
  as PyTorch fills it (``"defaulted"``);
* source keys of sub-modules the model has switched off (GoogLeNet's ``aux1``
  / ``aux2`` when built without auxiliary heads, which torchvision's file
  holds) are left out (``"unused"``);
* anything else -- a missing or unexpected key, another shape, the head's
  input size -- is a :class:`~glassnet.errors.StateDictError` listing every key.

This module reads files through :mod:`glassnet.io`; it is imported lazily, in the functions.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import InvalidTypeError, StateDictError

__all__ = ["load_pretrained", "head_modules", "read_state"]


def head_modules(model) -> list[str]:
    """Names of the model's classifier heads: the ``nn.Linear`` modules with as many outputs as
    its last ``nn.Linear`` (ResNet's ``fc``, VGG's/AlexNet's ``classifier.6``, GoogLeNet's ``fc``
    and, when present, ``aux1.fc2`` / ``aux2.fc2``)."""
    from ..nn import Linear

    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, Linear)]
    if not linears:
        return []
    out = linears[-1][1].weight.shape[0]
    return [name for name, m in linears if m.weight.shape[0] == out]


def read_state(source) -> "tuple[OrderedDict[str, np.ndarray], str]":
    """``(state dict, label)`` of a weights file, glassnet checkpoint, run folder or dict.

    Checkpoints (keys under ``model.``) give their model tensors with the prefix removed;
    weights holding NaN or infinity are refused. ``label`` names the source in messages.
    """
    from ..io.weights_files import check_finite_state, find_weights
    from ..io.state_dict_file import load_state_dict_file
    from ..tensor import Tensor

    if hasattr(source, "items"):
        state = OrderedDict((k, v.data if isinstance(v, Tensor) else v) for k, v in source.items())
        return state, "the given state dict"
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidTypeError(f"load_pretrained: expected a file path, run folder or state dict, "
                               f"got {type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_dir():
        path, _ = find_weights(path, "best")
    raw = load_state_dict_file(path)
    if any(k.startswith("model.") for k in raw):
        raw = OrderedDict((k[len("model."):], v) for k, v in raw.items() if k.startswith("model."))
    check_finite_state(raw, path)
    return raw, str(path)


def _disabled(model, key: str) -> bool:
    """Whether ``key`` belongs to a sub-module the model holds as ``None`` (switched off)."""
    parts = key.split(".")
    owner = model
    for part in parts[:-1]:
        children = dict(owner.named_children())
        if part in children:
            owner = children[part]
            continue
        return getattr(owner, part, 0) is None
    return False


def _shape(value) -> tuple:
    return tuple(np.shape(value))


def _match(model, state, new_head: bool, label: str):
    """The state dict to load and the report; raises StateDictError listing every problem."""
    own = OrderedDict((k, _shape(v)) for k, v in model.state_dict().items())
    heads = set(head_modules(model)) if new_head else set()
    keep, report = OrderedDict(), {"loaded": [], "skipped_head": [], "defaulted": [], "unused": []}
    problems = []
    for key, value in state.items():
        if key not in own:
            if _disabled(model, key):
                report["unused"].append(key)
            else:
                problems.append(f"unexpected key {key} {_shape(value)}")
            continue
        mine, theirs = own[key], _shape(value)
        if mine == theirs:
            keep[key] = value
            continue
        module = key.rsplit(".", 1)[0]
        if module in heads and len(mine) == len(theirs) and mine[1:] == theirs[1:]:
            report["skipped_head"].append(key)
            continue
        hint = ""
        if module in heads:
            hint = " (the classifier head's input size differs, not just its number of classes)"
        elif module in set(head_modules(model)):
            hint = " (a classifier head: pass new_head=True to keep the model's own)"
        problems.append(f"{key}: the file has shape {theirs}, the model {mine}{hint}")
    for key in own:
        if key in state:
            continue
        module = key.rsplit(".", 1)[0]
        if key.endswith(".num_batches_tracked") and all(k in state for k in (module + ".running_mean",)):
            keep[key] = np.zeros(own[key], dtype=np.int64)
            report["defaulted"].append(key)
        else:
            problems.append(f"missing key {key} {own[key]}")
    skipped_modules = {k.rsplit(".", 1)[0] for k in report["skipped_head"]}
    for key in list(keep):  # a head whose weight is replaced keeps its own bias too
        if key.rsplit(".", 1)[0] in skipped_modules:
            del keep[key]
            report["skipped_head"].append(key)
    if problems:
        raise StateDictError(f"load_pretrained: {label} does not fit {type(model).__name__} "
                             f"(nothing was loaded):\n  " + "\n  ".join(problems))
    report["loaded"] = list(keep)
    return keep, report


def load_pretrained(model, path_or_state_dict, *, new_head: bool = True) -> dict:
    """Load pretrained weights into ``model`` in place, keeping a freshly initialised head if its
    number of classes differs; see the module docstring for the rules.

    Args:
        model: a zoo model (any :class:`glassnet.nn.Module`) built with the wanted ``num_classes``.
        path_or_state_dict: a ``.pth`` / ``.safetensors`` / ``.npz`` file in torchvision's layout,
            a glassnet checkpoint or run folder, or a dict name -> array.
        new_head: allow the classifier head's outputs to differ (else that is an error too).

    Returns ``{"loaded": [...], "skipped_head": [...], "defaulted": [...], "unused": [...]}``:
    the keys written, the head keys kept as initialised, the ``num_batches_tracked`` buffers
    set to 0, and the source's keys for switched-off sub-modules.

    Raises :class:`~glassnet.errors.StateDictError` listing every mismatched key (nothing is
    written), and the readers' errors (:class:`~glassnet.io.StateDictFileError`, a
    :class:`~glassnet.io.RunDirError`...) naming the file.
    """
    state, label = read_state(path_or_state_dict)
    keep, report = _match(model, state, new_head, label)
    try:
        apply, _, _ = model.prepare_load_state_dict(keep, strict=False)
    except StateDictError as exc:
        raise StateDictError(f"load_pretrained: {label}: {exc}") from exc
    apply()
    return report


def build_pretrained(name: str, builder, weights, *, download: bool = True, progress: bool = True, **kwargs):
    """``get_model(name, weights=...)``: build the zoo model and load its published weights.

    ``num_classes`` other than the weights' 1000 gives a new head (:func:`load_pretrained`);
    GoogLeNet gets ``transform_input=True`` unless told otherwise, as in torchvision.
    """
    from ..errors import InvalidArgumentError
    from .weights import get_weights, weights_file

    entry = get_weights(name, weights)
    if kwargs.get("in_channels", 3) != 3:
        raise InvalidArgumentError(f"get_model({name!r}, weights={entry.name!r}): the published weights take "
                                   f"3 input channels (RGB), got in_channels={kwargs['in_channels']}")
    if name == "googlenet":
        kwargs.setdefault("transform_input", True)
        kwargs.setdefault("init_weights", False)
    path = weights_file(name, entry, download=download, progress=progress)  # before the (slow) build
    model = builder(**kwargs)
    num_classes = kwargs.get("num_classes", entry.num_classes)
    load_pretrained(model, path, new_head=num_classes != entry.num_classes)
    return model
