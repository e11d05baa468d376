"""Winograd convolution for stride-1 3×3 and 5×5 layers with many channels.

VGG's 64–512 channel layers, ResNet's 3×3 layers on maps 14–56 wide and AlexNet's conv2–conv5
go through Winograd's F(4×4, 3×3), F(3×3, 3×3) or F(3×3, 5×5) (:mod:`.winograd_tiles`, where
:mod:`.selection` says so): t² GEMMs with 2.8–4× fewer multiply-adds than im2col's, input and
output transforms instead of X_col::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A                 per m×m output block, summed over channels

Its dL/dX is the same kind of algorithm on dL/dY with the flipped filters, and its dL/dW the
algorithm's own weight gradient (no X_col at all). Both agree with im2col to float rounding.
"""
from __future__ import annotations

from ...backend import get_array_module
from .cache import WinogradCache
from .geometry import channels_first_padded

__all__ = ["winograd_forward", "winograd_input_gradient", "winograd_weight_gradient"]


def _winograd_padded(x, pads, out_hw, algorithm):
    """``x`` (N, C, H, W) zero-padded channel-major for ``algorithm``: the
    convolution's top/left padding, and bottom/right zeros up to whole tiles."""
    h, w = x.shape[2], x.shape[3]
    t, _, l, _ = pads
    return channels_first_padded(x, t, algorithm.padded_extent(out_hw[0]) - h - t,
                                 l, algorithm.padded_extent(out_hw[1]) - w - l)


def _winograd_conv(x, weight, bias, pads, out_hw, algorithm, keep_input_transform=False):
    """``algorithm`` (Winograd) on ``x`` (N, C, H, W). Returns (C_out, N, Ho, Wo)
    (and the input transform V, with ``keep_input_transform``)."""
    return algorithm.conv(_winograd_padded(x, pads, out_hw, algorithm), weight, bias, out_hw,
                          keep_input_transform)


def winograd_forward(x, weight, bias, pads, out_hw, algorithm, limit, need_dx, settings):
    """``O = Aᵀ [U ⊙ V] A + b`` by ``algorithm`` (F(m×m, r×r)); V is kept for dL/dW when
    ``settings.cache_cols`` (like X_col on the im2col path).

    Shape:
        x (N, C, H, W); weight (C_out, C, r, r); bias (C_out,) or None; pads (top, bottom, left,
        right); out_hw (Ho, Wo). returns (out (N, C_out, Ho, Wo), a channel-major view;
        :class:`~.cache.WinogradCache`).
    """
    if settings.cache_cols:
        out_cn, v = _winograd_conv(x, weight, bias, pads, out_hw, algorithm, keep_input_transform=True)
    else:
        out_cn, v = _winograd_conv(x, weight, bias, pads, out_hw, algorithm), None
    cache = WinogradCache(x=x, weight=weight, has_bias=bias is not None, stride=(1, 1), padding=pads,
                          dilation=(1, 1), groups=1, workspace_limit=limit, need_dx=need_dx, settings=settings,
                          tiles=algorithm, v=v)
    return out_cn.transpose(1, 0, 2, 3), cache


def winograd_input_gradient(d_o, weight, pads, x_hw, algorithm):
    """dL/dX of a stride-1 convolution: the stride-1 convolution of dL/dY, padded by k − 1 − p,
    with the flipped filters, input and output channels swapped::

        dL/dX = conv(dL/dY, W'),   W'[c, o, i, j] = W[o, c, k − 1 − i, k − 1 − j]

    Shape:
        d_o: dL/dY channel-major (C_out, N, Ho, Wo); weight (C_out, C, k, k);
        pads (top, bottom, left, right) of the forward; x_hw (H, W).
        returns dL/dX channel-major (C, N, H, W).
    """
    xp = get_array_module(d_o)
    t, b, l, r = pads
    k1 = weight.shape[2] - 1
    w_flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return _winograd_conv(d_o.transpose(1, 0, 2, 3), w_flipped, None, (k1 - t, k1 - b, k1 - l, k1 - r),
                          x_hw, algorithm)


def winograd_weight_gradient(d_o, cache):
    """dL/dW = Gᵀ [Σ_tiles (A e Aᵀ) ⊙ (Bᵀ d B)] G by the forward's algorithm, 2.8–4× fewer
    multiply-adds than dO · X_colᵀ (VGG16's conv2_2 at batch 2: 53.9 -> 37.4 ms), from the
    forward's V when it kept it, else from the input transformed again.

    Shape:
        d_o: dL/dY channel-major (C_out, N, Ho, Wo); cache: a :class:`~.cache.WinogradCache`.
        returns (C_out, C, r, r).
    """
    tiles = cache.tiles
    if cache.v is not None:
        return tiles.weight_gradient(None, d_o, v=cache.v)  # the forward's V
    return tiles.weight_gradient(_winograd_padded(cache.x, cache.padding, d_o.shape[2:], tiles), d_o)
