"""Functional fully connected layers."""
from __future__ import annotations

from ..errors import ShapeError
from ..ops import linear as K
from ..tensor import apply_kernel


def _check_linear(layer, x, weight, in_dim):
    if x.ndim < 1 or x.shape[-1] != in_dim:
        raise ShapeError(
            f"{layer}: input of shape {x.shape} does not match weight of shape {weight.shape}: "
            f"the input's last dimension must equal in_features = {in_dim}"
        )


def linear(input, weight, bias=None, *, layer: str = "linear"):
    """y = x Wᵀ + b (the lecture's f = Wx + b applied to each row).

    Shape: input (*, in_features), weight (out_features, in_features),
    bias (out_features,); output (*, out_features).
    """
    _check_linear(layer, input, weight, weight.shape[1])
    return apply_kernel("linear", K.linear_forward, K.linear_backward, [input, weight, bias],
                        need_dx=input.requires_grad)


def maxout(input, weight, bias=None, *, layer: str = "maxout"):
    """max over k pieces of x W_kᵀ + b_k.

    Shape: input (N, in_features), weight (k, out_features, in_features),
    bias (k, out_features); output (N, out_features).
    """
    if input.ndim != 2:
        raise ShapeError(f"{layer}: expected input of shape (N, in_features), got {input.shape}")
    _check_linear(layer, input, weight, weight.shape[2])
    return apply_kernel("maxout", K.maxout_forward, K.maxout_backward, [input, weight, bias])
