"""Photo transforms without torchvision: the per-sample rng contract, Compose passing it
through, batches against images one by one, edge sizes, C = 1 and 3, PCALighting's
formula, and the errors (parity with torchvision: test_transforms_photo.py)."""
import numpy as np
import pytest

from glassnet.data import transforms as T
from glassnet.data.sample_rng import sample_rng
from glassnet.errors import GlassnetError, InvalidArgumentError, InvalidTypeError, ShapeError
from tests.torch_oracle import require_module

require_module("PIL", "image")


def photos(n=4, c=3, h=37, w=45, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8)


def gens(n, epoch=0, seed=0):
    return [sample_rng(seed, epoch, i) for i in range(n)]


RANDOM = {   # name: (transform, float input?)
    "RandomCrop": (lambda: T.RandomCrop(30, padding=3), False),
    "RandomTranslate": (lambda: T.RandomTranslate(4), False),
    "RandomHorizontalFlip": (lambda: T.RandomHorizontalFlip(), False),
    "RandomResizedCrop": (lambda: T.RandomResizedCrop(24), False),
    "ColorJitter": (lambda: T.ColorJitter(0.4, 0.4, 0.4, 0.1), False),
    "PCALighting": (lambda: T.PCALighting(0.1), True),
    "Compose": (lambda: T.Compose([T.RandomResizedCrop(24, scale=(0.3, 1)), T.RandomHorizontalFlip(),
                                   T.ColorJitter(0.3, 0.3, 0.3, 0.05), T.ToFloat(), T.PCALighting(),
                                   T.Normalize(T.IMAGENET_MEAN, T.IMAGENET_STD)]), False),
}


def _input(float_input, c=3, n=4):
    x = photos(n, c)
    return T.ToFloat()(x) if float_input else x


@pytest.mark.parametrize("name, c", [(n, c) for n in sorted(RANDOM) for c in (1, 3)
                                     if c == 3 or n not in ("PCALighting", "Compose")])
def test_same_seed_epoch_index_gives_the_same_sample(name, c):
    make, float_input = RANDOM[name]
    x = _input(float_input, c)[0]
    a = make()(x, rng=sample_rng(5, 3, 11))
    b = make()(x, rng=sample_rng(5, 3, 11))          # another instance, same (seed, epoch, index)
    np.testing.assert_array_equal(a, b)
    others = [make()(x, rng=sample_rng(5, e, i)) for e, i in [(3, 12), (4, 11), (0, 0), (9, 9), (1, 2)]]
    assert any(o.shape != a.shape or not np.array_equal(o, a) for o in others)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_a_call_with_rng_leaves_the_transforms_own_generator_alone(name):
    make, float_input = RANDOM[name]
    x = _input(float_input)[0]
    t, fresh = make(), make()
    for member in getattr(t, "transforms", [t]) + getattr(fresh, "transforms", [fresh]):
        if hasattr(member, "rng"):
            member.rng = np.random.default_rng(42)
    t(x, rng=sample_rng(0, 0, 1))
    np.testing.assert_array_equal(t(x), fresh(x))    # the own stream did not move


def test_compose_passes_one_generator_to_each_member_in_turn():
    x = photos(1)[0]
    rrc, flip, jit = T.RandomResizedCrop(20), T.RandomHorizontalFlip(), T.ColorJitter(0.5, 0.5, 0.5, 0.2)
    seen = []

    def with_rng(img, rng):
        seen.append(rng)
        return img

    got = T.Compose([rrc, flip, T.Lambda(with_rng), jit, lambda img: img + 0])(x, rng=sample_rng(1, 2, 3))
    g = sample_rng(1, 2, 3)
    want = jit(flip(rrc(x, rng=g), rng=g), rng=g)
    np.testing.assert_array_equal(got, want)
    assert len(seen) == 1 and isinstance(seen[0], np.random.Generator)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_batch_with_one_generator_per_image_equals_images_one_by_one(name):
    make, float_input = RANDOM[name]
    x = _input(float_input, n=5)
    t = make()
    got = t(x, rng=gens(5, epoch=2))
    want = np.stack([t(xi, rng=g) for xi, g in zip(x, gens(5, epoch=2))])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("make", [lambda: T.RandomResizedCrop(16), lambda: T.ColorJitter(0.5, 0.5, 0.5, 0.3),
                                  lambda: T.PCALighting(0.2)])
