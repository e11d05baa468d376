"""Gradient buckets: flat buffers of gradients, each summed over the ranks with one
non-blocking allreduce as soon as backward has filled it.

Layout. The parameters (those that require grad) are taken in *reverse*
registration order — roughly the order backward produces their gradients,
last layer first — and packed into buckets of about ``bucket_bytes`` each
(PyTorch's rule: a bucket is closed once it holds at least that many bytes,
so one may exceed it by its last parameter; a new dtype or device also
starts a new bucket). Bucket ``k`` is one flat array::

    [ grad of p_0 (raveled) | grad of p_1 | ... | grad of p_{n-1} | f_0 ... f_{n-1} ]

where ``f_i`` is 1 if this rank has a gradient for ``p_i`` in this step,
else 0 (and the slot of ``p_i`` holds zeros). After the sum, ``f_i`` counts
the ranks that had one: 0 means no rank did, and ``p_i.grad`` stays ``None``
on every rank, exactly as in a single process where ``p_i`` was not used.

Timing. :meth:`GradientBuckets.mark_ready` (called from each parameter's
post-accumulate-grad hook during backward) writes the gradient divided by
the world size N into its slot (copy and scaling in one pass; the sum of
the g_r/N is then the average, bitwise the same as (Σ g_r)/N when N is a
power of 2); when a bucket's last slot is filled the bucket's allreduce starts.
Buckets are started strictly in index order on every rank (a bucket filled
early waits for the ones before it), because MPI requires every rank to
issue its collectives in the same order. Each hook also pokes the
collectives in flight (MPICH advances a non-blocking collective only inside
MPI calls), so they progress while backward computes; with a
:class:`~glassnet.distributed.threaded.ThreadedCommunicator` a thread of its own
runs them instead. :meth:`GradientBuckets.finish` (run once
backward has finished) fills the slots no hook filled, starts the remaining
buckets, waits for all, and hands the averages to ``.grad``: with
``gradient_as_bucket_view`` (the default, as PyTorch's option of that name)
``p.grad`` *becomes a view of its slot* — no copy back, and a gradient
accumulated into it in place (``zero_grad(set_to_none=False)``) is already
in the bucket next time; the price is that the next reduction overwrites
it, so a ``.grad`` kept across steps must be copied. Otherwise the
averages are copied into ``.grad``.

The buckets only call ``comm.iallreduce_(array) -> Work`` and ``Work.test() /
wait()`` and allocate with the parameters' own array module, so a NCCL
communicator on CuPy arrays plugs in unchanged.

Shape: each bucket buffer is 1-D, of length Σ numel(p_i) + n (n = its parameter count).
"""
from __future__ import annotations

import time

from ..backend import get_array_module
from .errors import DistributedError, DistributedTimeoutError

__all__ = ["GradientBuckets"]


class _Bucket:
    __slots__ = ("index", "params", "offsets", "buffer", "flags", "filled", "pending", "work", "numel")

    def __init__(self, index, params):
        self.index = index
        self.params = params
        sizes = [int(p.data.size) for p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self.numel = self.offsets[-1]
        xp = get_array_module(params[0].data)
        self.buffer = xp.zeros(self.numel + len(params), dtype=params[0].data.dtype)
        self.flags = self.buffer[self.numel:]
        self.filled = [False] * len(params)
        self.pending = len(params)
        self.work = None

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)

    def slot(self, i):
        return self.buffer[self.offsets[i]:self.offsets[i + 1]]


