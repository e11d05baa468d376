"""``glassnet.nn.functional``: stateless layer functions with PyTorch's names
and signatures, re-exported from :mod:`glassnet.functional` (the autograd
layer's thin differentiable wrappers around the kernel pairs of
:mod:`glassnet.ops`)."""
from ...functional import (
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, batch_norm, conv2d, cross_entropy, dropout, dropout2d,
    elu, leaky_relu, linear, local_response_norm, log_softmax, lp_pool2d, max_pool2d, maxout, mse_loss, nll_loss,
    pad, relu, relu_, sigmoid, softmax, tanh,
)

__all__ = [
    "relu", "relu_", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax",
    "conv2d",
    "batch_norm", "local_response_norm", "dropout2d",
    "dropout", "linear", "maxout", "mse_loss", "cross_entropy", "nll_loss",
    "pad",
    "max_pool2d", "avg_pool2d", "lp_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
]
