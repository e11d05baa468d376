"""glassnet.summary: the lecture's tables (shapes, memory, parameters, MACs, receptive fields)."""
import json

import numpy as np
import pytest

import glassnet.nn as nn
from glassnet.analysis.summary import summary
from glassnet.cli import main
from glassnet.models import get_model


def test_alexnet_conv1_matches_the_lecture():
    # CONV1: 96 11x11 filters at stride 4 on 227x227x3 -> 55x55x96
    s = summary(nn.Sequential(nn.Conv2d(3, 96, 11, stride=4), nn.ReLU()), (3, 227, 227))
    conv = s["0"]
    assert conv.output_shape == (1, 96, 55, 55)
    assert conv.activations == 290_400  # 55*55*96
    assert conv.weights == 34_848 and conv.biases == 96  # (11*11*3)*96 = 35K
    assert conv.x_col == (363, 3025) and conv.w_row == (96, 363)
    assert conv.macs == 96 * 55 * 55 * 363  # 105M
    assert conv.flops == 2 * conv.macs
    assert conv.receptive_field == (11, 11) and conv.jump == (4, 4)
    assert conv.tiles  # (227 - 11)/4 + 1 = 55 exactly


def test_receptive_field_recurrence():
    # three 3x3 stride-1 convs see 7x7, the lecture's argument for stacking small filters
    model = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)])
    rows = summary(model, (1, 16, 16)).rows
    assert [r.receptive_field for r in rows] == [(3, 3), (5, 5), (7, 7)]
    # conv 3x3 s1 -> pool 2x2 s2 -> conv 3x3: r = 3, 4, 4 + 2*2 = 8; jump 1, 2, 2
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, padding=1))
    rows = summary(model, (1, 16, 16)).rows
    assert [r.receptive_field[0] for r in rows] == [3, 4, 8]
    assert [r.jump[0] for r in rows] == [1, 2, 2]
    assert [r.start[0] for r in rows] == [0.5, 1.0, 1.0]


def test_non_tiling_filter_is_flagged():
    # the lecture's 3x3 filter at stride 3 on 7x7: (7 - 3)/3 + 1 is not an integer
    rows = summary(nn.Sequential(nn.Conv2d(1, 2, 3, stride=3)), (1, 7, 7)).rows
    assert rows[0].output_shape == (1, 2, 2, 2) and not rows[0].tiles
    assert "NO" in str(summary(nn.Sequential(nn.Conv2d(1, 2, 3, stride=3)), (1, 7, 7)))


def test_small_cnn_totals_and_views():
    model = get_model("small_cnn")
    leaves = summary(model, (1, 28, 28))
    lecture = summary(model, (1, 28, 28), view="lecture")
    n_params = sum(p.data.size for p in model.parameters())
    assert leaves.totals["params"] == lecture.totals["params"] == n_params == 421_642
    assert leaves.totals["weights"] + leaves.totals["biases"] == n_params
    # MACs: conv1 32*28*28*9 + conv2 64*14*14*288 + fc 3136*128 + 128*10
    macs = 32 * 784 * 9 + 64 * 196 * 288 + 3136 * 128 + 1280
    assert leaves.totals["macs"] == lecture.totals["macs"] == macs
    # the lecture view: input row, activation functions folded into the layer before
    assert lecture.rows[0].type == "Input" and lecture.rows[0].activations == 784
    assert "ReLU" not in [r.type for r in lecture.rows]
    assert lecture.rows[1].folded == ["ReLU"]
    assert lecture.totals["activations"] == 784 + 32 * 784 + 32 * 196 + 64 * 196 + 64 * 49 + 128 + 10
    assert lecture.totals["activation_bytes"] == 4 * lecture.totals["activations"]
    assert leaves.totals["train_activation_bytes"] == 2 * leaves.totals["activation_bytes"]
    # batch size scales activations and MACs, not parameters
    b4 = summary(model, (1, 28, 28), batch_size=4, view="lecture")
    assert b4.totals["activations"] == 4 * lecture.totals["activations"]
    assert b4.totals["macs"] == 4 * macs and b4.totals["params"] == n_params


def test_formats_and_cli(capsys):
    s = summary(get_model("small_cnn"), (1, 28, 28), view="lecture")
    md = s.to_markdown()
    assert md.count("\n|") >= len(s.rows) + 1 and "| features.0 |" in md
    data = json.loads(s.to_json())
    assert data["totals"]["params"] == 421_642 and len(data["layers"]) == len(s.rows)
    assert main(["summary", "small_cnn", "--input", "1x28x28", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layers"][1]["x_col"] == [9, 784] and out["layers"][1]["w_row"] == [32, 9]
    assert main(["summary", "small_cnn", "--input", "1x28x28"]) == 0
    text = capsys.readouterr().out
    assert "421,642" in text and "[288x196] / [64x288]" in text
    with pytest.raises(SystemExit):
        main(["summary", "small_cnn", "--input", "28x28"])


def test_summary_leaves_model_state_alone():
    model = get_model("small_cnn")
    model.train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    summary(model, (1, 28, 28))
    assert model.training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert all(not m.__dict__.get("_forward_hooks") for m in model.modules())
