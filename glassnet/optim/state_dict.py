"""Saving and loading an optimizer's state: ``state_dict`` / ``load_state_dict``.

The state dict has PyTorch's layout::

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
from typing import Any

import numpy as np

from ..backend import get_array_module
from ..errors import InvalidArgumentError, ShapeError
from .checks import _check_number
from .param_state import ParamState, _copy_like, _copy_state_value, _is_array

__all__ = ["OptimizerStateDict"]


class OptimizerStateDict:
    """The checkpoint half of :class:`~glassnet.optim.Optimizer` (a mixin).

    Works on the optimizer's ``param_groups``, ``state`` and
    ``_check_hyperparameters``; subclasses declare their per-parameter state
    in ``_STATE_ARRAYS`` / ``_STATE_SCALARS`` and ``_required_state``.

    Shape: state arrays have their parameter's shape; scalars are 0-d.
    """

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



def _index(opt: str, where: str, key) -> int:
    """A parameter index from a state dict: a non-negative int, or a string of digits after JSON."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
        return int(key)
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    raise InvalidArgumentError(f"{opt}.load_state_dict: {where} key {key!r} is not a parameter index")
