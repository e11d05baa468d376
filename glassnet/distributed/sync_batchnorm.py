"""``SyncBatchNorm``: batch normalization whose statistics are those of the global batch.

With data parallelism each rank sees B of the N·B samples of a step; plain
batch norm would normalise each rank's slice by its own mean and variance
(noisy when B is small, and not what one process on the whole batch does).
SyncBatchNorm reduces the statistics over the ranks, so in training mode
every rank normalises with the statistics of all N·B samples — the same
numbers a single process computes on the global batch. In eval mode (running
statistics) it is plain batch norm and does no collective.

Notation (per channel; m_r = values of the channel on rank r, M = Σ_r m_r):
μ = (1/M) Σ_all x, σ² = (1/M) Σ_all (x − μ)² (biased), σ = √(σ² + ε),
x̂ = (x − μ)/σ, y = γ x̂ + β; Σ_all sums over the M values on all ranks,
Σ_r over this rank's m_r.

Forward, two allreduces (float64 on the wire):

1. [Σ_r x (C values), m_r] summed → Σ_all x and M → μ;
2. Σ_r (x − μ)² summed → Σ_all (x − μ)² → σ².

The two-pass form (mean first, then the centred sum) is the one single-process
batch norm computes; the one-pass ``Σx² − M μ²`` would lose the variance to
cancellation in float32 whenever |μ| ≫ σ. Running statistics are updated
with μ and the unbiased σ²·M/(M − 1), identically on every rank.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module, is_channel_major
from ..errors import InvalidArgumentError, InvalidTypeError
from ..nn.module import Module
from ..nn.normalization import _BatchNorm
from ..op_args import BatchNormArgs
from ..op_record import OpRecord
from ..tensor import apply_kernel

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm", "sync_batch_norm_forward", "sync_batch_norm_backward",
           "SyncBatchNormCache"]


@dataclass(frozen=True, slots=True, eq=False)
class SyncBatchNormCache:
    """What :func:`sync_batch_norm_backward` needs from :func:`sync_batch_norm_forward`
    (arrays by reference).

    Attributes:
        x_hat: x̂ = (x − μ)/σ with the global-batch μ, σ.
        inv_std: 1/σ per channel.
        gamma: γ, or ``None`` without one.
        has_beta: whether the forward added β (then the backward returns dL/dβ).
        count: M, the number of values per channel over all ranks.
        comm: the communicator the backward's allreduce uses.

    Shape:
        x_hat (N, C, *) like x; inv_std, gamma (C,).
    """

    x_hat: object
    inv_std: object
    gamma: object
    has_beta: bool
    count: int
    comm: object


def _channel_sum(a):
    """Σ over every axis but axis 1 of an (N, C, *) array, as (C,)."""
    if a.ndim > 2 and is_channel_major(a):
        return a.swapaxes(0, 1).reshape(a.shape[1], -1).sum(axis=1)
    if a.ndim > 2:
        return a.sum(axis=tuple(range(2, a.ndim))).sum(axis=0)
    return a.sum(axis=0)


def _reduced(comm, *parts):
    """Concatenate ``parts`` as float64, allreduce (sum), return the float64 result."""
    xp = get_array_module(parts[0])
    buf = xp.concatenate([xp.asarray(p, dtype=np.float64).reshape(-1) for p in parts])
    return comm.allreduce_(buf)


def sync_batch_norm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, comm):
    """Training-mode batch norm with the statistics of the global batch (module docstring).

    ``running_mean`` / ``running_var`` (may be ``None``) are updated in place,
    as :func:`glassnet.ops.norm.batch_norm_forward` does.

    Shape: x (N, C, *); gamma, beta, running_mean, running_var (C,);
    output x's shape and dtype.
    """
    xp = get_array_module(x)
    dt, C = x.dtype, x.shape[1]
    shape = (1, C) + (1,) * (x.ndim - 2)
    m_local = x.size // C if C else 0
    first = _reduced(comm, _channel_sum(x), np.array([m_local]))
    M = int(round(float(first[C])))
    if M <= 1:
        raise InvalidArgumentError(f"SyncBatchNorm: expected more than 1 value per channel over all ranks "
                                   f"when training, got {M} (this rank's input has shape {tuple(x.shape)})")
    mean = (first[:C] / M).astype(dt)
    x_hat = xp.empty_like(x)
    out = xp.empty_like(x)
    xp.subtract(x, mean.reshape(shape), out=x_hat)   # x − μ
    xp.multiply(x_hat, x_hat, out=out)               # (x − μ)², out as scratch
    var = (_reduced(comm, _channel_sum(out)) / M).astype(dt)
    mom = float(momentum)
    if running_mean is not None:
        running_mean[...] = (1 - mom) * running_mean + mom * mean.astype(running_mean.dtype)
    if running_var is not None:
        unbiased = var * dt.type(M / (M - 1))
        running_var[...] = (1 - mom) * running_var + mom * unbiased.astype(running_var.dtype)
    inv_std = (1 / xp.sqrt(var + dt.type(eps))).astype(dt)
    x_hat *= inv_std.reshape(shape)
    if gamma is not None:
        xp.multiply(x_hat, gamma.reshape(shape), out=out)
    else:
        out[...] = x_hat
    if beta is not None:
        out += beta.reshape(shape)
    return out, SyncBatchNormCache(x_hat, inv_std, gamma, beta is not None, M, comm)


def sync_batch_norm_backward(dout, cache):
    """Gradients of y = γ x̂ + β with μ, σ taken over all ranks.

    dL/dβ = Σ_r dŷ,   dL/dγ = Σ_r dŷ ⊙ x̂   — this rank's sums only: they are
    parameter gradients, which DistributedDataParallel averages with the others.

    dL/dx needs the sums over all ranks (one allreduce of 2C values)::

        dL/dx = (γ/σ)/M · (M·dŷ − Σ_all dŷ − x̂ ⊙ Σ_all (dŷ ⊙ x̂))

    Every rank's loss is the mean over its own B samples, so each rank's dŷ
    is N times the single-process dŷ of the global-batch mean; the formula is
    linear in dŷ, so dL/dx and the local γ, β sums are N times the
    single-process ones too, and DDP's division by N makes the averaged
    parameter gradients exactly those of one process on the global batch.
    Returns ``(dx, dgamma, dbeta)`` (``None`` for an absent γ / β).

    Shape: dout (N, C, *) like x; dgamma, dbeta (C,).
    """
    x_hat, inv_std, gamma, M = cache.x_hat, cache.inv_std, cache.gamma, cache.count
    xp = get_array_module(dout)
    dt, C = dout.dtype, dout.shape[1]
    shape = (1, C) + (1,) * (dout.ndim - 2)
    dx = xp.empty_like(x_hat, dtype=dt)
    sum_d = _channel_sum(dout)                      # Σ_r dŷ
    xp.multiply(dout, x_hat, out=dx)                # dŷ ⊙ x̂, dx as scratch
    sum_dx = _channel_sum(dx)                       # Σ_r dŷ ⊙ x̂
    total = _reduced(cache.comm, sum_d, sum_dx)
    all_d, all_dx = total[:C].astype(dt), total[C:].astype(dt)
    scale = inv_std if gamma is None else gamma * inv_std   # γ/σ
    xp.multiply(x_hat, all_dx.reshape(shape), out=dx)
    dx += all_d.reshape(shape)
    dx -= dout * dt.type(M)
    dx *= (-scale / M).reshape(shape).astype(dt, copy=False)
    return dx, (sum_dx if gamma is not None else None), (sum_d if cache.has_beta else None)


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over (N, C, *) inputs with statistics reduced over the ranks
    (see the module docstring); PyTorch's ``torch.nn.SyncBatchNorm`` arguments and
    the parameters/buffers of ``BatchNorm*d`` (same ``state_dict`` keys).

    Args:
        comm: the communicator (default: the process group's SyncBatchNorm
            communicator, a duplicate of the world's). With one rank it is
            plain batch norm.

    Shape: input (N, C) or (N, C, *); output the same.
    """

    _expected = (2, 3, 4, 5)
    _shape_text = "(N, C, *)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, comm=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, bias=bias)
        object.__setattr__(self, "_comm", comm)

    def _communicator(self):
        if self._comm is None:
            from .process_group import sync_batchnorm_communicator

            return sync_batchnorm_communicator()
        return self._comm

    def forward(self, x):
        # as PyTorch: only a training forward synchronises (an eval forward runs alone)
        comm = self._communicator() if self.training else None
        if comm is None or comm.size == 1:
            return super().forward(x)
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            nbt = self.num_batches_tracked
            nbt[...] = nbt + 1
            if self.momentum is None:
                factor = 1.0 / float(nbt)
        track = self.training and self.track_running_stats
        running_mean = self.running_mean if track else None
        running_var = self.running_var if track else None
        record = OpRecord("sync_batch_norm", BatchNormArgs(True, factor, self.eps, running_mean, running_var))
        return apply_kernel(record, sync_batch_norm_forward, sync_batch_norm_backward,
                            [x, self.weight, self.bias], running_mean, running_var, factor, self.eps, comm)

    @classmethod
    def convert_sync_batchnorm(cls, module, comm=None):
        """PyTorch's classmethod; see :func:`convert_sync_batchnorm`."""
        return convert_sync_batchnorm(module, comm)


def _converted(bn, comm):
    sync = SyncBatchNorm.__new__(SyncBatchNorm)
    Module.__init__(sync)
    for key, value in bn.__dict__.items():
        if key not in ("_parameters", "_buffers", "_modules", "_forward_hooks"):
            object.__setattr__(sync, key, value)
    sync._parameters.update(bn._parameters)   # the same Parameter objects and buffer arrays
    sync._buffers.update(bn._buffers)
    object.__setattr__(sync, "_comm", comm)
    return sync


def convert_sync_batchnorm(module, comm=None):
    """Replace every ``BatchNorm1d/2d`` in ``module`` by a :class:`SyncBatchNorm` that
    shares its parameters and buffers (same objects, same ``state_dict`` keys).
    Returns the module (a new SyncBatchNorm when ``module`` itself is a batch norm)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        return _converted(module, comm)
    if not isinstance(module, Module):
        raise InvalidTypeError(f"convert_sync_batchnorm: expected a glassnet Module, got {type(module).__name__}")
    stack = [module]
    while stack:
        parent = stack.pop()
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            if isinstance(child, _BatchNorm) and not isinstance(child, SyncBatchNorm):
                parent._modules[name] = _converted(child, comm)
            else:
                stack.append(child)
    return module
