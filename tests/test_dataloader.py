"""DataLoader: lengths, coverage of every index, seeded epochs, batch dtypes,
transforms applied on the fly; ArrayDataset, Subset and random_split."""
import numpy as np
import pytest

from glassnet.data import ArrayDataset, DataLoader, Subset, fetch_batch, random_split
from glassnet.data import transforms as T
from glassnet.errors import ShapeError


def _images(n=23, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)
    # tag each image with its index so batches can be traced back
    x[:, 0, 0, 0] = np.arange(n) % 256
    y = rng.integers(0, 10, size=n).astype(np.uint8)
    return x, y


def _ds(n=23, **kw):
    x, y = _images(n)
    return ArrayDataset(x, y, transform=kw.pop("transform", T.ToFloat()), **kw)


class PerSample:
    """A dataset with only __getitem__/__len__ (no batch protocol)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((1, 2, 2), i, np.float32), i % 3


@pytest.mark.parametrize("n, b, drop, expect", [
    (23, 5, False, 5), (23, 5, True, 4), (20, 5, False, 4), (20, 5, True, 4),
    (3, 5, False, 1), (3, 5, True, 0), (0, 4, False, 0),
])
def test_len_with_and_without_drop_last(n, b, drop, expect):
    ds = ArrayDataset(np.zeros((n, 1, 2, 2), np.float32), np.zeros(n, np.int64))
    loader = DataLoader(ds, batch_size=b, drop_last=drop, shuffle=True, seed=0)
    assert len(loader) == expect
    batches = list(loader)
    assert len(batches) == expect
    sizes = [len(xb) for xb, _ in batches]
    if expect:
        assert all(s == b for s in sizes[:-1])
        assert sizes[-1] == (b if drop or n % b == 0 else n % b)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_every_index_exactly_once_per_epoch(shuffle, drop_last):
    n, b = 23, 4
    ds = _ds(n)
    loader = DataLoader(ds, batch_size=b, shuffle=shuffle, drop_last=drop_last, seed=3)
    for _ in range(3):
        seen = np.concatenate([np.rint(xb[:, 0, 0, 0] * 255).astype(int) for xb, _ in loader])
        if drop_last:
            assert len(seen) == (n // b) * b and len(set(seen.tolist())) == len(seen)
        else:
            assert sorted(seen.tolist()) == list(range(n))
        if not shuffle:
            assert seen.tolist() == list(range(len(seen)))


def test_batch_dtypes_shapes_and_values():
    x, y = _images(10)
    loader = DataLoader(ArrayDataset(x, y, transform=T.ToFloat()), batch_size=4)
    xb, yb = next(iter(loader))
    assert xb.dtype == np.float32 and xb.shape == (4, 1, 28, 28)
    assert yb.dtype == np.int64 and yb.shape == (4,)
    assert 0.0 <= xb.min() and xb.max() <= 1.0
    np.testing.assert_allclose(xb, x[:4] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(yb, y[:4])


def test_seed_reproducibility_and_epochs_differ():
    ds = _ds(50)

    def orders(loader, epochs):
        return [np.concatenate([np.rint(xb[:, 0, 0, 0] * 255).astype(int) for xb, _ in loader])
                for _ in range(epochs)]

    a = orders(DataLoader(ds, batch_size=8, shuffle=True, seed=42), 3)
    b = orders(DataLoader(ds, batch_size=8, shuffle=True, seed=42), 3)
    c = orders(DataLoader(ds, batch_size=8, shuffle=True, seed=43), 3)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], np.arange(50))


def test_set_epoch_replays_an_epoch():
    ds = _ds(30)
    loader = DataLoader(ds, batch_size=7, shuffle=True, seed=9)
    first = [loader.order() for _ in range(1)]
    runs = []
    for _ in range(3):
        runs.append(np.concatenate([yb for _, yb in loader]))
    assert loader.epoch == 3
    np.testing.assert_array_equal(first[0], loader.order(0))
    resumed = DataLoader(ds, batch_size=7, shuffle=True, seed=9)
    resumed.set_epoch(2)
    assert resumed.epoch == 2
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in resumed]), runs[2])
    assert resumed.epoch == 3
    # iter() claims the epoch at once: two live iterators are two epochs
    it1, it2 = iter(loader), iter(loader)
    assert loader.epoch == 5
    np.testing.assert_array_equal(np.concatenate([y for _, y in it1]),
                                  ds.y[loader.order(3)])
    np.testing.assert_array_equal(np.concatenate([y for _, y in it2]),
                                  ds.y[loader.order(4)])


def test_unseeded_loader_records_its_seed():
    ds = _ds(20)
    a = DataLoader(ds, batch_size=5, shuffle=True)
    b = DataLoader(ds, batch_size=5, shuffle=True, seed=a.seed)
    np.testing.assert_array_equal(a.order(0), b.order(0))
    assert f"seed={a.seed}" in repr(a)


def test_transform_applied_on_the_fly():
    x, y = _images(16)
    tf = T.Compose([T.RandomHorizontalFlip(p=1.0, seed=0), T.ToFloat(), T.Normalize(0.5, 0.5)])
    loader = DataLoader(ArrayDataset(x, y, transform=tf), batch_size=8)
    xb, yb = next(iter(loader))
    assert xb.dtype == np.float32 and xb.shape == (8, 1, 28, 28)
    np.testing.assert_allclose(xb, (x[:8, ..., ::-1] / 255.0 - 0.5) / 0.5, rtol=1e-5, atol=1e-6)
    # random augmentation differs between epochs, is reproducible by seed
    aug = lambda s: DataLoader(ArrayDataset(x, y, transform=T.Compose([
        T.RandomCrop(28, padding=4, seed=s), T.ToFloat()])), batch_size=16)
    l1, l2 = aug(1), aug(1)
    e1, e2 = next(iter(l1))[0], next(iter(l1))[0]
    assert not np.array_equal(e1, e2)
    np.testing.assert_array_equal(e1, next(iter(l2))[0])
    assert e1.shape == (16, 1, 28, 28)


def test_per_sample_dataset_without_get_batch():
    loader = DataLoader(PerSample(7), batch_size=3, shuffle=True, seed=0)
    assert not loader.uses_get_batch
    xs, ys = zip(*loader)
    assert [len(v) for v in ys] == [3, 3, 1]
    allx = np.concatenate(xs)
    assert allx.shape == (7, 1, 2, 2) and allx.dtype == np.float32
    assert sorted(allx[:, 0, 0, 0].astype(int).tolist()) == list(range(7))
    y = np.concatenate(ys)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, allx[:, 0, 0, 0].astype(int) % 3)
    assert DataLoader(_ds(4)).uses_get_batch


class RngItems:
    """The per-sample RNG contract: get_item(index, rng)."""

    def __len__(self):
        return 10

    def get_item(self, i, rng):
        return rng.integers(0, 1000, (2,)), i

    def get_batch(self, indices):  # never used when get_item exists
        raise AssertionError("get_batch called")


def test_get_item_datasets_draw_from_sample_rng():
    from glassnet.data.sample_rng import sample_rng

    loader = DataLoader(RngItems(), batch_size=4, shuffle=True, seed=12)
    assert loader.uses_get_item and not loader.uses_get_batch
    for e in range(2):
        order = loader.order(e)
        xs, ys = zip(*loader)
        np.testing.assert_array_equal(np.concatenate(ys), order)
        want = np.stack([sample_rng(12, e, i).integers(0, 1000, (2,)) for i in order])
        np.testing.assert_array_equal(np.concatenate(xs), want)
        assert xs[0].shape == (4, 2) and ys[0].dtype == np.int64
    assert [len(y) for _, y in loader.iter_epoch(1, start_batch=1)] == [4, 2]
    np.testing.assert_array_equal(np.concatenate([y for _, y in loader.iter_epoch(1, start_batch=1)]),
                                  loader.order(1)[4:])
    assert loader.epoch == 2
    with loader.iter_epoch(0) as it:
        next(it)


@pytest.mark.parametrize("kw, match", [
    (dict(batch_size=0), "batch_size must be a positive int"),
    (dict(batch_size=2.5), "batch_size must be a positive int"),
    (dict(batch_size=True), "batch_size must be a positive int"),
    (dict(seed=-1), "seed must be a non-negative int"),
    (dict(seed=1.5), "seed must be a non-negative int"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(_ds(4), **kw)
    with pytest.raises(ValueError, match="epoch must be a non-negative int"):
        DataLoader(_ds(4)).set_epoch(-1)


# --------------------------------------------------------------------------
# ArrayDataset / Subset / random_split / fetch_batch


def test_array_dataset_items_and_batches():
    x, y = _images(6)
    ds = ArrayDataset(x, y)
    assert len(ds) == 6 and ds.y.dtype == np.int64
    xi, yi = ds[-1]
    np.testing.assert_array_equal(xi, x[5])
    assert yi == int(y[5]) and isinstance(yi, int)
    xb, yb = ds.get_batch([0, 2])
    np.testing.assert_array_equal(xb, x[[0, 2]])
    assert yb.dtype == np.int64
    with pytest.raises(IndexError, match="index 6 is out of range for a dataset of 6"):
        ds[6]
    with pytest.raises(IndexError, match="out of range"):
        ds.get_batch([0, 9])
    with pytest.raises(TypeError, match="index must be an integer"):
        ds[1.5]
    with pytest.raises(ShapeError, match="x has 6 samples .* but y has 5"):
        ArrayDataset(x, y[:5])
    ds2 = ArrayDataset(x, y, target_transform=lambda v: v + 100)
    assert ds2[0][1] == int(y[0]) + 100
    np.testing.assert_array_equal(ds2.get_batch([0, 1])[1], y[:2].astype(int) + 100)


def test_subset_maps_indices():
    ds = _ds(10)
    sub = Subset(ds, [7, 2, 5])
    assert len(sub) == 3
    np.testing.assert_array_equal(sub[0][0], ds[7][0])
    xb, yb = sub.get_batch([2, 0])
    np.testing.assert_array_equal(yb, ds.y[[5, 7]])
    np.testing.assert_array_equal(fetch_batch(sub, [1])[1], ds.y[[2]])
    with pytest.raises(IndexError):
        Subset(ds, [10])
    # a Subset of a per-sample dataset goes through __getitem__
    ps = Subset(PerSample(5), [4, 1])
    np.testing.assert_array_equal(ps.get_batch([0, 1])[1], [4 % 3, 1 % 3])


def test_random_split_counts_fractions_and_seed():
    ds = _ds(103)
    a, b = random_split(ds, [93, 10], seed=0)
    assert (len(a), len(b)) == (93, 10)
    assert set(a.indices.tolist()).isdisjoint(b.indices.tolist())
    assert sorted(np.concatenate([a.indices, b.indices]).tolist()) == list(range(103))
    a2, b2 = random_split(ds, [93, 10], seed=0)
    np.testing.assert_array_equal(b.indices, b2.indices)
    _, b3 = random_split(ds, [93, 10], seed=1)
    assert not np.array_equal(b.indices, b3.indices)
    parts = random_split(ds, [0.8, 0.1, 0.1], seed=0)
    assert [len(p) for p in parts] == [83, 10, 10]       # 82+1, 10, 10 (remainder to the first)
    with pytest.raises(ValueError, match="sum to the dataset size 103"):
        random_split(ds, [90, 10])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.4])
    # a validation split drives its own loader
    val_loader = DataLoader(b, batch_size=4)
    assert len(val_loader) == 3
    assert sum(len(yb) for _, yb in val_loader) == 10
