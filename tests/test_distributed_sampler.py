"""DistributedSampler against torch.utils.data.DistributedSampler, index list for index list."""
import numpy as np
import pytest

import glassnet.distributed as dist
from glassnet.errors import InvalidArgumentError
from tests.torch_oracle import require_torch


@pytest.mark.parametrize("n, replicas, shuffle, drop_last, seed", [
    (10, 2, True, False, 0), (11, 3, True, False, 7), (11, 3, True, True, 7), (11, 3, False, False, 0),
    (11, 3, False, True, 0), (2, 4, True, False, 1), (1000, 4, True, False, 2 ** 32 + 5), (97, 8, True, True, 3),
])
def test_sampler_index_lists_equal_torch(n, replicas, shuffle, drop_last, seed):
    torch = require_torch()
    from torch.utils.data import DistributedSampler as TorchSampler

    for rank in range(replicas):
        ours = dist.DistributedSampler(list(range(n)), replicas, rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        theirs = TorchSampler(list(range(n)), replicas, rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        for epoch in (0, 1, 5):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)
            assert len(ours) == len(theirs)
    assert torch.__version__


def test_sampler_arguments():
    with pytest.raises(InvalidArgumentError, match="invalid rank 2"):
        dist.DistributedSampler(10, num_replicas=2, rank=2)
    with pytest.raises(InvalidArgumentError, match="epoch"):
        dist.DistributedSampler(10, 2, 0).set_epoch(-1)
    s = dist.DistributedSampler(10)  # world of one: every index
    assert s.num_replicas == 1 and sorted(s) == list(range(10))




def _dataset(n=23):
    from glassnet.data import ArrayDataset
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return ArrayDataset(x, np.arange(n, dtype=np.int64))


def test_dataloader_sampler_visits_the_shard_and_follows_the_loader_epoch():
    from glassnet.data import DataLoader

    data = _dataset()
    for rank in range(3):
        sampler = dist.DistributedSampler(data, num_replicas=3, rank=rank, shuffle=True, seed=4)
        loader = DataLoader(data, batch_size=3, seed=9, sampler=sampler)
        assert len(loader) == 3  # ceil(ceil(23 / 3) / 3)
        for epoch in (0, 1):
            loader.set_epoch(epoch)
            assert sampler.epoch == epoch
            ys = np.concatenate([y for _, y in loader])
            assert ys.tolist() == sampler.indices(epoch).tolist()
        # iter_epoch(e, start) is the same shard from its batch `start`
        assert np.concatenate([y for _, y in loader.iter_epoch(1, 1)]).tolist() == sampler.indices(1)[3:].tolist()


def test_dataloader_sampler_with_workers_equals_in_process():
    from glassnet.data import DataLoader

    data = _dataset(40)
    sampler = dist.DistributedSampler(data, num_replicas=2, rank=1, shuffle=True, seed=1)
    a = DataLoader(data, batch_size=4, seed=2, sampler=sampler)
    b = DataLoader(data, batch_size=4, seed=2, sampler=sampler, num_workers=2)
    for (xa, ya), (xb, yb) in zip(a.iter_epoch(3), b.iter_epoch(3)):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


def test_dataloader_sampler_arguments_and_plain_iterables():
    from glassnet.data import DataLoader

    data = _dataset(6)
    with pytest.raises(InvalidArgumentError, match="mutually exclusive"):
        DataLoader(data, shuffle=True, sampler=[0, 1])
    with pytest.raises(InvalidArgumentError, match="sampler must have len"):
        DataLoader(data, sampler=object())
    loader = DataLoader(data, batch_size=2, sampler=[5, 4, 3])
    assert len(loader) == 2 and np.concatenate([y for _, y in loader]).tolist() == [5, 4, 3]


def test_shard_loader_and_resume_rule():
    from glassnet.data import DataLoader

    class Comm:
        size, rank = 2, 1
    data = _dataset(11)
    loader = DataLoader(data, batch_size=2, shuffle=True, seed=5, num_workers=0)
    loader.set_epoch(3)
    sharded = dist.shard_loader(loader, Comm())
    assert sharded.sampler.num_replicas == 2 and sharded.sampler.rank == 1 and sharded.epoch == 3
    assert sharded.sampler.seed == 5 and len(sharded) == 3
    assert dist.shard_loader(loader, dist.LocalCommunicator()) is loader
    # step k on N ranks used the first k*B*N samples; on N' ranks continue at floor(P / (B*N'))
    assert dist.global_position(3, 4, 2) == 24
    assert dist.resume_step(3, 4, 2, 2, 10) == 3
    assert dist.resume_step(3, 4, 2, 3, 10) == 2   # 24 // 12
    assert dist.resume_step(3, 4, 2, 1, 10) == 6   # 24 // 4: exact when B*N' divides P
    assert dist.resume_step(9, 4, 1, 4, 3) == 2    # clamped into the epoch
