"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from ..backend import get_array_module
from .checks import _check_number
from .elementwise import _scalar, for_slices
from .optimizer import Optimizer
from ..errors import InvalidArgumentError

__all__ = ["SGD"]


def _sgd_update(p, g, b, t, g_buf=None, *, xp, lr, mu, weight_decay, damp, nesterov, maximize, first):
    """One SGD update of ``p`` (and the momentum buffer ``b``, unless None) in
    place, on whole arrays or matching slices, every intermediate written into
    the scratch arrays ``t`` and ``g_buf`` (needed with maximize or weight
    decay); the formulas are in the class docstring, in the same operations."""
    if weight_decay != 0:            # g ← λ·p + (±g)   (λ·p + (−g) is λ·p − g exactly)
        xp.multiply(p, weight_decay, out=g_buf)
        (xp.subtract if maximize else xp.add)(g_buf, g, out=g_buf)
        g = g_buf
    elif maximize:                   # g ← −g
        g = xp.negative(g, out=g_buf)
    if b is not None:
        if first:
            xp.copyto(b, g)                       # b ← g at t = 1
        else:
            b *= mu                               # b ← μ·b + (1 − τ)·g
            if damp is not None:
                xp.multiply(g, damp, out=t)
                b += t
            else:
                b += g
        if nesterov:
            xp.multiply(b, mu, out=t)             # g ← g + μ·b
            t += g
            g = t
        else:
            g = b
    xp.multiply(g, lr, out=t)                     # p ← p − lr·g
    p -= t


class SGD(Optimizer):
    r"""Stochastic gradient descent, update rule identical to ``torch.optim.SGD``.

    Args:
        params: iterable of parameters or of param-group dicts.
        lr: learning rate (≥ 0). Default 1e-3.
        momentum: momentum factor μ (≥ 0). Default 0 (plain SGD).
        dampening: dampening τ for momentum. Default 0.
        weight_decay: L2 penalty λ (≥ 0), added to the gradient. Default 0.
        nesterov: use Nesterov momentum (needs μ > 0 and τ = 0).
        maximize: ascend the objective instead of descending it.

    Update rule, for each parameter p with gradient g (step t = 1, 2, ...)::

        g ← −g                          if maximize
        g ← g + λ·p                     (weight decay, if λ ≠ 0)
        if μ ≠ 0:
            b ← g                       at t = 1   (not (1 − τ)·g)
            b ← μ·b + (1 − τ)·g         at t > 1
            g ← g + μ·b                 if nesterov
            g ← b                       otherwise
        p ← p − lr·g

    The momentum buffer ``b`` is kept in ``state[p]["momentum_buffer"]``.

    Shape: parameters of any shape are accepted; ``p.data`` is updated in
    place and keeps its shape and dtype (float32 math stays float32).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    _STATE_ARRAYS = frozenset({"momentum_buffer"})

    def _required_state(self, group):
        return {"momentum_buffer"}

    def _check_hyperparameters(self, group, where):
        _check_number("SGD", where, "lr", group["lr"], low=0)
        _check_number("SGD", where, "momentum", group["momentum"], low=0)
        _check_number("SGD", where, "dampening", group["dampening"])
        _check_number("SGD", where, "weight_decay", group["weight_decay"], low=0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise InvalidArgumentError(
                f"SGD ({where}): Nesterov momentum requires momentum > 0 and dampening = 0, "
                f"got momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def step(self, closure=None):
        """Perform one update of every parameter that has a gradient.

        Args:
            closure: optional callable that re-evaluates the model and returns
                the loss; its result is returned.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            momentum = group["momentum"]
            dampening = group["dampening"]
            weight_decay = group["weight_decay"]
            scratch = 1 + (weight_decay != 0 or bool(group["maximize"]))
            for p, g in self._params_with_grad(group):
                dt = p.data.dtype
                buf, first = None, False
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    first = buf is None
                    if first:
                        buf = state["momentum_buffer"] = get_array_module(g).empty_like(g)
                consts = dict(xp=get_array_module(p.data), lr=_scalar(dt, group["lr"]), mu=_scalar(dt, momentum),
                              weight_decay=_scalar(dt, weight_decay) if weight_decay != 0 else 0,
                              damp=_scalar(dt, 1 - dampening) if dampening else None,
                              nesterov=group["nesterov"], maximize=group["maximize"], first=first)
                arrays = (p.data, g) if buf is None else (p.data, g, buf)
                work = (lambda p_, g_, *t: _sgd_update(p_, g_, None, *t, **consts)) if buf is None else \
                    (lambda *a: _sgd_update(*a, **consts))
                for_slices(work, *arrays, scratch=scratch, workspace=self._workspace)
        return loss
