"""glassnet's global random number generator (used by init, dropout and data
augmentation unless a generator is passed explicitly).

``manual_seed(s)`` makes runs reproducible; ``get_rng_state()`` /
``set_rng_state()`` let a checkpoint save and restore it exactly.
"""
from __future__ import annotations

import numpy as np

from .errors import InvalidArgumentError

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator and return it."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng() -> np.random.Generator:
    """The global ``numpy.random.Generator``."""
    return _rng


def get_rng_state() -> dict:
    """A JSON-serialisable snapshot of the global generator's state."""
    return _rng.bit_generator.state


def check_rng_state(state, where: str = "set_rng_state") -> None:
    """Raise :class:`~glassnet.errors.InvalidArgumentError` unless ``state`` is a valid snapshot
    of the global generator's kind (tried on a scratch generator: the global one is untouched)."""
    scratch = type(_rng.bit_generator)()
    try:
        scratch.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise InvalidArgumentError(f"{where}: not a valid {type(scratch).__name__} state "
                                   f"({type(exc).__name__}: {exc})") from None


def set_rng_state(state: dict) -> None:
    """Restore a snapshot made by :func:`get_rng_state` (checked first: a bad one changes nothing)."""
    check_rng_state(state)
    _rng.bit_generator.state = state
