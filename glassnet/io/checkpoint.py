"""Training checkpoints: one ``.safetensors`` file holding the arrays and everything else.

    save_checkpoint("runs/x/checkpoints/last", model, optimizer, scheduler,
                    epoch=3, step=0, metrics={...}, config={...}, rng_states={...})
    info = load_checkpoint("runs/x/checkpoints/last", model, optimizer, scheduler)

A checkpoint ``STEM`` is the single file ``STEM.safetensors``
(:mod:`glassnet.io.checkpoint_file`: written under a temporary name, hashed,
fsynced and renamed into place in one step, so a kill at any instant leaves
the previous complete checkpoint or the new one):

* arrays: the model's state dict under ``model.<name>`` and every optimizer
  state *array* (momentum buffers, Adam moments) under
  ``optimizer.state.<param index>.<key>``, C-contiguous (views and
  transposed arrays are stored with their logical values);
* metadata (JSON in the header): format version, epoch / step within the
  epoch / global step, the optimizer's param groups and non-array state, the
  scheduler's state, RNG states, metrics, the run config, and the model's
  keys with shapes and dtypes;
* one SHA-256 over all of it.

:func:`load_checkpoint` is all-or-nothing: it checks the file (hash, JSON),
then every model key, shape, dtype and value's castability, the optimizer's
type, groups, hyperparameters and state arrays, and the scheduler's type and
fields with their ranges -- all before writing anything. Any problem raises
:class:`CheckpointError` naming the file, and the model, optimizer and
scheduler are left untouched.

Checkpoints of format version 1 (``STEM.safetensors`` + ``STEM.json``, glassnet
before 2026-12) are still read.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..errors import DataFormatError, GlassnetError, StateDictError
from ..tensor import Tensor
from .checkpoint_file import (FORMAT_NAME, FORMAT_VERSION, NotACheckpointFile, read_checkpoint_metadata,
                              remove_stale_temporaries, write_checkpoint_file)
from .checkpoint_json import decode_text, encode
from .state_dict_file import load_state_dict_file

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint_info", "CheckpointError",
           "CheckpointWriteError", "FORMAT_VERSION", "checkpoint_path", "remove_stale_temporaries"]


class CheckpointError(StateDictError):
    """A checkpoint is missing, corrupt, or does not fit the model/optimizer/scheduler."""


class CheckpointWriteError(GlassnetError, OSError):
    """The disk refused a checkpoint (full, read-only, quota): the previous checkpoint is intact.

    Built as ``CheckpointWriteError(errno, message)``; ``str()`` is the message alone."""

    def __str__(self):
        return str(self.strerror)


def checkpoint_path(path_stem) -> Path:
    """``STEM.safetensors`` for a checkpoint stem (a trailing ``.safetensors``/``.json`` is dropped)."""
    stem = os.fspath(path_stem)
    for ext in (".safetensors", ".json"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    return Path(stem + ".safetensors")


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and getattr(v, "ndim", 0) > 0


# ------------------------------------------------------------------- save
def save_checkpoint(path_stem, model, optimizer=None, scheduler=None, *, epoch, step, metrics, config,
                    rng_states, extra=None, global_step=None) -> Path:
    """Write checkpoint ``STEM.safetensors`` atomically (arrays + metadata, one file); return its path.

    Args:
        path_stem: e.g. ``runs/x/checkpoints/last`` (an extension is dropped).
        model: a ``glassnet.nn.Module``.
        optimizer, scheduler: optional; their full state is saved.
        epoch: completed epochs. step: completed steps (batches) of epoch
            ``epoch`` (0 at an epoch boundary). global_step: total optimizer steps.
        metrics: JSON-able metrics so far (e.g. the history rows).
        config: the run's config (model name, kwargs, CLI args).
        rng_states: JSON-able RNG states (glassnet's global generator, loader, augmentation).
        extra: any other JSON-able data (e.g. the partial epoch's running sums).

    Non-finite floats are stored exactly (as tagged strings), tuples stay tuples.
    Raises :class:`CheckpointWriteError` (an ``OSError``) when the disk refuses
    the write (e.g. ``ENOSPC``): the previous checkpoint at ``STEM`` is then
    unchanged and no temporary file remains.
    """
    path = checkpoint_path(path_stem)
    arrays = collections.OrderedDict()
    for k, v in model.state_dict().items():
        arrays["model." + k] = v.data if isinstance(v, Tensor) else v
    opt_meta = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        plain_state = {}
        for idx, entry in sd["state"].items():
            plain = {}
            for key, value in entry.items():
                if _is_array(value):
                    arrays[f"optimizer.state.{int(idx)}.{key}"] = value
                else:
                    plain[key] = value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 \
                        else value
            plain_state[str(int(idx))] = {"arrays": sorted(k for k in entry if _is_array(entry[k])),
                                          "values": plain}
        opt_meta = {"class": type(optimizer).__name__, "param_groups": sd["param_groups"],
                    "state": plain_state}
    sched_meta = None
    if scheduler is not None:
        sched_meta = {"class": type(scheduler).__name__, "state": scheduler.state_dict()}
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": {"class": type(model).__name__,
                  "name": config.get("model") if isinstance(config, dict) else None,
                  "keys": {k[len("model."):]: [list(np.shape(v)), str(np.dtype(v.dtype))]
                           for k, v in arrays.items() if k.startswith("model.")}},
        "epoch": int(epoch),
        "step": int(step),
        "global_step": None if global_step is None else int(global_step),
        "optimizer": opt_meta,
        "scheduler": sched_meta,
        "rng_states": rng_states,
        "metrics": metrics,
        "config": config,
        "extra": extra,
    }
    text = json.dumps(encode(meta), separators=(",", ":"))
    try:
        write_checkpoint_file(path, arrays, text)
    except OSError as exc:
        raise CheckpointWriteError(
            exc.errno, f"{path}: cannot write the checkpoint ({exc.strerror or exc}); the previous "
            f"checkpoint there, if any, is unchanged") from exc
    legacy_json = path.with_suffix(".json")
    if legacy_json.exists():  # a version-1 sidecar would describe an older save
        legacy_json.unlink()
    return path


# ------------------------------------------------------------------- load
def read_checkpoint_info(path_stem, verify_hash: bool = True) -> dict:
    """The metadata dict of checkpoint ``STEM`` after checking the file's SHA-256.

    Raises :class:`CheckpointError` naming the file when it is missing, not a
    glassnet checkpoint, corrupt (hash mismatch, bad JSON) or of an unknown
    format version.
    """
    path = checkpoint_path(path_stem)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        meta = read_checkpoint_metadata(path, verify_hash)
    except NotACheckpointFile:
        meta = _read_version_1(path, verify_hash)
    except (DataFormatError, OSError) as exc:
        raise CheckpointError(str(exc) if isinstance(exc, DataFormatError)
                              else f"{path}: cannot read checkpoint: {exc}") from exc
    for key, kind in (("epoch", int), ("step", int)):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
            raise CheckpointError(f"{path}: checkpoint metadata {key!r} is {value!r}, not an integer >= 0")
    gs = meta.get("global_step")
    if gs is not None and (isinstance(gs, bool) or not isinstance(gs, int) or gs < 0):
        raise CheckpointError(f"{path}: checkpoint metadata 'global_step' is {gs!r}, not an integer >= 0")
    for key in ("optimizer", "scheduler", "rng_states", "extra", "model"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise CheckpointError(f"{path}: checkpoint metadata {key!r} is a {type(meta[key]).__name__}, "
                                  "not an object")
    return meta


def _read_version_1(path: Path, verify_hash: bool) -> dict:
    """A format-1 checkpoint: ``STEM.json`` beside ``STEM.safetensors``, the JSON naming the weights' hash."""
    json_path = path.with_suffix(".json")
    if not json_path.exists():
        raise CheckpointError(f"{path}: not a glassnet checkpoint (no checkpoint metadata in the file, "
                              f"and no {json_path.name} beside it)")
    try:
        meta = decode_text(json_path.read_text("utf-8"), json_path)
    except (OSError, UnicodeDecodeError, DataFormatError) as exc:
        raise CheckpointError(f"{json_path}: checkpoint metadata is not readable: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME or meta.get("format_version") != 1:
        raise CheckpointError(f"{json_path}: not a glassnet checkpoint metadata file of format version 1")
    if verify_hash:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != meta.get("weights_sha256"):
            raise CheckpointError(
                f"{path}: SHA-256 does not match the one recorded in {json_path.name}: the weights file is "
                "corrupt or from another save (a torn version-1 checkpoint)")
    return meta


def load_checkpoint(path_stem, model, optimizer=None, scheduler=None) -> dict:
    """Validate checkpoint ``STEM`` against ``model``/``optimizer``/``scheduler``, then load it.

    Everything is checked first: the file and its hash, every model key
    (present, no unexpected ones, this model's shape and dtype, castable
    values), the optimizer's class, groups, hyperparameters (e.g. a finite
    ``lr``) and state arrays, the scheduler's class and fields with their
    ranges. Only then are the model, optimizer and scheduler written.
    Returns the metadata dict (``epoch``, ``step``, ``global_step``,
    ``rng_states``, ``metrics``, ``config``, ``extra``...). RNG states are
    *not* applied here (the caller decides).

    Raises :class:`CheckpointError` naming the file and every problem; on
    error nothing is modified.
    """
    path = checkpoint_path(path_stem)
    meta = read_checkpoint_info(path)
    try:
        arrays = load_state_dict_file(path)
    except DataFormatError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint arrays: {exc}") from exc

    problems, installs = [], []
    model_sd = collections.OrderedDict((k[len("model."):], v) for k, v in arrays.items()
                                       if k.startswith("model."))
    for k, current in model.state_dict().items():
        current = current.data if isinstance(current, Tensor) else current
        if k in model_sd and np.dtype(model_sd[k].dtype) != np.dtype(current.dtype):
            problems.append(f"model key {k!r}: checkpoint has dtype {model_sd[k].dtype}, "
                            f"model has {current.dtype}")
    try:
        apply_model, _, _ = model.prepare_load_state_dict(model_sd, strict=True)
        installs.append(apply_model)
    except StateDictError as exc:
        problems.append(str(exc))
    if optimizer is not None and _saved_state_fits("optimizer", meta, optimizer, problems):
        opt_sd = _optimizer_state_dict(meta["optimizer"], arrays, problems)
        if opt_sd is not None:
            _prepare(optimizer, opt_sd, problems, installs)
    if scheduler is not None and _saved_state_fits("scheduler", meta, scheduler, problems):
        _prepare(scheduler, meta["scheduler"].get("state"), problems, installs)
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not fit (nothing was loaded):\n  "
                              + "\n  ".join(problems))
    for install in installs:
        install()
    return meta


def _prepare(obj, state_dict, problems, installs) -> None:
    try:
        installs.append(obj.prepare_load_state_dict(state_dict))
    except (GlassnetError, ValueError, TypeError, KeyError, OverflowError) as exc:
        problems.append(f"{type(obj).__name__} state: {exc}")


def _saved_state_fits(kind, meta, obj, problems) -> bool:
    """Whether the checkpoint holds ``kind`` ("optimizer"/"scheduler") state of
    ``obj``'s class; else a problem is noted."""
    saved = meta.get(kind)
    if not saved:
        problems.append(f"the checkpoint holds no {kind} state")
        return False
    if saved.get("class") != type(obj).__name__:
        problems.append(f"{kind} is a {saved.get('class')} in the checkpoint but a {type(obj).__name__} here")
        return False
    return True


def _optimizer_state_dict(om, arrays, problems):
    """The optimizer's ``state_dict()`` rebuilt from the metadata and the file's arrays."""
    state = {}
    saved_state = om.get("state") or {}
    if not isinstance(saved_state, dict):
        problems.append("optimizer state is not an object")
        return None
    for idx, entry in saved_state.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("values", {}), dict) \
                or not isinstance(entry.get("arrays", []), list):
            problems.append(f"optimizer state of parameter {idx!r} is malformed")
            continue
        loaded = dict(entry.get("values", {}))
        for key in entry.get("arrays", []):
            name = f"optimizer.state.{idx}.{key}"
            if name not in arrays:
                problems.append(f"missing optimizer key {name!r}")
                continue
            loaded[key] = arrays[name]
        state[idx] = loaded
    return {"state": state, "param_groups": om.get("param_groups")}
