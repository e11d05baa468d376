"""Training checkpoints: a ``.safetensors`` file of arrays plus a ``.json`` of everything else.

    save_checkpoint("runs/x/checkpoints/last", model, optimizer, scheduler,
                    epoch=3, step=0, metrics={...}, config={...}, rng_states={...})
    info = load_checkpoint("runs/x/checkpoints/last", model, optimizer, scheduler)

Files of one checkpoint ``STEM``:

* ``STEM.safetensors`` -- the model's state dict under ``model.<name>`` and
  every optimizer state *array* (momentum buffers, Adam moments) under
  ``optimizer.state.<param index>.<key>``. Arrays are made C-contiguous, so
  views and transposed arrays are stored with their logical values.
* ``STEM.json`` -- format version, epoch / step within the epoch / global
  step, the optimizer's param groups and non-array state, the scheduler's
  state, RNG states, metrics, the run config, and the SHA-256 of the
  ``.safetensors`` file.

Both are written atomically (temporary file, fsync, ``os.replace``), the
weights first and the JSON last. The JSON names the weights' hash, so a crash
between the two renames leaves a *detectable* torn pair rather than a silently
mismatched one. :func:`load_checkpoint` validates everything (files, JSON,
hash, every key, shape and dtype for this model and optimizer, scheduler
type) before it writes anything; any problem raises :class:`CheckpointError`
naming the file, and the model/optimizer/scheduler are left untouched.
"""
from __future__ import annotations

import collections
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..errors import InvalidTypeError, StateDictError
from ..tensor import Tensor
from .pth import StateDictFileError
from .state_dict_file import _atomic_write, load_state_dict_file, save_state_dict_file

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint_info", "CheckpointError",
           "FORMAT_VERSION", "checkpoint_paths"]

FORMAT_VERSION = 1
_FORMAT_NAME = "glassnet-checkpoint"


class CheckpointError(StateDictError):
    """A checkpoint is missing, corrupt, torn, or does not fit the model/optimizer."""


