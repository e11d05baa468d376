"""MNIST-like datasets: where files are looked for, the not-found message,
corrupt files, the real Fashion-MNIST, and the docstrings of glassnet.data."""
import gzip
import inspect
import os

import numpy as np
import pytest

import glassnet.data as gd
from glassnet.data import (
    DataLoader, DatasetNotFoundError, FashionMNIST, MNIST, read_idx, write_idx,
)
from glassnet.data import transforms as T
from glassnet.errors import DataFormatError

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _write_split(folder, split="train", n=5, seed=0, gz=True, label_offset=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    img, lab = SPLIT_FILES[split]
    if not gz:
        img, lab = img[:-3], lab[:-3]
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = seed                      # tag: which folder a dataset came from
    labels = (np.arange(n) % 10 + label_offset).astype(np.uint8)
    write_idx(folder / img, images)
    write_idx(folder / lab, labels)
    return images, labels


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """HOME, $GLASSNET_DATA and the system folders moved into tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    monkeypatch.setattr(FashionMNIST, "system_dir", str(tmp_path / "system" / "fashion-mnist"))
    monkeypatch.setattr(MNIST, "system_dir", str(tmp_path / "system" / "mnist"))
    return tmp_path


@pytest.fixture(scope="module")
def real_fashion():
    """The installed Fashion-MNIST folder. Missing: a failure under CI=true
    (the CI image must install dataset-fashion-mnist), a skip elsewhere."""
    missing = [f for f in FASHION_FILES if not os.path.isfile(os.path.join(FASHION_DIR, f))]
    if missing:
        why = (f"Fashion-MNIST not installed: {FASHION_DIR} lacks {', '.join(missing)} "
               "(apt-get install dataset-fashion-mnist)")
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(why)
        pytest.skip(why)
    return FASHION_DIR


# --------------------------------------------------------------------------
# search order


def test_search_order_root_env_cache_system(isolated, monkeypatch):
    root = isolated / "root"
    env = isolated / "env"
    cache = isolated / "home" / ".cache" / "glassnet" / "fashion-mnist"
    system = isolated / "system" / "fashion-mnist"
    monkeypatch.setenv("GLASSNET_DATA", str(env))
    # each candidate holds a split tagged by its seed; delete from the front
    _write_split(system, seed=4)
    _write_split(cache, seed=3)
    _write_split(env, seed=22)
    _write_split(env / "fashion-mnist", seed=2)
    _write_split(root, seed=1)
    expect = [(root, 1), (env / "fashion-mnist", 2), (env, 22), (cache, 3), (system, 4)]
    for folder, tag in expect:
        ds = FashionMNIST(root=root)
        assert ds.folder == folder and ds.data[0, 0, 0] == tag
        for f in os.listdir(folder):
            if f.endswith(".gz"):
                os.unlink(folder / f)
    with pytest.raises(DatasetNotFoundError):
        FashionMNIST(root=root)


def test_search_dirs_listing(isolated, monkeypatch):
    monkeypatch.setenv("GLASSNET_DATA", str(isolated / "env"))
    dirs = FashionMNIST.search_dirs(isolated / "r")
    assert [str(d) for d, _ in dirs] == [
        str(isolated / "r"), str(isolated / "env" / "fashion-mnist"), str(isolated / "env"),
        str(isolated / "home" / ".cache" / "glassnet" / "fashion-mnist"),
        str(isolated / "system" / "fashion-mnist"),
    ]
    assert [o for _, o in dirs] == ["the root argument", "$GLASSNET_DATA/fashion-mnist",
                                    "$GLASSNET_DATA", "user cache", "system folder"]
    monkeypatch.delenv("GLASSNET_DATA")
    assert len(FashionMNIST.search_dirs()) == 2
    assert MNIST.cache_dir() == isolated / "home" / ".cache" / "glassnet" / "mnist"


def test_root_accepts_str_and_tilde(isolated):
    _write_split(isolated / "home" / "mydata", seed=7)
    assert FashionMNIST(root="~/mydata").data[0, 0, 0] == 7
    assert FashionMNIST(root=str(isolated / "home" / "mydata")).folder == isolated / "home" / "mydata"


def test_uncompressed_files_and_mixed(isolated):
    root = isolated / "root"
    images, labels = _write_split(root, "test", n=6, gz=False)
    ds = MNIST(root=root, train=False)
    assert ds.images_file.name == "t10k-images-idx3-ubyte"
    np.testing.assert_array_equal(ds.data, images)
    np.testing.assert_array_equal(ds.targets, labels)
    # uncompressed wins when both exist
    write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((6, 28, 28), np.uint8))
    assert MNIST(root=root, train=False).images_file.name == "t10k-images-idx3-ubyte"


def test_folder_needs_both_files_of_the_split(isolated):
    root = isolated / "root"
    cache = isolated / "home" / ".cache" / "glassnet" / "fashion-mnist"
    _write_split(root, seed=1)
    os.unlink(root / "train-labels-idx1-ubyte.gz")          # images only
    _write_split(cache, seed=3)
    assert FashionMNIST(root=root).folder == cache
    # and the other split is not enough either
    _write_split(root, "test", seed=1)
    assert FashionMNIST(root=root, train=False).folder == root


# --------------------------------------------------------------------------
# not found


def test_not_found_message_lists_places_and_fixes(isolated, monkeypatch):
    root = isolated / "root"
    root.mkdir()
    write_idx(root / "train-images-idx3-ubyte.gz", np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DatasetNotFoundError) as e:
        FashionMNIST(root=root)
    assert isinstance(e.value, FileNotFoundError)
    msg = str(e.value)
    assert msg.startswith("Fashion-MNIST (train split): cannot find "
                          "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
    lines = msg.splitlines()
    places = [ln for ln in lines if ln.lstrip()[:2] in ("1.", "2.", "3.")]
    assert len(places) == 3
    assert str(root) in places[0] and "root argument" in places[0]
    assert "missing train-labels-idx1-ubyte" in places[0]
    assert "images" not in places[0].split("missing")[1]
    assert str(isolated / "home" / ".cache" / "glassnet" / "fashion-mnist") in places[1]
    assert "no such folder" in places[1]
    assert str(isolated / "system" / "fashion-mnist") in places[2]
    assert "$GLASSNET_DATA is not set" in msg
    assert "download=True" in msg and "fashion-mnist.s3-website" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "GLASSNET_DATA" in msg.split("To fix")[1]
    # with the variable set, its folders are listed (and nothing about it being unset)
    monkeypatch.setenv("GLASSNET_DATA", str(isolated / "env"))
    with pytest.raises(DatasetNotFoundError) as e:
        FashionMNIST(root=root, train=False)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte[.gz]" in msg and "(test split)" in msg
    assert str(isolated / "env" / "fashion-mnist") in msg and "$GLASSNET_DATA/fashion-mnist" in msg
    assert "is not set" not in msg


def test_mnist_not_found_has_no_apt_hint(isolated):
    with pytest.raises(DatasetNotFoundError) as e:
        MNIST()
    msg = str(e.value)
    assert msg.startswith("MNIST (train split)")
    assert "apt-get" not in msg and "download=True" in msg
    assert str(isolated / "home" / ".cache" / "glassnet" / "mnist") in msg


# --------------------------------------------------------------------------
# corrupt files


def test_truncated_gz_names_the_file(isolated):
    root = isolated / "root"
    _write_split(root, n=50)
    p = root / "train-images-idx3-ubyte.gz"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError) as e:
        FashionMNIST(root=root)
    assert str(e.value).startswith(str(p) + ":") and "corrupt gzip" in str(e.value)


def test_truncated_payload_names_the_file(isolated):
    root = isolated / "root"
    _write_split(root, n=5)
    p = root / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataFormatError, match="truncated: 100 bytes missing") as e:
        FashionMNIST(root=root)
    assert str(p) in str(e.value)


def test_wrong_magic_names_the_file(isolated):
    root = isolated / "root"
    _write_split(root, n=5)
    p = root / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(p.read_bytes()))
    raw[0] = 8
    p.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataFormatError, match="bad magic number") as e:
        FashionMNIST(root=root)
    assert str(e.value).startswith(str(p))


def test_html_error_page_saved_as_gz(isolated):
    root = isolated / "root"
    _write_split(root, n=5)
    p = root / "train-images-idx3-ubyte.gz"
    p.write_bytes(b"<html><body>403 Forbidden</body></html>")
    with pytest.raises(DataFormatError, match="not gzip-compressed") as e:
        FashionMNIST(root=root)
    assert str(p) in str(e.value)


def test_label_image_count_mismatch(isolated):
    root = isolated / "root"
    _write_split(root, n=5)
    write_idx(root / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataFormatError) as e:
        FashionMNIST(root=root)
    msg = str(e.value)
    assert "has 5 images but" in msg and "has 4 labels" in msg
    assert str(root / "train-images-idx3-ubyte.gz") in msg
    assert str(root / "train-labels-idx1-ubyte.gz") in msg


@pytest.mark.parametrize("which, array, match", [
    ("images", np.zeros((3, 28, 27), np.uint8), r"expected uint8 images of shape \(N, 28, 28\), got uint8 \(3, 28, 27\)"),
    ("images", np.zeros((3, 28, 28), np.float32), r"got float32"),
    ("images", np.zeros((3, 784), np.uint8), r"got uint8 \(3, 784\)"),
    ("labels", np.zeros((3, 1), np.uint8), r"expected a 1-D array of integer labels"),
    ("labels", np.zeros(3, np.float64), r"expected a 1-D array of integer labels, got float64"),
    ("labels", np.array([0, 10, 1], np.uint8), r"label 10 is outside 0..9"),
])
def test_wrong_content(isolated, which, array, match):
    root = isolated / "root"
    _write_split(root, n=3)
    name = "train-images-idx3-ubyte.gz" if which == "images" else "train-labels-idx1-ubyte.gz"
    write_idx(root / name, array)
    with pytest.raises(DataFormatError, match=match) as e:
        FashionMNIST(root=root)
    assert str(root / name) in str(e.value)


# --------------------------------------------------------------------------
# items, batches, transforms on a small on-disk dataset


def test_items_batches_and_transforms(isolated):
    root = isolated / "root"
    images, labels = _write_split(root, n=12)
    ds = FashionMNIST(root=root)
    assert len(ds) == 12 and ds.data.dtype == np.uint8 and ds.targets.dtype == np.int64
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and isinstance(y, int)
    np.testing.assert_allclose(x[0], images[3] / 255.0, rtol=1e-6)
    xb, yb = ds.get_batch([3, 0])
    assert xb.shape == (2, 1, 28, 28) and xb.dtype == np.float32 and yb.dtype == np.int64
    np.testing.assert_array_equal(xb[0], x)
    xa, ya = ds.arrays()
    assert xa.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(ya, labels)

    seen = []
    ds2 = FashionMNIST(root=root, transform=T.Compose([T.Lambda(lambda a: seen.append(a.dtype) or a,
                                                                  batched=True), T.ToFloat(),
                                                         T.Normalize(0.5, 0.5), T.Flatten()]),
                       target_transform=lambda v: v * 2)
    xf, yf = ds2.get_batch(np.arange(4))
    assert seen == [np.uint8]
    assert xf.shape == (4, 784)
    np.testing.assert_allclose(xf, (images[:4].reshape(4, -1) / 255.0 - 0.5) / 0.5, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(yf, labels[:4].astype(int) * 2)
    assert ds2[1][1] == int(labels[1]) * 2
    assert "FashionMNIST(split='train', n=12" in repr(ds)
    with pytest.raises(IndexError, match="FashionMNIST: index 12 is out of range"):
        ds[12]


# --------------------------------------------------------------------------
# the real Fashion-MNIST


def test_real_fashion_mnist_loads(real_fashion, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GLASSNET_DATA", raising=False)
    train = FashionMNIST(train=True)
    test = FashionMNIST(train=False)
    assert str(train.folder) == real_fashion
    assert train.data.shape == (60000, 28, 28) and train.data.dtype == np.uint8
    assert test.data.shape == (10000, 28, 28)
    assert train.targets.shape == (60000,) and train.targets.dtype == np.int64
    assert np.bincount(train.targets).tolist() == [6000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10
    assert len(FashionMNIST.classes) == 10 and FashionMNIST.classes[9] == "Ankle boot"
    # the first training labels, as published
    assert train.targets[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    # pixel statistics behind FASHION_MNIST_MEAN / STD
    counts = np.bincount(train.data.reshape(-1), minlength=256)   # cheap: no float copy
    v = np.arange(256) / 255.0
    mean = (counts * v).sum() / counts.sum()
    std = np.sqrt((counts * (v - mean) ** 2).sum() / counts.sum())
    assert abs(mean - T.FASHION_MNIST_MEAN) < 1e-3 and abs(std - T.FASHION_MNIST_STD) < 1e-3
    xb, yb = next(iter(DataLoader(test, batch_size=256, shuffle=True, seed=0)))
    assert xb.shape == (256, 1, 28, 28) and xb.dtype == np.float32 and yb.dtype == np.int64
    assert 0.0 <= xb.min() and xb.max() <= 1.0 and xb.max() > 0.9
    assert set(np.unique(yb)) <= set(range(10))


def test_real_files_found_by_root_and_env(real_fashion, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert FashionMNIST(root=real_fashion, train=False).folder == FashionMNIST(train=False).folder
    monkeypatch.setenv("GLASSNET_DATA", os.path.dirname(real_fashion))   # parent of fashion-mnist/
    ds = FashionMNIST(train=False)
    assert str(ds.folder) == real_fashion and len(ds) == 10000
    assert read_idx(os.path.join(real_fashion, "t10k-labels-idx1-ubyte.gz")).shape == (10000,)


# --------------------------------------------------------------------------
# docstrings


def _public_objects():
    seen = {}
    for mod in (gd, T):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                seen[name] = obj
    return seen


SHAPE_DOCS = [
    "DataLoader", "ArrayDataset", "Subset", "fetch_batch", "MNISTLike", "MNIST", "FashionMNIST",
    "read_idx", "write_idx", "random_split", "Transform", "Compose", "Lambda", "ToFloat", "Normalize",
    "Flatten", "RandomCrop", "RandomHorizontalFlip", "RandomTranslate", "apply_transform",
]


def test_every_public_object_has_a_docstring():
    objs = _public_objects()
    assert set(SHAPE_DOCS) <= set(objs)
    for name, obj in objs.items():
        assert inspect.getdoc(obj), f"glassnet.data.{name} has no docstring"


@pytest.mark.parametrize("name", SHAPE_DOCS)
def test_shape_section_where_shapes_matter(name):
    doc = _public_objects()[name].__doc__
    assert "Shape:" in doc, f"{name} docstring lacks a 'Shape:' section"
