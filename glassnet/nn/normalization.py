"""Normalization layers: ``BatchNorm1d``, ``BatchNorm2d``, ``LocalResponseNorm``."""
from __future__ import annotations

import numpy as np

from ..backend import get_default_dtype
from ..errors import ShapeError
from ..functional.norm import batch_norm_add_relu, batch_norm_relu
from . import functional as F
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    """Shared machinery of the BatchNorm layers (PyTorch's ``_BatchNorm``).

    Parameters ``weight`` (γ, ones) and ``bias`` (β, zeros) when ``affine``
    (``bias=False``, keyword-only as in PyTorch ≥ 2.13, keeps γ but drops β);
    buffers ``running_mean`` (zeros), ``running_var`` (ones) and
    ``num_batches_tracked`` (int64 scalar, 0) when ``track_running_stats`` —
    PyTorch's names, shapes and dtypes, so ``state_dict`` maps one to one.

    In ``train()`` mode the batch's statistics normalise the input and the
    running statistics are updated (``running ← (1 − momentum)·running +
    momentum·batch``, unbiased variance; ``momentum=None`` gives the
    cumulative average, momentum = 1/num_batches_tracked). In ``eval()``
    mode the running statistics are used (batch statistics if they are not
    tracked).
    """

    _expected = ()  # allowed input ranks
    _shape_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None, *, bias: bool = True):
        super().__init__()
        dtype = np.dtype(dtype or get_default_dtype())
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.register_parameter("bias", Parameter(np.zeros(num_features, dtype=dtype)) if bias else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            if self.bias is not None:
                self.bias.data[...] = 0

    def _layer_name(self):
        return f"{type(self).__name__}({self.num_features})"

    def _check_input(self, x):
        if x.ndim not in self._expected:
            raise ShapeError(
                f"{self._layer_name()}: expected input of shape {self._shape_text}, "
                f"got shape {tuple(x.shape)} ({x.ndim}-D)"
            )
        if x.shape[1] != self.num_features:
            raise ShapeError(
                f"{self._layer_name()}: input of shape {tuple(x.shape)} has {x.shape[1]} channels "
                f"(axis 1) but the layer has num_features = {self.num_features}"
            )

    def forward(self, x):
        return self._normalise(F.batch_norm, x)

    def forward_relu(self, x):
        """``relu(self(x))`` in one pass per block of channels (``glassnet.functional.batch_norm_relu``): the same
        results, bit for bit, and the same update of the running statistics. Called by
        :func:`glassnet.nn.fusion.batch_norm_relu` where nothing could tell the difference."""
        return self._normalise(batch_norm_relu, x)

    def forward_add_relu(self, x, residual):
        """``relu(self(x) + residual)`` in one pass per block of channels
        (``glassnet.functional.batch_norm_add_relu``), bit for bit; called by
        :func:`glassnet.nn.fusion.batch_norm_add_relu` at a residual block's end."""
        return self._normalise(batch_norm_add_relu, x, residual)

    def _normalise(self, function, x, *tensors):
        """``function(x, *tensors, statistics…)`` (``F.batch_norm`` or a fused form; ``tensors``:
        a residual) with this layer's statistics, counting the batch (``num_batches_tracked``)
        when training."""
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            nbt = self.num_batches_tracked
            nbt[...] = nbt + 1
            if self.momentum is None:
                factor = 1.0 / float(nbt)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return function(
            x, *tensors,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight, self.bias, use_batch_stats, factor, self.eps,
            layer=self._layer_name(),
        )

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization over a 2-D (N, C) or 3-D (N, C, L) input: per
    feature C, statistics over N (and L).

    y = γ (x − μ)/√(σ² + ε) + β. See :class:`_BatchNorm` for train/eval.

    Shape: input (N, C) or (N, C, L); output the same.
    """

    _expected = (2, 3)
    _shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over a 4-D (N, C, H, W) input: per channel C,
    statistics over N, H and W ("spatial batch norm").

    y = γ (x − μ)/√(σ² + ε) + β. See :class:`_BatchNorm` for train/eval.

    Shape: input (N, C, H, W); output the same.

    Examples:
        >>> import numpy as np
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> bn = nn.BatchNorm2d(3)
        >>> y = bn(gn.randn(8, 3, 4, 4, rng=np.random.default_rng(0))).numpy()   # training: batch statistics
        >>> bool(np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)), bool(np.allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-3))
        (True, True)
        >>> bn.running_mean.shape, bn.weight.shape
        ((3,), (3,))
    """

    _expected = (4,)
    _shape_text = "(N, C, H, W)"


class LocalResponseNorm(Module):
    """Local response normalization across channels (AlexNet's "NORM" layer),
    PyTorch's definition::

        b_c = a_c · (k + (α/n) Σ_{c' = c − ⌊n/2⌋}^{c + ⌊(n−1)/2⌋} a_{c'}²)^(−β),  n = size

    No parameters. Shape: input (N, C, *) with at least 3 dims; output the same.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, x):
        return F.local_response_norm(
            x, self.size, self.alpha, self.beta, self.k, layer=f"LocalResponseNorm({self.size})"
        )

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
