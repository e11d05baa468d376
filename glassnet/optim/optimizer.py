"""The optimizer base class: parameter groups, per-parameter state, checkpoints.

An optimizer holds *parameter groups* (``param_groups``): dicts with a
``"params"`` list and the hyperparameters that apply to those parameters
(``"lr"``, ``"momentum"``, ...). Hyperparameters a group does not give are
filled in from the optimizer's ``defaults``. ``state`` holds per-parameter
buffers (momentum, Adam's moments), created lazily on the first ``step``.

The parameters are duck-typed: anything with

* ``.data`` — a floating NumPy or CuPy array, updated **in place** by
  ``step()`` (views held elsewhere stay valid), and
* ``.grad`` — an array of the same shape and dtype, or ``None`` (the
  parameter is skipped by ``step()``).

Names, signatures and semantics follow ``torch.optim``. The state dict has
PyTorch's layout::

    {"state": {0: {"momentum_buffer": array}, 1: {...}, ...},
     "param_groups": [{"lr": 0.01, ..., "params": [0, 1]}, ...]}

where the integers are the parameters' positions, counted across groups in
order. ``state_dict()`` returns copies of the state arrays and
``load_state_dict()`` copies them again onto each parameter's device and
dtype, so a saved dict never aliases live optimizer state.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Iterator

import numpy as np

from ..threads import parallel_for

from ..backend import device_of, get_array_module, to_device
from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError

__all__ = ["Optimizer", "ParamState"]


def _is_array(x) -> bool:
    """True for NumPy and CuPy arrays (not for scalars)."""
    return isinstance(x, np.ndarray) or get_array_module(x) is not np


def _copy_like(value, ref):
    """A fresh copy of array ``value`` on ``ref``'s device.

    Floating arrays take ``ref``'s dtype (as ``torch.optim`` does when loading
    state); other arrays keep their dtype.
    """
    xp = get_array_module(ref)
    value = to_device(value, device_of(ref))
    dtype = ref.dtype if value.dtype.kind == "f" else value.dtype
    return xp.array(value, dtype=dtype, copy=True)


def _copy_state_value(value):
    """Deep copy of one state entry: arrays copied, containers recursed."""
    if _is_array(value):
        return value.copy()
    return copy.deepcopy(value)


class ParamState:
    """Per-parameter state, keyed by the parameter object (by identity).

    ``state[p]`` returns ``p``'s state dict, creating an empty one on first
    access (like PyTorch's ``defaultdict``). Keys are compared by identity, so
    parameters need not be hashable and two equal-valued parameters never
    share state.
    """

    def __init__(self):
        self._entries: dict[int, tuple[Any, dict]] = {}

    def __getitem__(self, param) -> dict:
        entry = self._entries.get(id(param))
        if entry is None:
            entry = (param, {})
            self._entries[id(param)] = entry
        return entry[1]

    def __setitem__(self, param, value: dict) -> None:
        self._entries[id(param)] = (param, value)

    def __delitem__(self, param) -> None:
        del self._entries[id(param)]

    def __contains__(self, param) -> bool:
        return id(param) in self._entries

    def get(self, param, default=None):
        entry = self._entries.get(id(param))
        return default if entry is None else entry[1]

    def __iter__(self) -> Iterator:
        return (p for p, _ in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self):
        return list(self)

    def values(self):
        return [s for _, s in self._entries.values()]

    def items(self):
        return list(self._entries.values())

    def clear(self) -> None:
        self._entries.clear()

    def __repr__(self) -> str:
        return f"ParamState({len(self)} parameters)"


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of parameters, of ``(name, parameter)`` pairs, or
            of param-group dicts (``{"params": [...], "lr": ...}``).
        defaults: the hyperparameters used by groups that do not set them.

    Subclasses implement :meth:`step` and may override
    :meth:`_check_hyperparameters` (called on the defaults and on every
    group added) to reject bad values with a clear message.

    Shape: parameters of any shape (including 0-d) are accepted; each keeps
    its shape and dtype.
    """

    def __init__(self, params, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self._check_hyperparameters(self.defaults, where="defaults")
        name = type(self).__name__
        if hasattr(params, "data") and hasattr(params, "grad"):
            raise InvalidTypeError(
                f"{name}: params should be an iterable of parameters or of param-group dicts, "
                f"but got a single parameter ({type(params).__name__}); pass [param] instead"
            )
        if isinstance(params, dict):
            raise InvalidTypeError(
                f"{name}: params should be an iterable of parameters or of param-group dicts, "
                "but got a dict; wrap a single group in a list: [group]"
            )
        if isinstance(params, (set, frozenset)):
            raise InvalidTypeError(
                f"{name}: parameters must be given in an ordered collection (list or tuple), "
                "not a set: a set's order changes between runs, which breaks state_dict()"
            )
        self.state = ParamState()
        self.param_groups: list[dict[str, Any]] = []

        groups = list(params)
        if len(groups) == 0:
            raise InvalidArgumentError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def _check_hyperparameters(self, group: dict[str, Any], where: str) -> None:
        """Raise ``ValueError`` for invalid hyperparameters (overridden by subclasses)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters.

        Missing hyperparameters are taken from ``defaults``. A parameter may
        belong to only one group.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise InvalidTypeError(f"{name}.add_param_group: param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise InvalidArgumentError(f"{name}.add_param_group: param_group has no 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if hasattr(params, "data") and hasattr(params, "grad"):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise InvalidTypeError(
                f"{name}: parameters must be given in an ordered collection (list or tuple), "
                "not a set: a set's order changes between runs, which breaks state_dict()"
            )
        params = list(params)

        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(params):
            raise InvalidArgumentError(f"{name}: give all parameters of a group with names, or none")
        if names:
            group["param_names"] = names

        for i, p in enumerate(params):
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise InvalidTypeError(
                    f"{name}: can only optimize parameters (objects with .data and .grad), "
                    f"but parameter {i} of the group is a {type(p).__name__}"
                )
            dtype = getattr(p.data, "dtype", None)
            if dtype is None or np.dtype(dtype).kind != "f":
                raise InvalidTypeError(
                    f"{name}: can only optimize floating-point parameters, "
                    f"but parameter {i} of the group has dtype {dtype}"
                )
        group["params"] = params

        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_hyperparameters(group, where=f"param group {len(self.param_groups)}")

        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise InvalidArgumentError(f"{name}: a parameter group lists the same parameter more than once")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen.intersection(ids):
            raise InvalidArgumentError(f"{name}: some parameters appear in more than one parameter group")
        if self.param_groups and (("param_names" in group) != ("param_names" in self.param_groups[0])):
            raise InvalidArgumentError(f"{name}: all param groups must be given with names, or all without")
        self.param_groups.append(group)

    # -------------------------------------------------------------------- step
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: ``p.grad = None`` (default) or fill with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    def _params_with_grad(self, group: dict[str, Any]):
        """Yield ``(param, grad)`` for the group's parameters whose grad is not None.

        Checks that each grad matches its parameter's shape and dtype, so a
        mismatch fails here with a clear message rather than broadcasting or
        silently casting inside the update.
        """
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if g.shape != p.data.shape:
                raise ShapeError(
                    f"{type(self).__name__}.step: a parameter of shape {tuple(p.data.shape)} has a "
                    f"gradient of shape {tuple(g.shape)}; they must be equal"
                )
            if g.dtype != p.data.dtype:
                raise InvalidTypeError(
                    f"{type(self).__name__}.step: a {p.data.dtype} parameter has a {g.dtype} "
                    "gradient; glassnet never casts silently, they must be equal"
                )
            yield p, g

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Return ``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are replaced by their position, counted across groups in
        order. State arrays are copied, so the result does not change when
        the optimizer steps again.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if id(p) in index and s:
                state[index[id(p)]] = {k: _copy_state_value(v) for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a dict made by :meth:`state_dict` into this optimizer.

        The optimizer must have the same number of groups, the same number
        of parameters in each, state arrays must have their parameter's
        shape and be finite, and every hyperparameter must pass the
        optimizer's own checks (e.g. a finite ``lr >= 0``); otherwise
        ``InvalidArgumentError`` / ``ShapeError`` says what differs and
        nothing is changed (see :meth:`prepare_load_state_dict`). Arrays are
        copied onto each parameter's device and (floating) dtype.
        Hyperparameters (``lr`` etc.) are taken from the loaded groups.
        """
        self.prepare_load_state_dict(state_dict)()

    def prepare_load_state_dict(self, state_dict: dict[str, Any]):
        """Validate ``state_dict`` completely and return a function that installs it.

        Nothing is changed until the returned ``apply()`` is called, and
        ``apply()`` cannot fail: a caller loading a model, an optimizer and a
        scheduler validates all three first, then applies them.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise InvalidArgumentError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups' entries")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(
                isinstance(sg, dict) and isinstance(sg.get("params"), (list, tuple)) for sg in saved_groups):
            raise InvalidArgumentError(f"{name}.load_state_dict: 'param_groups' must be a list of dicts, "
                                       "each with a 'params' list")
        if not isinstance(saved_state, dict):
            raise InvalidArgumentError(f"{name}.load_state_dict: 'state' must be a dict, "
                                       f"got {type(saved_state).__name__}")
        groups = self.param_groups
        if len(saved_groups) != len(groups):
            raise InvalidArgumentError(
                f"{name}.load_state_dict: the loaded state dict has {len(saved_groups)} parameter "
                f"group(s) but this optimizer has {len(groups)}"
            )
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(sg["params"]) != len(g["params"]):
                raise InvalidArgumentError(
                    f"{name}.load_state_dict: parameter group {i} has {len(sg['params'])} parameter(s) "
                    f"in the loaded state dict but {len(g['params'])} in this optimizer"
                )

        id_map, group_of = {}, {}
        for g, sg in zip(groups, saved_groups):
            for saved_id, p in zip(sg["params"], g["params"]):
                idx = _index(name, "param_groups", saved_id)
                if idx in id_map:
                    raise InvalidArgumentError(f"{name}.load_state_dict: parameter index {idx} is listed twice "
                                               "in the loaded param_groups")
                id_map[idx], group_of[idx] = p, {**g, **sg}

        new_state = ParamState()
        for key, entry in saved_state.items():
            idx = _index(name, "state", key)
            if idx not in id_map:
                raise InvalidArgumentError(
                    f"{name}.load_state_dict: the loaded state has an entry for parameter {idx}, "
                    f"but the loaded param_groups only list parameters {sorted(id_map)}"
                )
            if not isinstance(entry, dict):
                raise InvalidArgumentError(f"{name}.load_state_dict: state of parameter {idx} must be a dict, "
                                           f"got {type(entry).__name__}")
            p = id_map[idx]
            if entry:
                missing = sorted(self._required_state(group_of[idx]) - set(entry))
                if missing:
                    raise InvalidArgumentError(f"{name}.load_state_dict: the state of parameter {idx} lacks "
                                               f"{missing} (it has {sorted(map(str, entry))})")
            loaded = {}
            for k, v in entry.items():
                self._check_state_value(f"parameter {idx}", k, v, p)
                loaded[k] = _copy_like(v, p.data) if _is_array(v) else copy.deepcopy(v)
            new_state[p] = loaded

        new_groups = []
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            ng = {k: copy.deepcopy(v) for k, v in sg.items() if k != "params"}
            for k, v in g.items():
                if k != "params":
                    ng.setdefault(k, v)
                    if isinstance(v, tuple) and isinstance(ng[k], list):
                        ng[k] = tuple(ng[k])  # e.g. Adam's betas after a JSON round trip
            ng["params"] = g["params"]
            self._check_hyperparameters(ng, where=f"loaded param group {i}")
            if "initial_lr" in ng:
                _check_number(name, f"loaded param group {i}", "initial_lr", ng["initial_lr"], low=0)
            new_groups.append(ng)

        def apply():
            self.state = new_state
            self.param_groups = new_groups

        return apply

    #: per-parameter state entries that are arrays of the parameter's shape (floating, finite)
    _STATE_ARRAYS: frozenset = frozenset()
    #: per-parameter state entries that are scalars (counts)
    _STATE_SCALARS: frozenset = frozenset()

    def _required_state(self, group) -> set:
        """The keys a non-empty state entry of a parameter in ``group`` must hold (none by default)."""
        return set()

    def _check_state_value(self, where: str, key, value, param) -> None:
        """Refuse a per-parameter state value that cannot be right.

        An optimizer that declares its state (``_STATE_ARRAYS``, ``_STATE_SCALARS``)
        refuses unknown keys, arrays that are not floating, finite and of the
        parameter's exact shape, and scalars that are not finite numbers. One that
        declares nothing (a user's subclass) gets the generic checks: arrays of the
        parameter's shape (or 0-d), numeric and finite; scalars finite numbers.
        """
        name = type(self).__name__
        if not isinstance(key, str):
            raise InvalidArgumentError(f"{name}.load_state_dict: the state of {where} has a non-string key {key!r}")
        declared = self._STATE_ARRAYS | self._STATE_SCALARS
        if declared and key not in declared:
            raise InvalidArgumentError(f"{name}.load_state_dict: state {key!r} of {where} is not one of "
                                       f"{name}'s state entries {sorted(declared)}")
        if key in self._STATE_ARRAYS or (not declared and _is_array(value) and value.ndim > 0):
            if not _is_array(value) or value.dtype.kind != "f":
                what = f"dtype {value.dtype}" if _is_array(value) else f"a {type(value).__name__}"
                raise InvalidArgumentError(f"{name}.load_state_dict: state {key!r} of {where} has {what}; "
                                           "it must be a floating-point array")
            if tuple(value.shape) != tuple(param.data.shape):
                raise ShapeError(
                    f"{name}.load_state_dict: state {key!r} of {where} has shape "
                    f"{tuple(value.shape)} but the parameter has shape {tuple(param.data.shape)}"
                )
            if not bool(get_array_module(value).isfinite(value).all()):
                raise InvalidArgumentError(f"{name}.load_state_dict: state {key!r} of {where} holds NaN or Inf values")
            return
        if _is_array(value):
            if value.ndim > 0 or value.dtype.kind not in "biuf":
                raise InvalidArgumentError(f"{name}.load_state_dict: state {key!r} of {where} must be a scalar, "
                                           f"got an array of shape {tuple(value.shape)} and dtype {value.dtype}")
            value = value.item()
        if value is None or isinstance(value, (bool, str)) and not declared:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or (isinstance(value, (float, np.floating)) and not math.isfinite(value)):
            raise InvalidArgumentError(f"{name}.load_state_dict: state {key!r} of {where} = {value!r} is not a finite number")

    # -------------------------------------------------------------------- repr
    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _check_number(opt: str, where: str, name: str, value, *, low=None, low_inclusive=True, high=None,
                  high_inclusive=False) -> None:
    """Raise a clear ``ValueError``/``TypeError`` unless ``low ≤ value < high`` (bounds optional)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{opt} ({where}): {name} must be a real number, got {value!r}")
    bad_low = low is not None and (value < low if low_inclusive else value <= low)
    bad_high = high is not None and (value > high if high_inclusive else value >= high)
    if bad_low or bad_high or not math.isfinite(value):
        lo = "" if low is None else f"{low} {'<=' if low_inclusive else '<'} "
        hi = "" if high is None else f" {'<=' if high_inclusive else '<'} {high}"
        raise InvalidArgumentError(f"{opt} ({where}): invalid {name} = {value!r}; it must satisfy {lo}{name}{hi}")


def _index(opt: str, where: str, key) -> int:
    """A parameter index from a state dict: a non-negative int, or a string of digits after JSON."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
        return int(key)
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    raise InvalidArgumentError(f"{opt}.load_state_dict: {where} key {key!r} is not a parameter index")


def _scalar(dtype, value):
    """``value`` as a scalar of ``dtype`` (so float32 math stays float32)."""
    return np.dtype(dtype).type(value)


_CHUNK = 1 << 18  # elements per slice of an in-place update (1 MiB of float32)


def for_slices(work, *arrays) -> None:
    """``work(*slices)`` over matching 1-D slices of ``CHUNK`` elements of
    same-shaped C-contiguous NumPy ``arrays``, so an update's temporaries stay
    cache-sized instead of parameter-sized (VGG's FC6 weight alone is
    411 MB); the slices are shared out over the kernel threads
    (:mod:`glassnet.threads`). Small or other arrays: one ``work(*arrays)``.
    Element-wise updates give the same result either way."""
    first = arrays[0]
    if first.size <= _CHUNK or not all(isinstance(a, np.ndarray) and a.flags.c_contiguous
                                       and a.shape == first.shape for a in arrays):
        work(*arrays)
        return
    flats = [a.reshape(-1) for a in arrays]
    n_slices = -(-first.size // _CHUNK)

    def run(lo, hi):
        for i in range(lo, hi):
            work(*[f[i * _CHUNK:(i + 1) * _CHUNK] for f in flats])

    parallel_for(n_slices, run, first.size)
