"""``DistributedDataParallel``: the same model on every rank, gradients averaged over the ranks.

    import glassnet.distributed as dist
    dist.init()
    model = dist.DistributedDataParallel(build_model(), bucket_mb=25)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in loader:                  # each rank its own shard (DistributedSampler)
        loss = criterion(model(x), y)    # the mean over this rank's batch
        opt.zero_grad(); loss.backward() # .grad = the mean over all ranks' batches
        opt.step()                       # identical on every rank

What happens, and when:

1. **Wrapping** (collective): the start-of-training check
   (:func:`~glassnet.distributed.consistency.check_consistency`: parameter and
   buffer names, shapes, dtypes, order), then rank 0's parameters and buffers
   are broadcast, so every rank starts bitwise identical; the gradient buckets
   are laid out (:mod:`glassnet.distributed.buckets`) and a post-accumulate-grad
   hook is registered on every parameter.
2. **Forward** in training mode with gradients on (collective, when
   ``broadcast_buffers``): rank 0's buffers (BatchNorm running statistics) are
   broadcast first, as PyTorch does, so they stay identical. An eval / no-grad
   forward does no collective (rank 0 may evaluate alone).
3. **Backward**: each parameter's hook copies its final gradient into its
   bucket; a full bucket starts its allreduce at once, while backward goes on
   (run by a background thread, or non-blocking and advanced from the hooks:
   ``overlap``). When the walk ends (an autograd callback queued by the
   first hook), the buckets not started yet are started — slots of parameters
   that got no gradient on this rank hold zeros, so every rank reduces the same
   buckets and none waits forever — all are waited for, divided by the world
   size and written back into ``.grad``. A parameter no rank used keeps
   ``grad=None``.
4. **Step**: the optimizer sees averaged gradients; every rank makes the same
   update (the MPI sums are the same on every rank), so weights stay bitwise
   identical.

With world size 1 nothing is reduced: the wrapper only forwards.

Every rank must run the same number of backward passes, each reaching at
least one parameter (the reduction is started by the parameters' hooks);
a rank that skips one leaves the others waiting — ``timeout_s`` turns that
into an error that ends the job.

The wrapped model is ``.module`` (PyTorch's attribute); ``parameters()``,
``named_parameters()``, ``state_dict()`` and ``load_state_dict()`` are the
inner model's, **with the inner model's key names** (no ``module.`` prefix),
so checkpoints load into an unwrapped model and back.
"""
from __future__ import annotations

import contextlib
import weakref

from .. import autograd
from ..backend import get_array_module
from ..errors import InvalidArgumentError
from ..nn.module import Module
from .buckets import GradientBuckets
from .threaded import ThreadedCommunicator
from .consistency import check_consistency as _check_consistency

__all__ = ["DistributedDataParallel", "broadcast_arrays_", "unwrap"]

_PACK_LIMIT = 1 << 20  # arrays below 1 MiB are broadcast packed together, per dtype


def broadcast_arrays_(comm, arrays, root: int = 0) -> None:
    """Overwrite every array in ``arrays`` with ``root``'s, in place: large contiguous
    ones one by one, small ones packed into one flat buffer per dtype."""
    if comm.size == 1:
        return
    small = {}
    for a in arrays:
        if a.nbytes >= _PACK_LIMIT and a.flags.c_contiguous:
            comm.broadcast_(a, root)
        else:
            small.setdefault((a.dtype.str, get_array_module(a).__name__), []).append(a)
    for group in small.values():
        xp = get_array_module(group[0])
        flat = xp.concatenate([a.reshape(-1) for a in group])
        comm.broadcast_(flat, root)
        offset = 0
        for a in group:
            a[...] = flat[offset:offset + a.size].reshape(a.shape)
            offset += a.size


