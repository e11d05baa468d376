"""glassnet's DataLoader with worker processes vs ``torch.utils.data.DataLoader``: images/s.

The dataset stands in for "decode a JPEG and resize it": each sample costs
about 2 ms of CPU in NumPy (a 375x500x3 photo converted to float, two
element-wise passes, a random-scale gather to 224x224) and comes out as a
(3, 224, 224) uint8 image with an int label. Both libraries run the very same
function; sample ``i`` draws from ``sample_rng(0, 0, i)`` in both, so they
deliver the same bytes, which is checked (a checksum of every batch of the
untimed first epoch) before any number is printed.

Each contender (glassnet with its default forkserver workers, glassnet with
``multiprocessing_context="fork"``, torch with its default fork workers) at
each worker count runs in its own fresh process, the contenders alternating
round after round. A child runs one untimed epoch (starting the fork server,
checking the bytes), then times ``--epochs`` epochs of ``--batches`` batches
of ``--batch`` images, from ``iter()`` to the last batch, worker start-up
included (``persistent_workers=False``, the default of both). Reported:
images/s (the median over all epochs, and the median over rounds of the
ratio to torch within the round, which cancels slow drifts of the machine's
load); CPU time per batch in the main process (what loading takes from the
training loop) and in all processes (main + workers, each worker reporting
its own ``getrusage`` as it exits): the cost of loading, insensitive to
other processes competing for the cores, unlike images/s.

    .venv/bin/python benchmarks/bench_loader_workers.py            # ~8 min on 2 busy cores
    .venv/bin/python benchmarks/bench_loader_workers.py --quick    # smoke run
"""
import _blas_env  # noqa: F401  (before NumPy)

import argparse
import functools
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _timing import dump_json, environment, print_header, print_table  # noqa: E402

from glassnet.data import DataLoader  # noqa: E402
from glassnet.data.sample_rng import sample_rng  # noqa: E402

PHOTO = np.random.default_rng(0).integers(0, 256, (375, 500, 3), dtype=np.uint8)
CONTENDERS = ("glassnet", "glassnet-fork", "torch")


def decode(i, rng):
    """~2 ms of NumPy: the stand-in for decoding and resizing one JPEG. Returns (3, 224, 224) uint8, label."""
    scale, y0, x0 = rng.uniform(0.6, 1.0), rng.integers(0, 40), rng.integers(0, 60)
    rows = (y0 + np.arange(224) * (scale * 335 / 224)).astype(np.intp)
    cols = (x0 + np.arange(224) * (scale * 440 / 224)).astype(np.intp)
    f = PHOTO.astype(np.float32)
    for r in range(2):  # stand-in for the IDCT and the colour conversion
        f = f * np.float32(0.999) + np.float32(0.1 * r)
    out = np.clip(f[rows][:, cols], 0, 255).astype(np.uint8)
    return out.transpose(2, 0, 1).copy(), int(i % 1000)


