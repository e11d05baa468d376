"""One rank of the 2-rank tests (tests/test_distributed_mpi.py): ``worker.py SCENARIO OUT_DIR``.

Each rank writes ``OUT_DIR/<scenario>.rank<r>.npz`` (arrays) and ``.json`` (facts);
the test compares them with each other and with a single process on the global batch.
"""
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import glassnet as gn  # noqa: E402
import glassnet.distributed as dist  # noqa: E402
from glassnet import nn  # noqa: E402
from tests.distributed_scripts import common as C  # noqa: E402


def save(out, name, arrays, facts):
    r = dist.rank()
    np.savez(out / f"{name}.rank{r}.npz", **arrays)
    (out / f"{name}.rank{r}.json").write_text(json.dumps(facts))


def train_plain(out, name, bucket_mb, overlap="auto"):
    model = C.small_cnn()
    if dist.rank() == 1:  # a different start: the broadcast from rank 0 must fix it
        for p in model.parameters():
            p.data[...] = 0.5
    ddp = dist.DistributedDataParallel(model, bucket_mb=bucket_mb, overlap=overlap)
    opt = C.sgd(ddp.parameters())
    losses, stats = [], []
    for s in range(C.STEPS):
        x, y = C.global_batch(s)
        losses.append(C.step(ddp, opt, C.shard(x, dist.rank()), C.shard(y, dist.rank())))
        stats.append(ddp.buckets.stats)
    save(out, name, C.weights(ddp), {"losses": losses, "stats": stats, "layout": ddp.buckets.layout(),
                                     "keys": list(ddp.state_dict()), "overlap": ddp.overlap})


def train_unused(out):
    ddp = dist.DistributedDataParallel(C.Branchy(), bucket_mb=0.0005)
    opt = C.sgd(ddp.parameters())
    grads_none = []
    for s, use in enumerate(C.EXTRA_USE):
        x, y = C.global_batch(s, shape=(6,), classes=3)
        C.step(ddp, opt, C.shard(x, dist.rank()), C.shard(y, dist.rank()), use_extra=use[dist.rank()])
        grads_none.append(ddp.module.extra.weight.grad is None)
    save(out, "unused", C.weights(ddp), {"extra_grad_none": grads_none, "layout": ddp.buckets.layout()})


def train_syncbn(out):
    model = dist.convert_sync_batchnorm(C.small_cnn(batch_norm=True))
    ddp = dist.DistributedDataParallel(model)
    opt = C.sgd(ddp.parameters())
    bn = model[1]
    seen = {}
    bn.register_forward_hook(lambda m, i, o: None if "out" in seen else seen.update(out=o))
    x, y = C.global_batch(0)
    xs = gn.tensor(C.shard(x, dist.rank()), requires_grad=True)
    loss = nn.CrossEntropyLoss()(ddp(xs), gn.tensor(C.shard(y, dist.rank())))
    opt.zero_grad()
    loss.backward()
    first = {"bn_out": seen["out"].numpy().copy(), "x_grad": xs.grad.copy(),
             "running_mean": bn.running_mean.copy(), "running_var": bn.running_var.copy()}
    first.update({"grad." + n: p.grad.copy() for n, p in ddp.named_parameters()})
    opt.step()
    for s in range(1, C.STEPS):
        x, y = C.global_batch(s)
        C.step(ddp, opt, C.shard(x, dist.rank()), C.shard(y, dist.rank()))
    arrays = {**{"w." + k: v for k, v in C.weights(ddp).items()}, **{"first." + k: v for k, v in first.items()}}
    save(out, "syncbn", arrays, {"type": type(bn).__name__})


def mismatch(out):
    facts = {}
    try:
        dist.DistributedDataParallel(C.small_cnn(width=4 + dist.rank()))
    except dist.RankMismatchError as exc:
        facts["model"] = str(exc)
    try:
        dist.check_consistency(C.small_cnn(), dataset_length=100 + 3 * dist.rank())
    except dist.RankMismatchError as exc:
        facts["dataset"] = str(exc)
    save(out, "mismatch", {}, facts)


def failing(out, how):
    if how == "kill":  # as in a real run, the rank table printed by init() has long reached mpiexec
        time.sleep(1)   # (it forwards output asynchronously, and drops what it has not read at a kill)
    ddp = dist.DistributedDataParallel(C.small_cnn(), timeout_s=5 if how == "stuck" else None)
    opt = C.sgd(ddp.parameters())
    with dist.abort_on_failure():
        for s in range(1000):
            if dist.rank() == 1 and s == 2:
                if how == "raise":
                    raise ValueError("deliberate failure on rank 1")
                if how == "exit":
                    sys.exit(3)
                if how == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if how == "stuck":
                    time.sleep(600)
            x, y = C.global_batch(s % C.STEPS)
            C.step(ddp, opt, C.shard(x, dist.rank()), C.shard(y, dist.rank()))
    print(f"rank {dist.rank()} finished all steps: the failure was not noticed", flush=True)


def main():
    scenario, out = sys.argv[1], Path(sys.argv[2])
    dist.init()
    if scenario == "train":
        train_plain(out, "one_bucket", bucket_mb=25)
        train_plain(out, "many_buckets", bucket_mb=0.0005)
        train_plain(out, "many_buckets_poll", bucket_mb=0.0005, overlap="poll")
        train_unused(out)
        train_syncbn(out)
        mismatch(out)
    else:
        failing(out, scenario)
    dist.shutdown()


if __name__ == "__main__":
    main()
