"""Which algorithm runs for a given convolution: the rules only (the numbers are in :mod:`.tuning`).

* **Winograd** (:mod:`.winograd`) for a square kernel at stride 1, no dilation, one group, padding
  at most k − 1 on each side (so dL/dX's k − 1 − p >= 0), on the CPU (on a GPU only with
  ``ConvSettings.winograd_on_gpu``), when the first :data:`~.tuning.WINOGRAD_RULES` row whose
  kernel matches holds — min(C_in, C_out) >= min channels, Wo >= min width, at least min tiles —
  and its buffers fit the workspace limit;
* **im2col + GEMM** (:mod:`.im2col_gemm`) otherwise; its dL/dX overlays full-width rows
  (:func:`use_wide_rows`) on stride-1 layers whose padding adds few columns.

The same question is asked for dL/dX with the channels swapped and the input size as the output
size (dL/dX of a stride-1 convolution is a stride-1 convolution of dL/dY), so a layer's backward
may pick another algorithm than its forward.
"""
from __future__ import annotations

from . import tuning
from .geometry import is_pointwise

__all__ = ["winograd_for", "use_wide_rows"]


def winograd_for(settings, kh, kw, sh, sw, dh, dw, groups, pads, c_in, c_out, n, ho, wo, itemsize, limit,
                 on_cpu=True):
    """The Winograd algorithm (a :class:`~glassnet.ops.conv.winograd_tiles.WinogradTiles`) for this
    convolution under ``settings`` (a :class:`~glassnet.ops.conv.settings.ConvSettings`), or
    ``None`` for im2col. ``limit`` is the workspace limit in bytes.

    Shape:
        kh, kw, sh, sw, dh, dw, groups, c_in, c_out, n, ho, wo, itemsize, limit: ints;
        pads: (top, bottom, left, right).
    """
    if not (settings.winograd and kh == kw and (sh, sw, dh, dw, groups) == (1, 1, 1, 1, 1)
            and max(pads) <= kh - 1):
        return None
    if not on_cpu and not settings.winograd_on_gpu:
        return None
    rules = tuning.WINOGRAD_RULES if settings.winograd_rules is None else settings.winograd_rules
    channels = min(c_in, c_out)
    for kernel, algorithm, min_channels, min_width, min_tiles in rules:
        m = algorithm.m
        if (kernel == kh and channels >= min_channels and wo >= min_width
                and n * (-(-ho // m)) * (-(-wo // m)) >= min_tiles
                and algorithm.workspace_bytes(c_in, c_out, n, (ho, wo), itemsize) <= limit):
            return algorithm
    return None


def use_wide_rows(kh, kw, sh, sw, pads, w, wo):
    """Whether col2im overlays full-width rows: stride 1, not pointwise, and the padded width
    adds at most Wo / :data:`~.tuning.WIDE_ROWS_MIN_RATIO` columns.

    Shape: ints; pads (top, bottom, left, right).
    """
    return (not is_pointwise(kh, kw, sh, sw, pads) and (sh, sw) == (1, 1)
            and tuning.WIDE_ROWS_MIN_RATIO * (w + pads[2] + pads[3] - wo) <= wo)
