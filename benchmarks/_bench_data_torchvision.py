"""The torchvision side of ``bench_data.py``, run by it in torchvision's own interpreter.

Not a benchmark by itself: ``bench_data.py`` starts this file as a fresh
process for each measurement, with the Python that has torch and torchvision
(``--torchvision-python``, default ``/work/tvenv/bin/python``), and reads one
JSON line from its stdout. It imports nothing from glassnet (glassnet is not
installed there), only the standard library at import time, so that
``bench_data.py`` can share :func:`start_worker_cpu` (and what it uses)
with it.

Modes::

    python _bench_data_torchvision.py loader FOLDER WORKERS --batch 64 --epochs 1
    python _bench_data_torchvision.py stages FOLDER --images 128

``loader``: ``torchvision.datasets.ImageFolder(FOLDER, transform=Compose([
RandomResizedCrop(224), RandomHorizontalFlip(), ToTensor(), Normalize(ImageNet
mean, std)]))`` through ``torch.utils.data.DataLoader(batch_size, shuffle=True,
num_workers=WORKERS)``. ``torch.set_num_threads(1)`` in the main process, as
torch's DataLoader does in each worker, so the main process with 0 workers
runs the same single-threaded ops its workers would (glassnet's transforms are
single-threaded NumPy); the main process also gets :func:`retain_freed_memory`
(``--default-malloc`` to skip), as glassnet's side does. One untimed warm-up epoch (which also gathers the
sanity statistics: images seen, label sum, per-channel mean/std of the
batches), then ``--epochs`` timed epochs, worker start-up included
(``persistent_workers=False``, the default), or with ``--persistent-workers``
the steady state of workers kept from epoch to epoch (what a training run
uses: ``glassnet train`` keeps its workers), their CPU read from ``/proc``.

``stages``: CPU time per image of each step of the pipeline, in this process
without a DataLoader (see ``bench_data.py``).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------
# worker CPU time (shared with bench_data.py: stdlib only)
# --------------------------------------------------------------------------
def _write_cpu(directory):
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.path.join(directory, str(os.getpid())), "w") as f:
        f.write(repr(ru.ru_utime + ru.ru_stime))


def record_cpu_at_exit(directory, worker_id):
    """worker_init_fn of both libraries: the worker writes its CPU time into ``directory`` as it exits."""
    from multiprocessing import util

    util.Finalize(None, _write_cpu, args=(directory,), exitpriority=100)


def workers_cpu(directory, expected, wait_s=10.0):
    """The CPU seconds of the ``expected`` workers that reported into ``directory``."""
    deadline = time.monotonic() + wait_s
    while len(os.listdir(directory)) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    files = os.listdir(directory)
    if len(files) < expected:
        raise SystemExit(f"only {len(files)} of {expected} workers reported their CPU time")
    return sum(float(open(os.path.join(directory, f)).read()) for f in files)


def pids_cpu(pids):
    """The CPU seconds (user + system) the processes ``pids`` have used so far, from ``/proc/PID/stat``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return total / tick


def start_worker_cpu(loader, workers, reports, pids):
    """Start measuring one timed epoch's worker CPU; returns a function giving the seconds so far.

    Persistent workers (``pids``, either library's) are read from ``/proc``; fresh ones report
    their ``getrusage`` into ``reports`` as they exit (set up here as ``loader.worker_init_fn``,
    which both libraries' DataLoaders call in each new worker)."""
    if pids:
        start = pids_cpu(pids)
        return lambda: pids_cpu(pids) - start
    if not workers:
        return lambda: 0.0
    import functools

    loader.worker_init_fn = functools.partial(record_cpu_at_exit, reports)
    return lambda: workers_cpu(reports, workers)


def retain_freed_memory() -> bool:
    """glibc ``M_MMAP_MAX = 0`` and a 2 GiB ``M_TRIM_THRESHOLD``: what ``glassnet.backend.retain_freed_memory``
    does (copied: glassnet is not installed beside torchvision), so both main processes run with it."""
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(-4, 0)) and bool(mallopt(-1, 2**31 - 1))


def cpu_now():
    """CPU seconds (user + system) of this process."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class EpochStats:
    """Images seen, label sum and per-channel sums of an epoch's batches (float64)."""

    def __init__(self):
        self.count = 0
        self.label_sum = 0
        self.s1 = None
        self.s2 = None
        self.pixels = 0
        self.shape = None
        self.dtype = None

    def add(self, x, y):
        import numpy as np

        x = np.asarray(x)
        self.shape, self.dtype = list(x.shape[1:]), str(x.dtype)
        self.count += len(y)
        self.label_sum += int(np.asarray(y, dtype=np.int64).sum())
        xd = x.astype(np.float64)
        s1, s2 = xd.sum(axis=(0, 2, 3)), (xd * xd).sum(axis=(0, 2, 3))
        self.s1 = s1 if self.s1 is None else self.s1 + s1
        self.s2 = s2 if self.s2 is None else self.s2 + s2
        self.pixels += x.shape[0] * x.shape[2] * x.shape[3]

    def as_dict(self):
        mean = self.s1 / self.pixels
        std = (self.s2 / self.pixels - mean * mean) ** 0.5
        return {"count": self.count, "label_sum": self.label_sum, "mean": mean.tolist(), "std": std.tolist(),
                "shape": self.shape, "dtype": self.dtype}


