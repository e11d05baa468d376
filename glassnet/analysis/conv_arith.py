"""Convolution arithmetic: the lecture's output-size formula, with its checks.

For an N×N input, an F×F filter, stride S and zero-padding P, the output is

    (N − F + 2P)/S + 1

pixels on a side. With dilation d the filter covers ``d·(F − 1) + 1`` pixels,
which takes F's place. The lecture insists the division be exact (a 3×3
filter at stride 3 on a 7×7 input "doesn't fit"); PyTorch instead floors it
and silently ignores the leftover rows and columns. :func:`conv_output_size`
does the first by default and the second with ``floor=True``.
"""
from __future__ import annotations

from ..errors import InvalidArgumentError, ShapeError

__all__ = ["conv_output_size"]


def _fmt(q: float) -> str:
    return f"{q:.2f}".rstrip("0").rstrip(".")


def conv_output_size(n, f, stride=1, padding=0, dilation=1, floor=False):
    """Output side length of a convolution (or pooling) window sliding over a side of length ``n``.

    Implements ``(N − F + 2P)/S + 1`` with ``F`` replaced by the effective
    size ``d·(F − 1) + 1`` when ``dilation`` d > 1.

    * ``floor=False`` (the lecture's rule): raises
      :class:`~glassnet.errors.ShapeError` when the division is not exact or
      the filter is larger than the padded input, with the arithmetic in the
      message, e.g. ``3x3 filter at stride 3 on a 7x7 input doesn't fit:
      (7 - 3 + 2*0)/3 + 1 = 2.33 is not an integer``.
    * ``floor=True`` (PyTorch's rule): returns
      ``floor((N + 2P − d·(F − 1) − 1)/S) + 1``, still raising when that is < 1.

    Examples: 7x7 input, 3x3 filter: stride 1 -> 5, stride 2 -> 3, stride 1
    with pad 1 -> 7; AlexNet CONV1 (227, 11, stride 4) -> 55.

    Shape:
        n, f, stride, padding, dilation: ints (one side of a square, or
        one axis). returns: int.
    """
    for name, v, low in (("n", n, 1), ("f", f, 1), ("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if isinstance(v, bool) or int(v) != v or v < low:
            raise InvalidArgumentError(f"conv_output_size: {name} must be an integer >= {low}, got {v!r}")
    n, f, stride, padding, dilation = int(n), int(f), int(stride), int(padding), int(dilation)
    eff = dilation * (f - 1) + 1
    if dilation == 1:
        what = f"{f}x{f} filter"
    else:
        what = f"{f}x{f} filter with dilation {dilation} (effective {eff}x{eff})"
    where = f"at stride {stride} on a {n}x{n} input" + (f" with padding {padding}" if padding else "")
    span = n - eff + 2 * padding
    expr = f"({n} - {eff} + 2*{padding})/{stride} + 1"
    if span < 0:
        raise ShapeError(
            f"{what} {where} doesn't fit: the filter is larger than the padded input "
            f"({eff} > {n} + 2*{padding} = {n + 2 * padding}), so {expr} = {_fmt(span / stride + 1)} < 1"
        )
    if span % stride:
        if not floor:
            raise ShapeError(
                f"{what} {where} doesn't fit: {expr} = {_fmt(span / stride + 1)} is not an integer"
            )
    return span // stride + 1
