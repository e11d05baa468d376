"""Per-parameter optimizer state (:class:`ParamState`) and copying its entries.

``state`` holds per-parameter buffers (momentum, Adam's moments), created
lazily on the first ``step``, keyed by the parameter object itself.
"""
from __future__ import annotations

import copy
from typing import Any, Iterator

import numpy as np

from ..backend import device_of, get_array_module, to_device

__all__ = ["ParamState"]


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