# --------------------------------------------------------------------------
# torchvision
# --------------------------------------------------------------------------
def _transform():
    from torchvision import transforms as T

    return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def loader(folder, workers, batch, epochs, default_malloc=False, persistent=False):
    import tempfile

    import torch
    from torchvision.datasets import ImageFolder

    torch.set_num_threads(1)
    if not default_malloc:
        retain_freed_memory()
    ds = ImageFolder(folder, transform=_transform())
    gen = torch.Generator()
    gen.manual_seed(0)
    torch.manual_seed(0)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, generator=gen,
                                     persistent_workers=persistent)
    stats = EpochStats()
    for x, y in dl:  # warm-up epoch, untimed: the sanity statistics
        stats.add(x.numpy(), y.numpy())
    rates, main_cpu, total_cpu, seconds = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for e in range(epochs):
            reports = os.path.join(tmp, str(e))
            os.mkdir(reports)
            pids = [w.pid for w in dl._iterator._workers] if persistent else []
            worker_cpu = start_worker_cpu(dl, workers, reports, pids)
            t0, c0, count = time.perf_counter(), cpu_now(), 0
            for x, y in dl:
                count += len(y)
            dt = time.perf_counter() - t0
            c = cpu_now() - c0
            seconds.append(dt)
            rates.append(count / dt)
            main_cpu.append(c / count)
            total_cpu.append((c + worker_cpu()) / count)
    print(json.dumps({"images_per_s": rates, "seconds": seconds, "main_cpu_s_per_image": main_cpu,
                      "total_cpu_s_per_image": total_cpu, "stats": stats.as_dict(),
                      "torch_threads": torch.get_num_threads()}))


def _median_cpu_per_item(fn, items, repeat):
    """(median CPU s per item of ``fn`` over ``repeat`` passes, the outputs of one more, untimed, pass).

    The timed passes drop each output at once, so the memory is reused as in a loader's steady state
    (keeping a list of them would time the page faults of fresh memory instead)."""
    per = []
    for _ in range(repeat):
        c0 = time.process_time()
        for it in items:
            fn(it)
        per.append((time.process_time() - c0) / len(items))
    return statistics.median(per), [fn(it) for it in items]


def stages(folder, images, repeat, batch, default_malloc=False):
    """CPU s per image of each step of torchvision's pipeline, on the folder's first ``images`` files."""
    import hashlib

    import numpy as np
    import torch
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import pil_loader
    from torch.utils.data import default_collate

    torch.set_num_threads(1)
    if not default_malloc:
        retain_freed_memory()
    torch.manual_seed(0)
    paths = [p for p, _ in ImageFolder(folder).samples[:images]]
    res = {}

    def read(p):
        with open(p, "rb") as f:
            return f.read()

    res["read file"], _ = _median_cpu_per_item(read, paths, repeat)
    res["decode (PIL pil_loader)"], pils = _median_cpu_per_item(pil_loader, paths, repeat)
    digest = hashlib.blake2b(digest_size=16)
    for im in pils:
        digest.update(np.ascontiguousarray(np.asarray(im)).tobytes())
    rrc, flip, tot, norm = T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), \
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    res["RandomResizedCrop(224)"], crops = _median_cpu_per_item(rrc, pils, repeat)
    res["RandomHorizontalFlip"], flips = _median_cpu_per_item(flip, crops, repeat)
    res["ToTensor / ToFloat"], tens = _median_cpu_per_item(tot, flips, repeat)
    res["Normalize"], normed = _median_cpu_per_item(norm, tens, repeat)
    items = [(x, 0) for x in normed]
    batches = [items[i:i + batch] for i in range(0, len(items) - batch + 1, batch)] or [items]
    per, _ = _median_cpu_per_item(default_collate, batches, repeat)
    res["collate (stack a batch)"] = per / len(batches[0])
    print(json.dumps({"stages_s_per_image": res, "decoded_blake2b": digest.hexdigest(), "images": len(paths),
                      "versions": {"torch": torch.__version__, "torchvision": __import__("torchvision").__version__,
                                   "PIL": __import__("PIL").__version__}}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("loader", "stages", "versions"))
    ap.add_argument("folder", nargs="?")
    ap.add_argument("workers", type=int, nargs="?", default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--default-malloc", action="store_true", help="skip retain_freed_memory() in the main process")
    ap.add_argument("--persistent-workers", action="store_true", help="keep the workers from epoch to epoch")
    args = ap.parse_args()
    if args.mode == "versions":
        import PIL
        import torch
        import torchvision

        print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__, "PIL": PIL.__version__,
                          "python": sys.version.split()[0]}))
    elif args.mode == "loader":
        loader(args.folder, args.workers, args.batch, args.epochs, args.default_malloc,
               args.persistent_workers and args.workers > 0)
    else:
        stages(args.folder, args.images, args.repeat, args.batch, args.default_malloc)


if __name__ == "__main__":
    main()
