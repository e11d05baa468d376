"""Using trained run folders: glassnet.io.load_run, `glassnet evaluate` (and --ensemble),
`glassnet plot` and `glassnet predict`.

Runs are built in tmp_path with the layout `glassnet train` writes: config.json,
history.json, checkpoints/{best,last}.safetensors (model state under "model.",
optimizer state under "optimizer.") or, for older runs, model.npz.
"""
import json
import os
import struct

import numpy as np
import pytest

import glassnet as gn
from glassnet import data, optim
from glassnet.cli import main
from glassnet.errors import StateDictError
from glassnet.io import RunDirError, class_names, load_run, preprocess_transform, save_state_dict_file
from glassnet.models import get_model
from glassnet.train import fit
from tests.data_required import require_fashion_mnist
from tests.torch_oracle import require_module

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MLP_KWARGS = {"hidden": [32]}
CNN_KWARGS = {"width": 4, "hidden": 16}


# ------------------------------------------------------------------ helpers
def make_config(model="mlp", model_kwargs=None, **extra):
    config = {"model": model, "model_kwargs": dict(model_kwargs or {}), "num_classes": 10, "in_channels": 1,
              "dataset": "fashion-mnist"}
    config.update(extra)
    return config


def write_run(run_dir, model, config, layout=("best", "last"), history=None, optimizer_state=True):
    """Write a run folder: config.json, history.json and the weights files named in ``layout``
    ("best"/"last" -> checkpoints/*.safetensors, "npz" -> model.npz)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    rows = history if history is not None else [
        {"epoch": e, "lr": 0.05, "train_loss": 1.0 / e, "train_accuracy": 0.6 + 0.1 * e, "val_loss": 1.1 / e,
         "val_accuracy": 0.55 + 0.1 * e, "epoch_time_s": 1.0, "images_per_s": 1000.0} for e in (1, 2, 3)]
    (run_dir / "history.json").write_text(json.dumps(rows))
    state = {k: np.asarray(v) for k, v in model.state_dict().items()}
    for which in layout:
        if which == "npz":
            np.savez(run_dir / "model.npz", **state)
            continue
        tensors = {"model." + k: v for k, v in state.items()}
        if optimizer_state:
            tensors["optimizer.state.0.momentum_buffer"] = np.zeros(3, np.float32)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        save_state_dict_file(tensors, run_dir / "checkpoints" / f"{which}.safetensors")
        (run_dir / "checkpoints" / f"{which}.json").write_text(json.dumps({"epoch": len(rows)}))
    return run_dir


def random_run(run_dir, model_name="mlp", model_kwargs=None, seed=0, layout=("best", "last")):
    kwargs = dict(MLP_KWARGS if model_name == "mlp" else CNN_KWARGS) if model_kwargs is None else model_kwargs
    gn.manual_seed(seed)
    model = get_model(model_name, num_classes=10, in_channels=1, **kwargs)
    write_run(run_dir, model, make_config(model_name, kwargs), layout)
    return model


def assert_cli_error(capsys, argv, status, *fragments):
    """``main(argv)`` returns ``status`` and prints one ``glassnet <cmd>: error:`` line holding ``fragments``."""
    assert main(argv) == status
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"glassnet {argv[0]}: error: ") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# `glassnet evaluate`'s --batch-size default, and evaluate_run's
EVAL_BATCH = 500


def batched_logits(model, x, batch_size=EVAL_BATCH):
    """``model``'s logits for ``x``, computed in the batches `glassnet evaluate` uses.

    The batch size sets the GEMM shapes, and with them OpenBLAS's blocking and
    summation order: for these MLPs, one batch of 2000 images and four of 500 give
    bitwise-equal float32 logits under the SkylakeX and Sandybridge kernels but
    differ by up to 5.7e-6 (2.2e-7 of the largest logit; up to 9.7e-6 relative in
    the softmax) under OPENBLAS_CORETYPE=Haswell, 1.9e-6 under Prescott. Tests that
    check an identity (these probabilities are the softmax of those logits) so
    compute both sides in the same batches: then they agree exactly with any kernels.
    """
    with gn.no_grad():
        return np.concatenate([model(gn.Tensor(x[i:i + batch_size])).data for i in range(0, len(x), batch_size)])


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_array_equal(np.asarray(sa[k]), np.asarray(sb[k]))


def assert_png(path, min_side=50):
    assert path.is_file(), path
    blob = path.read_bytes()
    assert blob[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert blob[12:16] == b"IHDR"
    width, height = struct.unpack(">II", blob[16:24])
    assert width >= min_side and height >= min_side, (path, width, height)
    assert len(blob) > 1000


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def fmnist_test():
    require_fashion_mnist()
    return data.FashionMNIST(train=False)


def _train_mlp(train, config, seed, n=3000, epochs=2):
    subset = data.Subset(train, np.arange(seed * 1000, seed * 1000 + n))
    gn.manual_seed(seed)
    model = get_model("mlp", num_classes=10, in_channels=1, **MLP_KWARGS)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = fit(model, data.DataLoader(subset, batch_size=64, shuffle=True, seed=seed), opt, epochs,
                  progress=False, log=None)
    return model, config, history.rows


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """Three MLPs trained for real (different seeds and data slices), as run folders."""
    require_fashion_mnist()
    base = tmp_path_factory.mktemp("runs")
    config = make_config("mlp", MLP_KWARGS)
    train = data.FashionMNIST(train=True, transform=preprocess_transform(config))
    runs = []
    for seed in range(3):
        model, config, rows = _train_mlp(train, config, seed)
        runs.append(write_run(base / f"mlp{seed}", model, config, ("best",), history=rows))
    return runs


# ------------------------------------------------------------- load_run etc.
def test_load_run_best_and_fallbacks(tmp_path, capsys):
    both = random_run(tmp_path / "both", seed=1)
    model, config = load_run(tmp_path / "both")
    assert_same_weights(model, both)
    assert not model.training
    assert config["weights_file"].endswith(os.path.join("checkpoints", "best.safetensors"))
    assert "best" in capsys.readouterr().out

    # best.safetensors and last.safetensors hold different weights: --which picks
    gn.manual_seed(9)
    other = get_model("mlp", num_classes=10, in_channels=1, **MLP_KWARGS)
    save_state_dict_file({"model." + k: np.asarray(v) for k, v in other.state_dict().items()},
                         tmp_path / "both" / "checkpoints" / "last.safetensors")
    assert_same_weights(load_run(tmp_path / "both", which="last", log=None)[0], other)
    assert_same_weights(load_run(tmp_path / "both", which="best", log=None)[0], both)

    last_only = random_run(tmp_path / "last_only", seed=2, layout=("last",))
    messages = []
    model, config = load_run(tmp_path / "last_only", log=messages.append)
    assert_same_weights(model, last_only)
    assert "no best.safetensors" in messages[0] and "last.safetensors" in messages[0]

    npz_only = random_run(tmp_path / "old", seed=3, layout=("npz",))
    messages = []
    model, config = load_run(tmp_path / "old", log=messages.append)
    assert_same_weights(model, npz_only)
    assert config["weights_file"].endswith("model.npz") and "model.npz" in messages[0]


def test_load_run_builds_from_model_kwargs_and_small_cnn(tmp_path):
    cnn = random_run(tmp_path / "cnn", "small_cnn", seed=4)
    model, config = load_run(tmp_path / "cnn", log=None)
    assert type(model).__name__ == "SmallCNN"
    assert_same_weights(model, cnn)
    # model_kwargs absent -> defaults
    gn.manual_seed(0)
    plain = get_model("mlp", num_classes=10, in_channels=1)
    config = make_config("mlp")
    del config["model_kwargs"]
    write_run(tmp_path / "plain", plain, config, ("best",))
    assert_same_weights(load_run(tmp_path / "plain", log=None)[0], plain)
    # config["image_size"] reaches builders that take it; predict resizes to it
    gn.manual_seed(0)
    big = get_model("mlp", num_classes=10, in_channels=1, image_size=32, **MLP_KWARGS)
    write_run(tmp_path / "big", big, make_config("mlp", MLP_KWARGS, image_size=32), ("best",))
    model, config = load_run(tmp_path / "big", log=None)
    assert_same_weights(model, big)
    from glassnet.io.run_dir import image_size

    assert image_size(config) == (32, 32) and image_size(make_config()) == (28, 28)


def test_load_run_errors_name_the_folder_and_file(tmp_path):
    with pytest.raises(RunDirError, match="does not exist") as info:
        load_run(tmp_path / "nope")
    assert "nope" in str(info.value)

    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="config.json"):
        load_run(tmp_path / "empty")

    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text(json.dumps(make_config("mlp", MLP_KWARGS)))
    with pytest.raises(RunDirError) as info:
        load_run(tmp_path / "noweights")
    msg = str(info.value)
    assert "noweights" in msg and "best.safetensors" in msg and "last.safetensors" in msg and "model.npz" in msg

    # weights of a different architecture: a StateDictError naming the file and the shapes
    random_run(tmp_path / "wrong", seed=0)
    (tmp_path / "wrong" / "config.json").write_text(json.dumps(make_config("mlp", {"hidden": [16]})))
    with pytest.raises(StateDictError) as info:
        load_run(tmp_path / "wrong", log=None)
    msg = str(info.value)
    assert "best.safetensors" in msg and "(32, 784)" in msg and "(16, 784)" in msg

    write_run(tmp_path / "unknown", get_model("mlp", **MLP_KWARGS), make_config("no_such_model"), ("best",))
    with pytest.raises(RunDirError, match="unknown model"):
        load_run(tmp_path / "unknown", log=None)

    with pytest.raises(ValueError, match="which"):
        load_run(tmp_path / "wrong", which="newest")


def test_preprocess_matches_train_command_and_class_names():
    from glassnet.data import transforms as T

    x = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 1, 28, 28) % 256
    x = x.astype(np.uint8)
    got = preprocess_transform(make_config())(x)
    want = T.Compose([T.ToFloat(), T.Normalize(data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD)])(x)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float32
    mn = preprocess_transform("mnist", dtype="float64")(x)
    assert mn.dtype == np.float64
    np.testing.assert_allclose(mn, (x / 255.0 - data.MNIST_MEAN) / data.MNIST_STD)
    with pytest.raises(ValueError, match="unknown dataset"):
        preprocess_transform("cifar-10")
    assert class_names(make_config()) == list(data.FashionMNIST.classes)
    assert class_names({"dataset": "mnist"}) == list(data.MNIST.classes)
    assert class_names({"dataset": "other", "num_classes": 3}) == ["0", "1", "2"]


def test_glassnet_io_import_does_not_import_matplotlib_or_pil():
    import subprocess
    import sys

    code = ("import sys, glassnet, glassnet.io, glassnet.cli, glassnet.viz; glassnet.cli.build_parser(); "
            "print('matplotlib' in sys.modules, 'PIL' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ---------------------------------------------------------------- evaluate
def test_evaluate_matches_direct_computation(trained_runs, fmnist_test, capsys):
    run = trained_runs[0]
    assert main(["evaluate", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    result = json.loads((run / "evaluation.json").read_text())

    model, config = load_run(run, log=None)
    x = preprocess_transform(config)(fmnist_test.data[:, None])
    logits = batched_logits(model, x)  # the command's batches: the same argmax, even at near-ties
    pred = logits.argmax(axis=1)
    accuracy = float((pred == fmnist_test.targets).mean())
    assert result["n"] == 10000
    assert result["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert accuracy > 0.7  # really trained
    assert f"test accuracy {accuracy:.4f}" in out
    for name in fmnist_test.classes:
        assert name in out

    per_class = result["per_class"]
    assert [r["name"] for r in per_class] == list(fmnist_test.classes)
    for c, r in enumerate(per_class):
        mask = fmnist_test.targets == c
        assert r["n"] == int(mask.sum())
        assert r["accuracy"] == pytest.approx(float((pred[mask] == c).mean()))
    # per-class accuracies weighted by class counts average to the overall accuracy
    weighted = sum(r["accuracy"] * r["n"] for r in per_class) / sum(r["n"] for r in per_class)
    assert weighted == pytest.approx(accuracy)
    cm = np.array(result["confusion_matrix"])
    assert cm.sum() == 10000 and np.trace(cm) == int((pred == fmnist_test.targets).sum())


def test_evaluate_limit_and_errors(trained_runs, tmp_path, capsys):
    assert main(["evaluate", str(trained_runs[1]), "--limit", "300", "--no-progress"]) == 0
    result = json.loads((trained_runs[1] / "evaluation.json").read_text())
    assert result["n"] == 300 and result["weights_file"].endswith("best.safetensors")
    assert sum(r["n"] for r in result["per_class"]) == 300
    # --which last does not fall back to best: this run has no last.safetensors and no model.npz
    assert_cli_error(capsys, ["evaluate", str(trained_runs[1]), "--which", "last", "--no-progress"], 1,
                     "last.safetensors")
    assert_cli_error(capsys, ["evaluate", str(tmp_path / "missing")], 1, "does not exist")
    assert_cli_error(capsys, ["evaluate", "--ensemble", str(trained_runs[0])], 2, "at least two")


def test_ensemble_is_mean_of_member_softmaxes(trained_runs, capsys):
    from glassnet.inference.evaluation import ensemble_probabilities, evaluate_run
    from glassnet.train.metrics import softmax

    members = [evaluate_run(r, limit=2000, batch_size=EVAL_BATCH, log=None) for r in trained_runs]
    probs = ensemble_probabilities([m["probs"] for m in members])
    labels = members[0]["labels"]
    # members' probs are softmaxes of their logits, computed in the same batches (see batched_logits:
    # one batch of 2000 gives logits up to 5.7e-6 off under other OpenBLAS kernels)
    model, config = load_run(trained_runs[0], log=None)
    x = preprocess_transform(config)(data.FashionMNIST(train=False).data[:2000, None])
    np.testing.assert_allclose(members[0]["probs"], softmax(batched_logits(model, x)), rtol=1e-10)
    np.testing.assert_allclose(probs, np.mean([m["probs"] for m in members], axis=0))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    ens_acc = float((probs.argmax(axis=1) == labels).mean())

    out_json = trained_runs[0].parent / "ensemble.json"
    assert main(["evaluate", "--ensemble", *map(str, trained_runs), "--limit", "2000", "--no-progress",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    for m in members:
        assert f"accuracy {m['accuracy']:.4f}" in out
    assert "ensemble (mean softmax)" in out and f"accuracy {ens_acc:.4f}" in out
    saved = json.loads(out_json.read_text())
    assert saved["ensemble"]["accuracy"] == pytest.approx(ens_acc)
    assert [m["accuracy"] for m in saved["members"]] == pytest.approx([m["accuracy"] for m in members])
    # the lecture's ensemble effect: at least as good as the average member
    assert ens_acc >= np.mean([m["accuracy"] for m in members]) - 0.01


def test_ensemble_rejects_mismatched_members(tmp_path, fmnist_test, capsys):
    random_run(tmp_path / "a", seed=0)
    gn.manual_seed(1)
    twelve = get_model("mlp", num_classes=12, in_channels=1, **MLP_KWARGS)
    write_run(tmp_path / "b", twelve, make_config("mlp", MLP_KWARGS, num_classes=12, classes=list("abcdefghijkl")),
              ("best",))
    assert_cli_error(capsys, ["evaluate", "--ensemble", str(tmp_path / "a"), str(tmp_path / "b"), "--limit", "50",
                              "--no-progress"], 1, "same test set and classes")
    five = get_model("mlp", num_classes=5, in_channels=1, **MLP_KWARGS)
    write_run(tmp_path / "c", five, make_config("mlp", MLP_KWARGS, num_classes=5, classes=list("abcde")), ("best",))
    assert_cli_error(capsys, ["evaluate", str(tmp_path / "c"), "--limit", "50", "--no-progress"], 1,
                     "5 outputs but the fashion-mnist test set has labels up to 9")


# -------------------------------------------------------------------- plot
def test_plot_mlp_writes_curves_and_confusion_no_filters(trained_runs, capsys):
    require_module("matplotlib", "plot")
    run = trained_runs[2]
    assert main(["plot", str(run), "--no-progress", "--limit", "500"]) == 0
    out = capsys.readouterr().out
    plots = run / "plots"
    assert_png(plots / "curves.png")
    assert_png(plots / "confusion_matrix.png")
    assert not (plots / "filters.png").exists()
    assert not list(plots.glob("activations_*.png"))
    assert "no conv layer" in out
    assert f"wrote {plots / 'curves.png'}" in out and f"wrote {plots / 'confusion_matrix.png'}" in out


def test_plot_small_cnn_filters_and_activations(tmp_path, fmnist_test, capsys):
    require_module("matplotlib", "plot")
    random_run(tmp_path / "cnn", "small_cnn", seed=5, layout=("last",))
    out_dir = tmp_path / "pictures"
    assert main(["plot", str(tmp_path / "cnn"), "--no-progress", "--limit", "200", "--image-index", "7",
                 "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("curves.png", "confusion_matrix.png", "filters.png", "activations_features.0.png",
                 "activations_features.3.png"):
        assert_png(out_dir / name)
        assert str(out_dir / name) in out
    assert not (tmp_path / "cnn" / "plots").exists()
    assert_cli_error(capsys, ["plot", str(tmp_path / "cnn"), "--no-progress", "--image-index", "10000",
                              "--out", str(out_dir)], 2, "--image-index")


def test_capture_activations_uses_hooks_and_removes_them():
    from glassnet.inference.plots import capture_activations, conv_layers

    gn.manual_seed(0)
    model = get_model("small_cnn", **CNN_KWARGS)
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32)
    maps = capture_activations(model, x)
    assert list(maps) == ["features.0", "features.3"]
    assert maps["features.0"].shape == (1, 4, 28, 28) and maps["features.3"].shape == (1, 8, 14, 14)
    with gn.no_grad():
        np.testing.assert_allclose(maps["features.0"], model.features[0](gn.Tensor(x)).data)
    for _, conv in conv_layers(model):
        assert not conv.__dict__.get("_forward_hooks")


def test_viz_helpers(tmp_path):
    require_module("matplotlib", "plot")
    from glassnet import viz

    norm = viz.normalize_per_map(np.array([[[0.0, 2.0]], [[5.0, 5.0]]]))
    np.testing.assert_allclose(norm, [[[0.0, 1.0]], [[0.5, 0.5]]])
    assert viz.grid_shape(10) == (3, 4) and viz.grid_shape(64) == (8, 8) and viz.grid_shape(1) == (1, 1)
    w = np.random.default_rng(0).standard_normal((6, 3, 5, 5))
    assert viz.plot_filters(w, tmp_path / "rgb.png") == str(tmp_path / "rgb.png")
    assert_png(tmp_path / "rgb.png")
    viz.plot_activations(w[0], tmp_path / "maps.png", image=w[0])
    assert_png(tmp_path / "maps.png")
    cm = np.array([[5, 1], [2, 7]])
    viz.plot_confusion_matrix(cm, ["a", "b"], tmp_path / "cm.png")
    assert_png(tmp_path / "cm.png")
    with pytest.raises(ValueError, match="empty"):
        viz.plot_curves([], tmp_path / "x.png")


# ----------------------------------------------------------------- predict
def test_predict_png_from_test_images(trained_runs, fmnist_test, tmp_path, capsys):
    PIL = require_module("PIL", "image")  # noqa: N806
    from PIL import Image

    from glassnet.inference.images import load_image, predict_images

    assert PIL is not None
    model, config = load_run(trained_runs[0], log=None)
    # pick test images the model classifies right with confidence, save them as PNGs
    x = preprocess_transform(config)(fmnist_test.data[:50, None])
    with gn.no_grad():
        from glassnet.train.metrics import softmax
        probs = softmax(model(gn.Tensor(x)).data)
    index = int(next(i for i in range(50) if probs[i].argmax() == fmnist_test.targets[i] and probs[i].max() > 0.6))
    label = fmnist_test.classes[fmnist_test.targets[index]]
    gray = tmp_path / "gray.png"
    Image.fromarray(fmnist_test.data[index]).save(gray)
    np.testing.assert_array_equal(load_image(gray)[0], fmnist_test.data[index])
    # RGB, odd size, dark-on-light: converted back to a 28x28 grayscale light-on-dark image
    rgb = tmp_path / "rgb_big.png"
    Image.fromarray(255 - fmnist_test.data[index]).convert("RGB").resize((57, 43), Image.NEAREST).save(rgb)
    loaded = load_image(rgb, invert=True)
    assert loaded.shape == (1, 28, 28) and loaded.dtype == np.uint8
    rgba = tmp_path / "rgba.png"
    Image.fromarray(fmnist_test.data[index]).convert("RGBA").save(rgba)
    assert load_image(rgba).shape == (1, 28, 28)
    assert load_image(gray, in_channels=3).shape == (3, 28, 28)

    results = predict_images(model, config, [gray, rgb], top_k=4)
    for r in results:
        assert r["probs"].sum() == pytest.approx(1.0)
        ps = [p for _, p in r["top"]]
        assert ps == sorted(ps, reverse=True) and len(ps) == 4
    assert results[0]["top"][0][0] == label
    # the softmax of the model on the batch predict_images builds (these two images): a batch of 50 (probs[index])
    # has other GEMM shapes, so other OpenBLAS kernels round it differently (see batched_logits)
    with gn.no_grad():
        same_batch = softmax(model(gn.Tensor(preprocess_transform(config)(
            np.stack([load_image(gray), load_image(rgb)])))).data)
    np.testing.assert_allclose(results[0]["probs"], same_batch[0], rtol=1e-10)
    np.testing.assert_allclose(results[1]["probs"], same_batch[1], rtol=1e-10)

    assert main(["predict", str(trained_runs[0]), str(gray), str(rgb), "--invert", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert str(gray) in out and str(rgb) in out
    ranks = [line.split(".")[0].strip() for line in out.splitlines() if line.startswith("  ") and "%" in line]
    assert ranks == ["1", "2", "1", "2"]  # --top-k 2 for each of the two images
    inverted = predict_images(model, config, [rgb], invert=True, top_k=1)[0]
    assert inverted["top"][0][0] == label
    # without --invert the light background is pointed out
    assert main(["predict", str(trained_runs[0]), str(rgb)]) == 0
    assert "--invert" in capsys.readouterr().out


def test_predict_errors(tmp_path, capsys):
    require_module("PIL", "image")
    random_run(tmp_path / "run", seed=0)
    assert_cli_error(capsys, ["predict", str(tmp_path / "run"), str(tmp_path / "missing.png")], 1, "no such image")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert_cli_error(capsys, ["predict", str(tmp_path / "run"), str(bad)], 1, "cannot read the image")
