"""2-D pooling: max, average, power-average (Lp) and adaptive pooling.

The public names of the pool family (the kernels still live in
:mod:`glassnet.kernels.pool` until they are split into this package).
"""
from ...kernels.pool import (
    adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, adaptive_max_pool2d_backward,
    adaptive_max_pool2d_forward, adaptive_max_pool2d_indices, adaptive_pool_bounds, avg_pool2d_backward,
    avg_pool2d_forward, lp_pool2d_backward, lp_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
    max_pool2d_indices, pool_output_size,
)
from .args import AdaptivePoolArgs, PoolArgs

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
