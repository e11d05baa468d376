"""Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019)."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .checks import _check_number
from .elementwise import _scalar, for_slices
from .optimizer import Optimizer
from ..errors import InvalidArgumentError

__all__ = ["Adam", "AdamW"]


def _adam_update(p, g, m, v, vmax=None, *, dt, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
                 step_size, bias_correction2_sqrt):
    """One Adam/AdamW update of ``p``, ``m``, ``v`` (and ``vmax``) in place,
    on whole arrays or matching slices; the formulas are in the class docstrings."""
    xp = get_array_module(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled:
            p *= _scalar(dt, 1 - lr * weight_decay)
        else:
            d = p * _scalar(dt, weight_decay)
            d += g
            g = d
    # m ← lerp(m, g, 1 − β₁), in torch's two-branch form.
    w = 1 - beta1
    tmp = g - m
    if w < 0.5:
        tmp *= _scalar(dt, w)
        m += tmp
    else:
        tmp *= _scalar(dt, 1 - w)
        xp.subtract(g, tmp, out=m)
    # v ← β₂·v + (1 − β₂)·g·g
    v *= _scalar(dt, beta2)
    xp.multiply(g, _scalar(dt, 1 - beta2), out=tmp)
    tmp *= g
    v += tmp
    if vmax is not None:
        xp.maximum(vmax, v, out=vmax)
        v = vmax
    denom = tmp
    xp.sqrt(v, out=denom)
    denom /= _scalar(dt, bias_correction2_sqrt)
    denom += _scalar(dt, eps)
    update = m * _scalar(dt, -step_size)
    update /= denom
    p += update


class Adam(Optimizer):
    r"""Adam, update rule identical to ``torch.optim.Adam`` (single-tensor path).

    Args:
        params: iterable of parameters or of param-group dicts.
        lr: learning rate (≥ 0). Default 1e-3.
        betas: (β₁, β₂), decay rates of the moment estimates, each in [0, 1).
        eps: ε added to the denominator (≥ 0). Default 1e-8.
        weight_decay: λ (≥ 0). Adam adds it to the gradient (L2 penalty);
            AdamW decays the weights directly. Default 0.
        amsgrad: use the running maximum of v (AMSGrad).
        maximize: ascend the objective instead of descending it.

    Update rule, for each parameter p with gradient g at step t = 1, 2, ...::

        g  ← −g                                  if maximize
        g  ← g + λ·p                             (Adam: L2 weight decay, if λ ≠ 0)
        p  ← p·(1 − lr·λ)                        (AdamW: decoupled decay, instead)
        m  ← m + (1 − β₁)·(g − m)                (= β₁·m + (1 − β₁)·g)
        v  ← β₂·v + (1 − β₂)·g²
        v̂  ← max(v̂, v)                           if amsgrad (then v̂ replaces v below)
        denom ← √v / √(1 − β₂ᵗ) + ε
        p  ← p − (lr / (1 − β₁ᵗ)) · m / denom

    with m = v = v̂ = 0 before the first step. ``state[p]`` holds ``step``
    (an int), ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad,
    ``max_exp_avg_sq`` (v̂).

    Shape: parameters of any shape are accepted; ``p.data`` is updated in
    place and keeps its shape and dtype (float32 math stays float32).

    Examples:
        >>> import numpy as np
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> from glassnet.optim import Adam
        >>> w = nn.Parameter(gn.tensor([1.0, -2.0]))
        >>> opt = Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> np.round(w.data, 4)                     # the first step moves each weight by ≈ lr·sign(g)
        array([ 0.9, -1.9], dtype=float32)
    """

    _decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, (list, tuple)) else betas, eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group, where):
        name = type(self).__name__
        _check_number(name, where, "lr", group["lr"], low=0)
        _check_number(name, where, "eps", group["eps"], low=0)
        betas = group["betas"]
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise InvalidArgumentError(f"{name} ({where}): betas must be a pair (beta1, beta2), got {betas!r}")
        _check_number(name, where, "betas[0]", betas[0], low=0, high=1)
        _check_number(name, where, "betas[1]", betas[1], low=0, high=1)
        _check_number(name, where, "weight_decay", group["weight_decay"], low=0)

    _STATE_ARRAYS = frozenset({"exp_avg", "exp_avg_sq", "max_exp_avg_sq"})
    _STATE_SCALARS = frozenset({"step"})

    def _required_state(self, group):
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group.get("amsgrad") else set())

    def _check_state_value(self, where, key, value, param):
        super()._check_state_value(where, key, value, param)
        if key == "step":
            step = value.item() if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 else value
            if not isinstance(step, (int, np.integer)) or step < 0:
                raise InvalidArgumentError(f"{type(self).__name__}.load_state_dict: state 'step' of {where} must be "
                                           f"an integer >= 0, got {value!r}")

    def step(self, closure=None):
        """Perform one update of every parameter that has a gradient.

        Args:
            closure: optional callable that re-evaluates the model and returns
                the loss; its result is returned.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = group["lr"]
            weight_decay = group["weight_decay"]
            eps = group["eps"]
            amsgrad = group["amsgrad"]
            for p, g in self._params_with_grad(group):
                xp = get_array_module(p.data)
                dt = p.data.dtype
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(p.data)
                    state["exp_avg_sq"] = xp.zeros_like(p.data)
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = xp.zeros_like(p.data)
                m = state["exp_avg"]
                v = state["exp_avg_sq"]
                step = int(state["step"]) + 1
                state["step"] = step

                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                consts = dict(dt=dt, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                              decoupled=self._decoupled_weight_decay, maximize=group["maximize"],
                              step_size=lr / bias_correction1, bias_correction2_sqrt=bias_correction2 ** 0.5)
                arrays = (p.data, g, m, v) + ((state["max_exp_avg_sq"],) if amsgrad else ())
                # element-wise: 1 MiB slices (over the kernel threads) give the same result
                for_slices(lambda *a: _adam_update(*a, **consts), *arrays)
        return loss


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, identical to ``torch.optim.AdamW``.

    Same arguments as :class:`Adam`, with ``weight_decay`` defaulting to 1e-2.

    Update rule, for each parameter p with gradient g at step t = 1, 2, ...::

        g  ← −g                                  if maximize
        p  ← p·(1 − lr·λ)                        (decay the weights, not the gradient)
        m  ← β₁·m + (1 − β₁)·g
        v  ← β₂·v + (1 − β₂)·g²
        v̂  ← max(v̂, v)                           if amsgrad (then v̂ replaces v below)
        p  ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)

    Shape: parameters of any shape are accepted; ``p.data`` is updated in
    place and keeps its shape and dtype.
    """

    _decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)

