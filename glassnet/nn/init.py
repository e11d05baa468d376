"""Weight initialisation (PyTorch's functions and formulas).

``fan_in`` of a weight is the number of inputs each output sees:
``in_features`` for Linear, ``in_channels/groups · kH · kW`` for Conv2d.
All functions fill ``tensor.data`` in place from the global glassnet
generator (or ``rng``) and return the tensor.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module
from ..random import get_rng
from ..errors import InvalidArgumentError


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise InvalidArgumentError(f"fan in/out needs a weight with at least 2 dims, got shape {shape}")
    receptive = 1
    for n in shape[2:]:
        receptive *= n
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for ``nonlinearity`` (PyTorch's table)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise InvalidArgumentError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fill(tensor, sample):
    xp = get_array_module(tensor.data)
    tensor.data[...] = xp.asarray(sample).astype(tensor.data.dtype, copy=False)
    return tensor


def _sample_dtype(tensor):
    """Draw float32 parameters in float32 (no float64 temporary of the whole
    tensor — VGG's first FC layer alone is 103M values); anything else in float64."""
    return tensor.data.dtype if tensor.data.dtype in (np.float32, np.float64) else np.float64


def uniform_(tensor, a: float = 0.0, b: float = 1.0, rng=None):
    """Fill with U(a, b)."""
    u = (rng or get_rng()).random(tensor.shape, dtype=_sample_dtype(tensor))
    u *= b - a
    u += a
    return _fill(tensor, u)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, rng=None):
    """Fill with N(mean, std²)."""
    z = (rng or get_rng()).standard_normal(tensor.shape, dtype=_sample_dtype(tensor))
    z *= std
    z += mean
    return _fill(tensor, z)


def constant_(tensor, value: float):
    tensor.data[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def _is_empty(tensor) -> bool:
    data = getattr(tensor, "data", tensor)
    return getattr(data, "size", 1) == 0


def _fan(tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise InvalidArgumentError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor, gain: float = 1.0, rng=None):
    """U(−a, a) with a = gain·√(6 / (fan_in + fan_out))  (Glorot & Bengio 2010)."""
    if _is_empty(tensor):  # as PyTorch: initialising a zero-element tensor is a no-op
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, rng)


def xavier_normal_(tensor, gain: float = 1.0, rng=None):
    """N(0, σ²) with σ = gain·√(2 / (fan_in + fan_out))."""
    if _is_empty(tensor):  # as PyTorch: initialising a zero-element tensor is a no-op
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", rng=None):
    """U(−b, b) with b = gain·√(3 / fan)  (He et al. 2015)."""
    if _is_empty(tensor):  # as PyTorch: initialising a zero-element tensor is a no-op
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound, rng)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", rng=None):
    """N(0, σ²) with σ = gain / √fan  (He et al. 2015)."""
    if _is_empty(tensor):  # as PyTorch: initialising a zero-element tensor is a no-op
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, rng)


def default_layer_init_(weight, bias=None, rng=None):
    """PyTorch's default for Linear and Conv2d: weight ~ kaiming_uniform(a=√5),
    i.e. U(−1/√fan_in, 1/√fan_in); bias ~ U(−1/√fan_in, 1/√fan_in)."""
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound, rng)
