"""2-D pooling: max, average, power-average (Lp) and adaptive pooling.

Contract (every op module): ``<op>_forward(x, ...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> dx``. Pure functions on raw NCHW arrays (NumPy
or CuPy); no state, no Tensor. Outputs keep the input's dtype.

Files:

* :mod:`.reference` — the lecture's plain pooling (loops over windows), the oracle of the fast paths;
* :mod:`.args` — :class:`PoolArgs` / :class:`AdaptivePoolArgs`, the one normaliser and validator
  of kernel_size, stride, padding, dilation, ceil_mode, ... (used by ``nn``, ``functional`` and the kernels);
* :mod:`.geometry` — output sizes (:func:`pool_output_size`, exactly PyTorch's), padding, strided window views;
* :mod:`.max_pool`, :mod:`.avg_pool`, :mod:`.lp_pool`, :mod:`.adaptive` — the fast kernels;
* :mod:`.cache` — one frozen cache type per algorithm, each naming its ``algorithm``.
"""
from .adaptive import (
    adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, adaptive_max_pool2d_backward,
    adaptive_max_pool2d_forward, adaptive_max_pool2d_indices, adaptive_pool_bounds,
)
from .args import AdaptivePoolArgs, PoolArgs
from .avg_pool import avg_pool2d_backward, avg_pool2d_forward
from .geometry import pool_output_size
from .lp_pool import lp_pool2d_backward, lp_pool2d_forward
from .max_pool import max_pool2d_backward, max_pool2d_forward, max_pool2d_indices

__all__ = [
    "pool_output_size",
    "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward",
    "lp_pool2d_forward", "lp_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward",
    "adaptive_pool_bounds",
    "max_pool2d_indices", "adaptive_max_pool2d_indices",
    "PoolArgs", "AdaptivePoolArgs",
]
