"""The transform protocol: :class:`Transform`, :class:`Compose`, :class:`Lambda`,
:func:`apply_transform`, and the helpers every transform module shares (rank
checks, size pairs, the generators a call draws from).

The ``rng`` argument
--------------------
``transform(x, rng=None)``: a random transform draws from ``rng`` when it is
given and from its own generator (``seed=`` / ``rng=`` at construction)
otherwise. For a batch ``(N, C, H, W)``, ``rng`` may also be a list of ``N``
generators, one per image: image ``i`` then gets exactly what a per-image
call ``transform(x[i], rng=rng[i])`` would give (see
:func:`glassnet.data.sample_rng.sample_rng`). :class:`Compose` passes the
same ``rng`` (generator or list) to each member in turn.
"""
from __future__ import annotations

import inspect
import numbers

import numpy as np

from ...errors import InvalidArgumentError, InvalidTypeError, ShapeError

__all__ = ["Transform", "Compose", "Lambda", "apply_transform"]


def _is_batch(x, who: str) -> bool:
    """True for (N, C, H, W), False for (C, H, W); ShapeError otherwise."""
    if x.ndim == 4:
        return True
    if x.ndim == 3:
        return False
    raise ShapeError(
        f"{who}: expected one image (C, H, W) or a batch (N, C, H, W), got shape {tuple(x.shape)}"
    )


def _pair(v, name: str, who: str) -> tuple[int, int]:
    """An int or an (h, w) pair of ints >= 0 as a pair; a 1-sequence counts as an int (torchvision)."""
    if isinstance(v, (list, tuple)) and len(v) == 1:
        v = v[0]
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (int(v), int(v))
    else:
        try:
            v = tuple(v)
        except TypeError:
            raise InvalidArgumentError(f"{who}: {name} must be an int or a pair of ints, got {v!r}") from None
        if len(v) != 2 or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in v):
            raise InvalidArgumentError(f"{who}: {name} must be an int or a pair of ints, got {v!r}")
        v = (int(v[0]), int(v[1]))
    if min(v) < 0:
        raise InvalidArgumentError(f"{who}: {name} must be >= 0, got {v}")
    return v


def _size(v, who: str) -> tuple[int, int]:
    """An output size (h, w), each >= 1."""
    size = _pair(v, "size", who)
    if min(size) < 1:
        raise InvalidArgumentError(f"{who}: size must be >= 1, got {size}")
    return size


def _make_rng(seed, rng, who: str) -> np.random.Generator:
    """A transform's own generator: ``rng`` if given, else ``default_rng(seed)``."""
    if rng is not None:
        if seed is not None:
            raise InvalidArgumentError(f"{who}: pass seed or rng, not both")
        if not isinstance(rng, np.random.Generator):
            raise InvalidTypeError(f"{who}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    return np.random.default_rng(seed)


def _generators(own, rng, n, who: str):
    """What a call draws from: ``rng`` if given, else ``own``.

    ``n`` is the batch size, or None for one image. Returns a Generator, or
    (for a batch given a list) a list of ``n`` Generators.
    """
    if rng is None:
        return own
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (list, tuple)):
        if n is None:
            raise InvalidArgumentError(
                f"{who}: got a list of {len(rng)} generators for one image (C, H, W); a list is for a "
                "batch (N, C, H, W), one generator per image")
        if len(rng) != n:
            raise InvalidArgumentError(
                f"{who}: got {len(rng)} generators for a batch of {n} images; pass one per image")
        for g in rng:
            if not isinstance(g, np.random.Generator):
                raise InvalidTypeError(f"{who}: rng list holds a {type(g).__name__}, not a numpy.random.Generator")
        return list(rng)
    raise InvalidTypeError(
        f"{who}: rng must be a numpy.random.Generator or a list of them, got {type(rng).__name__}")


def _per_image(gens, n: int) -> list:
    """One generator per image: a list as is, or one Generator used by each image in turn."""
    return gens if isinstance(gens, list) else [gens] * n


