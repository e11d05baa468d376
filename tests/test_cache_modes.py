"""Grayscale <-> RGB at read from the decoded-image cache: bit for bit Pillow's Image.convert
(L -> RGB replicated, RGB -> L its ITU-R 601-2 luma with its integer rounding), in ImageCache,
ImageFolder(cache=) and the command line's open_splits."""
import numpy as np
import pytest

from tests.test_image_cache import folder
from tests.torch_oracle import require_module

require_module("PIL", "image")

from PIL import Image  # noqa: E402

from glassnet.data import ImageCache, ImageFolder, prepare_image_cache, transforms as T  # noqa: E402
from glassnet.data.data_spec import open_splits, resolve_data  # noqa: E402
from glassnet.data.pixel_modes import convert_mode, rgb_to_luma  # noqa: E402
from glassnet.data.sample_rng import sample_rng  # noqa: E402
from glassnet.errors import InvalidArgumentError, ShapeError  # noqa: E402
from glassnet.train.data import plan_input  # noqa: E402


def pil_convert(x, mode):
    """Pillow's convert of a (C, H, W) uint8 image, back as (C', H, W)."""
    img = Image.fromarray(x[0] if x.shape[0] == 1 else np.ascontiguousarray(x.transpose(1, 2, 0)))
    out = np.asarray(img.convert(mode))
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


@pytest.mark.parametrize("seed", range(4))
def test_luma_and_replication_are_pillows(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 300, 2)
    x = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
    x[:, 0, :3] = [[0, 255, 255], [0, 255, 0], [0, 255, 255]]          # the extremes
    np.testing.assert_array_equal(rgb_to_luma(x), pil_convert(x, "L"))
    np.testing.assert_array_equal(convert_mode(x, "RGB", "L"), pil_convert(x, "L"))
    g = x[1:2]
    np.testing.assert_array_equal(convert_mode(g, "L", "RGB"), pil_convert(g, "RGB"))
    assert convert_mode(x, "RGB", "RGB") is x
    batch = rng.integers(0, 256, (5, 3, 7, 9), dtype=np.uint8)           # batched: the channel axis is -3
    np.testing.assert_array_equal(rgb_to_luma(batch)[2], pil_convert(batch[2], "L"))


def test_every_rgb_triple_rounds_as_pillow():
    v = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(v, v, v[::5], indexing="ij")                 # 256 * 256 * 52 triples
    x = np.stack([r.reshape(256, -1), g.reshape(256, -1), b.reshape(256, -1)])
    np.testing.assert_array_equal(rgb_to_luma(x), pil_convert(x, "L"))


def test_bad_modes_and_shapes():
    with pytest.raises(InvalidArgumentError, match="'RGB' or 'L', got 'CMYK'"):
        convert_mode(np.zeros((3, 2, 2), np.uint8), "RGB", "CMYK")
    with pytest.raises(ShapeError, match=r"uint8 \(\.\.\., 3, H, W\).*\(1, 2, 2\)"):
        rgb_to_luma(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ShapeError, match="mode 'L'"):
        convert_mode(np.zeros((3, 2, 2), np.uint8), "L", "RGB")
    with pytest.raises(InvalidArgumentError, match="ImageCache: mode must be"):
        ImageCache("nowhere", mode="RGBA")


@pytest.fixture
def caches(tmp_path):
    src = folder(tmp_path / "photos")
    rgb = prepare_image_cache(src, tmp_path / "rgb", size=12, progress=False)
    gray = prepare_image_cache(src, tmp_path / "gray", size=12, mode="L", progress=False)
    return src, rgb, gray


def test_cache_read_in_the_other_mode(caches):
    src, rgb, gray = caches
    as_l, as_rgb = ImageCache(rgb, mode="L"), ImageCache(gray, mode="RGB")
    assert (as_l.mode, as_l.cache_mode, as_rgb.mode, as_rgb.cache_mode) == ("L", "RGB", "RGB", "L")
    assert as_l.images.shape == (8, 3, 12, 12) and "--mode RGB" in as_l.rebuild   # the cache is as built
    stored_rgb, stored_l = ImageCache(rgb).images, ImageCache(gray).images
    for i in range(len(as_l)):
        x = as_l[i][0]
        assert x.shape == (1, 12, 12) and x.dtype == np.uint8 and x.flags.writeable
        np.testing.assert_array_equal(x, pil_convert(np.asarray(stored_rgb[i]), "L"))
        np.testing.assert_array_equal(as_rgb[i][0], pil_convert(np.asarray(stored_l[i]), "RGB"))
    np.testing.assert_array_equal(ImageCache(gray, mode="L")[3][0], stored_l[3])
    tf = T.Compose([T.RandomResizedCrop(8), T.RandomHorizontalFlip(), T.ToFloat()])
    folder_l = ImageFolder(src, mode="L", transform=tf, cache=rgb)            # the transform sees L pixels
    x, _ = folder_l.get_item(5, sample_rng(2, 1, 5))
    ref = tf(pil_convert(np.asarray(stored_rgb[5]), "L"), rng=sample_rng(2, 1, 5))
    assert x.shape == (1, 8, 8)
    np.testing.assert_array_equal(x, ref)


def test_the_command_lines_splits_convert(caches):
    _, rgb, gray = caches
    spec = resolve_data(str(rgb))
    assert spec.cache and spec.channels == 3
    pool, _, test = open_splits(spec, channels=1)
    x, _ = pool.get_item(0, None)
    row = int(pool.indices[0])
    assert x.shape == (1, 12, 12)
    np.testing.assert_array_equal(x, pil_convert(np.asarray(ImageCache(rgb).images[row]), "L"))
    assert plan_input({"input": (1, 12, 12), "model": "small_cnn"}, spec).in_channels == 1  # no refusal
    pool3, _, _ = open_splits(resolve_data(str(gray)), channels=3)
    np.testing.assert_array_equal(pool3.get_item(1, None)[0],
                                  np.repeat(ImageCache(gray).images[int(pool3.indices[1])], 3, axis=0))
