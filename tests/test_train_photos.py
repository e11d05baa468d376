"""``glassnet train`` on colour photos: folders, ImageNet-style trees, CIFAR-10 pickles, the zoo's
big models at their own sizes, worker processes, --weights/--freeze, model/input mismatches,
and a kill -9 mid-epoch resumed bitwise.

The photos are generated here: a few dozen JPEGs and PNGs of assorted sizes, each class its own
colour and stripe frequency (learnable in a few steps). The big models (alexnet_lecture at 227,
resnet18 / googlenet / vgg11 at 224) run one or two steps on batches of 2; vgg11 (129M
parameters, a 1 GB checkpoint) is marked slow.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import main
from glassnet.data import transforms as T
from glassnet.io import load_state_dict_file, save_state_dict_file
from glassnet.io.checkpoint import CheckpointError, read_checkpoint_info
from glassnet.io.run_dir import load_test_set, preprocess_transform, read_config
from glassnet.models import get_model

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("cat", "dog", "fox")
SMALL = ["--model", "small_cnn", "--model-arg", "width=8", "--model-arg", "hidden=16", "--input", "3x32x32"]


def make_photos(root, per_class=12, seed=0, size=(40, 90)):
    """``root/<class>/<k>.{jpg,png}``: photo-like images of assorted sizes (H, W in ``size``)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            h, w = (int(v) for v in rng.integers(size[0], size[1] + 1, 2))
            xx = np.arange(w)[None, :]
            img = np.full((h, w, 3), 60.0)
            img[..., c] += 120 + 50 * np.sin(xx / (2.0 + 2 * c) + k)
            img += rng.normal(0, 18, (h, w, 3))
            im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
            if k % 2:
                im.save(folder / f"{k:03d}.jpg", quality=90)
            else:
                im.save(folder / f"{k:03d}.png")
    return Path(root)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photos(tmp_path_factory.mktemp("photos") / "tree")