def test_per_image_transforms_draw_a_batch_image_after_image_from_one_generator(make):
    t = make()
    x = photos(4)
    if isinstance(t, T.PCALighting):
        x = T.ToFloat()(x)
    got = t(x, rng=sample_rng(0, 0, 9))
    g = sample_rng(0, 0, 9)
    np.testing.assert_array_equal(got, np.stack([t(xi, rng=g) for xi in x]))


@pytest.mark.parametrize("t", [T.Resize(20), T.Resize((11, 30), interpolation="bicubic"), T.CenterCrop(21),
                               T.CenterCrop((50, 10)), T.FiveCrop(12), T.TenCrop((9, 13), vertical_flip=True),
                               T.ToFloat(), T.RandomHorizontalFlip(p=1.0)], ids=repr)
@pytest.mark.parametrize("c", [1, 3])
def test_deterministic_batch_equals_images_one_by_one(t, c):
    x = photos(3, c)
    np.testing.assert_array_equal(t(x), np.stack([t(xi) for xi in x]))


def test_apply_transform_maps_per_image_callables_with_their_generators():
    x = photos(3)
    seen = []

    def per_image(img, rng):
        seen.append(rng.integers(1000))
        return img

    T.apply_transform(per_image, x, batched=True, rng=gens(3))
    assert seen == [g.integers(1000) for g in gens(3)]
    rrc = T.RandomResizedCrop(10)
    np.testing.assert_array_equal(T.apply_transform(rrc, x[0], batched=False, rng=sample_rng(0, 0, 0)),
                                  rrc(x[0], rng=sample_rng(0, 0, 0)))


def _layout(base, layout):
    """``base`` (C, H, W) with the same values in another memory layout."""
    if layout == "hwc_view":         # what np.asarray(pil).transpose(2, 0, 1) gives
        return np.ascontiguousarray(base.transpose(1, 2, 0)).transpose(2, 0, 1)
    if layout == "strided":
        return np.repeat(base, 2, axis=2)[:, :, ::2]
    if layout == "negative":
        return np.ascontiguousarray(base[:, ::-1])[:, ::-1]
    if layout == "fortran":
        return np.asfortranarray(base)
    return base


@pytest.mark.parametrize("layout", ["hwc_view", "strided", "negative", "fortran"])
@pytest.mark.parametrize("c", [1, 2, 3])
def test_every_memory_layout_gives_the_same_pixels(layout, c):
    base = photos(1, c, 41, 57)[0]
    x = _layout(base, layout)
    np.testing.assert_array_equal(x, base)
    ts = [T.Resize(23), T.Resize((13, 77), interpolation="bicubic"), T.RandomResizedCrop(19), T.CenterCrop(30),
          T.FiveCrop(9), T.RandomHorizontalFlip(p=1.0)]
    if c != 2:
        ts.append(T.ColorJitter(0.5, 0.5, 0.5, 0.4))
    for t in ts:
        got, want = t(x, rng=sample_rng(0, 0, 1)), t(base, rng=sample_rng(0, 0, 1))
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable
        if isinstance(t, (T.Resize, T.RandomResizedCrop, T.CenterCrop)):
            assert got.flags.c_contiguous
    # any channel count resizes band by band: the same as each channel alone
    out = T.Resize(23)(x)
    for k in range(c):
        np.testing.assert_array_equal(out[k:k + 1], T.Resize(23)(base[k:k + 1]))


# --------------------------------------------------------------------------- edge sizes


@pytest.mark.parametrize("c", [1, 3])
def test_one_pixel_images(c):
    x = photos(1, c, 1, 1)[0]
    assert T.Resize(5)(x).shape == (c, 5, 5) and (T.Resize(5)(x) == x).all()
    assert T.RandomResizedCrop(7)(x, rng=sample_rng(0, 0, 0)).shape == (c, 7, 7)
    y = T.CenterCrop(3)(x)
    assert y.shape == (c, 3, 3) and (y[:, 1, 1] == x[:, 0, 0]).all() and y.sum() == x.sum()
    assert T.ColorJitter(0.5, 0.5, 0.5, 0.5)(x, rng=sample_rng(0, 0, 0)).shape == (c, 1, 1)
    np.testing.assert_array_equal(T.TenCrop(1)(x), np.broadcast_to(x, (10, c, 1, 1)))


