"""Freeze parts of a model for transfer learning (``glassnet train --freeze PREFIX...``).

    from glassnet.nn import freeze
    frozen = freeze(model, ["conv1", "bn1", "layer1"])   # their parameters stop learning

A frozen parameter has ``requires_grad=False``: backward computes no gradient
for it (its ``.grad`` stays ``None``), and every glassnet optimizer updates only
parameters that have a gradient, so it is left bitwise unchanged -- weight
decay and momentum included -- even when the optimizer was given all of
``model.parameters()``.

BatchNorm: freezing a BatchNorm layer freezes its learnable ``weight`` and
``bias`` only. Its running mean and variance are buffers, not parameters, and
in ``train()`` mode they keep following the batches, exactly as in PyTorch
(``requires_grad_(False)`` does not stop them). To keep a pretrained network's
statistics too, put those BatchNorm modules in ``eval()`` mode after every
``model.train()`` call (e.g. ``for m in frozen_bn: m.eval()``).
"""
from __future__ import annotations

from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = ["freeze", "unfreeze"]


def _matches(name: str, prefix: str) -> bool:
    """``prefix`` names ``name`` or one of its dotted ancestors (``layer1`` matches
    ``layer1.0.conv1.weight``, not ``layer10.weight``); a trailing ``.`` is allowed."""
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")


def _unknown(model, prefix: str) -> str:
    """Why ``prefix`` matches nothing: the names available where the dotted path stops."""
    owner, path = model, []
    for part in prefix.rstrip(".").split("."):
        children = dict(owner.named_children())
        if part not in children:
            break
        owner = children[part]
        path.append(part)
    where = ".".join(path)
    names = [f"{where}.{n}" if where else n for n, _ in owner.named_children()]
    names += [f"{where}.{n}" if where else n for n, p in owner._parameters.items() if p is not None]
    inside = f" inside {where!r}" if where else ""
    shown = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
    return (f"freeze: no parameter of {type(model).__name__} is under {prefix!r}; the modules and "
            f"parameters{inside} are: {shown or '(none)'} (names as in model.named_parameters())")


def _prefixes(prefixes, who: str) -> list[str]:
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    try:
        out = list(prefixes)
    except TypeError as exc:
        raise InvalidTypeError(f"{who}: prefixes must be a string or a list of strings, "
                               f"got {type(prefixes).__name__}") from exc
    for p in out:
        if not isinstance(p, str) or not p.strip("."):
            raise InvalidArgumentError(f"{who}: each prefix must be a non-empty module or parameter name "
                                       f"such as 'layer1' or 'features.0', got {p!r}")
    return out


def _set(model, prefixes, flag: bool, who: str) -> list[str]:
    prefixes = _prefixes(prefixes, who)
    params = list(model.named_parameters())
    for prefix in prefixes:  # validate every prefix before touching anything
        if not any(_matches(name, prefix) for name, _ in params):
            raise InvalidArgumentError(_unknown(model, prefix).replace("freeze:", f"{who}:", 1))
    changed = []
    for name, p in params:
        if any(_matches(name, prefix) for prefix in prefixes):
            p.requires_grad = flag
            if not flag:
                p.grad = None
            changed.append(name)
    return changed


def freeze(model, prefixes) -> list[str]:
    """Stop the parameters under ``prefixes`` from learning; return their names.

    Args:
        model: a :class:`glassnet.nn.Module`.
        prefixes: module or parameter names (a string or a list), dotted as in
            ``model.named_parameters()``: ``"features"``, ``"layer1.0"``, ``"fc.bias"``.
            A prefix matches whole name components (``"features.1"`` does not match
            ``features.10``).

    Sets ``requires_grad=False`` and clears ``.grad`` on each matched parameter.
    Raises :class:`~glassnet.errors.InvalidArgumentError` for a prefix that matches no
    parameter, listing the names available where it stops matching; nothing is changed
    then. See the module docstring for BatchNorm's running statistics.
    """
    return _set(model, prefixes, False, "freeze")


def unfreeze(model, prefixes) -> list[str]:
    """Undo :func:`freeze` for the parameters under ``prefixes`` (``requires_grad=True``); return their names."""
    return _set(model, prefixes, True, "unfreeze")
