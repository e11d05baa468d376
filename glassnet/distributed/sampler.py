"""``DistributedSampler``: each rank's share of a dataset, PyTorch's semantics index for index.

For epoch ``e`` with ``shuffle=True`` the dataset's indices are permuted by
the permutation ``torch.randperm(n, generator=torch.Generator().manual_seed(seed + e))``
produces — reproduced here without torch: PyTorch's CPU generator is the
32-bit Mersenne Twister seeded with ``(seed + e) mod 2³²`` (NumPy's legacy
``RandomState`` seeding), and ``randperm`` for n < 2³²/20 is the
Fisher–Yates pass ``for i in 0..n−2: swap(r[i], r[i + u_i mod (n − i)])`` over
its raw 32-bit outputs ``u_i``. (For larger n PyTorch switches to 64-bit draws;
there this sampler uses NumPy's permutation instead, still a pure function
of seed and epoch, but not torch's.) Then, as in PyTorch:

* ``drop_last=False``: the list is padded with its own first indices up to
  ``num_samples · num_replicas`` (``num_samples = ⌈n / num_replicas⌉``), so
  every rank gets the same number of samples (some samples are seen twice);
* ``drop_last=True``: the tail is dropped instead
  (``num_samples = ⌊n / num_replicas⌋``);
* rank ``r`` takes the indices at positions ``r, r + R, r + 2R, ...``
  (R = ``num_replicas``): rank-strided shards, disjoint up to the padding.

Every rank must call :meth:`set_epoch` with the same epoch before each epoch
(else every epoch repeats epoch 0's order, as in PyTorch);
``DataLoader(..., sampler=sampler)`` does it from the loader's own epoch.

Positions across world sizes. With per-rank batches of ``B``, step ``k`` of
all ranks together visits positions ``[k·B·N, (k+1)·B·N)`` of the epoch's
(padded) global order — the same permutation for any ``N``; only the padding
at the end differs. So after ``k`` steps on ``N`` ranks the epoch has used
the first ``P = k·B·N`` samples of that order (:func:`global_position`). A run
resumed on ``N'`` ranks continues at step ``⌊P / (B·N')⌋``
(:func:`resume_step`): no sample of the epoch is skipped, and the fewer than
``B·N'`` samples between that step's start and ``P`` are visited a second time
(none when ``B·N'`` divides ``P``). With ``N' = N`` this is step ``k``: exact.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["DistributedSampler", "torch_randperm", "global_position", "resume_step", "shard_loader"]

_FISHER_YATES_LIMIT = (2 ** 32 - 1) // 20  # PyTorch's switch to 64-bit draws


def torch_randperm(n: int, seed: int) -> np.ndarray:
    """The permutation ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``
    gives on the CPU, as an int64 array (n < 2³²/20; see the module docstring).

    Shape: (n,).
    """
    if n >= _FISHER_YATES_LIMIT:
        return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF])).permutation(n)
    if n <= 1:
        return np.arange(n, dtype=np.int64)
    # the raw 32-bit Mersenne Twister outputs of a generator seeded like torch's
    raw = np.random.RandomState(seed & 0xFFFFFFFF).randint(0, 2 ** 32, size=n - 1, dtype=np.uint64)
    offsets = (raw % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
    r = list(range(n))
    for i, z in enumerate(offsets):  # sequential by nature; ~0.2 s per million samples
        j = i + z
        r[i], r[j] = r[j], r[i]
    return np.array(r, dtype=np.int64)


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InvalidArgumentError(f"DistributedSampler: {name} must be an int >= {low}, got {value!r}")
    return int(value)


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` visits in an epoch.

    Args:
        dataset: anything with ``len()`` (or an int: the dataset's length).
        num_replicas: the number of ranks (default: ``glassnet.distributed.world_size()``).
        rank: this rank (default: ``glassnet.distributed.rank()``).
        shuffle: permute by ``seed + epoch`` (PyTorch's generator, see above).
        seed: the same on every rank.
        drop_last: drop the tail instead of padding (see the module docstring).

    ``iter(sampler)`` yields Python ints; :meth:`indices` returns them as an
    array; ``len(sampler)`` is ``num_samples``.

    Shape: ``indices()`` is (num_samples,) int64.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .process_group import get_communicator

            comm = get_communicator()
            num_replicas = comm.size if num_replicas is None else num_replicas
            rank = comm.rank if rank is None else rank
        self.num_replicas = _check_int("num_replicas", num_replicas, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise InvalidArgumentError(f"DistributedSampler: invalid rank {rank}, rank should be in the "
                                       f"interval [0, {self.num_replicas - 1}]")
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.seed = _check_int("seed", seed, -(2 ** 63))
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = self._length()
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def _length(self) -> int:
        return int(self.dataset) if isinstance(self.dataset, numbers.Integral) else len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order next (call it on every rank with the same value)."""
        self.epoch = _check_int("epoch", epoch, 0)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """This rank's indices for ``epoch`` (default: the current one), in visiting order."""
        e = self.epoch if epoch is None else _check_int("epoch", epoch, 0)
        n = self._length()
        order = torch_randperm(n, self.seed + e) if self.shuffle else np.arange(n, dtype=np.int64)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0 and n > 0:
                order = np.concatenate([order, np.resize(order, pad)])  # the list repeated, as PyTorch
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler(n={self._length()}, num_replicas={self.num_replicas}, rank={self.rank}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, epoch={self.epoch})")


