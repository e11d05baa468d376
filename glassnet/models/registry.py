"""The model zoo's registry: every zoo model is a function registered by name.

``list_models()`` lists the names; ``get_model(name, **kwargs)`` builds one;
``get_model(name, weights="IMAGENET1K_V1")`` (or ``"DEFAULT"``) also loads
torchvision's published ImageNet weights (:mod:`glassnet.models.weights`).
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


def get_model(name: str, weights=None, *, download: bool = True, progress: bool = True, **kwargs):
    """Build the zoo model ``name`` with ``kwargs`` (e.g. ``num_classes=10``).

    Args:
        name: a name of :func:`list_models` (``-`` and ``_`` alike, any case).
        weights: ``None`` (random initialisation), or published weights to load:
            ``"IMAGENET1K_V1"``, ``"IMAGENET1K_V2"`` (ResNet-50/101/152), ``"DEFAULT"``
            (torchvision's default entry), torchvision's ``"ResNet18_Weights.IMAGENET1K_V1"``
            spelling, or a :class:`~glassnet.models.weights.Weights`. The file is taken from
            the cache or downloaded (:func:`~glassnet.models.weights.weights_file`), its
            SHA-256 prefix checked, and loaded in torchvision's layout. ``num_classes``
            other than 1000 keeps a freshly initialised classifier head
            (:func:`~glassnet.models.load_pretrained`); GoogLeNet gets
            ``transform_input=True`` as in torchvision.
        download: fetch missing weights (also off with ``GLASSNET_OFFLINE=1``).
        progress: show a download progress bar.

    Raises :class:`~glassnet.errors.UnknownNameError` listing the available names
    when ``name`` (or ``weights``) is unknown, and
    :class:`~glassnet.models.weights.WeightsNotFoundError` saying where to put a
    weights file that is not cached and cannot be downloaded.

    Examples:
        >>> from glassnet.models import get_model, list_models
        >>> model = get_model("lenet5", num_classes=10)
        >>> sum(p.data.size for p in model.parameters())
        61706
        >>> "vgg16" in list_models() and "alexnet_lecture" in list_models()
        True
    """
    key = name.replace("-", "_").lower()
    if key not in _BUILDERS:
        raise UnknownNameError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    if weights is None:
        return _BUILDERS[key](**kwargs)
    from .pretrained import build_pretrained

    return build_pretrained(key, _BUILDERS[key], weights, download=download, progress=progress, **kwargs)


def builder_accepts(name: str, kwarg: str) -> bool:
    """Whether the zoo builder ``name`` takes the keyword ``kwarg`` (False for unknown names)."""
    builder = _BUILDERS.get(name.replace("-", "_").lower())
    if builder is None:
        return False
    params = inspect.signature(builder).parameters
    return kwarg in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
