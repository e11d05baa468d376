"""Summary figures of the zoo against the lecture and torchvision's published numbers,
and golden tables kept in tests/golden/."""
from pathlib import Path

import pytest

from glassnet.analysis.summary import summary
from glassnet.models import get_model

GOLDEN = Path(__file__).parent / "golden"

# torchvision's model cards: GFLOPS (which are multiply-accumulates) and parameters, 224x224 input
PUBLISHED = {
    "alexnet": (0.71, 61_100_840),
    "vgg16": (15.47, 138_357_544),
    "resnet18": (1.81, 11_689_512),
    "resnet50": (4.09, 25_557_032),
    "googlenet": (1.50, 6_624_904),
}


@pytest.fixture(scope="module")
def vgg16_lecture():
    return summary(get_model("vgg16"), (3, 224, 224), view="lecture")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_macs_and_parameters_match_torchvision(name):
    gmacs, params = PUBLISHED[name]
    s = summary(get_model(name), (3, 224, 224))
    assert s.totals["params"] == params
    assert abs(s.totals["macs"] / 1e9 - gmacs) <= 0.01 * gmacs


def test_vgg16_is_the_lecture_table(vgg16_lecture):
    s = vgg16_lecture
    rows = s.rows
    # (activations per image, weights) row by row, as on the lecture's VGG16 slide
    expected = [
        (150_528, 0),  # INPUT 224x224x3
        (3_211_264, 1_728), (3_211_264, 36_864), (802_816, 0),  # CONV3-64 x2, POOL2
        (1_605_632, 73_728), (1_605_632, 147_456), (401_408, 0),
        (802_816, 294_912), (802_816, 589_824), (802_816, 589_824), (200_704, 0),
        (401_408, 1_179_648), (401_408, 2_359_296), (401_408, 2_359_296), (100_352, 0),
        (100_352, 2_359_296), (100_352, 2_359_296), (100_352, 2_359_296), (25_088, 0),
        (4_096, 102_760_448), (4_096, 16_777_216), (1_000, 4_096_000),  # FC 7*7*512*4096, ...
    ]
    assert [(r.activations, r.weights) for r in rows] == expected
    assert s.totals["params"] == 138_357_544  # "138M parameters"
    assert 15.2e6 <= s.totals["activations"] < 15.25e6  # "about 15.2M activations"
    assert s.totals["activation_bytes"] == 4 * s.totals["activations"]  # ~61 MB in float32
    assert round(s.totals["activation_bytes"] / 1e6) == 61
    # most memory is in the early CONV layers, most parameters in the first FC layer
    assert max(rows, key=lambda r: r.activations).name == "features.0"
    assert max(rows, key=lambda r: r.weights).name == "classifier.0"
    # the last conv (conv5_3) sees a 196x196 receptive field through 4 pools (jump 16)
    last_conv = [r for r in rows if r.type == "Conv2d"][-1]
    assert last_conv.receptive_field == (196, 196) and last_conv.jump == (16, 16)


def test_alexnet_lecture_conv1_and_shapes():
    s = summary(get_model("alexnet_lecture"), (3, 227, 227), view="lecture")
    conv1 = [r for r in s.rows if r.type == "Conv2d"][0]
    assert conv1.output_shape == (1, 96, 55, 55)
    assert conv1.weights == 34_848  # (11*11*3)*96 = 35K
    assert conv1.x_col == (363, 3025) and conv1.w_row == (96, 363)
    shapes = [r.output_shape[1:] for r in s.rows if r.type in ("Conv2d", "MaxPool2d")]
    assert shapes == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13),
                      (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6)]


@pytest.mark.parametrize("name,size", [("small_cnn", (1, 28, 28)), ("lenet5", (1, 28, 28))])
def test_golden_tables(name, size):
    """The printed lecture table of small models, character for character.

    Regenerate after an intended change with
    ``glassnet summary NAME --input 1x28x28 > tests/golden/NAME.txt``.
    """
    table = str(summary(get_model(name, in_channels=size[0]), size, view="lecture", name=name))
    golden = (GOLDEN / f"{name}.txt").read_text()
    assert table + "\n" == golden
