"""2-D convolution: the lecture's im2col + one matrix multiply, its col2im backward, and Winograd.

Contract: ``conv2d_forward(x, weight, ...) -> (out, cache)`` and
``conv2d_backward(dout, cache) -> (dx, dweight, dbias)``. Pure functions on raw NCHW arrays
(NumPy or CuPy); no state, no Tensor. Outputs keep the input's dtype.

Files:

* :mod:`.reference` — the lecture's plain im2col (a loop over patches), col2im (adding patches
  back) and the convolution through them, the oracle of the fast paths;
* :mod:`.args` — :class:`ConvArgs`, the one normaliser and validator of kernel_size, stride,
  padding, dilation and groups (used by ``nn``, ``functional`` and the kernels);
* :mod:`.geometry` — output sizes (:func:`conv2d_output_shape`, exactly PyTorch's),
  :func:`same_padding`, padded channel-major copies, chunk sizes;
* :mod:`.im2col_gemm` — im2col/col2im and ``O = W_row·X_col + b``, ``dW = dO·X_colᵀ``,
  ``dX = col2im(W_rowᵀ·dO)``;
* :mod:`.winograd` and :mod:`.winograd_tiles` — Winograd F(m×m, r×r), its matrices by Toom–Cook;
* :mod:`.selection` (the rules: which algorithm runs) and :mod:`.tuning` (the measured data);
* :mod:`.settings` — :class:`ConvSettings` and the :func:`conv_settings` context manager;
* :mod:`.forward`, :mod:`.backward` — the entry points;
* :mod:`.cache` — one frozen cache type per algorithm, each naming its ``algorithm``.
"""
from .args import ConvArgs
from .backward import conv2d_backward
from .cache import Im2colCache, WinogradCache
from .forward import conv2d_forward
from .geometry import conv2d_output_shape, same_padding
from .im2col_gemm import col2im, im2col
from .settings import DEFAULT_WORKSPACE_LIMIT, ConvSettings, conv_settings, current_settings

__all__ = ["conv2d_forward", "conv2d_backward", "im2col", "col2im", "conv2d_output_shape", "same_padding",
           "ConvArgs", "ConvSettings", "conv_settings", "current_settings", "DEFAULT_WORKSPACE_LIMIT",
           "Im2colCache", "WinogradCache"]
