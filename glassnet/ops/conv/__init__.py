"""2-D convolution: the lecture's im2col + one matrix multiply, and its col2im backward.

The public names of the conv family (the kernels still live in
:mod:`glassnet.kernels.conv` until they are split into this package).
"""
from ...kernels.conv import col2im, conv2d_backward, conv2d_forward, conv2d_output_shape, im2col, same_padding
from .args import ConvArgs

__all__ = ["conv2d_forward", "conv2d_backward", "im2col", "col2im", "conv2d_output_shape", "same_padding", "ConvArgs"]
