"""The MPI side of bench_distributed.py: ``mpiexec -n N python _distributed_child.py PHASE --out F``.

Phases (rank 0 writes the results to ``F`` as JSON; every time is the slowest
rank's, each sample started after a barrier):

* ``sweep``     bare mpi4py ``Allreduce`` of one float32 buffer, 8 B .. 256 MiB (the cost-model fit);
* ``allreduce`` per model (ResNet-18, VGG16 gradients): one bare ``Allreduce`` of the buckets' bytes vs
  glassnet's buckets — the bucket allreduces alone (``comm``) and ``reduce_now()`` with the copies in
  and out and the division (``full``) — interleaved sample by sample;
* ``train``     ResNet-18 DDP training steps; with ``--local`` also the same steps under ``no_sync()``
  (no gradient traffic), alternating, for the hidden fraction; then ``reduce_now()`` alone and the
  buckets' allreduces alone (after that the gradients are garbage: it is the phase's end).
"""
from __future__ import annotations

import _blas_env  # noqa: F401 (first: OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import glassnet as gn  # noqa: E402
import glassnet.distributed as dist  # noqa: E402
from glassnet import nn  # noqa: E402
from glassnet.distributed.buckets import GradientBuckets  # noqa: E402
from glassnet.nn import Parameter  # noqa: E402

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def param_shapes(name: str) -> list:
    """The parameter shapes of a zoo model, in registration order (VGG16's from its configuration:
    building it draws 138 M random weights)."""
    if name == "vgg16":
        shapes, c = [], 3
        for v in VGG16_CFG:
            if v != "M":
                shapes += [(v, c, 3, 3), (v,)]
                c = v
        return shapes + [(4096, 25088), (4096,), (4096, 4096), (4096,), (1000, 4096), (1000,)]
    from glassnet.models import get_model

    return [tuple(p.shape) for p in get_model(name).parameters()]


def slowest(comm, seconds: float) -> float:
    return max(comm.allgather_object(seconds))


def sample(comm, fn) -> float:
    comm.barrier()
    t0 = time.perf_counter()
    fn()
    return slowest(comm, time.perf_counter() - t0)


def summary(times) -> dict:
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "samples_s": list(times)}


