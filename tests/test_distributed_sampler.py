"""DistributedSampler against torch.utils.data.DistributedSampler, index list for index list."""
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