class DecodeDataset:
    """glassnet side: ``get_item(i, rng)``, the per-sample RNG contract."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def get_item(self, i, rng):
        return decode(i, rng)


def _torch_dataset(n):
    import torch

    class TorchDecodeDataset(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            x, y = decode(i, sample_rng(0, 0, i))
            return torch.from_numpy(x), y

    return TorchDecodeDataset()


def _write_cpu(directory):
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.path.join(directory, str(os.getpid())), "w") as f:
        f.write(repr(ru.ru_utime + ru.ru_stime))


def record_cpu_at_exit(directory, worker_id):
    """worker_init_fn of both libraries: the worker writes its CPU time into ``directory`` as it exits."""
    from multiprocessing import util

    util.Finalize(None, _write_cpu, args=(directory,), exitpriority=100)


def _workers_cpu(directory, expected, wait_s=5.0):
    deadline = time.monotonic() + wait_s
    while len(os.listdir(directory)) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    files = os.listdir(directory)
    if len(files) < expected:
        raise SystemExit(f"only {len(files)} of {expected} workers reported their CPU time")
    return sum(float(open(os.path.join(directory, f)).read()) for f in files)


def child(name, workers, batch, batches, epochs):
    """Runs in a fresh process: one checked epoch, then ``epochs`` timed ones."""
    import tempfile

    n = batch * batches
    if name == "torch":
        import torch

        loader = torch.utils.data.DataLoader(_torch_dataset(n), batch_size=batch, num_workers=workers)
        epoch = lambda: iter(loader)  # noqa: E731
        as_np = lambda t: t.numpy()  # noqa: E731
    else:
        ctx = "fork" if name == "glassnet-fork" else None
        loader = DataLoader(DecodeDataset(n), batch_size=batch, seed=0, num_workers=workers,
                            multiprocessing_context=ctx if workers else None)
        epoch = lambda: loader.iter_epoch(0)  # noqa: E731  (epoch 0 draws = torch's draws)
        as_np = np.asarray
    digest = hashlib.blake2b(digest_size=16)
    for x, y in epoch():
        digest.update(np.ascontiguousarray(as_np(x)).tobytes())
        digest.update(np.asarray(as_np(y), dtype=np.int64).tobytes())
    rates, main_cpu, total_cpu = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for e in range(epochs):
            reports = os.path.join(tmp, str(e))
            os.mkdir(reports)
            loader.worker_init_fn = functools.partial(record_cpu_at_exit, reports) if workers else None
            t0, c0, count = time.perf_counter(), time.process_time(), 0
            for x, y in epoch():
                count += len(y)
            rates.append(count / (time.perf_counter() - t0))
            main_cpu.append((time.process_time() - c0) / batches)
            total_cpu.append(main_cpu[-1] + (_workers_cpu(reports, workers) / batches if workers else 0.0))
    print(json.dumps({"images_per_s": rates, "main_cpu_s_per_batch": main_cpu,
                      "total_cpu_s_per_batch": total_cpu, "checksum": digest.hexdigest()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=8, help="batches per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per child")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--quick", action="store_true", help="1 round, 1 epoch of 3 batches of 16")
    ap.add_argument("--json", help="write the environment, settings and every sample here")
    ap.add_argument("--child", nargs=2, metavar=("CONTENDER", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.epochs, args.batches, args.batch = 1, 1, 3, 16
    if args.child:
        return child(args.child[0], int(args.child[1]), args.batch, args.batches, args.epochs)

    env = environment()
    settings = {k: getattr(args, k) for k in ("workers", "contenders", "batch", "batches", "epochs", "rounds")}
    print_header("DataLoader workers: ~2 ms/sample decode stand-in, 3x224x224 uint8", env, settings)
    metrics = ("images_per_s", "main_cpu_s_per_batch", "total_cpu_s_per_batch")
    res = {m: {(c, w): [] for c in args.contenders for w in args.workers} for m in metrics}
    per_round = {(c, w): [] for c in args.contenders for w in args.workers}  # each child's median img/s
    checksums = {}
    for r in range(args.rounds):
        shift = r % len(args.contenders)  # rotate: each contender goes first, second, ... in turn
        order = args.contenders[shift:] + args.contenders[:shift]
        for w in args.workers:
            for c in order:
                cmd = [sys.executable, os.path.abspath(__file__), "--child", c, str(w), "--batch", str(args.batch),
                       "--batches", str(args.batches), "--epochs", str(args.epochs)]
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    sys.exit(f"{c} with {w} workers failed:\n{p.stderr}")
                out = json.loads(p.stdout.strip().splitlines()[-1])
                for m in metrics:
                    res[m][(c, w)].extend(out[m])
                per_round[(c, w)].append(statistics.median(out["images_per_s"]))
                checksums[(c, w)] = out["checksum"]
    if len(set(checksums.values())) != 1:
        sys.exit(f"the contenders delivered different bytes: {checksums}")
    print("\nbytes check: every contender at every worker count delivered the same batches "
          f"(blake2b {next(iter(checksums.values()))})")
    others = [c for c in args.contenders if c != "torch"] if "torch" in args.contenders else []
    rows = []
    for w in args.workers:
        med = {c: statistics.median(res["images_per_s"][(c, w)]) for c in args.contenders}
        paired = [statistics.median(a / b for a, b in zip(per_round[(c, w)], per_round[("torch", w)]))
                  for c in others]
        rows.append([w] + [f"{med[c]:.0f}" for c in args.contenders] + [f"{x:.2f}" for x in paired])
    print_table(["workers"] + [f"{c} img/s" for c in args.contenders] + [f"{c}/torch" for c in others], rows,
                title=f"images/s: median of {args.rounds} rounds x {args.epochs} epochs of {args.batches} x "
                      f"{args.batch}; ratios: median over rounds of the ratio within a round")
    print_table(["workers"] + [f"{c} main" for c in args.contenders] + [f"{c} all" for c in args.contenders],
                [[w] + [f"{1e3 * statistics.median(res[m][(c, w)]):.1f}" for m in metrics[1:]
                        for c in args.contenders] for w in args.workers],
                title="CPU ms per batch: in the main process (the training loop's share), and in all processes "
                      "(main + workers; insensitive to other load on the machine)")
    if args.json:
        dump_json(args.json, env, settings, {m: {f"{c}@{w}": v for (c, w), v in res[m].items()} for m in metrics})


if __name__ == "__main__":
    main()
