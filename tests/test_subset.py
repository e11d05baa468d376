"""Subset: torch.utils.data.Subset's semantics (len, [], .dataset, .indices), and the access paths of
its dataset carried over -- a subset of a per-sample-RNG dataset is read sample by sample with the
generator of its own positions, so epochs differ, workers and samplers give the batches of
num_workers=0."""
import numpy as np
import pytest

from glassnet.data import ArrayDataset, DataLoader, Subset, random_split
from glassnet.data.collate import load_batch
from glassnet.data.sample_rng import sample_rng
from glassnet.distributed import DistributedSampler
from glassnet.errors import IndexOutOfRangeError


class Drawn:
    """get_item(i, rng): a sample that depends on i and on the generator (a random augmentation)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def get_item(self, i, rng):
        return np.full(4, float(i)) + rng.random(4), int(i) % 3

    def __getitem__(self, i):
        return self.get_item(i, sample_rng(0, 0, i))


def test_torch_semantics():
    base = ArrayDataset(np.arange(20).reshape(10, 2), np.arange(10) * 7)
    idx = [7, 2, -1, 2]
    sub = Subset(base, idx)
    assert sub.dataset is base and len(sub) == 4
    assert sub.indices.dtype == np.int64 and sub.indices.tolist() == idx
    for i, j in enumerate(idx):
        np.testing.assert_array_equal(sub[i][0], base[j][0])
        assert sub[i][1] == base[j][1]
    np.testing.assert_array_equal(sub[-1][0], base[2][0])
    with pytest.raises(IndexOutOfRangeError, match="Subset: index 4 is out of range"):
        sub[4]
    with pytest.raises(IndexOutOfRangeError, match="index 10"):
        Subset(base, [10])
    nested = Subset(sub, [3, 0])
    np.testing.assert_array_equal(nested[1][0], base[7][0])
    assert sub.get_item is None                                        # the dataset has none
    x, y = DataLoader(sub, batch_size=4).__iter__().__next__()
    assert DataLoader(sub).uses_get_batch and y.tolist() == [49, 14, 63, 14]
    np.testing.assert_array_equal(x, base.x[[7, 2, -1, 2]])


def test_per_sample_rng_carries_over():
    base = Drawn(30)
    sub = Subset(base, np.arange(29, -1, -3))
    assert callable(sub.get_item) and DataLoader(sub).uses_get_item
    x, y = sub.get_item(2, sample_rng(4, 1, 2))
    ref, ref_y = base.get_item(23, sample_rng(4, 1, 2))
    np.testing.assert_array_equal(x, ref)
    assert y == ref_y
    np.testing.assert_array_equal(sub[2][0], base[23][0])              # [] is the dataset's []
    nested = Subset(sub, [2])
    np.testing.assert_array_equal(nested.get_item(0, sample_rng(1, 0, 0))[0],
                                  base.get_item(23, sample_rng(1, 0, 0))[0])
    loader = DataLoader(sub, batch_size=4, seed=4)
    e0, e1 = [x for x, _ in loader], [x for x, _ in loader]
    assert not np.array_equal(e0[0], e1[0])                            # a fresh draw each epoch
    for e, batches in enumerate((e0, e1)):
        flat = np.concatenate(batches)
        want = np.stack([base.get_item(int(j), sample_rng(4, e, i))[0] for i, j in enumerate(sub.indices)])
        np.testing.assert_array_equal(flat, want)


def test_workers_and_samplers_give_the_serial_batches():
    sub = random_split(Drawn(40), [25, 15], seed=3)[0]
    sampler = DistributedSampler(sub, num_replicas=2, rank=1, seed=5)
    for kwargs in ({"shuffle": True}, {"sampler": sampler}, {"sampler": [3, 3, 0, 24, 7]}):
        serial = [(x.copy(), y.copy()) for x, y in DataLoader(sub, batch_size=4, seed=9, **kwargs)]
        with DataLoader(sub, batch_size=4, seed=9, num_workers=2, **kwargs) as loader:
            workers = [(x.copy(), y.copy()) for x, y in loader]
        assert len(serial) == len(workers) > 1
        for (xa, ya), (xb, yb) in zip(serial, workers):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    order = DataLoader(sub, batch_size=4, seed=9, sampler=sampler).order(0)
    np.testing.assert_array_equal(load_batch(sub, order[:4], 9, 0)[0],
                                  np.stack([sub.get_item(int(i), sample_rng(9, 0, int(i)))[0] for i in order[:4]]))