def run_main(capsys, argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def train(capsys, *argv):
    code, out, err = run_main(capsys, ["train", "--no-progress", *argv])
    assert code == 0, err
    return out


def one_error_line(err, command="train"):
    assert "Traceback" not in err
    lines = err.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith(f"glassnet {command}: error: "), err
    return lines[0]


# ------------------------------------------------------------------- folders
def test_small_cnn_learns_a_photo_folder_and_records_its_pipeline(photos, tmp_path, capsys):
    out = tmp_path / "run"
    text = train(capsys, "--data", photos, *SMALL, "--epochs", "3", "--batch-size", "6", "--val-size", "6",
                 "--lr", "0.02", "--out", out)
    assert "3x32x32 (photo pipeline, augmented)" in text
    history = json.loads((out / "history.json").read_text())
    losses = [row["train_loss"] for row in history]
    assert losses[-1] < losses[0]
    cfg = read_config(out)
    assert (cfg["dataset"], cfg["data"], cfg["in_channels"], cfg["image_size"]) == ("folder", str(photos), 3, [32, 32])
    assert cfg["classes"] == list(CLASSES) and cfg["num_classes"] == 3 and cfg["pipeline"] == "photo"
    assert cfg["normalize"] == {"mean": [float(v) for v in T.IMAGENET_MEAN], "std": [float(v) for v in T.IMAGENET_STD]}
    assert cfg["eval_resize"] == 37  # round(32 * 256 / 224)
    # a single tree: a fixed tenth held out for testing (36 images -> 4), the rest split 26 / 6
    assert cfg["test_split"] == {"fraction": 0.1, "seed": 0, "of": 36}
    assert (cfg["train_size"], cfg["val_size"]) == (26, 6)
    test = load_test_set(cfg)
    assert len(test) == 4 == json.loads((out / "test.json").read_text())["n"]
    x, y = test[0]
    assert x.shape == (3, 32, 32) and x.dtype == np.float32 and y in range(3)
    # the evaluation pipeline of any photo: shorter side to 37, centre 32x32, ImageNet normalisation
    photo = np.random.default_rng(1).integers(0, 256, (3, 50, 70), dtype=np.uint8)
    want = T.Compose([T.Resize(37), T.CenterCrop(32), T.ToFloat(), T.Normalize(T.IMAGENET_MEAN, T.IMAGENET_STD)])
    np.testing.assert_array_equal(preprocess_transform(cfg)(photo), want(photo))


def test_imagenet_style_tree_tests_on_val(tmp_path, capsys):
    root = tmp_path / "tree"
    make_photos(root / "train", per_class=6, seed=1)
    make_photos(root / "val", per_class=2, seed=2)
    out = tmp_path / "run"
    train(capsys, "--data", root, *SMALL, "--epochs", "1", "--batch-size", "4", "--val-size", "3",
          "--no-augment", "--out", out)
    cfg = read_config(out)
    assert (cfg["train_size"], cfg["val_size"], cfg["augment"]) == (15, 3, False)
    assert "test_split" not in cfg
    assert json.loads((out / "test.json").read_text())["n"] == 6 == len(load_test_set(cfg))


def test_a_prepared_cache_is_a_data_folder(photos, tmp_path, capsys):
    from glassnet.data import ImageCache, prepare_image_cache

    cache = prepare_image_cache(photos, tmp_path / "cache", size=40, workers=1, progress=False)
    out = tmp_path / "run"
    train(capsys, "--data", cache, *SMALL, "--epochs", "1", "--batch-size", "4", "--val-size", "4", "--out", out)
    cfg = read_config(out)
    assert (cfg["dataset"], cfg["data"], cfg["classes"]) == ("folder", str(cache), list(CLASSES))
    assert cfg["test_split"]["of"] == 36 and (cfg["train_size"], cfg["val_size"]) == (28, 4)
    test = load_test_set(cfg)
    assert len(test) == 4 and isinstance(test.source.source, ImageCache)
    first = int(test.source.indices[test.indices[0]])  # the held-out image's row in the cache
    np.testing.assert_array_equal(test[0][0], preprocess_transform(cfg)(ImageCache(cache)[first][0]))


def test_workers_give_the_same_weights_as_the_main_process(photos, tmp_path, capsys):
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        train(capsys, "--data", photos, *SMALL, "--epochs", "1", "--batch-size", "4", "--val-size", "4",
              "--workers", workers, "--out", out)
        runs[workers] = load_state_dict_file(out / "checkpoints" / "last.safetensors")
    assert runs[0].keys() == runs[2].keys()
    for k in runs[0]:
        assert np.array_equal(runs[0][k], runs[2][k]), k


@pytest.mark.parametrize("model, side, extra", [
    ("alexnet_lecture", 227, ["--recipe", "alexnet", "--workers", "2"]),
    ("resnet18", 224, []),
    ("googlenet", 224, []),
])
def test_zoo_models_train_at_their_own_size(photos, tmp_path, capsys, model, side, extra):
    """One step each on a batch of 2 (no validation: one checkpoint, 470 MB for alexnet_lecture)."""
    out = tmp_path / model
    text = train(capsys, "--data", photos, "--model", model, *extra, "--epochs", "1", "--batch-size", "2",
                 "--limit-train", "2", "--val-size", "0", "--limit-test", "1", "--checkpoint-every", "0",
                 "--out", out)
    assert f"at 3x{side}x{side} (photo pipeline, augmented" in text
    cfg = read_config(out)
    assert cfg["image_size"] == [side, side] and cfg["eval_resize"] == 256
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])


