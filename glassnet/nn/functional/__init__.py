"""``glassnet.nn.functional``: stateless layer functions with PyTorch's names
and signatures. Each is a thin differentiable wrapper around a kernel pair in
:mod:`glassnet.kernels`."""
from .activation import elu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .dropout import dropout
from .linear import linear, maxout
from .loss import cross_entropy, mse_loss, nll_loss

__all__ = [
    "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax",
    "dropout", "linear", "maxout", "mse_loss", "cross_entropy", "nll_loss",
]
