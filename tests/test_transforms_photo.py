"""Photo transforms against torchvision on the same PIL image.

torchvision runs in its own interpreter (tests/tv_oracle.py), found through
``GLASSNET_TORCHVISION_PYTHON`` (default /work/tvenv/bin/python); every case
goes to it in one subprocess. Where that interpreter or torchvision is
missing the parity tests skip (and fail under CI=true when the variable is
set). Deterministic transforms are compared on the same image, random ones
by feeding torchvision the parameters glassnet drew (its box, its jitter
order and factors); RandomResizedCrop.get_params by the distribution of its
boxes and its fallback. Rng contract, batches and errors: test_transforms_rng.py.
"""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

from glassnet.data import transforms as T
from glassnet.data.sample_rng import sample_rng
from tests.torch_oracle import in_ci, require_module

require_module("PIL", "image")

ORACLE = pathlib.Path(__file__).with_name("tv_oracle.py")
TV_PYTHON = os.environ.get("GLASSNET_TORCHVISION_PYTHON", "/work/tvenv/bin/python")


def photo(h, w, c=3, seed=0):
    """A photo-like uint8 (C, H, W) image: smooth colour fields, a hard-edged block, sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [128 + 100 * np.sin(xx / 37 + k) * np.cos(yy / 23 - k) + 20 * np.cos((xx + 2 * yy) / 9 + k)
              for k in range(c)]
    img = np.stack(planes) + rng.normal(0, 12, (c, h, w))
    img[:, h // 3:h // 2 + 1, w // 4:w // 2 + 1] = rng.integers(0, 256, (c, 1, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


IMAGES = {
    "rgb": photo(375, 500), "portrait": photo(500, 375, seed=1), "gray": photo(375, 500, 1, seed=2),
    "odd": photo(37, 53, seed=3), "odd_gray": photo(53, 37, 1, seed=4), "square": photo(224, 224, seed=5),
    "px1": photo(1, 1, seed=6), "row": photo(1, 40, seed=7), "col": photo(40, 1, 1, seed=8),
    "wide": photo(3, 300, seed=9), "tall": photo(300, 3, seed=10),
}
CASES = []          # what torchvision is asked, sent in one go


def case(op, img=None, **params):
    cid = f"{op}-{len(CASES)}"
    CASES.append({"id": cid, "op": op, "img": img, **params})
    return cid


RESIZE = [(img, size, interp, max_size) for img in ("rgb", "portrait", "gray", "odd", "px1", "row", "col", "wide")
          for size, interp, max_size in [(224, "bilinear", None), ([100, 150], "bilinear", None), (7, "bicubic", None),
                                         (256, "bilinear", 300), (64, "lanczos", None), ([31, 17], "nearest", None),
                                         (5, "box", None), (41, "hamming", None)]]
RESIZE += [("square", 224, "bilinear", None), ("odd", [37, 53], "bicubic", None)]
RESIZE_IDS = [case("resize", img, size=s, interpolation=i, max_size=m) for img, s, i, m in RESIZE]

CENTER = [(img, size) for img in ("rgb", "gray", "odd", "px1", "wide")
          for size in (224, [100, 300], [600, 700], 10, 12, [1, 1], [37, 53], [3, 400])]
CENTER_IDS = [case("center_crop", img, size=s) for img, s in CENTER]


def _rrc_box(img, k, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    return list(T.RandomResizedCrop.get_params(IMAGES[img], scale, ratio, sample_rng(0, 0, k)))


RRC = [(img, k, size, interp, scale) for k, (img, size, interp, scale) in enumerate(
    [(img, size, interp, scale) for img in ("rgb", "portrait", "gray", "odd", "odd_gray", "px1", "row", "wide", "tall")
     for size, interp, scale in [(224, "bilinear", (0.08, 1.0)), ([64, 96], "bicubic", (0.08, 1.0)),
                                 (32, "bilinear", (1.0, 1.0)), (16, "lanczos", (0.01, 0.2))]]
    * 2)]
RRC_IDS = [case("resized_crop", img, box=_rrc_box(img, k, scale), size=list(np.broadcast_to(size, 2).tolist()),
                interpolation=interp) for img, k, size, interp, scale in RRC]

FLIP_IDS = {img: case("hflip", img) for img in ("rgb", "gray", "odd", "px1", "row", "col")}

JITTER_SINGLE = [(img, k, f) for img in ("rgb", "gray", "odd") for k, fs in
                 [(0, (0.0, 0.4, 1.0, 1.7, 3.0)), (1, (0.0, 0.5, 1.3, 2.5)), (2, (0.0, 0.3, 1.6, 4.0)),
                  (3, (-0.5, -0.21, 0.05, 0.37, 0.5))] for f in fs]
JITTER_SINGLE_IDS = [case("jitter", img, order=[k], factors=[f if j == k else None for j in range(4)])
                     for img, k, f in JITTER_SINGLE]
JITTER_RANDOM = [(img, k) for img in ("rgb", "portrait", "gray", "odd", "px1") for k in range(6)]
_JITTER = T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)


def _jitter_params(k):
    order, *factors = _JITTER.get_params(_JITTER.brightness, _JITTER.contrast, _JITTER.saturation, _JITTER.hue,
                                         sample_rng(1, 2, k))
    return [int(o) for o in order], factors


JITTER_RANDOM_IDS = [case("jitter", img, order=_jitter_params(k)[0], factors=_jitter_params(k)[1])
                     for img, k in JITTER_RANDOM]

MULTI = [(op, img, size, vflip) for op in ("five_crop", "ten_crop") for img in ("rgb", "gray", "odd", "square")
         for size, vflip in [(224 if img in ("rgb", "square") else 20, False), ([30, 17], True), ([1, 1], False)]]
MULTI += [("ten_crop", "odd", [37, 53], False), ("five_crop", "px1", 1, False)]
MULTI_IDS = [case(op, img, size=s, vertical_flip=v) for op, img, s, v in MULTI]

PIPE = [(img, k) for img in ("rgb", "portrait", "gray") for k in range(4)]
PIPE_IDS = [case("photo_pipeline", img, box=_rrc_box(img, 100 + k), size=[224, 224], flip=bool(k % 2),
                 mean=list(T.IMAGENET_MEAN if img != "gray" else [0.5]),
                 std=list(T.IMAGENET_STD if img != "gray" else [0.25])) for img, k in PIPE]

N_BOXES = 6000
PARAM_SHAPES = [(375, 500, (0.08, 1.0), (3 / 4, 4 / 3)), (100, 400, (0.5, 1.0), (3 / 4, 4 / 3)),
                (1, 100, (0.08, 1.0), (3 / 4, 4 / 3)), (100, 1, (0.08, 1.0), (3 / 4, 4 / 3)),
                (40, 40, (0.9, 1.0), (0.2, 5.0))]
PARAM_IDS = [case("rrc_params", H=h, W=w, scale=list(s), ratio=list(r), n=N_BOXES, seed=7)
             for h, w, s, r in PARAM_SHAPES]


@pytest.fixture(scope="module")
def tv(tmp_path_factory):
    """{case id: torchvision's result}, from one run of tests/tv_oracle.py."""
    explicit = "GLASSNET_TORCHVISION_PYTHON" in os.environ
    strict = in_ci() and explicit

    def unavailable(why):
        if strict:
            pytest.fail(f"torchvision oracle required (GLASSNET_TORCHVISION_PYTHON is set under CI): {why}")
        pytest.skip(f"torchvision oracle unavailable: {why}")

    if not os.path.exists(TV_PYTHON):
        unavailable(f"no interpreter at {TV_PYTHON} (set GLASSNET_TORCHVISION_PYTHON)")
    d = tmp_path_factory.mktemp("tv")
    (d / "cases.json").write_text(json.dumps(CASES))
    np.savez(d / "images.npz", **IMAGES)
    proc = subprocess.run([TV_PYTHON, str(ORACLE), str(d / "cases.json"), str(d / "images.npz"), str(d / "out.npz")],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        if "No module named" in proc.stderr:
            unavailable(proc.stderr.strip().splitlines()[-1])
        pytest.fail(f"tv_oracle.py failed:\n{proc.stderr[-3000:]}")
    with np.load(d / "out.npz") as z:
        return {k: z[k] for k in z.files}


def max_err(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0


def close_uint8(ours, theirs):
    """Within 1/255 per pixel (one uint8 level); the dtype and shape are torchvision's."""
    assert ours.dtype == np.uint8 and ours.shape == theirs.shape
    assert max_err(ours, theirs) <= 1


@pytest.mark.parametrize("spec, cid", list(zip(RESIZE, RESIZE_IDS)), ids=RESIZE_IDS)
def test_resize_matches_torchvision(tv, spec, cid):
    img, size, interp, max_size = spec
    close_uint8(T.Resize(size, interpolation=interp, max_size=max_size)(IMAGES[img]), tv[cid])


@pytest.mark.parametrize("spec, cid", list(zip(CENTER, CENTER_IDS)), ids=CENTER_IDS)
def test_center_crop_matches_torchvision(tv, spec, cid):
    img, size = spec
    close_uint8(T.CenterCrop(size)(IMAGES[img]), tv[cid])


@pytest.mark.parametrize("spec, cid", list(zip(RRC, RRC_IDS)), ids=RRC_IDS)
def test_random_resized_crop_matches_torchvision_resized_crop_on_its_box(tv, spec, cid):
    img, k, size, interp, scale = spec
    out = T.RandomResizedCrop(size, scale=scale, interpolation=interp)(IMAGES[img], rng=sample_rng(0, 0, k))
    close_uint8(out, tv[cid])


@pytest.mark.parametrize("img", sorted(FLIP_IDS))
def test_flip_matches_torchvision(tv, img):
    close_uint8(T.RandomHorizontalFlip(p=1.0)(IMAGES[img]), tv[FLIP_IDS[img]])


@pytest.mark.parametrize("spec, cid", list(zip(JITTER_SINGLE, JITTER_SINGLE_IDS)), ids=JITTER_SINGLE_IDS)
def test_each_colour_adjustment_matches_torchvision(tv, spec, cid):
    img, k, f = spec
    kwargs = {("brightness", "contrast", "saturation", "hue")[k]: (f, f)}
    close_uint8(T.ColorJitter(**kwargs)(IMAGES[img], rng=sample_rng(0, 0, 0)), tv[cid])


@pytest.mark.parametrize("spec, cid", list(zip(JITTER_RANDOM, JITTER_RANDOM_IDS)), ids=JITTER_RANDOM_IDS)
def test_color_jitter_in_random_order_matches_torchvision_with_the_same_parameters(tv, spec, cid):
    img, k = spec
    close_uint8(_JITTER(IMAGES[img], rng=sample_rng(1, 2, k)), tv[cid])


@pytest.mark.parametrize("spec, cid", list(zip(MULTI, MULTI_IDS)), ids=MULTI_IDS)
def test_five_and_ten_crop_match_torchvision(tv, spec, cid):
    op, img, size, vflip = spec
    t = T.FiveCrop(size) if op == "five_crop" else T.TenCrop(size, vertical_flip=vflip)
    close_uint8(t(IMAGES[img]), tv[cid])


@pytest.mark.parametrize("spec, cid", list(zip(PIPE, PIPE_IDS)), ids=PIPE_IDS)
def test_training_pipeline_matches_torchvision_to_float_rounding(tv, spec, cid):
    img, k = spec
    params = next(c for c in CASES if c["id"] == cid)
    pipe = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(p=float(params["flip"])),
                      T.ToFloat(), T.Normalize(params["mean"], params["std"])])
    out = pipe(IMAGES[img], rng=sample_rng(0, 0, 100 + k))     # the box drawn first: the one torchvision got
    assert out.dtype == np.float32
    # the same float32 operations in the same order as ToTensor + Normalize
    assert max_err(out, tv[cid]) <= 1e-5


def _box_stats(boxes, h, w):
    i, j, bh, bw = boxes.T.astype(np.float64)
    return {"area": bh * bw / (h * w), "log_ratio": np.log(bw / bh),
            "top": (i + 0.5) / (h - bh + 1), "left": (j + 0.5) / (w - bw + 1)}


def _ks(a, b):
    """Two-sample Kolmogorov-Smirnov statistic."""
    grid = np.sort(np.concatenate([a, b]))
    return float(np.abs(np.searchsorted(np.sort(a), grid, "right") / len(a)
                        - np.searchsorted(np.sort(b), grid, "right") / len(b)).max())


@pytest.mark.parametrize("shape, cid", list(zip(PARAM_SHAPES, PARAM_IDS)), ids=PARAM_IDS)
def test_get_params_draws_boxes_distributed_as_torchvision(tv, shape, cid):
    h, w, scale, ratio = shape
    theirs = tv[cid]
    g = sample_rng(7, 0, 0)
    ours = np.array([T.RandomResizedCrop.get_params((h, w), scale, ratio, g) for _ in range(N_BOXES)])
    # every box lies inside the image
    assert (ours[:, 2] >= 1).all() and (ours[:, 3] >= 1).all()
    assert (ours[:, 0] + ours[:, 2] <= h).all() and (ours[:, 1] + ours[:, 3] <= w).all()
    # the fallback, the centred box clamped to the ratio range, is taken as often
    r_lo, r_hi = min(ratio), max(ratio)
    fh, fw = (round(w / r_lo), w) if w / h < r_lo else (h, round(h * r_hi)) if w / h > r_hi else (h, w)
    fallback = ((h - fh) // 2, (w - fw) // 2, fh, fw)
    n_ours = sum(tuple(b) == fallback for b in ours.tolist())
    n_theirs = sum(tuple(b) == fallback for b in theirs.tolist())
    assert abs(n_ours - n_theirs) <= 4 * np.sqrt(max(n_ours, n_theirs)) + 5
    if h == 1 or w == 1:                 # no try can fit: always the fallback
        assert n_ours == n_theirs == N_BOXES
        return
    # KS at alpha ~ 1e-3 for two samples of N_BOXES: 1.95 * sqrt(2 / N)
    crit = 1.95 * np.sqrt(2 / N_BOXES)
    so, st = _box_stats(ours, h, w), _box_stats(theirs, h, w)
    for key in so:
        assert _ks(so[key], st[key]) < crit, key