def global_position(step: int, batch_size: int, world_size: int) -> int:
    """The samples of the epoch's global order used after ``step`` steps of ``world_size`` ranks
    with per-rank batches of ``batch_size`` (see the module docstring)."""
    return int(step) * int(batch_size) * int(world_size)


def resume_step(step: int, batch_size: int, old_world_size: int, new_world_size: int, n_batches: int) -> int:
    """The step a run checkpointed at ``step`` on ``old_world_size`` ranks continues at on
    ``new_world_size`` ranks (the same per-rank ``batch_size``): ``⌊P / (B·N')⌋`` with ``P`` the
    :func:`global_position`, at most ``n_batches − 1`` (the module docstring says why no sample is
    skipped). The same step when the world size is unchanged."""
    if int(old_world_size) == int(new_world_size):
        return int(step)
    position = global_position(step, batch_size, old_world_size)
    return min(position // (int(batch_size) * int(new_world_size)), max(int(n_batches) - 1, 0))


def shard_loader(loader, comm=None):
    """A copy of :class:`~glassnet.data.DataLoader` ``loader`` that visits this rank's shard:
    ``sampler=DistributedSampler(dataset, shuffle=loader.shuffle, seed=loader.seed)`` (PyTorch's
    order and padding), the same batch size, seed, epoch, workers and their options. With one
    rank, or a loader that already has a sampler, ``loader`` itself.

    Shape: batches as ``loader``'s, ``len()`` = ⌈⌈len(dataset) / N⌉ / batch_size⌉.
    """
    from ..data.dataloader import DataLoader
    from .process_group import get_communicator

    comm = comm or get_communicator()
    if comm.size == 1 or getattr(loader, "sampler", None) is not None:
        return loader
    sampler = DistributedSampler(loader.dataset, num_replicas=comm.size, rank=comm.rank,
                                 shuffle=loader.shuffle, seed=loader.seed, drop_last=False)
    sharded = DataLoader(loader.dataset, batch_size=loader.batch_size, drop_last=loader.drop_last,
                         seed=loader.seed, num_workers=loader.num_workers, prefetch_factor=loader.prefetch_factor,
                         persistent_workers=loader.persistent_workers, timeout=loader.timeout,
                         worker_init_fn=loader.worker_init_fn,
                         multiprocessing_context=loader.multiprocessing_context, sampler=sampler)
    sharded.set_epoch(loader.epoch)
    return sharded
