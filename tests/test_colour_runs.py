"""predict and plot on colour photo runs: RGB decoding, the run's resize / crop / normalize, and
conv1's filters drawn in colour (each filter min-max normalised, RGB, in a grid).

The run folders are built here the way ``glassnet train --data FOLDER`` writes them
(config.json with "dataset": "folder", "data", "in_channels", "image_size", "normalize",
"eval_resize", "classes"; checkpoints/best.safetensors with "model." keys), over a small
ImageNet-style tree (train/ and val/) of generated PNGs.
"""
import json

import numpy as np
import pytest

import glassnet as gn
from glassnet import data
from glassnet.cli import main
from glassnet.data import transforms as T
from glassnet.io import save_state_dict_file
from glassnet.models import get_model
from tests.torch_oracle import require_module

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
SIZE, RESIZE = 16, 20


def pil_image():
    require_module("PIL", "image")
    from PIL import Image

    return Image


def make_photo_tree(root, classes, per_class=3, seed=0):
    """root/{train,val}/<class>/<k>.png: colour images of assorted sizes, each class its own tint."""
    Image = pil_image()
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                h, w = int(rng.integers(18, 41)), int(rng.integers(18, 41))
                a = rng.integers(0, 200, (h, w, 3)).astype(np.int16)
                a[..., c % 3] += 55
                Image.fromarray(a.astype(np.uint8)).save(folder / f"{k}.png")
    return root


def make_photo_run(tmp_path, n_classes=6, seed=0, history=True):
    """(run folder, model, config) of a small_cnn colour run over a generated photo tree."""
    classes = [f"class{c}" for c in range(n_classes)]
    tree = make_photo_tree(tmp_path / "photos", classes, seed=seed)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    kwargs = {"width": 4, "hidden": 8, "image_size": SIZE}
    config = {"model": "small_cnn", "model_kwargs": kwargs, "num_classes": n_classes, "in_channels": 3,
              "dataset": "folder", "data": str(tree), "image_size": [SIZE, SIZE], "eval_resize": RESIZE,
              "normalize": {"mean": MEAN, "std": STD}, "classes": classes}
    (run / "config.json").write_text(json.dumps(config))
    if history:
        (run / "history.json").write_text(json.dumps([{"epoch": e, "train_loss": 2.0 / e, "val_accuracy": 0.2 * e}
                                                      for e in (1, 2)]))
    gn.manual_seed(seed)
    model = get_model("small_cnn", num_classes=n_classes, in_channels=3, **kwargs)
    save_state_dict_file({"model." + k: np.asarray(v) for k, v in model.state_dict().items()},
                         run / "checkpoints" / "best.safetensors")
    model.eval()
    return run, model, config


def reference_pipeline():
    """The run's evaluation pipeline, spelt out: shorter side to 20, centre 16x16, normalize."""
    return T.Compose([T.Resize(RESIZE), T.CenterCrop(SIZE), T.ToFloat(), T.Normalize(MEAN, STD)])


def softmax_of(model, x):
    with gn.no_grad():
        z = model(gn.tensor(np.asarray(x, np.float32))).numpy().astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ predict