def unwrap(model):
    """The inner model of a :class:`DistributedDataParallel`, else ``model`` itself."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _make_hook(ddp_ref):
    # a closure over a weak reference: deepcopy treats functions as atomic, and the
    # hooks keep neither the wrapper nor its buffers alive
    def hook(param):
        ddp = ddp_ref()
        if ddp is not None:
            ddp._gradient_ready(param)

    return hook


class DistributedDataParallel(Module):
    """Data parallelism over the ranks of a communicator (see the module docstring).

    Args:
        module: the model; the same architecture on every rank.
        bucket_mb: gradient bucket size in MiB (PyTorch's ``bucket_cap_mb``, 25).
        comm: the world communicator (default: ``glassnet.distributed.init()``'s);
            the wrapper works on its own duplicate of it.
        broadcast_buffers: broadcast rank 0's buffers before every training forward.
        check_consistency: run the start-of-training check before broadcasting.
        timeout_s: give up waiting for the gradient allreduce after this many
            seconds (:class:`~glassnet.distributed.errors.DistributedTimeoutError`,
            which then aborts the job); ``None`` waits forever.
        overlap: how the bucket allreduces advance during backward:
            ``"auto"`` (default) is ``"thread"`` when MPI grants
            MPI_THREAD_MULTIPLE (mpi4py asks for it), else ``"poll"``.
            ``"thread"``: a background thread runs them (:class:`~glassnet.distributed.threaded.ThreadedCommunicator`),
            truly in parallel with backward when a core is free; ``"poll"``:
            non-blocking allreduces advanced by an ``MPI_Test`` in every
            gradient hook, on the training thread.
        gradient_as_bucket_view: after the reduction each ``.grad`` is a view
            of its bucket slot (no copy back; PyTorch's option of that name).
            The next step's reduction overwrites it: copy a ``.grad`` you keep.

    Attributes:
        module: the wrapped model.
        buckets: the :class:`~glassnet.distributed.buckets.GradientBuckets` (``None`` with one rank).

    Shape: whatever ``module`` takes and returns.
    """

    def __init__(self, module, bucket_mb: float = 25, *, comm=None, broadcast_buffers: bool = True,
                 check_consistency: bool = True, timeout_s: float | None = None, overlap: str = "auto",
                 gradient_as_bucket_view: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise InvalidArgumentError(f"DistributedDataParallel: expected a glassnet Module, got "
                                       f"{type(module).__name__}")
        if not bucket_mb > 0:
            raise InvalidArgumentError(f"DistributedDataParallel: bucket_mb must be > 0, got {bucket_mb!r}")
        if overlap not in ("auto", "thread", "poll"):
            raise InvalidArgumentError(f"DistributedDataParallel: overlap must be 'auto', 'thread' or 'poll', "
                                       f"got {overlap!r}")
        if comm is None:
            from .process_group import get_communicator

            comm = get_communicator()
        self.module = module
        self.bucket_mb = bucket_mb
        self.broadcast_buffers = bool(broadcast_buffers)
        self.timeout_s = timeout_s
        self._comm = comm if comm.size == 1 else comm.dup()
        self._require_sync = True
        self._finish_queued = False
        self._handles = []
        self.buckets = None
        self.overlap = None
        if check_consistency:
            _check_consistency(module, comm=self._comm)
        params = list(module.parameters())
        broadcast_arrays_(self._comm, [p.data for p in params] + list(module.buffers()))
        if self._comm.size > 1:
            trained = [p for p in params if p.requires_grad]
            bucket_comm = self._comm.dup()  # the buckets' collectives never meet the broadcasts'
            if overlap == "thread" or (overlap == "auto" and getattr(bucket_comm, "thread_multiple", False)):
                bucket_comm = ThreadedCommunicator(bucket_comm)
            self.overlap = "thread" if isinstance(bucket_comm, ThreadedCommunicator) else "poll"
            self.buckets = GradientBuckets(trained, bucket_comm, int(bucket_mb * (1 << 20)),
                                           gradient_as_bucket_view)
            hook = _make_hook(weakref.ref(self))
            self._handles = [p.register_post_accumulate_grad_hook(hook) for p in trained]

    @property
    def world_size(self) -> int:
        return self._comm.size

    # the inner model's tree and names everywhere (state_dict, parameters, train, to, ...)
    def named_modules(self, prefix: str = ""):
        return self.module.named_modules(prefix)

    def train(self, mode: bool = True):
        object.__setattr__(self, "training", bool(mode))
        self.module.train(mode)
        return self

    def forward(self, *args, **kwargs):
        if self._comm.size > 1 and self.broadcast_buffers and self.module.training and autograd.is_grad_enabled():
            broadcast_arrays_(self._comm, list(self.module.buffers()))
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate local gradients (gradient accumulation);
        the first backward after the block averages the accumulated sums."""
        previous = self._require_sync
        self._require_sync = False
        try:
            yield
        finally:
            self._require_sync = previous

    def _gradient_ready(self, param) -> None:
        if not self._require_sync:
            return
        if not self._finish_queued:
            autograd.queue_callback(self._finish)
            self._finish_queued = True
        self.buckets.mark_ready(param)

    def _finish(self) -> None:
        self._finish_queued = False
        self.buckets.finish(self.timeout_s)

    def sync_gradients(self) -> None:
        """Average the current ``.grad`` over the ranks now (collective), e.g. after
        backward passes run under :meth:`no_sync` that are not followed by a synced one."""
        if self.buckets is not None:
            self.buckets.reduce_now()

    def remove_hooks(self) -> None:
        """Unregister the gradient hooks (the model then trains alone on each rank)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def extra_repr(self) -> str:
        return f"world_size={self.world_size}, bucket_mb={self.bucket_mb}, overlap={self.overlap}"
