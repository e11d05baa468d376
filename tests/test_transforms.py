"""Transforms: the math of Normalize/ToFloat, the geometry of the random
crops/translations/flips, seeding, Compose, reprs and the rank errors."""
import numpy as np
import pytest

from glassnet.data import transforms as T
from glassnet.data.transforms import apply_transform
from glassnet.errors import ShapeError


def _batch(n=8, c=1, h=6, w=7, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    # 1 + ... so that no pixel equals the fill value 0
    return (1 + rng.integers(0, 250, size=(n, c, h, w))).astype(dtype)


# --------------------------------------------------------------------------
# ToFloat / Normalize / Flatten


def test_tofloat_scales_uint8_to_unit_interval():
    x = np.array([[[0, 51, 255]]], dtype=np.uint8)
    y = T.ToFloat()(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, [[[0.0, 0.2, 1.0]]], rtol=1e-6)
    y64 = T.ToFloat(np.float64)(x)
    assert y64.dtype == np.float64
    f = np.array([0.5, 2.0], dtype=np.float64)
    np.testing.assert_array_equal(T.ToFloat()(f), f.astype(np.float32))


def test_tofloat_rejects_signed_ints_and_non_float_dtype():
    with pytest.raises(TypeError, match="cannot scale dtype int8"):
        T.ToFloat()(np.zeros(3, np.int8))
    with pytest.raises(TypeError, match="must be a float type"):
        T.ToFloat(np.int32)


def test_normalize_math_scalar_and_per_channel():
    rng = np.random.default_rng(1)
    x = rng.random((4, 3, 5, 5)).astype(np.float32)
    y = T.Normalize(0.5, 0.25)(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, (x - 0.5) / 0.25, rtol=1e-6)

    mean, std = (0.1, 0.2, 0.3), (0.5, 1.0, 2.0)
    y = T.Normalize(mean, std)(x)
    ref = (x - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    # one image (C, H, W) the same as the batch's first
    np.testing.assert_allclose(T.Normalize(mean, std)(x[0]), ref[0], rtol=1e-6, atol=1e-6)
    # float64 stays float64
    assert T.Normalize(0.5, 0.5)(x.astype(np.float64)).dtype == np.float64


def test_normalize_fashion_constants_standardise_real_pixel_statistics():
    # ToFloat + Normalize(FASHION_MNIST_MEAN, STD) maps a pixel equal to the
    # mean to 0 and mean + std to 1.
    x = np.array([T.FASHION_MNIST_MEAN, T.FASHION_MNIST_MEAN + T.FASHION_MNIST_STD], np.float32)
    np.testing.assert_allclose(T.Normalize(T.FASHION_MNIST_MEAN, T.FASHION_MNIST_STD)(x), [0, 1], atol=1e-6)


def test_normalize_errors():
    with pytest.raises(TypeError, match="put ToFloat"):
        T.Normalize(0.5, 0.5)(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="std must be > 0"):
        T.Normalize(0.5, 0.0)
    with pytest.raises(ValueError, match="mean has 2 values but std has 3"):
        T.Normalize((0.1, 0.2), (1, 1, 1))
    with pytest.raises(ShapeError, match="has 1 channels but mean/std have 3"):
        T.Normalize((0.1, 0.2, 0.3), (1, 1, 1))(np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(ShapeError, match=r"expected one image \(C, H, W\) or a batch"):
        T.Normalize((0.1, 0.2), (1, 1))(np.zeros((4, 4), np.float32))


def test_flatten():
    x = _batch(3, 2, 4, 5)
    assert T.Flatten()(x).shape == (3, 40)
    assert T.Flatten()(x[0]).shape == (40,)
    np.testing.assert_array_equal(T.Flatten()(x)[1], x[1].reshape(-1))


# --------------------------------------------------------------------------
# rank errors


@pytest.mark.parametrize("t", [
    T.Flatten(), T.RandomCrop(4, padding=1, seed=0), T.RandomHorizontalFlip(seed=0),
    T.RandomTranslate(2, seed=0),
])
@pytest.mark.parametrize("shape", [(28, 28), (28,), (2, 1, 1, 28, 28)])
def test_wrong_rank_is_a_shape_error(t, shape):
    with pytest.raises(ShapeError) as e:
        t(np.zeros(shape, np.uint8))
    msg = str(e.value)
    assert type(t).__name__ in msg and str(shape) in msg and "(N, C, H, W)" in msg


# --------------------------------------------------------------------------
# RandomCrop


def _find_window(padded, window):
    """All (top, left) offsets where ``window`` occurs in ``padded`` (C, H, W)."""
    oh, ow = window.shape[-2:]
    hits = []
    for t in range(padded.shape[-2] - oh + 1):
        for l in range(padded.shape[-1] - ow + 1):
            if np.array_equal(padded[:, t:t + oh, l:l + ow], window):
                hits.append((t, l))
    return hits


def test_random_crop_with_padding_is_a_shifted_window():
    x = _batch(32, 2, 6, 7)
    crop = T.RandomCrop((6, 7), padding=2, seed=3)
    y = crop(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for i in range(len(x)):
        hits = _find_window(padded[i], y[i])
        assert hits, f"image {i} is not a window of its padded original"
        offsets.update(hits)
    # several distinct offsets are drawn, all within the padding
    assert len(offsets) > 3
    assert all(0 <= t <= 4 and 0 <= l <= 4 for t, l in offsets)


def test_random_crop_smaller_size_and_fill():
    x = _batch(10, 1, 8, 8)
    y = T.RandomCrop((5, 3), seed=0)(x)
    assert y.shape == (10, 1, 5, 3)
    for i in range(10):
        assert _find_window(x[i], y[i])
    # fill value appears only where the window hangs over the padding
    z = T.RandomCrop(8, padding=8, fill=255, seed=1)(np.zeros((50, 1, 8, 8), np.uint8))
    assert set(np.unique(z)) <= {0, 255} and (z == 255).any()


def test_random_crop_single_image_and_seed_reproducibility():
    x = _batch(16, 1, 10, 10)
    a = T.RandomCrop(10, padding=3, seed=7)(x)
    b = T.RandomCrop(10, padding=3, seed=7)(x)
    c = T.RandomCrop(10, padding=3, seed=8)(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    one = T.RandomCrop(10, padding=3, seed=0)(x[0])
    assert one.shape == (1, 10, 10)
    assert _find_window(np.pad(x[0], ((0, 0), (3, 3), (3, 3))), one)


def test_random_crop_rejects_window_larger_than_padded_image():
    with pytest.raises(ShapeError, match="does not fit"):
        T.RandomCrop(12, padding=1, seed=0)(np.zeros((1, 1, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="size must be >= 1"):
        T.RandomCrop(0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        T.RandomCrop(4, padding=-1)
    with pytest.raises(ValueError, match="pass seed or rng, not both"):
        T.RandomCrop(4, seed=1, rng=np.random.default_rng(1))


# --------------------------------------------------------------------------
# RandomTranslate


def _shift(img, dy, dx):
    """img (C, H, W) moved down by dy and right by dx, zero filled."""
    out = np.zeros_like(img)
    h, w = img.shape[-2:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


@pytest.mark.parametrize("max_shift", [2, (1, 3), 0])
def test_random_translate_shift_bounds(max_shift):
    my, mx = (max_shift, max_shift) if isinstance(max_shift, int) else max_shift
    x = _batch(64, 1, 9, 11)
    y = T.RandomTranslate(max_shift, seed=5)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    seen = set()
    for i in range(len(x)):
        shifts = [(dy, dx) for dy in range(-my, my + 1) for dx in range(-mx, mx + 1)
                  if np.array_equal(_shift(x[i], dy, dx), y[i])]
        assert shifts, f"image {i} is not a translate of at most {max_shift}"
        seen.update(shifts)
    # with 64 images, the extreme shifts are hit in both directions
    assert {dy for dy, _ in seen} == set(range(-my, my + 1))
    assert {dx for _, dx in seen} == set(range(-mx, mx + 1))


def test_random_translate_seeded_single_image():
    x = _batch(1, 1, 9, 9)[0]
    a = T.RandomTranslate(3, seed=2)
    b = T.RandomTranslate(3, seed=2)
    for _ in range(5):
        np.testing.assert_array_equal(a(x), b(x))


# --------------------------------------------------------------------------
# RandomHorizontalFlip


def test_flip_determinism_with_seed_and_content():
    x = _batch(40, 2, 5, 6)
    f1 = T.RandomHorizontalFlip(seed=11)
    f2 = T.RandomHorizontalFlip(seed=11)
    a, b = f1(x), f2(x)
    np.testing.assert_array_equal(a, b)
    flipped = [np.array_equal(a[i], x[i, ..., ::-1]) for i in range(len(x))]
    kept = [np.array_equal(a[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 5 < sum(flipped) < 35                   # about half, both happen
    # the next call continues the stream: a different pattern
    c = f1(x)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(c, f2(x))
    # the input is not modified
    np.testing.assert_array_equal(x, _batch(40, 2, 5, 6))


def test_flip_probability_extremes_and_single_image():
    x = _batch(6, 1, 3, 4)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0, seed=0)(x), x[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0, seed=0)(x), x)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0, seed=0)(x[0]), x[0, ..., ::-1])
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        T.RandomHorizontalFlip(p=1.5)


def test_shared_rng_drives_a_whole_pipeline():
    x = _batch(8, 1, 8, 8)

    def pipe(seed):
        rng = np.random.default_rng(seed)
        return T.Compose([T.RandomCrop(8, padding=2, rng=rng), T.RandomHorizontalFlip(rng=rng)])

    np.testing.assert_array_equal(pipe(4)(x), pipe(4)(x))
    assert not np.array_equal(pipe(4)(x), pipe(5)(x))


# --------------------------------------------------------------------------
# Compose / Lambda / apply_transform / repr


def test_compose_order_and_repr():
    x = np.full((2, 1, 2, 2), 255, np.uint8)
    t = T.Compose([T.ToFloat(), T.Normalize(0.5, 0.5), T.Flatten()])
    y = t(x)
    assert y.shape == (2, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y, 1.0)
    assert t.supports_batch
    r = repr(t)
    assert r.startswith("Compose([\n") and r.endswith("])")
    assert "ToFloat()" in r and "Normalize(mean=(0.5,), std=(0.5,))" in r and "Flatten()" in r
    assert repr(T.Compose([])) == "Compose([])"
    assert repr(T.RandomCrop(28, padding=4, seed=1)) == "RandomCrop(size=(28, 28), padding=(4, 4), fill=0, seed=1)"
    assert repr(T.RandomHorizontalFlip(seed=2)) == "RandomHorizontalFlip(p=0.5, seed=2)"
    assert repr(T.RandomTranslate((1, 2))) == "RandomTranslate(max_shift=(1, 2), fill=0, seed=None)"
    with pytest.raises(TypeError, match="is not callable"):
        T.Compose([T.ToFloat(), 3])


def test_lambda_and_apply_transform_per_image_fallback():
    calls = []

    def per_image(img):
        assert img.ndim == 3
        calls.append(1)
        return img * 2

    x = np.ones((5, 1, 2, 2), np.float32)
    y = apply_transform(per_image, x, batched=True)
    assert y.shape == x.shape and len(calls) == 5
    np.testing.assert_array_equal(y, 2)
    lam = T.Lambda(lambda a: a + 1, batched=True)
    assert lam.supports_batch and "batched=True" in repr(lam)
    np.testing.assert_array_equal(apply_transform(lam, x, batched=True), 2)
    # Compose with a per-image member is not batch-capable
    comp = T.Compose([T.ToFloat(), T.Lambda(per_image)])
    assert not comp.supports_batch
    calls.clear()
    apply_transform(comp, x, batched=True)
    assert len(calls) == 5
    assert apply_transform(None, x, batched=True) is x


# --------------------------------------------------------------------------
# Resizing: the same bits from planar and pixel-interleaved memory


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "lanczos", "box", "hamming", "nearest"])
def test_resize_gives_the_same_bits_from_planar_and_interleaved_memory(interpolation):
    """The image cache's rows are planar (C, H, W); decoded photos are (H, W, C) memory. The planar
    path resizes band by band as "L" images, the interleaved one as one "RGB" image: equal bits."""
    rng = np.random.default_rng(3)
    smooth = np.cumsum(rng.integers(-9, 10, (3, 61, 83)), axis=2)
    planar = np.clip(128 + smooth, 0, 255).astype(np.uint8)
    interleaved = np.ascontiguousarray(planar.transpose(1, 2, 0)).transpose(2, 0, 1)
    assert planar.flags.c_contiguous and interleaved.transpose(1, 2, 0).flags.c_contiguous
    for size in (29, (70, 100), 150):
        a = T.Resize(size, interpolation=interpolation)(planar)
        b = T.Resize(size, interpolation=interpolation)(interleaved)
        assert a.flags.c_contiguous and b.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    for k in range(5):
        crop = T.RandomResizedCrop(48, interpolation=interpolation)
        a = crop(planar, rng=np.random.default_rng(k))
        b = crop(interleaved, rng=np.random.default_rng(k))
        np.testing.assert_array_equal(a, b)
