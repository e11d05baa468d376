"""ImageFolder: torchvision's folder rules and pixels (checked against torchvision itself where its
interpreter is there: GLASSNET_TORCHVISION_PYTHON, default /work/tvenv/bin/python), the rng
contract, on_error="raise"/"skip", custom loaders and validity tests, symbolic-link loops."""
import json
import os
import subprocess
import warnings

import numpy as np
import pytest

from tests.test_decode import KINDS, write_photo
from tests.torch_oracle import in_ci, require_module

require_module("PIL", "image")

from glassnet.data import DataLoader, ImageFolder, transforms as T  # noqa: E402
from glassnet.data.datasets import DatasetNotFoundError  # noqa: E402
from glassnet.data.image_folder import IMG_EXTENSIONS  # noqa: E402
from glassnet.data.sample_rng import sample_rng  # noqa: E402
from glassnet.errors import DataFormatError, IndexOutOfRangeError, InvalidArgumentError  # noqa: E402

TV_PYTHON = os.environ.get("GLASSNET_TORCHVISION_PYTHON", "/work/tvenv/bin/python")

# torchvision's ImageFolder over a folder: its classes, samples, targets and every image (as CHW uint8),
# optionally after Resize(size) + CenterCrop(size). Only numpy and torchvision are imported.
TV_FOLDER = r'''
import json, sys
import numpy as np
from torchvision import datasets, transforms as T
root, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
ds = datasets.ImageFolder(root, transform=T.Compose([T.Resize(size), T.CenterCrop(size)]) if size else None)
np.savez(out + ".npz", **{f"x{i}": np.asarray(ds[i][0]).transpose(2, 0, 1) for i in range(len(ds))})
with open(out + ".json", "w") as f:
    json.dump({"classes": ds.classes, "class_to_idx": ds.class_to_idx, "samples": ds.samples,
               "targets": ds.targets}, f)
'''


def torchvision_folder(root, work, size=0):
    """(meta, [images]) from torchvision's ImageFolder on ``root``, or skip (fail under CI with the variable set)."""
    def unavailable(why):
        if in_ci() and "GLASSNET_TORCHVISION_PYTHON" in os.environ:
            pytest.fail(f"torchvision oracle required: {why}")
        pytest.skip(f"torchvision oracle unavailable: {why}")

    if not os.path.exists(TV_PYTHON):
        unavailable(f"no interpreter at {TV_PYTHON} (set GLASSNET_TORCHVISION_PYTHON)")
    script = work / "tv_folder.py"
    script.write_text(TV_FOLDER)
    out = work / "tv_out"
    proc = subprocess.run([TV_PYTHON, str(script), str(root), str(out), str(size)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        if "No module named" in proc.stderr:
            unavailable(proc.stderr.strip().splitlines()[-1])
        pytest.fail(f"torchvision ImageFolder failed:\n{proc.stderr[-3000:]}")
    meta = json.loads((work / "tv_out.json").read_text())
    with np.load(work / "tv_out.npz") as z:
        return meta, [z[f"x{i}"] for i in range(len(z.files))]


def make_tree(root, spec):
    """spec: {"cls/sub/name.ext": kind}; writes small photo-like images."""
    for k, (rel, kind) in enumerate(sorted(spec.items())):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        write_photo(p, 23 + k % 5, 17 + k % 3, seed=k, kind=kind)
    return root


MIXED = {f"{cls}/{name}": kind for cls in ("zebra", "ant", "Moth") for name, kind in KINDS
         if not name.endswith(".gif")}
MIXED.update({"ant/nested/deeper/p.JPG": "rgb", "ant/UPPER.PNG": "palette_t", "zebra/x.JPEG": "gray"})


def test_same_classes_samples_and_pixels_as_torchvision(tmp_path):
    root = make_tree(tmp_path / "data", MIXED)
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "stray.jpg").write_bytes(b"files beside the class folders are ignored")
    ds = ImageFolder(root)
    meta, images = torchvision_folder(root, tmp_path)
    assert ds.classes == meta["classes"] == ["Moth", "ant", "zebra"]
    assert ds.class_to_idx == meta["class_to_idx"]
    assert [list(s) for s in ds.samples] == meta["samples"] and ds.targets == meta["targets"]
    assert ds.imgs is ds.samples and len(ds) == len(images)
    for i, ref in enumerate(images):
        x, y = ds[i]
        assert y == ds.targets[i]
        np.testing.assert_array_equal(x, ref, err_msg=ds.samples[i][0])


def test_resize_and_crop_pipeline_matches_torchvision(tmp_path):
    root = make_tree(tmp_path / "data", {"a/1.jpg": "rgb", "a/2.png": "rgba", "b/3.jpg": "cmyk", "b/4.png": "gray"})
    ds = ImageFolder(root, transform=T.Compose([T.Resize(12), T.CenterCrop(12)]))
    _, images = torchvision_folder(root, tmp_path, size=12)
    for i, ref in enumerate(images):
        np.testing.assert_array_equal(ds[i][0], ref)


def test_folder_rules(tmp_path):
    root = make_tree(tmp_path / "d", {"b/x/2.png": "rgb", "b/1.png": "rgb", "a/z.Jpg": "rgb", "a/a.gif": "palette"})
    ds = ImageFolder(root)
    assert [os.path.relpath(p, root) for p, _ in ds.samples] == ["a/z.Jpg", "b/1.png", "b/x/2.png"]
    assert ds.targets == [0, 1, 1]
    gif = ImageFolder(root, extensions=IMG_EXTENSIONS + (".gif",))
    assert [os.path.basename(p) for p, _ in gif.samples] == ["a.gif", "z.Jpg", "1.png", "2.png"]
    only_png = ImageFolder(root, is_valid_file=lambda p: p.endswith(".png"), allow_empty=True)
    assert [os.path.basename(p) for p, _ in only_png.samples] == ["1.png", "2.png"]
    assert ImageFolder(str(root), mode="L")[0][0].shape[0] == 1
    with pytest.raises(InvalidArgumentError, match="not both"):
        ImageFolder(root, extensions=(".png",), is_valid_file=lambda p: True)
    with pytest.raises(IndexOutOfRangeError):
        ds[3]


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cannot list"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "1.png").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="couldn't find any class folder"):
        ImageFolder(tmp_path / "flat")
    root = make_tree(tmp_path / "d", {"full/1.png": "rgb"})
    (root / "empty").mkdir()
    (root / "text").mkdir()
    (root / "text" / "a.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="no valid file for the classes empty, text.*extensions are"):
        ImageFolder(root)
    ds = ImageFolder(root, allow_empty=True)
    assert ds.classes == ["empty", "full", "text"] and ds.targets == [1]


def test_symbolic_link_loop_is_not_followed_forever(tmp_path):
    root = make_tree(tmp_path / "d", {"a/1.png": "rgb", "a/sub/2.png": "rgb"})
    os.symlink(root / "a", root / "a" / "sub" / "loop")
    os.symlink(root / "a" / "sub", root / "b")          # a second class through a link: followed
    ds = ImageFolder(root)                              # each walk stops where a link leads back up it
    assert [os.path.relpath(p, root) for p, _ in ds.samples] == ["a/1.png", "a/sub/2.png", "b/2.png",
                                                                 "b/loop/1.png"]


def test_rng_contract(tmp_path):
    root = make_tree(tmp_path / "d", {f"c{k % 2}/{k}.jpg": "rgb" for k in range(6)})
    tf = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(), T.ToFloat()])
    ds = ImageFolder(root, transform=tf, target_transform=lambda y: y * 10)
    a, ya = ds.get_item(3, sample_rng(5, 2, 3))
    b, yb = ds.get_item(3, sample_rng(5, 2, 3))
    c, _ = ds.get_item(3, sample_rng(5, 3, 3))
    assert a.shape == (3, 8, 8) and a.dtype == np.float32 and ya == yb == 10
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(ds[3][0], ds.get_item(3, sample_rng(0, 0, 3))[0])
    np.testing.assert_array_equal(ds[-3][0], ds[3][0])
    batches = list(DataLoader(ds, batch_size=4, seed=5))
    assert [x.shape for x, _ in batches] == [(4, 3, 8, 8), (2, 3, 8, 8)]
    np.testing.assert_array_equal(batches[0][1], [0, 0, 0, 10])


