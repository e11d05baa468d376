"""Which inputs a model takes: its design size, whether an input fits, the smallest that does.

    from glassnet.analysis.input_fit import design_side, smallest_side, fits
    design_side("alexnet_lecture")                       # 227
    model = get_model("alexnet_lecture", num_classes=5)
    fits(model, (3, 100, 100))                           # (False, "alexnet_lecture: the conv layers ...")
    smallest_side(model, 3, reference=227)               # 227

:func:`smallest_side` finds the smallest square input a built model accepts by forward
passes on one blank image (eval mode, no grad), bisecting between 1 and a size known to
work. That relies on what holds for the zoo's networks: a layer's output size never shrinks
when its input grows, so if side ``s`` works, every side between ``s`` and the working
reference also does (for a network whose classifier takes a fixed number of features,
those sides all end in the same final map). About ``log2(reference)`` forwards, each on
at most the reference size.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..errors import GlassnetError, InvalidArgumentError

__all__ = ["design_side", "design_input", "fits", "smallest_side", "DESIGN_SIDES"]

#: the input side of zoo models that have no ``image_size`` argument and are not built for 224
DESIGN_SIDES = {"alexnet_lecture": 227}


def _builder(name: str):
    from ..models.registry import _BUILDERS

    key = name.replace("-", "_").lower()
    if key not in _BUILDERS:
        raise InvalidArgumentError(f"unknown model {name!r}")
    return _BUILDERS[key]


def design_side(name: str, kwargs: dict | None = None):
    """The input zoo model ``name`` is built for: ``kwargs["image_size"]`` or its builder's
    ``image_size`` default (an int or (H, W)) for the models that take one (mlp, lenet5,
    small_cnn), 227 for alexnet_lecture, else 224 (the ImageNet models)."""
    params = inspect.signature(_builder(name)).parameters
    if "image_size" in params:
        size = (kwargs or {}).get("image_size", params["image_size"].default)
        return tuple(size) if isinstance(size, (list, tuple)) else int(size)
    return DESIGN_SIDES.get(name.replace("-", "_").lower(), 224)


def design_input(name: str, kwargs: dict | None = None, channels=None) -> str:
    """``"CxHxW"`` of :func:`design_side`, C from ``channels`` or the builder's ``in_channels`` default."""
    params = inspect.signature(_builder(name)).parameters
    if channels is None:
        channels = params["in_channels"].default if "in_channels" in params else "C"
    side = design_side(name, kwargs)
    h, w = (side, side) if isinstance(side, int) else side
    return f"{channels}x{h}x{w}"


def fits(model, sample_shape) -> tuple[bool, str]:
    """``(True, "")`` when ``model`` runs on one blank image of ``sample_shape`` (C, H, W), else
    ``(False, reason)`` with the ShapeError's message. Eval mode and no grad for the pass; the
    model's mode is restored."""
    from ..autograd import no_grad
    from ..tensor import Tensor

    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(np.zeros((1, *sample_shape), dtype=dtype)))
    except (GlassnetError, ValueError) as exc:  # ShapeError and the layers' other shape complaints
        return False, str(exc)
    finally:
        model.train(was_training)
    return True, ""


def smallest_side(model, channels: int, reference: int):
    """The smallest ``s`` such that ``model`` runs on a ``channels x s x s`` image, found by
    bisection below ``reference`` (a side that works); ``None`` when ``reference`` itself fails."""
    reference = int(reference)
    lo, hi = 1, reference
    while lo < hi:  # the reference itself is only run when nothing smaller works
        mid = (lo + hi) // 2
        if fits(model, (channels, mid, mid))[0]:
            hi = mid
        else:
            lo = mid + 1
    if lo == reference and not fits(model, (channels, reference, reference))[0]:
        return None
    return lo