def _takes_rng(fn) -> bool:
    """Whether a callable accepts an ``rng`` keyword (every :class:`Transform` does)."""
    if isinstance(fn, Transform):
        return True
    flag = getattr(fn, "accepts_rng", None)
    if flag is not None:
        return bool(flag)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "rng" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _call(fn, x, rng):
    """``fn(x, rng=rng)`` where ``fn`` takes an rng and one is given, else ``fn(x)``."""
    if rng is not None and _takes_rng(fn):
        return fn(x, rng=rng)
    return fn(x)


def apply_transform(transform, x, batched: bool, rng=None):
    """Apply ``transform`` to one image, or to a batch (``batched=True``).

    A batch goes through ``transform`` in one call when the transform has
    ``supports_batch = True``; otherwise image by image (image ``i`` gets
    ``rng[i]`` when ``rng`` is a list, or the one generator in turn), then
    stacked. ``rng`` is passed to transforms that take one (see the module
    docstring). ``transform=None`` returns ``x`` unchanged.

    Shape:
        - Input: one sample, e.g. (C, H, W), or a batch (N, C, H, W) with ``batched=True``
        - Output: what ``transform`` returns; per-image results are stacked along axis 0
    """
    if transform is None:
        return x
    if not batched or getattr(transform, "supports_batch", False):
        return _call(transform, x, rng)
    if isinstance(rng, (list, tuple)):
        if len(rng) != len(x):
            raise InvalidArgumentError(
                f"apply_transform: got {len(rng)} generators for a batch of {len(x)} samples")
        return np.stack([_call(transform, xi, g) for xi, g in zip(x, rng)])
    return np.stack([_call(transform, xi, rng) for xi in x])


class Transform:
    """Base class: a callable ``transform(x, rng=None)`` on an image (C, H, W) or a batch (N, C, H, W).

    Deterministic transforms ignore ``rng``; random ones draw from it when
    given (a Generator, or for a batch a list of one per image) and from their
    own seeded generator ``self.rng`` otherwise.

    Shape:
        - Input: (C, H, W) or (N, C, H, W), told apart by rank
        - Output: same rank as the input (see each transform)
    """

    supports_batch = True

    def __call__(self, x, rng=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def _args(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


class Compose(Transform):
    """Apply transforms in order: ``Compose([t1, t2])(x) == t2(t1(x))``.

    ``Compose(...)(x, rng=g)`` passes ``g`` to each member that takes an
    ``rng``, in turn, so one generator drives the whole pipeline.
    Batch-capable when every member is (see :func:`apply_transform`).

    Shape:
        - Input: what the first transform takes
        - Output: what the last transform returns
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise InvalidTypeError(f"Compose: {t!r} is not callable")

    @property
    def supports_batch(self) -> bool:  # type: ignore[override]
        return all(getattr(t, "supports_batch", False) for t in self.transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = _call(t, x, rng)
        return x

    def __repr__(self) -> str:
        if not self.transforms:
            return "Compose([])"
        body = "".join(f"    {t!r},\n" for t in self.transforms)
        return f"Compose([\n{body}])"


class Lambda(Transform):
    """Wrap a function as a transform.

    ``batched=True`` promises that ``fn`` also handles (N, C, H, W) batches
    in one call; otherwise batches are mapped image by image. If ``fn`` takes
    an ``rng`` keyword, the call's ``rng`` is passed on.

    Shape:
        - Input: (C, H, W); also (N, C, H, W) if ``batched=True``
        - Output: what ``fn`` returns
    """

    def __init__(self, fn, batched: bool = False):
        if not callable(fn):
            raise InvalidTypeError(f"Lambda: {fn!r} is not callable")
        self.fn = fn
        self.supports_batch = bool(batched)

    def __call__(self, x, rng=None):
        return _call(self.fn, x, rng)

    def _args(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"{name}, batched={self.supports_batch}"
