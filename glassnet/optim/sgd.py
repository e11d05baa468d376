"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

import numpy as np

from .checks import _check_number
from .elementwise import _scalar, for_slices
from .optimizer import Optimizer
from ..errors import InvalidArgumentError

__all__ = ["SGD"]


def _decayed(p, g, weight_decay, maximize):
    """g with the sign flip (maximize) and the L2 term λ·p applied."""
    if maximize:
        g = -g
    if weight_decay != 0:
        d = p * _scalar(p.dtype, weight_decay)
        d += g
        g = d
    return g


def _plain_update(p, g, lr, weight_decay, maximize):
    """p ← p − lr·g without momentum (in place)."""
    p -= lr * _decayed(p, g, weight_decay, maximize)


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

    Examples:
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> from glassnet.optim import SGD
        >>> w = nn.Parameter(gn.tensor([1.0, -2.0]))
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward()                # dL/dw = 2w
        >>> opt.step()
        >>> w.data                                  # w − 0.1·2w
        array([ 0.8, -1.6], dtype=float32)
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
            nesterov = group["nesterov"]
            for p, g in self._params_with_grad(group):
                dt = p.data.dtype
                lr = _scalar(dt, group["lr"])
                mu = _scalar(dt, momentum)
                if momentum == 0:
                    for_slices(lambda p_, g_: _plain_update(p_, g_, lr, weight_decay, group["maximize"]),
                               p.data, g)
                    continue
                state = self.state[p]
                buf = state.get("momentum_buffer")
                first = buf is None
                if first:
                    buf = state["momentum_buffer"] = np.empty_like(g)

                def update(p_, g_, b_):
                    g_ = _decayed(p_, g_, weight_decay, group["maximize"])
                    if first:
                        b_[...] = g_                          # b ← g at t = 1
                    else:
                        b_ *= mu                              # b ← μ·b + (1 − τ)·g
                        if dampening:
                            b_ += _scalar(dt, 1 - dampening) * g_
                        else:
                            b_ += g_
                    step = g_ + mu * b_ if nesterov else b_
                    p_ -= lr * step                           # p ← p − lr·g

                for_slices(update, p.data, g, buf)
        return loss