def test_crops_equal_to_the_image():
    x = photos(1, 3, 20, 30)[0]
    np.testing.assert_array_equal(T.FiveCrop((20, 30))(x), np.broadcast_to(x, (5, 3, 20, 30)))
    np.testing.assert_array_equal(T.CenterCrop((20, 30))(x), x)
    assert T.Resize((20, 30))(x) is x
    # scale 1 and the image's own ratio: the box is the whole image, then resized
    rrc = T.RandomResizedCrop((10, 15), scale=(1.0, 1.0), ratio=(1.5, 1.5))
    assert rrc.get_params(x, rrc.scale, rrc.ratio, sample_rng(0, 0, 0)) == (0, 0, 20, 30)
    np.testing.assert_array_equal(rrc(x, rng=sample_rng(0, 0, 0)), T.Resize((10, 15))(x))


@pytest.mark.parametrize("h, w", [(1, 300), (300, 1), (2, 500)])
def test_extreme_aspect_ratios_fall_back_to_the_clamped_centre_box(h, w):
    x = photos(1, 3, h, w)[0]
    rrc = T.RandomResizedCrop(8)
    box = rrc.get_params(x, rrc.scale, rrc.ratio, sample_rng(0, 0, 0))
    fh, fw = (h, round(h * 4 / 3)) if w > h else (round(w * 4 / 3), w)
    assert box == ((h - fh) // 2, (w - fw) // 2, fh, fw)
    assert rrc(x, rng=sample_rng(0, 0, 1)).shape == (3, 8, 8)


def test_resize_output_sizes_follow_torchvision_rounding():
    from glassnet.data.transforms.resize import output_size

    assert output_size((375, 500), 224) == (224, 298)          # int(224 * 500 / 375) = int(298.67)
    assert output_size((500, 375), 224) == (298, 224)
    assert output_size((375, 500), 256, max_size=300) == (225, 300)
    assert output_size((7, 7), 3) == (3, 3) and output_size((10, 20), (4, 5)) == (4, 5)
    assert T.Resize(224)(photos(1, 1, 375, 500)[0]).shape == (1, 224, 298)


def test_interpolation_names_modes_and_antialias():
    class Mode:            # torchvision's InterpolationMode is an Enum whose value is the name
        value = "bicubic"

    assert T.Resize(8, interpolation=Mode()).interpolation == "bicubic"
    assert T.Resize(8, interpolation=2).interpolation == "bilinear"   # Pillow's constant
    with pytest.warns(UserWarning, match="antialias=False is ignored"):
        T.Resize(8, antialias=False)


# --------------------------------------------------------------------------- PCALighting / ColorJitter


def test_pca_lighting_adds_eigvec_times_alpha_eigval_to_every_pixel():
    x = T.ToFloat(np.float64)(photos(1)[0])
    y = T.PCALighting(0.1)(x, rng=sample_rng(0, 0, 4))
    alpha = sample_rng(0, 0, 4).normal(0, 0.1, 3)
    ev, vec = np.array(T.IMAGENET_PCA_EIGVAL), np.array(T.IMAGENET_PCA_EIGVEC)
    rgb = [sum(vec[i, j] * alpha[j] * ev[j] for j in range(3)) for i in range(3)]   # fb.resnet.torch's loop
    assert y.dtype == np.float64
    np.testing.assert_allclose(y - x, np.broadcast_to(np.array(rgb)[:, None, None], x.shape), atol=1e-12)
    assert T.PCALighting(0)(x) is x
    # the shifts' covariance is eigvec diag((alphastd * eigval)^2) eigvec^T
    shifts = T.PCALighting(0.1).shift(sample_rng(0, 0, 0).normal(0, 0.1, (20000, 3)))
    want = vec @ np.diag((0.1 * ev) ** 2) @ vec.T
    np.testing.assert_allclose(np.cov(shifts.T), want, atol=0.05 * want.max())


def test_color_jitter_parameter_ranges_and_order():
    cj = T.ColorJitter(brightness=0.4, contrast=(0.5, 0.9), saturation=0, hue=0.1)
    assert cj.brightness == (0.6, 1.4) and cj.contrast == (0.5, 0.9) and cj.saturation is None
    assert cj.hue == (-0.1, 0.1) and T.ColorJitter(brightness=2).brightness == (0.0, 3.0)
    orders = set()
    for i in range(200):
        order, b, c, s, h = cj.get_params(cj.brightness, cj.contrast, cj.saturation, cj.hue, sample_rng(0, 0, i))
        orders.add(tuple(order))
        assert 0.6 <= b <= 1.4 and 0.5 <= c <= 0.9 and s is None and -0.1 <= h <= 0.1
    assert len(orders) == 24
    x = photos(1)[0]
    np.testing.assert_array_equal(T.ColorJitter()(x), x)
    assert "brightness=(0.6, 1.4)" in repr(cj)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, exc, words", [
    (lambda: T.Resize(8)(np.zeros((3, 9, 9), np.float32)), InvalidTypeError, ["Resize", "uint8", "ToFloat"]),
    (lambda: T.RandomResizedCrop(8)(np.zeros((9, 9), np.uint8)), ShapeError, ["RandomResizedCrop", "(9, 9)"]),
    (lambda: T.Resize(8)(np.zeros((3, 0, 9), np.uint8)), ShapeError, ["Resize", "empty"]),
    (lambda: T.FiveCrop(10)(np.zeros((3, 9, 12), np.uint8)), ShapeError, ["FiveCrop", "10x10", "9x12"]),
    (lambda: T.TenCrop(3)(np.zeros((9, 9), np.uint8)), ShapeError, ["TenCrop", "(N, C, H, W)"]),
    (lambda: T.CenterCrop(3)(np.zeros((2, 1, 1, 9, 9), np.uint8)), ShapeError, ["CenterCrop", "(N, C, H, W)"]),
    (lambda: T.ColorJitter(hue=0.6), InvalidArgumentError, ["ColorJitter", "hue", "0.5"]),
    (lambda: T.ColorJitter(brightness=-1), InvalidArgumentError, ["brightness", "non-negative"]),
    (lambda: T.ColorJitter(contrast="x"), InvalidTypeError, ["contrast"]),
    (lambda: T.ColorJitter(0.1)(np.zeros((4, 5, 5), np.uint8)), ShapeError, ["ColorJitter", "3 (RGB)"]),
    (lambda: T.ColorJitter(0.1)(np.zeros((3, 5, 5), np.float32)), InvalidTypeError, ["ColorJitter", "uint8"]),
    (lambda: T.PCALighting()(np.zeros((3, 5, 5), np.uint8)), InvalidTypeError, ["PCALighting", "ToFloat"]),
    (lambda: T.PCALighting()(np.zeros((1, 5, 5), np.float32)), ShapeError, ["PCALighting", "3 channels"]),
    (lambda: T.PCALighting(eigval=(1, 2)), ShapeError, ["eigval"]),
    (lambda: T.RandomResizedCrop(8, scale=(1.0, 0.5)), InvalidArgumentError, ["scale", "min <= max"]),
    (lambda: T.RandomResizedCrop(8, ratio=(0, 1)), InvalidArgumentError, ["ratio", "> 0"]),
    (lambda: T.RandomResizedCrop(0), InvalidArgumentError, ["size must be >= 1"]),
    (lambda: T.Resize(8, interpolation="cubic"), InvalidArgumentError, ["interpolation", "bilinear"]),
    (lambda: T.Resize(8, max_size=8), InvalidArgumentError, ["max_size"]),
    (lambda: T.RandomHorizontalFlip()(photos(3), rng=gens(2)), InvalidArgumentError, ["2 generators", "batch of 3"]),
    (lambda: T.RandomResizedCrop(8)(photos(1)[0], rng=gens(1)), InvalidArgumentError, ["one image"]),
    (lambda: T.RandomCrop(8)(photos(1)[0], rng=3), InvalidTypeError, ["RandomCrop", "Generator"]),
])
def test_errors_name_the_transform_and_the_rule(call, exc, words):
    with pytest.raises(exc) as e:
        call()
    assert isinstance(e.value, GlassnetError)
    for word in words:
        assert word in str(e.value), (word, str(e.value))
