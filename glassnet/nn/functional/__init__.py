"""``glassnet.nn.functional``: stateless layer functions with PyTorch's names
and signatures. Each is a thin differentiable wrapper around a kernel pair in
:mod:`glassnet.kernels`."""
from .activation import elu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .conv import conv2d
from .dropout import dropout, dropout2d
from .linear import linear, maxout
from .loss import cross_entropy, mse_loss, nll_loss
from .padding import pad
from .pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, lp_pool2d, max_pool2d
from .norm import batch_norm, local_response_norm

__all__ = [
    "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax",
    "conv2d",
    "batch_norm", "local_response_norm", "dropout2d",
    "dropout", "linear", "maxout", "mse_loss", "cross_entropy", "nll_loss",
    "pad",
    "max_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
]