class GradientBuckets:
    """Buckets over ``params`` (in registration order), reduced through ``comm``.

    Args:
        params: the parameters whose gradients are averaged, in registration order.
        comm: a :class:`~glassnet.distributed.comm.Communicator` used for these buckets only.
        bucket_bytes: the size at which a bucket is closed.
        gradient_as_bucket_view: leave each ``.grad`` as a view of its bucket slot
            after the reduction (see the module docstring) instead of a copy.

    Attributes:
        buckets: the buckets, index 0 first (it holds the last-registered parameters).
        stats: of the last reduction — ``hook_s`` (time in the hooks: copies,
            starts, polls), ``wait_s`` (time waiting after backward),
            ``unpack_s`` (handing the averages to ``.grad``),
            ``launched_in_backward`` (buckets started before backward ended),
            ``buckets``, ``bytes``.
    """

    def __init__(self, params, comm, bucket_bytes: int, gradient_as_bucket_view: bool = True):
        self.comm = comm
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)
        self.buckets = []
        self._where = {}
        params = list(params)
        self._position = {id(p): i for i, p in enumerate(params)}
        current, size = [], 0
        for p in reversed(params):
            if current and (p.data.dtype != current[0].data.dtype
                            or get_array_module(p.data) is not get_array_module(current[0].data)):
                self._close(current)
                current, size = [], 0
            current.append(p)
            size += int(p.data.nbytes)
            if size >= bucket_bytes:
                self._close(current)
                current, size = [], 0
        if current:
            self._close(current)
        self._next = 0       # the next bucket to start
        self._in_flight = []
        self._hook_s = 0.0
        self.stats = {}

    def _close(self, params) -> None:
        bucket = _Bucket(len(self.buckets), params)
        for i, p in enumerate(params):
            self._where[id(p)] = (bucket, i)
        self.buckets.append(bucket)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buckets)

    def layout(self) -> list:
        """``[[param index in registration order, ...] per bucket]`` (for tests and tables)."""
        return [[self._position[id(p)] for p in b.params] for b in self.buckets]

    # ------------------------------------------------------------ during backward
    def mark_ready(self, param) -> None:
        """``param.grad`` is final for this backward: copy it into its slot; start every
        bucket, in order, that is now full."""
        t0 = time.perf_counter()
        entry = self._where.get(id(param))
        if entry is None:
            raise DistributedError("DistributedDataParallel: a gradient arrived for a parameter that was not in "
                                   "the model when it was wrapped; wrap the model after building it completely")
        bucket, i = entry
        if bucket.filled[i]:
            raise DistributedError("DistributedDataParallel: a parameter received two gradients in one "
                                   "backward pass before they were reduced (is it used by two wrapped models?)")
        self._fill(bucket, i, param.grad)
        if bucket.pending == 0:
            self._start_ready()
        self._in_flight = self.comm.progress(self._in_flight)
        self._hook_s += time.perf_counter() - t0

    def _fill(self, bucket, i, grad) -> None:
        slot = bucket.slot(i)
        if grad is None:
            slot[...] = 0
            bucket.flags[i] = 0
        else:
            if grad.dtype != bucket.buffer.dtype or int(grad.size) != int(slot.size):
                raise DistributedError(
                    f"DistributedDataParallel: a gradient of shape {tuple(grad.shape)} and dtype {grad.dtype} "
                    f"does not fit its bucket slot ({int(slot.size)} values of {bucket.buffer.dtype}): the model "
                    "changed dtype or shape after it was wrapped; convert it (.double(), .to()) before wrapping"
                )
            xp = get_array_module(slot)
            inv_n = slot.dtype.type(1 / self.comm.size)
            if xp.may_share_memory(grad, slot):  # .grad is already this slot (a bucket view)
                slot *= inv_n
            else:
                xp.multiply(grad.reshape(-1), inv_n, out=slot)
            bucket.flags[i] = 1
        bucket.filled[i] = True
        bucket.pending -= 1

    def _start_ready(self) -> None:
        while self._next < len(self.buckets) and self.buckets[self._next].pending == 0:
            bucket = self.buckets[self._next]
            bucket.work = self.comm.iallreduce_(bucket.buffer)
            self._in_flight.append(bucket.work)
            self._next += 1

    # ------------------------------------------------------------- after backward
    def finish(self, timeout_s: float | None = None) -> None:
        """Fill what no hook filled (current ``.grad``, or zeros and flag 0), start the
        remaining buckets, wait for all, and write the averaged gradients into ``.grad``."""
        launched_in_backward = self._next
        for bucket in self.buckets[self._next:]:
            for i, p in enumerate(bucket.params):
                if not bucket.filled[i]:
                    self._fill(bucket, i, p.grad)
        self._start_ready()
        t0 = time.perf_counter()
        self._wait([b.work for b in self.buckets], timeout_s)
        t1 = time.perf_counter()
        for bucket in self.buckets:
            counts = bucket.flags.tolist()
            for i, p in enumerate(bucket.params):
                if counts[i] == 0:  # no rank had a gradient for p
                    continue
                avg = bucket.slot(i).reshape(p.data.shape)
                if self.gradient_as_bucket_view:
                    p.grad = avg
                elif p.grad is None:
                    p.grad = avg.copy()
                else:
                    p.grad[...] = avg
            bucket.filled = [False] * len(bucket.params)
            bucket.pending = len(bucket.params)
            bucket.work = None
        self.stats = {"hook_s": self._hook_s, "wait_s": t1 - t0, "unpack_s": time.perf_counter() - t1,
                      "launched_in_backward": launched_in_backward, "buckets": len(self.buckets),
                      "bytes": self.nbytes}
        self._next, self._in_flight, self._hook_s = 0, [], 0.0

    def _wait(self, works, timeout_s) -> None:
        if timeout_s is None:
            for w in works:
                w.wait()
            return
        deadline = time.monotonic() + timeout_s
        pending = list(works)
        while pending:
            pending = self.comm.progress(pending)
            if pending and time.monotonic() > deadline:
                first = next(b.index for b in self.buckets if b.work in pending)
                raise DistributedTimeoutError(
                    f"DistributedDataParallel: the allreduce of gradient bucket {first} (of {len(self.buckets)}) "
                    f"did not finish within {timeout_s:g} s: another rank is stuck, skipped a backward(), or "
                    "runs a different number of steps"
                )
            if pending:
                time.sleep(0.0005)

    def reduce_now(self) -> None:
        """Reduce the current ``.grad`` of every parameter at once (no backward running):
        what the benchmark times against a bare allreduce of the same bytes."""
        self.finish()
