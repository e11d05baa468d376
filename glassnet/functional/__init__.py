"""Differentiable functions on Tensors (the autograd layer's thin wrappers).

Each function checks its arguments through its family's frozen argument
object, runs the family's forward/backward pair from :mod:`glassnet.ops`
through :func:`glassnet.tensor.apply_kernel`, and records an
:class:`~glassnet.op_record.OpRecord` on the tape. ``glassnet.nn.functional``
re-exports these under PyTorch's names.
"""
from .activation import elu, leaky_relu, log_softmax, relu, relu_, sigmoid, softmax, tanh
from .conv import conv2d
from .dropout import dropout, dropout2d
from .linear import linear, maxout
from .loss import cross_entropy, mse_loss, nll_loss
from .norm import batch_norm, batch_norm_add_relu, batch_norm_relu, local_response_norm
from .padding import pad
from .pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, lp_pool2d, max_pool2d

__all__ = [
    "relu", "relu_", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax",
    "conv2d",
    "batch_norm", "batch_norm_relu", "batch_norm_add_relu", "local_response_norm", "dropout2d",
    "dropout", "linear", "maxout", "mse_loss", "cross_entropy", "nll_loss",
    "pad",
    "max_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
]
