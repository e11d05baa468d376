"""Registry cases for ``nn.Conv2d`` (collected by ``tests/layer_registry.py``).

Each is tiny (batch <= 2, channels <= 4, H, W <= 9) so the float64 gradcheck,
which perturbs every input element and parameter, stays fast. Convolution has
no kinks, so plain normal draws are used.
"""
from tests.layer_case_tools import normal, simple

CASES = [
    simple("Conv2d", 3, 4, 3, shape=(2, 3, 7, 7), draw=normal, padding=1, expected=(2, 4, 7, 7)),
    simple("Conv2d", 2, 3, 3, shape=(2, 2, 8, 8), draw=normal, stride=2, expected=(2, 3, 3, 3)),
    simple("Conv2d", 3, 2, 3, shape=(1, 3, 9, 7), draw=normal, padding=1, stride=2, expected=(1, 2, 5, 4)),
    # kernels that do not tile the input: PyTorch floors, dropping the leftover rows/columns
    simple("Conv2d", 2, 2, 3, shape=(2, 2, 7, 7), draw=normal, stride=3, expected=(2, 2, 2, 2)),
    simple("Conv2d", 2, 3, 2, shape=(1, 2, 7, 7), draw=normal, stride=2, expected=(1, 3, 3, 3)),
    simple("Conv2d", 2, 2, 3, shape=(1, 2, 9, 9), draw=normal, dilation=2, expected=(1, 2, 5, 5)),
    simple("Conv2d", 4, 2, 3, shape=(2, 4, 5, 5), draw=normal, groups=2, padding=1, expected=(2, 2, 5, 5)),
    simple("Conv2d", 3, 3, 3, shape=(2, 3, 6, 6), draw=normal, groups=3, expected=(2, 3, 4, 4)),  # depthwise
    simple("Conv2d", 3, 4, 1, shape=(2, 3, 5, 4), draw=normal, expected=(2, 4, 5, 4)),
    simple("Conv2d", 3, 2, 1, shape=(1, 3, 5, 5), draw=normal, stride=2, expected=(1, 2, 3, 3)),
    simple("Conv2d", 2, 3, 3, shape=(2, 2, 5, 5), draw=normal, bias=False, expected=(2, 3, 3, 3)),
    simple("Conv2d", 2, 2, 3, shape=(1, 2, 6, 5), draw=normal, padding="same", expected=(1, 2, 6, 5)),
    simple("Conv2d", 2, 2, 4, shape=(1, 2, 6, 6), draw=normal, padding="same", expected=(1, 2, 6, 6)),
    simple("Conv2d", 2, 2, 2, shape=(1, 2, 5, 5), draw=normal, padding="same", dilation=2, expected=(1, 2, 5, 5)),
    simple("Conv2d", 2, 3, 3, shape=(2, 2, 5, 6), draw=normal, padding="valid", expected=(2, 3, 3, 4)),
    simple("Conv2d", 2, 3, (3, 5), shape=(2, 2, 7, 8), draw=normal, stride=(2, 1), expected=(2, 3, 3, 4)),
    simple("Conv2d", 4, 4, (2, 3), shape=(1, 4, 6, 7), draw=normal, stride=(1, 2), padding=(1, 0), groups=4,
           dilation=(2, 1), bias=False, expected=(1, 4, 6, 3)),
    simple("Conv2d", 3, 2, 3, shape=(3, 5, 5), draw=normal, padding=1, expected=(2, 5, 5)),  # unbatched
]
