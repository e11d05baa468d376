"""The training loop, its history files, and the ``glassnet train`` command."""
import json

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
from glassnet.cli import main
from glassnet.data import ArrayDataset, DataLoader
from glassnet.io import load_state_dict_file
from glassnet.models import get_model, list_models
from glassnet.optim import SGD
from glassnet.train import History, TrainingDivergedError, evaluate, fit
from tests.data_required import require_fashion_mnist


def _blobs(n=600, d=8, classes=3, seed=0):
    """Linearly separable Gaussian blobs: a task any working trainer learns."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, d)) * 4
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.standard_normal((n, d))).astype(np.float32)
    return ArrayDataset(x, y.astype(np.int64))


def test_fit_learns_and_saves_history(tmp_path):
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    train, val = _blobs(seed=0), _blobs(200, seed=0)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    before = evaluate(model, DataLoader(val, batch_size=50))["accuracy"]
    history = fit(model, DataLoader(train, batch_size=32, shuffle=True, seed=0), opt, epochs=3,
                  val_loader=DataLoader(val, batch_size=64), out_dir=tmp_path, progress=False, log=None)
    after = evaluate(model, DataLoader(val, batch_size=50))["accuracy"]
    assert after > 0.95 > before
    assert len(history) == 3
    assert history.column("epoch") == [1, 2, 3]
    assert history[-1]["val_accuracy"] == pytest.approx(after)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved == History.from_json(tmp_path / "history.json").rows
    assert saved[-1]["val_accuracy"] == pytest.approx(after)
    csv_lines = (tmp_path / "history.csv").read_text().splitlines()
    assert csv_lines[0].split(",")[:4] == ["epoch", "lr", "train_loss", "train_accuracy"]
    assert len(csv_lines) == 4


def test_fit_is_reproducible_with_a_seed():
    def run():
        gn.manual_seed(3)
        model = nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 3))
        opt = SGD(model.parameters(), lr=0.1)
        fit(model, DataLoader(_blobs(), batch_size=40, shuffle=True, seed=7), opt, 2, progress=False, log=None)
        return model.state_dict()

    a, b = run(), run()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_nan_loss_stops_training_with_a_clear_error():
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 3))
    data = _blobs()
    data.x[40] = np.inf  # the second batch of 32 overflows the loss
    opt = SGD(model.parameters(), lr=0.1)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDivergedError, match="loss became nan at batch 1"):
        fit(model, DataLoader(data, batch_size=32), opt, epochs=3, progress=False, log=None)
    after = model.state_dict()
    assert np.isfinite(after["0.weight"]).all()  # the bad step was never taken
    assert not np.array_equal(before["0.weight"], after["0.weight"])  # the first one was


def test_zoo_lists_and_builds_mlp():
    assert "mlp" in list_models()
    model = get_model("mlp", num_classes=7, in_channels=2, image_size=5, hidden=(6, 4))
    out = model(gn.tensor(np.zeros((3, 2, 5, 5), np.float32)))
    assert out.shape == (3, 7)
    with pytest.raises(KeyError, match="available"):
        get_model("no_such_model")


def test_cli_train_on_fashion_mnist(tmp_path, capsys):
    require_fashion_mnist()
    out = tmp_path / "run"
    code = main(["train", "--model", "mlp", "--epochs", "2", "--limit-train", "3000", "--val-size", "500",
                 "--batch-size", "64", "--out", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "test accuracy:" in text
    result = json.loads((out / "test.json").read_text())
    assert result["n"] == 10000
    assert result["accuracy"] > 0.7  # 2 epochs on 2,500 images; chance is 0.1
    assert f"{result['accuracy']:.4f}" in text
    assert len(json.loads((out / "history.json").read_text())) == 2
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "mlp" and config["train_size"] == 2500
    assert config["model_kwargs"] == {} and config["num_classes"] == 10 and config["in_channels"] == 1
    assert not (out / "model.npz").exists()  # replaced by the checkpoints
    weights = load_state_dict_file(out / "checkpoints" / "last.safetensors")
    assert weights["model.1.weight"].shape == (512, 784)
    assert (out / "checkpoints" / "best.safetensors").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.safetensors", "last.safetensors"]


def test_cli_train_device_cuda_needs_a_gpu(tmp_path, capsys):
    from glassnet.backend import cupy_available

    if cupy_available():
        pytest.skip("a GPU is present: tests/test_cupy_backend.py trains on it")
    code = main(["train", "--model", "mlp", "--device", "cuda", "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "CuPy" in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


TINY = ["--model", "mlp", "--model-arg", "hidden=[16]", "--limit-train", "256", "--limit-test", "64", "--epochs", "1",
        "--val-size", "32", "--batch-size", "64", "--no-progress"]


def test_cli_data_names_the_same_sets_as_dataset(tmp_path, capsys):
    require_fashion_mnist()
    runs = {}
    for flag in (["--dataset", "fashion-mnist"], ["--data", "fashion-mnist"], ["--data", "FashionMNIST"]):
        out = tmp_path / "-".join(flag).strip("-")
        assert main(["train", *TINY, *flag, "--out", str(out)]) == 0, capsys.readouterr().err
        runs[out] = load_state_dict_file(out / "checkpoints" / "last.safetensors")
        config = json.loads((out / "config.json").read_text())
        assert (config["dataset"], config["data"], config["image_size"], config["pipeline"]) == \
            ("fashion-mnist", "fashion-mnist", [28, 28], "native")
        assert config["normalize"] == {"mean": [0.286], "std": [0.353]} and config["eval_resize"] == 28
    first, *others = runs.values()
    for other in others:
        assert all(np.array_equal(first[k], other[k]) for k in first)  # the same pipeline, bit for bit
    capsys.readouterr()


@pytest.mark.parametrize("argv, fragment", [
    (["--dataset", "mnist", "--data", "fashion-mnist"], "--dataset mnist disagrees with --data fashion-mnist"),
    (["--data", "{tmp}", "--data-root", "{tmp}"], "--data-root is the folder of a named dataset"),
    (["--data", "{tmp}/nowhere"], "does not exist"),
    (["--input", "2x28x28"], "the channels must be 1 (grayscale) or 3 (RGB)"),
    (["--workers", "-1"], "--workers must be >= 0"),
    (["--input", "3x28x28"], "--input 3x28x28: fashion-mnist holds 1-channel images"),
])
def test_cli_data_option_errors(tmp_path, capsys, argv, fragment):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(["train", *TINY, *argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code in (1, 2) and fragment in err and "Traceback" not in err and len(err.strip().split("\n")) == 1
    assert not (tmp_path / "run").exists()
