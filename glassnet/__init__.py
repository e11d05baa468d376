"""glassnet: a deep-learning library for computer vision whose every forward
and backward pass is written out by hand, checked, and fast.

    import glassnet as gn
    x = gn.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # array([[2., 4.]], dtype=float32)
"""
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import get_default_dtype, set_default_dtype
from .errors import DataFormatError, ShapeError
from .joining import cat, stack
from .random import manual_seed
from .tensor import Tensor, from_numpy, matmul, ones, rand, randn, tensor, zeros

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "from_numpy", "matmul", "zeros", "ones", "rand", "randn",
    "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled",
    "get_default_dtype", "set_default_dtype", "manual_seed",
    "ShapeError", "DataFormatError",
    "cat", "stack",
    "summary",
]


def __getattr__(name):
    # glassnet.summary is imported on first use, so that ``import glassnet`` stays cheap
    if name == "summary":
        from .analysis.summary import summary
        globals()["summary"] = summary
        return summary
    raise AttributeError(f"module 'glassnet' has no attribute {name!r}")
