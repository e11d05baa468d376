"""glassnet evaluate: top-1 and top-5 accuracy, and --ten-crop (AlexNet's 10-crop test-time averaging),
on colour photo runs built in the test (tests/test_colour_runs.py's run folders)."""
import json

import numpy as np
import pytest

from glassnet import data
from glassnet.cli import main
from glassnet.inference.evaluation import evaluate_run
from glassnet.train.metrics import metrics, topk_accuracy
from glassnet.data import transforms as T
from tests.test_colour_runs import MEAN, RESIZE, SIZE, STD, make_photo_run, reference_pipeline, softmax_of
from tests.torch_oracle import require_torch


def val_images(run_config):
    """The run's test images as decoded (uint8, own sizes) and their labels, in ImageFolder order."""
    folder = data.ImageFolder(f"{run_config['data']}/val")
    pairs = [folder[i] for i in range(len(folder))]
    return [x for x, _ in pairs], np.array([y for _, y in pairs])


# ------------------------------------------------------------------ top-k
def test_topk_matches_torch_topk():
    torch = require_torch()
    rng = np.random.default_rng(0)
    probs = rng.random((200, 12))
    labels = rng.integers(0, 12, 200)
    for k in (1, 3, 5, 12):
        top = torch.topk(torch.from_numpy(probs), k, dim=1).indices.numpy()
        expected = float((top == labels[:, None]).any(axis=1).mean())
        assert topk_accuracy(probs, labels, k) == expected
    assert topk_accuracy(probs, labels, 1) == float((probs.argmax(1) == labels).mean())


def test_topk_ties_go_to_the_lower_index_like_argmax():
    probs = np.full((2, 6), 1 / 6)
    assert topk_accuracy(probs, np.array([0, 5]), 1) == 0.5  # argmax picks class 0
    assert topk_accuracy(probs, np.array([4, 5]), 5) == 0.5  # classes 0..4
    r = metrics(probs, np.array([0, 5]), [str(i) for i in range(6)])
    assert r["accuracy"] == r["top1_accuracy"] == 0.5 and r["top5_accuracy"] == 0.5
    assert "top5_accuracy" not in metrics(np.full((2, 4), 0.25), np.array([0, 1]), list("abcd"))


# ------------------------------------------------------------------ evaluate
def test_evaluate_reports_top1_and_top5_of_a_photo_run(tmp_path, capsys):
    run, model, config = make_photo_run(tmp_path)
    images, labels = val_images(config)
    probs = softmax_of(model, np.stack([reference_pipeline()(x) for x in images]))
    top1 = float((probs.argmax(1) == labels).mean())
    top5 = float((np.argsort(-probs, axis=1, kind="stable")[:, :5] == labels[:, None]).any(axis=1).mean())

    assert main(["evaluate", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    result = json.loads((run / "evaluation.json").read_text())
    assert result["n"] == len(labels) == 18 and result["ten_crop"] is False
    assert result["accuracy"] == result["top1_accuracy"] == pytest.approx(top1, abs=1e-12)
    assert result["top5_accuracy"] == pytest.approx(top5, abs=1e-12)
    assert f"test accuracy {top1:.4f}, top-5 accuracy {top5:.4f} (18 images" in out
    assert [r["name"] for r in result["per_class"]] == config["classes"]


def test_ten_crop_averages_the_softmax_of_the_ten_crops(tmp_path, capsys):
    run, model, config = make_photo_run(tmp_path, seed=1)
    images, labels = val_images(config)
    crops = T.Compose([T.Resize(RESIZE), T.TenCrop(SIZE), T.ToFloat(), T.Normalize(MEAN, STD)])
    expected = np.stack([softmax_of(model, crops(x)).mean(axis=0) for x in images])
    centre = softmax_of(model, np.stack([reference_pipeline()(x) for x in images]))
    assert not np.allclose(expected, centre, atol=1e-4)  # the crops matter

    result = evaluate_run(run, log=None, ten_crop=True, batch_size=4)
    np.testing.assert_allclose(result["probs"], expected, rtol=1e-5, atol=1e-7)
    assert np.array_equal(result["labels"], labels) and result["ten_crop"] is True

    assert main(["evaluate", str(run), "--ten-crop", "--no-progress", "--limit", "7"]) == 0
    out = capsys.readouterr().out
    saved = json.loads((run / "evaluation.json").read_text())
    from glassnet.data.data_spec import limit_indices

    keep = limit_indices(len(labels), 7, spread=True)  # --limit of a folder keeps evenly spaced images
    ref = metrics(expected[keep], labels[keep], config["classes"])
    assert saved["n"] == 7 and saved["ten_crop"] is True
    assert saved["accuracy"] == pytest.approx(ref["accuracy"]) and saved["top5_accuracy"] == pytest.approx(
        ref["top5_accuracy"])
    assert "10 crops each" in out


def test_fewer_than_five_classes_have_no_top5(tmp_path, capsys):
    run, _, _ = make_photo_run(tmp_path, n_classes=3)
    assert main(["evaluate", str(run), "--no-progress"]) == 0
    assert "top-5" not in capsys.readouterr().out
    assert "top5_accuracy" not in json.loads((run / "evaluation.json").read_text())


def test_ensemble_of_photo_runs_reports_top5(tmp_path, capsys):
    a, _, _ = make_photo_run(tmp_path / "a", seed=0)
    b, _, _ = make_photo_run(tmp_path / "b", seed=0)
    (b / "config.json").write_text((b / "config.json").read_text().replace(str(tmp_path / "b"), str(tmp_path / "a")))
    assert main(["evaluate", "--ensemble", str(a), str(b), "--no-progress", "--json", str(tmp_path / "e.json")]) == 0
    assert capsys.readouterr().out.count("top-5 accuracy") == 3
    assert "top5_accuracy" in json.loads((tmp_path / "e.json").read_text())["ensemble"]


def test_ten_crop_needs_a_cropping_pipeline_and_errors_are_one_line(tmp_path, capsys):
    from tests.test_run_tools import random_run

    mnist = random_run(tmp_path / "mnist", "small_cnn") and tmp_path / "mnist"
    assert main(["evaluate", str(mnist), "--ten-crop", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ten-crop" in err[0] and "no centre crop" in err[0]
    run, _, _ = make_photo_run(tmp_path / "photo")
    assert main(["evaluate", str(run), "--batch-size", "0"]) == 2
    assert main(["evaluate", str(run), "--data-root", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err