@pytest.mark.slow
def test_vgg11_steps_at_224_through_the_library(photos):
    """vgg11 (129M parameters) without a run folder: its 1 GB checkpoint is all the CLI would add."""
    from glassnet.data.data_spec import resolve_data
    from glassnet.train import Trainer
    from glassnet.train.data import build_training_data, make_loaders, plan_input
    from glassnet.train.setup import build_model, make_optimizer

    from glassnet.commands._train_options import resolve_config

    cfg = resolve_config({"data": str(photos), "model": "vgg11", "batch_size": 2, "limit_train": 2, "val_size": 0})
    spec = resolve_data(cfg["data"])
    plan = plan_input(cfg, spec)
    cfg["augment"] = True
    assert (plan.shape(), plan.pipeline) == ((3, 224, 224), "photo")
    data = build_training_data(cfg, spec, plan, exact_val_size=True)
    model = build_model(cfg, 3, plan, "photos")
    train_loader, _, _ = make_loaders(cfg, data)
    history = Trainer(model, train_loader, make_optimizer(cfg, model.parameters()), 1, progress=False,
                      log=None).fit()
    assert np.isfinite(history[0]["train_loss"])


def test_alexnet_recipe_is_the_papers_augmentation():
    from glassnet.data.pipelines import photo_train_transform

    t = photo_train_transform((227, 227), T.IMAGENET_MEAN, T.IMAGENET_STD, recipe="alexnet", eval_resize=256)
    kinds = [type(p) for p in t.transforms]
    assert kinds == [T.Resize, T.RandomCrop, T.RandomHorizontalFlip, T.ToFloat, T.PCALighting, T.Normalize]
    assert t.transforms[0].size == 256 and t.transforms[1].size == (227, 227) and t.transforms[4].alphastd == 0.1
    img = np.random.default_rng(0).integers(0, 256, (3, 300, 400), dtype=np.uint8)
    a = t(img, rng=np.random.default_rng(5))
    assert a.shape == (3, 227, 227)
    np.testing.assert_array_equal(a, t(img, rng=np.random.default_rng(5)))  # a pure function of the generator


# --------------------------------------------------------------------- CIFAR
def test_cifar10_pickles_train_at_32px(tmp_path, capsys, monkeypatch):
    from tests.test_cifar import py2_pickle, write_cifar10

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = write_cifar10(tmp_path / "cifar", writer=py2_pickle, n=8)
    out = tmp_path / "run"
    text = train(capsys, "--data", "cifar10", "--data-root", root, "--model", "small_cnn", "--model-arg", "width=4",
                 "--epochs", "1", "--batch-size", "8", "--out", out)
    assert "on cifar10: 32 train / 8 val / 7 test images at 3x32x32 (native pipeline)" in text
    cfg = read_config(out)
    assert (cfg["dataset"], cfg["data"], cfg["image_size"], cfg["eval_resize"]) == ("cifar10", "cifar10", [32, 32], 32)
    assert cfg["classes"][:2] == ["airplane", "automobile"]
    test = load_test_set(cfg)
    assert len(test) == 7 and test[0][0].shape == (3, 32, 32)
    code, _, err = run_main(capsys, ["train", "--data", "cifar10", "--data-root", tmp_path / "nothing",
                                     "--out", tmp_path / "r2"])
    assert code == 1 and "cifar-10-batches-py" in one_error_line(err)


# ---------------------------------------------------------------- mismatches
def test_model_input_mismatch_names_the_smallest_input(photos, tmp_path, capsys):
    code, _, err = run_main(capsys, ["train", "--data", photos, "--model", "alexnet_lecture", "--input", "3x100x100",
                                     "--out", tmp_path / "run"])
    line = one_error_line(err)
    assert code == 2 and "--model alexnet_lecture does not fit --input 3x100x100" in line
    assert "the smallest input it accepts is 3x227x227" in line
    assert not (tmp_path / "run").exists()
    code, _, err = run_main(capsys, ["summary", "alexnet_lecture", "--input", "3x100x100"])
    assert code == 1 and "the smallest input it accepts is 3x227x227" in one_error_line(err, "summary")


def test_images_smaller_than_the_model_are_not_upscaled_silently(tmp_path, capsys, monkeypatch):
    from tests.test_cifar import write_cifar10

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = write_cifar10(tmp_path / "cifar", n=4)
    code, _, err = run_main(capsys, ["train", "--data", "cifar10", "--data-root", root, "--model", "alexnet",
                                     "--out", tmp_path / "run"])
    line = one_error_line(err)
    assert code == 2 and "cifar10's 3x32x32 images" in line and "smallest input it accepts is 3x63x63" in line
    assert "--input 3x224x224" in line