def test_predict_colour_photo_uses_the_runs_resize_crop_normalize(tmp_path, capsys):
    Image = pil_image()
    from glassnet.inference.images import predict_images

    run, model, config = make_photo_run(tmp_path)
    rng = np.random.default_rng(7)
    photo = rng.integers(0, 256, (29, 37, 3), dtype=np.uint8)
    photo[:3], photo[-3:], photo[:, :3], photo[:, -3:] = 255, 255, 255, 255  # a light background
    Image.fromarray(photo).save(tmp_path / "photo.png")
    gray = rng.integers(0, 256, (50, 24), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")

    loaded, cfg = gn.io.load_run(run, log=None)
    results = predict_images(loaded, cfg, [tmp_path / "photo.png", tmp_path / "gray.png"], top_k=6)
    chw = [photo.transpose(2, 0, 1), np.repeat(gray[None], 3, axis=0)]  # grayscale replicated to RGB
    expected = softmax_of(model, np.stack([reference_pipeline()(x) for x in chw]))
    for r, p in zip(results, expected):
        np.testing.assert_allclose(r["probs"], p, rtol=1e-5, atol=1e-7)
        assert [name for name, _ in r["top"]] == [config["classes"][i] for i in np.argsort(-p, kind="stable")]

    assert main(["predict", str(run), str(tmp_path / "photo.png"), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    best = config["classes"][int(expected[0].argmax())]
    assert f"1. {best}" in out and "--invert" not in out  # no light-background hint for photo runs


def test_predict_keeps_the_mnist_path(tmp_path):
    """A 28x28 grayscale run still gets its image squashed to 28x28 (not resized by its shorter side)."""
    Image = pil_image()
    from glassnet.inference.images import load_image, predict_images

    gn.manual_seed(0)
    model = get_model("small_cnn", width=4, hidden=8)
    config = {"model": "small_cnn", "num_classes": 10, "in_channels": 1, "dataset": "fashion-mnist"}
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 30), dtype=np.uint8)).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png", 1, (28, 28))
    assert img.shape == (1, 28, 28)
    assert load_image(tmp_path / "g.png", 3, None).shape == (3, 40, 30)
    [r] = predict_images(model, config, [tmp_path / "g.png"])
    x = T.Normalize(data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD)(T.ToFloat()(img[None]))
    np.testing.assert_allclose(r["probs"], softmax_of(model, x)[0], rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ filters
def test_filter_mosaic_normalises_each_rgb_filter_and_tiles_them():
    from glassnet.viz import filter_mosaic

    w = np.random.default_rng(0).standard_normal((96, 3, 11, 11))  # AlexNet's conv1
    mosaic, shown, note = filter_mosaic(w)
    assert shown == 96 and note == "" and mosaic.shape == (8 * 12 - 1, 12 * 12 - 1, 3)  # 8 rows of 12
    for k in (0, 37, 95):
        r, c = divmod(k, 12)
        tile = mosaic[12 * r:12 * r + 11, 12 * c:12 * c + 11]
        expected = (w[k] - w[k].min()) / (w[k].max() - w[k].min())
        np.testing.assert_allclose(tile, expected.transpose(1, 2, 0))
        assert tile.min() == 0.0 and tile.max() == 1.0
    assert np.all(mosaic[11, :] == 1.0)  # the white gaps
    gray, shown, _ = filter_mosaic(w[:8, :1, :5, :5])
    assert gray.ndim == 2 and shown == 8
    mean, _, note = filter_mosaic(np.ones((4, 6, 3, 3)))
    assert "mean over 6 input channels" in note and np.all(mean[:3, :3] == 0.5)  # a constant filter: 0.5


def test_plot_colour_run_draws_rgb_filters_and_the_rest(tmp_path):
    require_module("matplotlib", "plot")
    Image = pil_image()
    from glassnet.inference.plots import make_plots

    run, model, _ = make_photo_run(tmp_path)
    written = make_plots(run, log=None)
    names = sorted(p.name for p in written)
    assert names == ["activations_features.0.png", "activations_features.3.png", "confusion_matrix.png",
                     "curves.png", "filters.png"]
    rgb = np.asarray(Image.open(run / "plots" / "filters.png").convert("RGB")).astype(int)
    assert (np.abs(rgb[..., 0] - rgb[..., 1]) > 30).any()  # in colour, not gray
    assert main(["plot", str(run), "--no-progress", "--data-root", str(tmp_path / "photos"),
                 "--out", str(tmp_path / "p2"), "--limit", "5", "--batch-size", "4"]) == 0
    assert (tmp_path / "p2" / "filters.png").is_file()


def test_plot_grayscale_first_conv_stays_gray(tmp_path):
    require_module("matplotlib", "plot")
    Image = pil_image()
    from glassnet import viz

    path = viz.plot_filters(np.random.default_rng(0).standard_normal((16, 1, 5, 5)), tmp_path / "f.png")
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.zeros((2, 3, 4))])
def test_filter_mosaic_refuses_non_conv_weights(bad):
    from glassnet.errors import InvalidArgumentError
    from glassnet.viz import filter_mosaic

    with pytest.raises(InvalidArgumentError, match=r"\(C_out, C_in, kH, kW\)"):
        filter_mosaic(bad)