def checkpoint_paths(path_stem):
    """``(STEM.safetensors, STEM.json)`` for a checkpoint stem (a trailing extension is dropped)."""
    stem = os.fspath(path_stem)
    for ext in (".safetensors", ".json"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    return Path(stem + ".safetensors"), Path(stem + ".json")


# ------------------------------------------------------------ JSON encoding
def _encode(obj):
    """JSON-safe copy of ``obj``; tuples, Counters and non-string-keyed dicts are tagged."""
    if isinstance(obj, (bool, str)) or obj is None:
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, collections.Counter):
        return {"__counter__": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k in _TAGS for k in obj):
            return {k: _encode(v) for k, v in obj.items()}
        return {"__items__": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    if isinstance(obj, np.ndarray) and obj.ndim == 0:
        return _encode(obj.item())
    raise InvalidTypeError(f"cannot store a {type(obj).__name__} in checkpoint JSON: {obj!r}")


_TAGS = ("__float__", "__tuple__", "__counter__", "__items__")


def _decode(obj):
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1:
            (k, v), = obj.items()
            if k == "__float__":
                return float(v)
            if k == "__tuple__":
                return tuple(_decode(x) for x in v)
            if k == "__counter__":
                return collections.Counter({_decode(a): _decode(b) for a, b in v})
            if k == "__items__":
                return {_decode(a): _decode(b) for a, b in v}
        return {k: _decode(v) for k, v in obj.items()}
    return obj


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and getattr(v, "ndim", 0) > 0


# ------------------------------------------------------------------- save
def save_checkpoint(path_stem, model, optimizer=None, scheduler=None, *, epoch, step, metrics, config,
                    rng_states, extra=None, global_step=None) -> tuple[Path, Path]:
    """Write ``STEM.safetensors`` then ``STEM.json`` (each atomically); return both paths.

    Args:
        path_stem: e.g. ``runs/x/checkpoints/last`` (an extension is dropped).
        model: a ``glassnet.nn.Module``.
        optimizer, scheduler: optional; their full state is saved.
        epoch: completed epochs. step: completed steps (batches) of epoch
            ``epoch`` (0 at an epoch boundary). global_step: total optimizer
            steps (default: taken from ``extra["global_step"]`` or ``None``).
        metrics: JSON-able metrics so far (e.g. the history rows).
        config: the run's config (model name, kwargs, CLI args).
        rng_states: JSON-able RNG states (glassnet's global generator, loader, augmentation).
        extra: any other JSON-able data (e.g. the partial epoch's running sums).

    Non-finite floats are stored exactly (as tagged strings), tuples stay tuples.
    """
    st_path, json_path = checkpoint_paths(path_stem)
    st_path.parent.mkdir(parents=True, exist_ok=True)
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
                    plain[key] = value.item() if isinstance(value, np.generic) else to_numpy(value) \
                        if hasattr(value, "shape") else value
            plain_state[str(int(idx))] = {"arrays": sorted(k for k in entry if _is_array(entry[k])),
                                          "values": plain}
        opt_meta = {"class": type(optimizer).__name__, "param_groups": sd["param_groups"],
                    "state": plain_state}
    sched_meta = None
    if scheduler is not None:
        sched_meta = {"class": type(scheduler).__name__, "state": scheduler.state_dict()}

    save_state_dict_file(arrays, st_path, metadata={"format": _FORMAT_NAME,
                                                    "format_version": str(FORMAT_VERSION)})
    meta = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "weights_file": st_path.name,
        "weights_sha256": _sha256(st_path),
        "model": {"class": type(model).__name__,
                  "name": (config or {}).get("model") if isinstance(config, dict) else None,
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
    text = json.dumps(_encode(meta), indent=1) + "\n"
    _atomic_write(os.fspath(json_path), lambda f: f.write(text.encode("utf-8")))
    return st_path, json_path


# ------------------------------------------------------------------- load
def read_checkpoint_info(path_stem, verify_hash: bool = True) -> dict:
    """Parse and check ``STEM.json`` (and the weights file's hash); return the metadata dict.

    Raises :class:`CheckpointError` naming the file when a file is missing, the
    JSON does not parse or is not a glassnet checkpoint, or the hash differs.
    """
    st_path, json_path = checkpoint_paths(path_stem)
    if not json_path.exists():
        raise CheckpointError(f"{json_path}: checkpoint metadata file not found")
    if not st_path.exists():
        raise CheckpointError(f"{st_path}: checkpoint weights file not found (its metadata {json_path} exists)")
    try:
        meta = _decode(json.loads(json_path.read_text("utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{json_path}: checkpoint metadata is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
        raise CheckpointError(f"{json_path}: not a glassnet checkpoint metadata file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{json_path}: checkpoint format version {meta.get('format_version')!r} "
                              f"is not supported (this glassnet reads version {FORMAT_VERSION})")
    for key in ("epoch", "step", "weights_sha256"):
        if key not in meta:
            raise CheckpointError(f"{json_path}: checkpoint metadata has no {key!r} entry")
    if verify_hash:
        digest = _sha256(st_path)
        if digest != meta["weights_sha256"]:
            raise CheckpointError(
                f"{st_path}: SHA-256 {digest[:16]}... does not match the {meta['weights_sha256'][:16]}... "
                f"recorded in {json_path.name}: the weights file is corrupt or from another save "
                "(a torn checkpoint: the run was killed between writing the two files?)")
    return meta


def load_checkpoint(path_stem, model, optimizer=None, scheduler=None) -> dict:
    """Validate checkpoint ``STEM`` against ``model``/``optimizer``/``scheduler``, then load it.

    Everything is checked first: both files exist, the JSON parses, the
    weights file's SHA-256 matches the JSON, every model key is present with
    this model's shape and dtype (and no unexpected ones), the optimizer's
    type, groups and state arrays (shape, dtype) match, the scheduler's type
    matches. Only then are the model, optimizer and scheduler written.
    Returns the metadata dict (``epoch``, ``step``, ``global_step``,
    ``rng_states``, ``metrics``, ``config``, ``extra``...). RNG states are
    *not* applied here (the caller decides).

    Raises :class:`CheckpointError` naming the file and the problem; on error
    nothing is modified.
    """
    st_path, json_path = checkpoint_paths(path_stem)
    meta = read_checkpoint_info(path_stem)
    try:
        arrays = load_state_dict_file(st_path)
    except StateDictFileError as exc:
        raise CheckpointError(f"{st_path}: cannot read checkpoint weights: {exc}") from exc

    problems = []
    # ---- model
    own = collections.OrderedDict((k, v.data if isinstance(v, Tensor) else v)
                                  for k, v in model.state_dict().items())
    model_sd = collections.OrderedDict()
    for k, cur in own.items():
        arr = arrays.get("model." + k)
        if arr is None:
            problems.append(f"missing model key {k!r}")
            continue
        if tuple(arr.shape) != tuple(cur.shape):
            problems.append(f"model key {k!r}: checkpoint has shape {tuple(arr.shape)}, "
                            f"{type(model).__name__} expects {tuple(cur.shape)}")
        elif np.dtype(arr.dtype) != np.dtype(cur.dtype):
            problems.append(f"model key {k!r}: checkpoint has dtype {arr.dtype}, model has {cur.dtype}")
        model_sd[k] = arr
    extra_keys = [k[len("model."):] for k in arrays if k.startswith("model.") and k[len("model."):] not in own]
    if extra_keys:
        problems.append("unexpected model keys (a checkpoint of a different model?): "
                        + ", ".join(extra_keys[:10]) + (" ..." if len(extra_keys) > 10 else ""))

    # ---- optimizer
    opt_sd = None
    if optimizer is not None and _saved_state_fits("optimizer", meta, optimizer, problems):
        opt_sd = _check_optimizer(meta["optimizer"], optimizer, arrays, problems)
    # ---- scheduler
    if scheduler is not None:
        _saved_state_fits("scheduler", meta, scheduler, problems)
    if problems:
        raise CheckpointError(f"{st_path}: checkpoint does not fit (nothing was loaded):\n  "
                              + "\n  ".join(problems))

    try:
        model.load_state_dict(model_sd)
        if opt_sd is not None:
            optimizer.load_state_dict(opt_sd)
        if scheduler is not None:
            scheduler.load_state_dict(meta["scheduler"]["state"])
    except (StateDictError, ValueError, TypeError) as exc:  # pragma: no cover - validated above
        raise CheckpointError(f"{st_path}: loading failed: {exc}") from exc
    return meta


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


def _check_optimizer(om, optimizer, arrays, problems):
    groups = optimizer.param_groups
    saved_groups = om.get("param_groups") or []
    if len(saved_groups) != len(groups):
        problems.append(f"optimizer has {len(saved_groups)} param group(s) in the checkpoint, "
                        f"{len(groups)} here")
        return None
    params = {}
    for i, (g, sg) in enumerate(zip(groups, saved_groups)):
        if len(sg.get("params", [])) != len(g["params"]):
            problems.append(f"optimizer param group {i} has {len(sg.get('params', []))} parameters in "
                            f"the checkpoint, {len(g['params'])} here")
            return None
        for idx, p in zip(sg["params"], g["params"]):
            params[int(idx)] = p
    state = {}
    for idx_s, entry in (om.get("state") or {}).items():
        idx = int(idx_s)
        if idx not in params:
            problems.append(f"optimizer state for parameter {idx}, which the param groups do not list")
            continue
        p = params[idx]
        loaded = dict(entry.get("values", {}))
        for key in entry.get("arrays", []):
            name = f"optimizer.state.{idx}.{key}"
            arr = arrays.get(name)
            if arr is None:
                problems.append(f"missing optimizer key {name!r}")
                continue
            if tuple(arr.shape) != tuple(p.data.shape):
                problems.append(f"optimizer key {name!r}: shape {tuple(arr.shape)} but the parameter "
                                f"has shape {tuple(p.data.shape)}")
            elif np.dtype(arr.dtype) != np.dtype(p.data.dtype):
                problems.append(f"optimizer key {name!r}: dtype {arr.dtype} but the parameter is {p.data.dtype}")
            loaded[key] = arr
        state[idx] = loaded
    # tuples in the live groups (e.g. Adam's betas) stay tuples
    fixed = []
    for g, sg in zip(groups, saved_groups):
        sg = dict(sg)
        for k, v in g.items():
            if isinstance(v, tuple) and isinstance(sg.get(k), list):
                sg[k] = tuple(sg[k])
        fixed.append(sg)
    return {"state": state, "param_groups": fixed}
