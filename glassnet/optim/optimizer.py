"""The optimizer base class: parameter groups and the step machinery.

An optimizer holds *parameter groups* (``param_groups``): dicts with a
``"params"`` list and the hyperparameters that apply to those parameters
(``"lr"``, ``"momentum"``, ...). Hyperparameters a group does not give are
filled in from the optimizer's ``defaults``. ``state`` holds per-parameter
buffers (momentum, Adam's moments), created lazily on the first ``step``
(:mod:`glassnet.optim.param_state`); checkpoints are
:mod:`glassnet.optim.state_dict`'s job.

The parameters are duck-typed: anything with

* ``.data`` — a floating NumPy or CuPy array, updated **in place** by
  ``step()`` (views held elsewhere stay valid), and
* ``.grad`` — an array of the same shape and dtype, or ``None`` (the
  parameter is skipped by ``step()``).

Names, signatures and semantics follow ``torch.optim``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError
from .param_state import ParamState
from .state_dict import OptimizerStateDict

__all__ = ["Optimizer", "ParamState"]


class Optimizer(OptimizerStateDict):
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
