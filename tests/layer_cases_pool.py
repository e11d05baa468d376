"""Registry cases for the pooling layers (glassnet/nn/pooling.py).

Max-type layers get ``distinct`` inputs (a permutation, values spaced far
wider than the gradcheck step), so central differences never cross a tie.
LPPool2d gets positive inputs away from 0 (``x^p`` and the ``1/p`` power are
smooth there).
"""
from tests.layer_case_tools import distinct, normal, simple


def positive(shape, shift=1.5):
    """``distinct`` values shifted into [shift − 1, shift + 1): positive, tie-free."""
    base = distinct(shape)
    return lambda rng: base(rng) + shift


CASES = [
    # --- MaxPool2d
    simple("MaxPool2d", 2, shape=(2, 3, 8, 8), draw=distinct, expected=(2, 3, 4, 4)),  # tiles: fast path
    simple("MaxPool2d", 2, shape=(1, 2, 7, 9), draw=distinct, expected=(1, 2, 3, 4)),  # fast path, remainder cut
    simple("MaxPool2d", 3, shape=(2, 2, 9, 9), draw=distinct, stride=2, expected=(2, 2, 4, 4)),  # AlexNet overlap
    simple("MaxPool2d", 3, shape=(2, 2, 6, 5), draw=distinct, stride=1, padding=1, expected=(2, 2, 6, 5)),
    simple("MaxPool2d", 2, shape=(1, 2, 7, 7), draw=distinct, stride=1, dilation=2, expected=(1, 2, 5, 5)),
    simple("MaxPool2d", 2, shape=(1, 3, 7, 5), draw=distinct, ceil_mode=True, expected=(1, 3, 4, 3)),
    simple("MaxPool2d", 3, shape=(1, 2, 6, 8), draw=distinct, stride=2, padding=1, ceil_mode=True,
           expected=(1, 2, 4, 5)),
    # ceil_mode's last-window rule: a 4th window would start in the right padding, dropped
    simple("MaxPool2d", 2, shape=(1, 2, 5, 5), draw=distinct, stride=2, padding=1, ceil_mode=True,
           expected=(1, 2, 3, 3)),
    simple("MaxPool2d", (3, 2), shape=(1, 2, 7, 6), draw=distinct, stride=(2, 1), padding=(1, 0),
           expected=(1, 2, 4, 5)),
    simple("MaxPool2d", 2, shape=(3, 6, 6), draw=distinct, expected=(3, 3, 3)),  # unbatched (C, H, W)
    # --- AvgPool2d
    simple("AvgPool2d", 2, shape=(2, 3, 6, 6), draw=normal, expected=(2, 3, 3, 3)),  # fast path
    simple("AvgPool2d", 3, shape=(2, 2, 7, 7), draw=normal, stride=2, padding=1, count_include_pad=False,
           expected=(2, 2, 4, 4)),
    simple("AvgPool2d", 3, shape=(1, 2, 8, 7), draw=normal, stride=2, padding=1, ceil_mode=True,
           expected=(1, 2, 5, 4)),
    simple("AvgPool2d", 3, shape=(1, 2, 8, 7), draw=normal, stride=2, padding=1, ceil_mode=True,
           count_include_pad=False, expected=(1, 2, 5, 4)),
    simple("AvgPool2d", 2, shape=(1, 2, 5, 6), draw=normal, stride=2, padding=1, ceil_mode=True,
           expected=(1, 2, 3, 4)),
    simple("AvgPool2d", 2, shape=(1, 3, 7, 5), draw=normal, ceil_mode=True, expected=(1, 3, 4, 3)),
    simple("AvgPool2d", (2, 3), shape=(2, 1, 6, 9), draw=normal, stride=(1, 2), divisor_override=4),
    # --- LPPool2d
    simple("LPPool2d", 2, 2, shape=(2, 3, 6, 6), draw=positive, expected=(2, 3, 3, 3)),  # L2-norm pooling
    simple("LPPool2d", 2, 3, shape=(1, 2, 8, 7), draw=positive, stride=2, ceil_mode=True, expected=(1, 2, 4, 3)),
    simple("LPPool2d", 1, 2, shape=(1, 2, 5, 6), draw=positive, stride=1, expected=(1, 2, 4, 5)),
    simple("LPPool2d", 3, (2, 3), shape=(1, 2, 6, 7), draw=positive, stride=(2, 2)),
    # --- AdaptiveAvgPool2d
    simple("AdaptiveAvgPool2d", (1, 1), shape=(2, 3, 7, 5), draw=normal, expected=(2, 3, 1, 1)),
    simple("AdaptiveAvgPool2d", (3, 2), shape=(2, 3, 7, 5), draw=normal, expected=(2, 3, 3, 2)),
    simple("AdaptiveAvgPool2d", (None, 4), shape=(1, 2, 5, 9), draw=normal, expected=(1, 2, 5, 4)),
    simple("AdaptiveAvgPool2d", 3, shape=(1, 2, 6, 6), draw=normal, expected=(1, 2, 3, 3)),  # tiles
    # --- AdaptiveMaxPool2d
    simple("AdaptiveMaxPool2d", (3, 2), shape=(2, 3, 7, 5), draw=distinct, expected=(2, 3, 3, 2)),
    simple("AdaptiveMaxPool2d", 1, shape=(2, 2, 5, 4), draw=distinct, expected=(2, 2, 1, 1)),
    simple("AdaptiveMaxPool2d", (4, 6), shape=(1, 2, 6, 9), draw=distinct, expected=(1, 2, 4, 6)),
    simple("AdaptiveMaxPool2d", (3, 3), shape=(1, 2, 6, 6), draw=distinct, expected=(1, 2, 3, 3)),  # tiles
]