def _with_bad_files(root):
    make_tree(root, {"a/1.jpg": "rgb", "a/2.png": "rgb", "b/3.jpg": "rgb", "b/4.jpg": "rgb"})
    (root / "a" / "0bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    data = (root / "b" / "3.jpg").read_bytes()
    (root / "b" / "3trunc.jpg").write_bytes(data[: len(data) // 2])
    return root


def test_on_error_raise_names_the_file_when_fetched(tmp_path):
    ds = ImageFolder(_with_bad_files(tmp_path / "d"))
    assert len(ds) == 6
    with pytest.raises(DataFormatError, match="0bad.png"):
        ds[0]
    with pytest.raises(DataFormatError, match="3trunc.jpg"):
        ds[4]
    assert ds[1][0].shape[0] == 3


def test_on_error_skip_checks_once_and_warns_once(tmp_path):
    root = _with_bad_files(tmp_path / "d")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolder(root, on_error="skip")
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "skipped 2 of 6" in text and "0bad.png" in text and "3trunc.jpg" in text
    assert [os.path.basename(p) for p, _ in ds.skipped] == ["0bad.png", "3trunc.jpg"]
    assert [os.path.basename(p) for p, _ in ds.samples] == ["1.jpg", "2.png", "3.jpg", "4.jpg"]
    assert ds.targets == [0, 0, 1, 1] and len(ds) == 4
    for i in range(len(ds)):
        ds[i]
    os.truncate(ds.samples[3][0], 100)                   # breaks after the check: an error, not a silent skip
    with pytest.raises(DataFormatError, match="4.jpg.*changed since"):
        ds[3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageFolder(make_tree(tmp_path / "ok", {"a/1.png": "rgb"}), on_error="skip")   # nothing to say: no warning


def test_custom_loader(tmp_path):
    root = make_tree(tmp_path / "d", {"a/1.png": "rgb", "a/2.png": "rgb"})
    (root / "a" / "3.png").write_bytes(b"bad")

    def loader(path):
        if path.endswith("3.png"):
            raise OSError("unreadable")
        return os.path.basename(path)
    ds = ImageFolder(root, loader=loader)
    assert ds[0] == ("1.png", 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolder(root, loader=loader, on_error="skip")
    assert len(ds) == 2 and "OSError: unreadable" in str(caught[0].message)


def test_decode_size_and_bad_arguments(tmp_path):
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    write_photo(root / "a" / "big.jpg", 400, 300)
    assert ImageFolder(root, decode_size=100)[0][0].shape == (3, 150, 200)
    assert ImageFolder(root, decode_size=100, backend="pil")[0][0].shape == (3, 150, 200)
    for kw in ({"mode": "RGBA"}, {"on_error": "ignore"}, {"decode_size": -1}, {"backend": "x"}):
        with pytest.raises(InvalidArgumentError):
            ImageFolder(root, **kw)