def phase_sweep(comm, mpi, args) -> dict:
    out = {}
    for k in range(3, 29, 2 if args.quick else 1):
        buf = np.ones((1 << k) // 4 or 1, dtype=np.float32)
        reps = max(3, min(args.repeat * 10, (1 << 28) // (1 << k)))
        times = [sample(comm, lambda: comm.comm.Allreduce(mpi.IN_PLACE, buf, op=mpi.SUM)) for _ in range(reps)]
        out[str(buf.nbytes)] = summary(times)
    return out


def phase_allreduce(comm, mpi, args) -> dict:
    results = {}
    rng = np.random.default_rng(comm.rank)
    for name in args.models.split(","):
        params = [Parameter(np.zeros(s, dtype=np.float32)) for s in param_shapes(name)]
        for p in params:
            p.grad = rng.standard_normal(p.shape, dtype=np.float32)
        row = {"params": len(params), "grad_bytes": sum(p.grad.nbytes for p in params), "buckets": {}}
        contenders = {}
        for mb in [float(b) for b in args.bucket_mb.split(",")]:
            buckets = GradientBuckets(params, comm.dup(), int(mb * (1 << 20)))
            row["buckets"][str(mb)] = {"count": len(buckets.buckets), "bytes": buckets.nbytes,
                                       "sizes": [b.nbytes for b in buckets.buckets]}

            def comm_only(b=buckets):
                works = [b.comm.iallreduce_(x.buffer) for x in b.buckets]
                for w in works:
                    w.wait()
            contenders[f"comm {mb:g} MiB"] = comm_only
            contenders[f"full {mb:g} MiB"] = buckets.reduce_now
            for x in buckets.buckets:
                x.buffer[...] = 0  # comm_only sums in place: start from zeros, stay finite
        bare = np.zeros(row["buckets"][str(float(args.bucket_mb.split(",")[0]))]["bytes"] // 4, dtype=np.float32)
        contenders = {"bare": lambda: comm.comm.Allreduce(mpi.IN_PLACE, bare, op=mpi.SUM), **contenders}
        times = {k: [] for k in contenders}
        for fn in contenders.values():  # warm-up: first touches, MPI's shared-memory setup
            fn()
        for _ in range(args.repeat):
            for k, fn in contenders.items():
                times[k].append(sample(comm, fn))
        row["times"] = {k: summary(v) for k, v in times.items()}
        results[name] = row
    return results


def phase_train(comm, mpi, args) -> dict:
    from glassnet.models import get_model
    from glassnet.optim import SGD

    gn.manual_seed(0)
    model = dist.DistributedDataParallel(get_model("resnet18"), bucket_mb=args.train_bucket_mb, comm=comm,
                                         overlap=args.overlap)
    opt = SGD(model.parameters(), lr=1e-4, momentum=0.9)
    rng = np.random.default_rng(comm.rank)
    x = gn.tensor(rng.standard_normal((args.batch, 3, args.image, args.image), dtype=np.float32))
    y = gn.tensor(rng.integers(0, 1000, args.batch))
    loss_fn = nn.CrossEntropyLoss()
    rows = {"ddp": [], "local": []}

    def step(kind):
        comm.barrier()
        t0 = time.perf_counter()
        loss = loss_fn(model(x), y)
        t1 = time.perf_counter()
        opt.zero_grad()
        if kind == "local":
            with model.no_sync():
                loss.backward()
        else:
            loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        stats = dict(model.buckets.stats) if (kind == "ddp" and model.buckets) else {}
        times = comm.allgather_object((t3 - t0, t2 - t1, stats.get("wait_s", 0.0), stats.get("hook_s", 0.0)))
        worst = max(times)  # the slowest rank's step, with its own parts
        rows[kind].append({"step_s": worst[0], "backward_s": worst[1], "wait_s": worst[2], "hook_s": worst[3],
                           "launched_in_backward": stats.get("launched_in_backward")})

    kinds = ["ddp", "local"] if args.local else ["ddp"]
    for kind in kinds:  # warm-up
        step(kind)
    rows = {"ddp": [], "local": []}
    for _ in range(args.steps):
        for kind in kinds:
            step(kind)
    out = {"rows": rows, "world_size": comm.size, "batch_per_rank": args.batch, "image": args.image,
           "bucket_mb": args.train_bucket_mb, "overlap": model.overlap,
           "buckets": None if model.buckets is None else [b.nbytes for b in model.buckets.buckets]}
    if model.buckets is not None:
        b = model.buckets

        def comm_only():  # the buckets' allreduces alone, through the same (threaded) communicator
            for w in [b.comm.iallreduce_(x.buffer) for x in b.buckets]:
                w.wait()
        out["reduce_now"] = summary([sample(comm, b.reduce_now) for _ in range(args.repeat)])
        out["comm_only"] = summary([sample(comm, comm_only) for _ in range(args.repeat)])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=["sweep", "allreduce", "train"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", default="resnet18,vgg16")
    ap.add_argument("--bucket-mb", default="25,5")
    ap.add_argument("--train-bucket-mb", type=float, default=25)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--image", type=int, default=224)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--local", action="store_true")
    ap.add_argument("--overlap", default="auto", choices=["auto", "thread", "poll"])
    args = ap.parse_args()
    comm = dist.init(announce=False)
    from glassnet.threads import set_num_threads

    set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))
    mpi = comm._MPI if comm.size > 1 else None
    result = {"sweep": phase_sweep, "allreduce": phase_allreduce, "train": phase_train}[args.phase](comm, mpi, args)
    if comm.rank == 0:
        with open(args.out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
