"""Numerical gradient checking by central differences, in float64.

For a function ``f`` of tensors, the analytic gradient (from ``backward()``)
of the scalar ``L = Σ f(x) ⊙ R`` (R a fixed random projection, so every
output element matters) is compared with

    dL/dx_i ≈ (L(x + ε e_i) − L(x − ε e_i)) / 2ε

for every element of every input that requires grad. Error per element is
``|analytic − numeric|``; it passes when ``err <= atol + rtol·|numeric|``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import to_numpy
from ..tensor import Tensor
from ..errors import GlassnetError, InvalidArgumentError, InvalidTypeError


@dataclass
class GradcheckResult:
    """Outcome of :func:`gradcheck`: ``ok`` plus where the worst element was."""

    ok: bool
    max_abs_error: float
    worst_input: int
    worst_index: tuple
    analytic: float
    numeric: float
    checked: int

    def __bool__(self):
        return self.ok

    def __str__(self):
        status = "passed" if self.ok else "FAILED"
        return (
            f"gradcheck {status}: {self.checked} elements checked; worst at input "
            f"{self.worst_input}, index {self.worst_index}: analytic {self.analytic:.8g} vs "
            f"numeric {self.numeric:.8g} (|diff| = {self.max_abs_error:.3g})"
        )


class GradcheckError(GlassnetError, AssertionError):
    """Raised by :func:`gradcheck` when ``raise_exception`` and the check fails."""


def _as_outputs(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0, raise_exception: bool = True) -> GradcheckResult:
    """Compare ``fn``'s backward with central differences, in float64.

    Args:
        fn: called as ``fn(*inputs)``; returns a Tensor (or a tuple of them).
        inputs: Tensors; those with ``requires_grad=True`` are checked (their
            ``.data`` is perturbed in place, so module parameters may be
            passed too). They must be float64.
        eps: finite-difference step. Keep inputs at least ``eps`` away from
            kinks (ReLU at 0, ties in max) or the check is meaningless.
        atol, rtol: tolerance per element, ``|a − n| <= atol + rtol·|n|``.
        seed: seeds the random output projection R.
        raise_exception: raise :class:`GradcheckError` naming the worst
            element instead of returning a failed result.

    Returns:
        :class:`GradcheckResult`.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise InvalidArgumentError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise InvalidTypeError(f"gradcheck: input {i} is {inputs[i].dtype}; gradcheck needs float64")

    rng = np.random.default_rng(seed)
    outs = _as_outputs(fn(*inputs))
    projections = [rng.standard_normal(o.shape) for o in outs]

    def scalar_loss():
        return sum(float((to_numpy(o.data) * r).sum()) for o, r in zip(_as_outputs(fn(*inputs)), projections))

    for i in checked:
        inputs[i].grad = None
    total = None
    for o, r in zip(outs, projections):
        if not o.requires_grad:
            continue
        term = (o * Tensor(_like(o.data, r))).sum()
        total = term if total is None else total + term
    if total is None:
        raise InvalidArgumentError("gradcheck: no output depends on a checked input")
    total.backward()

    # the worst element is the one that exceeds its tolerance by the most
    worst, worst_excess, n_checked = None, -np.inf, 0
    for i in checked:
        t = inputs[i]
        analytic = (to_numpy(t.grad) if t.grad is not None else np.zeros(t.shape)).reshape(-1)
        flat = t.data.reshape(-1)  # a view: perturbing it perturbs the input
        for j in range(flat.size):
            orig = flat[j].item()
            flat[j] = orig + eps
            plus = scalar_loss()
            flat[j] = orig - eps
            minus = scalar_loss()
            flat[j] = orig
            numeric = (plus - minus) / (2 * eps)
            err = abs(float(analytic[j]) - numeric)
            excess = err - (atol + rtol * abs(numeric))
            n_checked += 1
            if excess > worst_excess:
                worst_excess = excess
                idx = tuple(int(k) for k in np.unravel_index(j, t.shape))
                worst = GradcheckResult(excess <= 0, err, i, idx, float(analytic[j]), numeric, 0)
    worst.checked = n_checked
    if not worst.ok and raise_exception:
        raise GradcheckError(str(worst))
    return worst


def _like(array, values):
    """``values`` (NumPy) as an array on ``array``'s device with its dtype."""
    from ..backend import get_array_module

    return get_array_module(array).asarray(values, dtype=array.dtype)