# ----------------------------------------------------------- weights, freeze
def test_weights_and_freeze(photos, tmp_path, capsys):
    gn.manual_seed(7)
    kwargs = {"width": 8, "hidden": 16, "image_size": 32}
    source = get_model("small_cnn", num_classes=7, in_channels=3, **kwargs)  # another head: 7 classes
    file = tmp_path / "pretrained.safetensors"
    save_state_dict_file(source.state_dict(), file)
    out = tmp_path / "run"
    text = train(capsys, "--data", photos, *SMALL, "--epochs", "1", "--batch-size", "4", "--val-size", "4",
                 "--weights", file, "--freeze", "features", "--out", out)
    assert f"--weights {file}: loaded 6 tensors; new head classifier.4.weight, classifier.4.bias" in text
    assert "--freeze features: 4 parameter tensors" in text
    trained = load_state_dict_file(out / "checkpoints" / "last.safetensors")
    start = source.state_dict()
    for k in ("features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias"):
        assert np.array_equal(trained["model." + k], start[k]), k  # frozen: bitwise the file's
    assert not np.array_equal(trained["model.classifier.1.weight"], start["classifier.1.weight"])  # trained
    assert trained["model.classifier.4.weight"].shape == (3, 16)  # the new head
    cfg = read_config(out)
    assert cfg["weights"] == str(file) and cfg["freeze"] == ["features"]
    code, _, err = run_main(capsys, ["train", "--data", photos, *SMALL, "--freeze", "no_such_layer",
                                     "--out", tmp_path / "r2"])
    assert code == 2 and "no_such_layer" in one_error_line(err)
    code, _, err = run_main(capsys, ["train", "--data", photos, *SMALL, "--weights", tmp_path / "missing.pth",
                                     "--out", tmp_path / "r3"])
    assert code == 2 and "missing.pth: no such file" in one_error_line(err)


# ------------------------------------------------------------------- resume
RESUME_ARGS = [*SMALL[:-2], "--input", "3x48x48", "--model-arg", "dropout=0.3", "--epochs", "2", "--batch-size", "3",
               "--val-size", "4", "--checkpoint-every", "1", "--workers", "2", "--seed", "5", "--lr", "0.01"]


def _env():
    return dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _start(photos, out):
    return subprocess.Popen([sys.executable, "-m", "glassnet.cli", "train", "--data", str(photos), *RESUME_ARGS,
                             "--no-progress", "--out", str(out)], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_kill_9_mid_epoch_then_resume_is_bitwise_identical(photos, tmp_path):
    reference = _start(photos, tmp_path / "reference")
    killed = tmp_path / "killed"
    proc = _start(photos, killed)
    stem, end = killed / "checkpoints" / "last", time.monotonic() + 120
    while True:
        assert proc.poll() is None, "training ended before a mid-epoch checkpoint:\n" + proc.stdout.read()
        assert time.monotonic() < end, "no mid-epoch checkpoint appeared"
        try:
            meta = read_checkpoint_info(stem)
            if meta["epoch"] == 0 and meta["step"] > 0:
                break
        except CheckpointError:  # not written yet (each write is atomic)
            pass
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "test.json").exists()
    # resumed in this process's way of building batches (no workers): the same batches
    result = subprocess.run([sys.executable, "-m", "glassnet.cli", "train", "--resume", str(killed), "--workers", "0",
                             "--no-progress"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resumed from" in result.stdout
    text, _ = reference.communicate(timeout=240)
    assert reference.returncode == 0, text
    a = load_state_dict_file(killed / "checkpoints" / "last.safetensors")
    b = load_state_dict_file(tmp_path / "reference" / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("optimizer.") for k in a)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("epoch_time_s", "images_per_s")} for r in rows]
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (killed, tmp_path / "reference"))
    assert strip(ha) == strip(hb) and len(ha) == 2
