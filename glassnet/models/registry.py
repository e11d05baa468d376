"""The model zoo's registry: every zoo model is a function registered by name.

``list_models()`` lists the names; ``get_model(name, **kwargs)`` builds one.
Each builder takes at least ``num_classes`` and ``in_channels``.
"""
from __future__ import annotations

import inspect
from typing import Callable
from ..errors import InvalidArgumentError, UnknownNameError

_BUILDERS: dict[str, Callable] = {}


def register_model(fn: Callable) -> Callable:
    """Decorator: add ``fn`` to the zoo under ``fn.__name__``."""
    name = fn.__name__
    if name in _BUILDERS and _BUILDERS[name] is not fn:
        raise InvalidArgumentError(f"register_model: a model named {name!r} is already registered")
    _BUILDERS[name] = fn
    return fn


def list_models() -> list[str]:
    """The names of every model in the zoo, sorted."""
    return sorted(_BUILDERS)


def get_model(name: str, **kwargs):
    """Build the zoo model ``name`` with ``kwargs`` (e.g. ``num_classes=10``).

    Raises ``KeyError`` listing the available names when ``name`` is unknown.
    """
    key = name.replace("-", "_").lower()
    if key not in _BUILDERS:
        raise UnknownNameError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _BUILDERS[key](**kwargs)


def builder_accepts(name: str, kwarg: str) -> bool:
    """Whether the zoo builder ``name`` takes the keyword ``kwarg`` (False for unknown names)."""
    builder = _BUILDERS.get(name.replace("-", "_").lower())
    if builder is None:
        return False
    params = inspect.signature(builder).parameters
    return kwarg in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
