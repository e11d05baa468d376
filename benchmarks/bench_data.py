"""Photo loading: glassnet's ImageFolder / ImageCache + DataLoader vs torchvision's ImageFolder + DataLoader, images/s.

What it measures
----------------
A folder of ``--images`` (2,000) photo-like JPEGs, 500x375, quality 90, in
``--classes`` (10) class subfolders, made once by this script and kept under
``--work`` (default: ``$TMPDIR/glassnet-bench-data``): each image is a
bicubically upsampled coarse colour grid (smooth gradients), 4-9 filled
ellipses / rectangles / polygons blurred at their edges, a 1/f-like texture
(six octaves of smooth noise, amplitude ~ scale^0.5) and sensor noise (sigma
3), so that it compresses like a photo (~70 KB, ~3 bits per pixel at
quality 90, 4:2:0). The decoded-image cache of that folder is made once with
``glassnet.data.prepare_image_cache(folder, cache, size=256)`` (the time it
took is printed).

Every contender reads the folder with ImageNet's training augmentation,
batch 64, shuffled, for each worker count in ``--workers`` (0 1 2):

==================  ==============================================================================
contender           pipeline
==================  ==============================================================================
folder-pil          ``glassnet.data.ImageFolder(folder, transform, backend="pil")``
folder-simplejpeg   ``ImageFolder(folder, transform, backend="simplejpeg")``
cache               ``ImageCache(cache, transform)`` (random crops of the 256x256 cached images)
torchvision         ``torchvision.datasets.ImageFolder(folder, transform)`` (Pillow, ``pil_loader``)
==================  ==============================================================================

glassnet's transform is ``Compose([RandomResizedCrop(224), RandomHorizontalFlip(), ToFloat(),
Normalize(IMAGENET_MEAN, IMAGENET_STD)])`` through ``glassnet.data.DataLoader(batch_size=64,
shuffle=True, seed=0, num_workers=W)`` (forkserver workers, batches in shared memory);
torchvision's is ``transforms.Compose([RandomResizedCrop(224), RandomHorizontalFlip(), ToTensor(),
Normalize(mean, std)])`` (v1 transforms, on PIL images) through ``torch.utils.data.DataLoader(
batch_size=64, shuffle=True, num_workers=W)`` (fork workers), run by
``benchmarks/_bench_data_torchvision.py`` in torchvision's own interpreter
(``--torchvision-python``; glassnet is not installed there), with
``torch.set_num_threads(1)`` in its main process as torch's DataLoader sets in
each worker (glassnet's transforms are single-threaded NumPy/Pillow, so both
main processes then run one thread). Both main processes get
``retain_freed_memory()``'s malloc settings (``--default-malloc`` to skip), as
``glassnet train`` and the other benchmarks apply; glassnet's workers always
have them, torch's workers have glibc's defaults.

Each (contender, workers) runs in a **fresh process**; the rounds alternate
which library goes first (round 1: glassnet's three, then torchvision, at each
worker count; round 2: torchvision first; ...). A process runs one untimed
warm-up epoch (starting glassnet's fork server, filling the page cache, and
gathering the sanity statistics below), then ``--epochs`` (1) timed epochs,
each from ``iter()`` to the last batch, worker start-up included
(``persistent_workers=False``, both libraries' default) -- or, with
``--persistent-workers``, by the warm-up epoch's workers kept alive (both
libraries; what ``glassnet train`` does), the steady state of a long run. Reported: images/s
(median over rounds), the glassnet/torchvision ratio of medians and the
median of the per-round ratios (which cancels slow drifts of the load), and
CPU ms per image in the main process and in all processes (main + workers,
each worker reporting its ``getrusage`` as it exits; persistent workers
are read from ``/proc``): CPU time is what the
loading costs, insensitive to other jobs competing for the cores, unlike
images/s; ``2 cores / CPU per image`` is the rate an idle 2-core machine
would allow.

Correctness first: the decoded pixels of the first files through glassnet's
Pillow path equal torchvision's ``pil_loader`` bit for bit (digest), and
simplejpeg's are compared with Pillow's; each warm-up epoch must deliver every
image once (count and label sum), as (3, 224, 224) float32, with per-channel
mean/std close to torchvision's (a loose statistical check: random crops).

Where the time goes: a ``stages`` child per library times (CPU time, no
DataLoader, one process) each step of the pipeline on the folder's first
``--stage-images`` files: file read, decode, RandomResizedCrop, flip, float
conversion, Normalize, collation into a batch (and, for the cache, the copy of
a cached row and RandomResizedCrop from 256x256). Loader overhead = the
loader's measured CPU per image minus the sum of the stages.

Training throughput: glassnet's ResNet-18 (``get_model("resnet18",
num_classes=classes)``, 224x224, SGD momentum 0.9, cross-entropy) fed from the
folder by ``ImageFolder(backend="simplejpeg")`` + ``DataLoader(batch_size=
--train-batch, num_workers=--train-workers)``: ``--train-warmup`` untimed steps,
then ``--train-steps`` timed ones (images/s, and the time the step waited for
its batch), then as many steps on the last batch without the loader (the
model alone, for comparison).

How to run (from the repository root)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_data.py   # 8 min at load 1-4
    .venv/bin/python benchmarks/bench_data.py --images 1000 --json /tmp/bench/data.json
    .venv/bin/python benchmarks/bench_data.py --quick --work /tmp/bd      # smoke run: 32 images, 1 round
    .venv/bin/python benchmarks/bench_data.py --no-torchvision --no-train
    .venv/bin/python benchmarks/bench_data.py --only train --train-steps 8

The folder and cache are reused from ``--work`` when they are there (the cache
is checked against the folder by ``ImageCache``; a partial folder is rebuilt).
"""
from __future__ import annotations

import _blas_env  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.append(_p)

from _bench_data_torchvision import EpochStats, cpu_now, start_worker_cpu  # noqa: E402
from _timing import dump_json, environment, print_header, print_table  # noqa: E402

TV_HELPER = os.path.join(HERE, "_bench_data_torchvision.py")
DEFAULT_TV_PYTHON = "/work/tvenv/bin/python"
WIDTH, HEIGHT, QUALITY = 500, 375, 90
GENERATOR_VERSION = 1  # bump when make_photo changes: the folders are cached under names that include it
GLASSNET_CONTENDERS = ("folder-pil", "folder-simplejpeg", "cache")
CONTENDERS = GLASSNET_CONTENDERS + ("torchvision",)


# --------------------------------------------------------------------------
# the photo folder
# --------------------------------------------------------------------------
def make_photo(seed: int) -> np.ndarray:
    """A 375x500x3 uint8 photo-like image: smooth gradients, blurred shapes, 1/f texture, noise."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng([GENERATOR_VERSION, seed])
    gh, gw = int(rng.integers(2, 6)), int(rng.integers(2, 7))
    grid = rng.integers(0, 256, (gh, gw, 3), dtype=np.uint8)
    base = Image.fromarray(grid, "RGB").resize((WIDTH, HEIGHT), Image.BICUBIC)
    draw = ImageDraw.Draw(base)
    for _ in range(int(rng.integers(4, 10))):
        x0, y0 = int(rng.integers(-100, WIDTH)), int(rng.integers(-100, HEIGHT))
        x1, y1 = x0 + int(rng.integers(30, 300)), y0 + int(rng.integers(30, 250))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.polygon([(int(a), int(b)) for a, b in zip(rng.integers(x0, x1, 5), rng.integers(y0, y1, 5))],
                         fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5))))
    a = np.asarray(base, dtype=np.float32)
    tex = np.zeros((HEIGHT, WIDTH), np.float32)
    for s in (1, 2, 4, 8, 16, 32):  # octaves of smooth noise, amplitude ~ scale^0.5 (a 1/f-like spectrum)
        n = rng.standard_normal((HEIGHT // s + 2, WIDTH // s + 2)).astype(np.float32)
        tex += np.asarray(Image.fromarray(n, "F").resize((WIDTH, HEIGHT), Image.BICUBIC)) * np.float32(s ** 0.5)
    amp = np.float32(40 * rng.uniform(0.5, 1.5) / 32 ** 0.5)
    a += (tex * amp)[..., None] * rng.uniform(0.7, 1.3, 3).astype(np.float32)
    a += rng.standard_normal((HEIGHT, WIDTH, 3)).astype(np.float32) * np.float32(3.0)
    return np.clip(a, 0, 255).astype(np.uint8)


def _write_photos(job):
    folder, rows = job
    from PIL import Image

    sizes = []
    for seed, rel in rows:
        path = os.path.join(folder, rel)
        Image.fromarray(make_photo(seed)).save(path, "JPEG", quality=QUALITY)
        sizes.append(os.path.getsize(path))
    return sizes


def folder_layout(n: int, classes: int) -> list:
    """``(seed, relative path)`` of each image: round-robin over the classes."""
    return [(i, os.path.join(f"class_{i % classes:02d}", f"img_{i:05d}.jpg")) for i in range(n)]


def ensure_folder(work: str, n: int, classes: int) -> tuple[str, dict]:
    """The photo folder (made now unless complete already) and what is known about it."""
    name = f"photos-{n}x{classes}-v{GENERATOR_VERSION}"
    folder, done = os.path.join(work, name), os.path.join(work, name + ".json")
    if os.path.isdir(folder) and os.path.isfile(done):
        with open(done) as f:
            info = json.load(f)
        info["reused"] = True
        return folder, info
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for c in range(classes):
        os.makedirs(os.path.join(tmp, f"class_{c:02d}"))
    layout = folder_layout(n, classes)
    procs = max(1, min(os.cpu_count() or 1, 8))
    jobs = [(tmp, layout[k::procs]) for k in range(procs)]
    t0 = time.perf_counter()
    import multiprocessing as mp

    with mp.get_context("fork").Pool(procs) as pool:  # before any thread of ours exists
        sizes = [s for part in pool.map(_write_photos, jobs) for s in part]
    os.rename(tmp, folder)
    info = {"images": n, "classes": classes, "width": WIDTH, "height": HEIGHT, "quality": QUALITY,
            "mean_kib": float(np.mean(sizes)) / 1024, "min_kib": min(sizes) / 1024, "max_kib": max(sizes) / 1024,
            "bits_per_pixel": float(np.mean(sizes)) * 8 / (WIDTH * HEIGHT), "seconds_to_make": time.perf_counter() - t0}
    with open(done, "w") as f:
        json.dump(info, f)
    info["reused"] = False
    return folder, info


def ensure_cache(work: str, folder: str, size: int = 256) -> tuple[str, dict]:
    """The decoded-image cache of ``folder`` (``prepare_image_cache`` now unless a valid one is there)."""
    from glassnet.data import CacheError, ImageCache, prepare_image_cache

    out = os.path.join(work, os.path.basename(folder) + f"-cache{size}")
    if os.path.isdir(out):
        try:
            ImageCache(out, source=folder)
            return out, {"reused": True}
        except CacheError:
            shutil.rmtree(out, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    prepare_image_cache(folder, out, size=size, progress=False)
    dt = time.perf_counter() - t0
    n = len(ImageCache(out))
    return out, {"reused": False, "seconds": dt, "images_per_s": n / dt, "main_cpu_s": time.process_time() - c0}


# --------------------------------------------------------------------------
# glassnet children
# --------------------------------------------------------------------------
def glassnet_transform():
    from glassnet.data import transforms as T

    return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToFloat(),
                      T.Normalize(T.IMAGENET_MEAN, T.IMAGENET_STD)])


def glassnet_dataset(contender: str, folder: str, cache: str):
    from glassnet.data import ImageCache, ImageFolder

    if contender == "cache":
        return ImageCache(cache, transform=glassnet_transform())
    backend = {"folder-pil": "pil", "folder-simplejpeg": "simplejpeg"}[contender]
    return ImageFolder(folder, transform=glassnet_transform(), backend=backend)


def _malloc(default_malloc: bool) -> None:
    if not default_malloc:
        from glassnet.backend import retain_freed_memory

        retain_freed_memory()


def child_loader(contender, workers, folder, cache, batch, epochs, default_malloc, persistent=False):
    """Runs in a fresh process: one warm-up epoch (statistics), then ``epochs`` timed ones (with
    ``persistent``, by the workers of the warm-up epoch, their CPU read from ``/proc``)."""
    from glassnet.data import DataLoader

    _malloc(default_malloc)
    ds = glassnet_dataset(contender, folder, cache)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, seed=0, num_workers=workers,
                        persistent_workers=persistent)
    stats = EpochStats()
    for x, y in loader:  # warm-up epoch, untimed
        stats.add(x, y)
    rates, seconds, main_cpu, total_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for e in range(epochs):
            reports = os.path.join(tmp, str(e))
            os.mkdir(reports)
            worker_cpu = start_worker_cpu(loader, workers, reports, loader._pool.pids if persistent else [])
            t0, c0, count = time.perf_counter(), cpu_now(), 0
            for x, y in loader:
                count += len(y)
            dt = time.perf_counter() - t0
            c = cpu_now() - c0
            seconds.append(dt)
            rates.append(count / dt)
            main_cpu.append(c / count)
            total_cpu.append((c + worker_cpu()) / count)
    loader.close()
    print(json.dumps({"images_per_s": rates, "seconds": seconds, "main_cpu_s_per_image": main_cpu,
                      "total_cpu_s_per_image": total_cpu, "stats": stats.as_dict()}))


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


def child_stages(folder, cache, images, repeat, batch, default_malloc):
    """CPU s per image of each step of glassnet's pipeline (one process, no DataLoader)."""
    from glassnet.data import ImageCache, ImageFolder, decode_image
    from glassnet.data import transforms as T
    from glassnet.data.collate import collate_items

    _malloc(default_malloc)
    paths = [p for p, _ in ImageFolder(folder).samples[:images]]
    rng = np.random.default_rng(0)
    rrc, flip, tofloat, norm = T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToFloat(), \
        T.Normalize(T.IMAGENET_MEAN, T.IMAGENET_STD)
    res = {}

    def read(p):
        with open(p, "rb") as f:
            return f.read()

    res["read file"], _ = _median_cpu_per_item(read, paths, repeat)
    res["decode (Pillow)"], pil = _median_cpu_per_item(lambda p: decode_image(p, backend="pil"), paths, repeat)
    res["decode (simplejpeg)"], sj = _median_cpu_per_item(lambda p: decode_image(p, backend="simplejpeg"), paths,
                                                          repeat)
    digest = hashlib.blake2b(digest_size=16)
    for x in pil:
        digest.update(np.ascontiguousarray(x.transpose(1, 2, 0)).tobytes())
    sj_diff = max(int(np.abs(a.astype(np.int16) - b).max()) for a, b in zip(pil, sj))
    res["RandomResizedCrop(224)"], crops = _median_cpu_per_item(lambda x: rrc(x, rng=rng), pil, repeat)
    res["RandomHorizontalFlip"], flips = _median_cpu_per_item(lambda x: flip(x, rng=rng), crops, repeat)
    res["ToTensor / ToFloat"], floats = _median_cpu_per_item(tofloat, flips, repeat)
    res["Normalize"], normed = _median_cpu_per_item(norm, floats, repeat)
    items = [(x, 0) for x in normed]
    batches = [items[i:i + batch] for i in range(0, len(items) - batch + 1, batch)] or [items]
    per, _ = _median_cpu_per_item(collate_items, batches, repeat)
    res["collate (stack a batch)"] = per / len(batches[0])
    cached = ImageCache(cache)
    rows = list(range(min(images, len(cached))))
    res["cache: copy a 256x256 row"], cimgs = _median_cpu_per_item(lambda i: np.array(cached.images[i]), rows, repeat)
    res["cache: RandomResizedCrop(224) from 256"], _ = _median_cpu_per_item(lambda x: rrc(x, rng=rng), cimgs, repeat)
    print(json.dumps({"stages_s_per_image": res, "decoded_blake2b": digest.hexdigest(),
                      "simplejpeg_vs_pillow_max_abs_diff": sj_diff, "images": len(paths)}))


def child_train(folder, classes, workers, batch, warmup, steps, default_malloc):
    """ResNet-18 training steps fed from the folder, then the same steps on one fixed batch."""
    import glassnet as gn
    import glassnet.nn as gnn
    from glassnet.data import DataLoader, ImageFolder
    from glassnet.models import get_model
    from glassnet.optim import SGD

    _malloc(default_malloc)
    gn.manual_seed(0)
    model = get_model("resnet18", num_classes=classes)
    model.train()
    loss_fn = gnn.CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []

    def step(x, y):
        loss = loss_fn(model(gn.from_numpy(np.asarray(x))), gn.from_numpy(np.asarray(y)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.data))

    ds = ImageFolder(folder, transform=glassnet_transform(), backend="simplejpeg")
    loader = DataLoader(ds, batch_size=batch, shuffle=True, seed=0, num_workers=workers, drop_last=True)
    if len(loader) < warmup + steps:
        raise SystemExit(f"train: the folder has {len(ds)} images, fewer than {warmup + steps} batches of {batch}")
    waits, step_s, step_cpu = [], [], []
    it = iter(loader)
    t_start = None
    last = None
    for k in range(warmup + steps):
        if k == warmup:
            t_start = time.perf_counter()
        t0 = time.perf_counter()
        x, y = next(it)
        t1, c1 = time.perf_counter(), time.process_time()
        step(x, y)
        t2, c2 = time.perf_counter(), time.process_time()
        if k >= warmup:
            waits.append(t1 - t0)
            step_s.append(t2 - t1)
            step_cpu.append(c2 - c1)
        if k == warmup + steps - 1:
            last = (np.array(x), np.array(y))
        del x, y
    total = time.perf_counter() - t_start
    it.close()
    fixed, fixed_cpu = [], []
    for k in range(steps):  # the model alone (warm by now): the last batch again, no loader
        t0, c0 = time.perf_counter(), time.process_time()
        step(*last)
        fixed.append(time.perf_counter() - t0)
        fixed_cpu.append(time.process_time() - c0)
    if not all(np.isfinite(losses)):
        raise SystemExit(f"train: non-finite loss {losses}")
    print(json.dumps({"images_per_s": batch * steps / total, "seconds": total, "wait_s": waits, "step_s": step_s,
                      "fixed_step_s": fixed, "step_cpu_s": step_cpu, "fixed_step_cpu_s": fixed_cpu, "fixed_images_per_s": batch * len(fixed) / sum(fixed),
                      "losses": losses}))


# --------------------------------------------------------------------------
# the parent
# --------------------------------------------------------------------------
def _run_child(cmd, what, timeout=None):
    load = os.getloadavg()[0]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"{what} failed (exit {p.returncode}):\n{p.stderr[-4000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["load_before"] = load
    return out


def _fmt(v, digits=1):
    if v is None:
        return "-"
    return f"{v:.{digits}f}"


def _check_stats(name, st, n, label_sum, ref=None, ref_name=None):
    """Every image once, (3, 224, 224) float32; channel mean/std near the reference's (random crops)."""
    if st["count"] != n or st["label_sum"] != label_sum:
        sys.exit(f"{name}: the warm-up epoch delivered {st['count']} images (label sum {st['label_sum']}); "
                 f"expected {n} ({label_sum})")
    if st["shape"] != [3, 224, 224] or st["dtype"] not in ("float32", "torch.float32"):
        sys.exit(f"{name}: batches of {st['shape']} {st['dtype']}, expected (3, 224, 224) float32")
    if ref is not None:
        tol = 0.05 + 3.0 / np.sqrt(n)  # per-image channel means spread ~1 (normalised units)
        dm = float(np.max(np.abs(np.subtract(st["mean"], ref["mean"]))))
        ds = float(np.max(np.abs(np.divide(st["std"], ref["std"]) - 1)))
        if dm > tol or ds > tol:
            sys.exit(f"{name}: channel mean {np.round(st['mean'], 3)} / std {np.round(st['std'], 3)} are far from "
                     f"{ref_name}'s {np.round(ref['mean'], 3)} / {np.round(ref['std'], 3)} (tolerance {tol:.3f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=2000, help="JPEGs in the folder (default 2000; 64 with --quick)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "glassnet-bench-data"),
                    help="where the folder and the cache are made and kept")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs per process (after the warm-up epoch)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stage-images", type=int, default=128)
    ap.add_argument("--torchvision-python", default=os.environ.get("GLASSNET_TORCHVISION_PYTHON", DEFAULT_TV_PYTHON),
                    help="a Python with torch + torchvision (default $GLASSNET_TORCHVISION_PYTHON or "
                         f"{DEFAULT_TV_PYTHON}); skipped when absent")
    ap.add_argument("--no-torchvision", action="store_true")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--only", choices=("loaders", "train"), help="only the loader rounds (with the stage profile) "
                    "or only the ResNet-18 training run")
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--train-workers", type=int, default=2)
    ap.add_argument("--train-warmup", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=4)
    ap.add_argument("--persistent-workers", action="store_true",
                    help="both libraries keep their workers from the warm-up epoch on (persistent_workers=True, "
                         "what glassnet train does): the steady state, without the start-up of each epoch")
    ap.add_argument("--default-malloc", action="store_true",
                    help="leave glibc malloc at its defaults in the main processes (default: retain_freed_memory)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 32 images in 4 classes, batches of 16, 1 round, 8 stage images, 1 training "
                         "step of 2 images (each smaller default can still be given explicitly)")
    ap.add_argument("--json", metavar="PATH", help="write the environment, settings and every sample here")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    if "--quick" in sys.argv[1:]:  # smaller defaults; options given explicitly still win
        ap.set_defaults(images=32, classes=4, batch=16, rounds=1, epochs=1, stage_images=8, train_batch=2,
                        train_warmup=0, train_steps=1)
    args = ap.parse_args()
    if args.child:
        kind = args.child[0]
        if kind == "loader":
            return child_loader(args.child[1], int(args.child[2]), args.folder, args.cache, args.batch, args.epochs,
                                args.default_malloc, args.persistent_workers and int(args.child[2]) > 0)
        if kind == "stages":
            return child_stages(args.folder, args.cache, args.stage_images, 1 if args.quick else 3, args.batch,
                                args.default_malloc)
        if kind == "train":
            return child_train(args.folder, args.classes, args.train_workers, args.train_batch, args.train_warmup,
                               args.train_steps, args.default_malloc)
        raise SystemExit(f"unknown child {kind}")

    t_run = time.perf_counter()
    tv_python = None if args.no_torchvision else args.torchvision_python
    tv_versions = None
    if tv_python and not os.path.exists(tv_python):
        print(f"note: {tv_python} not found: the torchvision side is skipped (--torchvision-python PATH)")
        tv_python = None
    if tv_python:
        tv_versions = _run_child([tv_python, TV_HELPER, "versions"], "torchvision versions")
    contenders = [c for c in args.contenders if c != "torchvision" or tv_python]
    sys.modules.setdefault("torch", None)  # environment() would import this venv's torch; torch runs elsewhere here
    env = environment()
    env["torchvision_side"] = tv_versions
    env["simplejpeg"] = getattr(__import__("simplejpeg"), "__version__", "?")
    env["PIL"] = __import__("PIL").__version__
    settings = {k: getattr(args, k) for k in ("images", "classes", "workers", "batch", "epochs", "rounds",
                                               "persistent_workers", "train_batch", "train_workers", "train_steps")}
    settings["contenders"] = contenders
    print_header("bench_data: photo folder -> RandomResizedCrop(224)+flip+Normalize, batches of "
                 f"{args.batch}", env, settings)
    print(f"decoders  Pillow {env['PIL']}, simplejpeg {env['simplejpeg']}")
    if tv_versions:
        print(f"torchvision side  {tv_python}: python {tv_versions['python']}, torch {tv_versions['torch']}, "
              f"torchvision {tv_versions['torchvision']}, Pillow {tv_versions['PIL']}; torch.set_num_threads(1) "
              "in its main process (as in its DataLoader workers)")
    sys.stdout.flush()

    os.makedirs(args.work, exist_ok=True)
    folder, finfo = ensure_folder(args.work, args.images, args.classes)
    print(f"\nfolder    {folder}: {finfo['images']} JPEGs {WIDTH}x{HEIGHT} q{QUALITY} in {finfo['classes']} classes, "
          f"{finfo['mean_kib']:.1f} KiB each ({finfo['min_kib']:.0f}-{finfo['max_kib']:.0f}), "
          f"{finfo['bits_per_pixel']:.2f} bits/pixel" + (" (reused)" if finfo["reused"] else
                                                         f" (made in {finfo['seconds_to_make']:.0f} s)"))
    cache, cinfo = ensure_cache(args.work, folder)
    print(f"cache     {cache}: prepare_image_cache(size=256) " +
          ("(reused)" if cinfo["reused"] else
           f"took {cinfo['seconds']:.1f} s ({cinfo['images_per_s']:.0f} images/s, all cores)"))
    sys.stdout.flush()
    from glassnet.data import ImageFolder

    targets = ImageFolder(folder).targets
    n, label_sum = len(targets), int(sum(targets))
    me = [sys.executable, os.path.abspath(__file__), "--folder", folder, "--cache", cache, "--batch", str(args.batch),
          "--epochs", str(args.epochs), "--stage-images", str(args.stage_images), "--classes", str(args.classes)]
    if args.quick:
        me.append("--quick")
    tv_flags = []
    if args.default_malloc:
        me.append("--default-malloc")
        tv_flags.append("--default-malloc")
    if args.persistent_workers:
        me.append("--persistent-workers")
        tv_flags.append("--persistent-workers")

    res, stages, summary = {}, {}, {}
    if args.only != "train":
        # correctness + where the time goes
        stages = {"glassnet": _run_child(me + ["--child", "stages"], "glassnet stages")}
        if tv_python:
            cmd = [tv_python, TV_HELPER, "stages", folder, "--images", str(args.stage_images),
                   "--repeat", "1" if args.quick else "3", "--batch", str(args.batch)] + tv_flags
            stages["torchvision"] = _run_child(cmd, "torchvision stages")
            same = stages["glassnet"]["decoded_blake2b"] == stages["torchvision"]["decoded_blake2b"]
            if not same:
                sys.exit("glassnet's Pillow decode of the folder's first files differs from torchvision's pil_loader")
            print(f"\npixels check: glassnet's Pillow decode of the first {stages['glassnet']['images']} files equals "
                  "torchvision's pil_loader bit for bit", end="")
        else:
            print("\npixels check: (no torchvision)", end="")
        print(f"; simplejpeg vs Pillow: max |diff| {stages['glassnet']['simplejpeg_vs_pillow_max_abs_diff']}")
        sys.stdout.flush()

        # the rounds
        res = {(c, w): [] for c in contenders for w in args.workers}
        g_order = [c for c in contenders if c != "torchvision"]
        for r in range(args.rounds):
            for w in args.workers:
                order = g_order + (["torchvision"] if "torchvision" in contenders else [])
                if r % 2:
                    order = order[-1:] + order[:-1] if "torchvision" in contenders else order[::-1]
                for c in order:
                    if c == "torchvision":
                        cmd = [tv_python, TV_HELPER, "loader", folder, str(w), "--batch", str(args.batch),
                               "--epochs", str(args.epochs)] + tv_flags
                    else:
                        cmd = me + ["--child", "loader", c, str(w)]
                    out = _run_child(cmd, f"{c} with {w} workers")
                    res[(c, w)].append(out)
                    rate = statistics.median(out["images_per_s"])
                    print(f"  round {r + 1} workers {w} {c:18s} {rate:7.1f} images/s  "
                          f"{1000 * statistics.median(out['total_cpu_s_per_image']):5.2f} CPU ms/image  "
                          f"(load {out['load_before']:.1f})", flush=True)
        ref = res[("torchvision", args.workers[0])][0]["stats"] if "torchvision" in contenders else \
            res[(contenders[0], args.workers[0])][0]["stats"]
        for (c, w), outs in res.items():
            for o in outs:
                _check_stats(f"{c} with {w} workers", o["stats"], n, label_sum, ref, "torchvision" if
                             "torchvision" in contenders else contenders[0])
        print(f"\nsanity check: every process's warm-up epoch delivered all {n} images once as (3, 224, 224) float32 "
              "with channel statistics matching " + ("torchvision's" if "torchvision" in contenders else "each other"))

        def med(c, w, key="images_per_s"):
            if (c, w) not in res:
                return None
            return statistics.median(statistics.median(o[key]) for o in res[(c, w)])

        def paired(c, w):
            if (c, w) not in res or ("torchvision", w) not in res:
                return None
            return statistics.median(statistics.median(a["images_per_s"]) / statistics.median(b["images_per_s"])
                                     for a, b in zip(res[(c, w)], res[("torchvision", w)]))

        rows = []
        summary = {}
        for c in g_order:
            for w in args.workers:
                g, t = med(c, w), med("torchvision", w)
                gc, tc = med(c, w, "total_cpu_s_per_image"), med("torchvision", w, "total_cpu_s_per_image")
                summary[(c, w)] = {"glassnet": g, "torchvision": t, "ratio": g / t if t else None,
                                   "paired": paired(c, w),
                                   "glassnet_cpu_ms": 1000 * gc, "torchvision_cpu_ms": 1000 * tc if tc else None}
                rows.append([c, w, _fmt(g), _fmt(t), _fmt(g / t if t else None, 2), _fmt(paired(c, w), 2),
                             _fmt(1000 * med(c, w, "main_cpu_s_per_image"), 2), _fmt(1000 * gc, 2),
                             _fmt(1000 * tc if tc else None, 2), _fmt(gc / tc if tc else None, 2),
                             _fmt(2 / gc), _fmt(2 / tc if tc else None)])
        print_table(["glassnet contender", "workers", "g img/s", "tv img/s", "g/tv", "g/tv paired", "g main CPU ms/img",
                     "g CPU ms/img", "tv CPU ms/img", "g/tv CPU", "g 2-core bound", "tv 2-core bound"], rows,
                    title=f"images/s, median of {args.rounds} rounds (g = glassnet, tv = torchvision ImageFolder + "
                          "DataLoader, Pillow; g/tv > 1: glassnet faster; CPU = main + workers)")
        if "torchvision" in contenders:
            print("torchvision main CPU ms/img: " + ", ".join(
                f"{w} workers {1000 * med('torchvision', w, 'main_cpu_s_per_image'):.2f}" for w in args.workers))
        folder_best = "folder-simplejpeg" if "folder-simplejpeg" in g_order else (g_order[0] if g_order else None)
        if "cache" in g_order and folder_best and folder_best != "cache":
            print_table(["workers", "cache img/s", f"{folder_best} img/s", "cache/folder", "folder-pil img/s",
                         "cache/folder-pil", "cache CPU ms/img", "folder CPU ms/img"],
                        [[w, _fmt(med("cache", w)), _fmt(med(folder_best, w)),
                          _fmt(med("cache", w) / med(folder_best, w), 2),
                          _fmt(med("folder-pil", w)), _fmt(med("cache", w) / med("folder-pil", w), 2)
                          if ("folder-pil", w) in res else "-",
                          _fmt(1000 * med("cache", w, "total_cpu_s_per_image"), 2),
                          _fmt(1000 * med(folder_best, w, "total_cpu_s_per_image"), 2)] for w in args.workers],
                        title="decoded-image cache vs the folder (glassnet)")

        names = list(stages["glassnet"]["stages_s_per_image"])
        tvs = stages.get("torchvision", {}).get("stages_s_per_image", {})
        srows = [[k, _fmt(1000 * stages["glassnet"]["stages_s_per_image"][k], 3),
                  _fmt(1000 * tvs[k], 3) if k in tvs else "-"] for k in names]
        for k in tvs:
            if k not in names:
                srows.append([k, "-", _fmt(1000 * tvs[k], 3)])
        gs = stages["glassnet"]["stages_s_per_image"]
        common = ["RandomResizedCrop(224)", "RandomHorizontalFlip", "ToTensor / ToFloat", "Normalize",
                  "collate (stack a batch)"]
        sums = {"folder-pil": gs["decode (Pillow)"] + sum(gs[k] for k in common),
                "folder-simplejpeg": gs["decode (simplejpeg)"] + sum(gs[k] for k in common),
                "cache": gs["cache: copy a 256x256 row"] + gs["cache: RandomResizedCrop(224) from 256"] +
                sum(gs[k] for k in common[1:])}
        if tvs:
            sums["torchvision"] = tvs["decode (PIL pil_loader)"] + sum(tvs[k] for k in common)
        for c, s in sums.items():
            w0 = med(c, args.workers[0], "total_cpu_s_per_image") if (c, args.workers[0]) in res else None
            srows.append([f"sum for {c}", _fmt(1000 * s, 3) if c != "torchvision" else "-",
                          _fmt(1000 * s, 3) if c == "torchvision" else "-"])
            if w0 is not None:
                for w in args.workers:
                    tot = med(c, w, "total_cpu_s_per_image")
                    srows.append([f"  {c} loader, {w} workers: CPU - sum", *(
                        [_fmt(1000 * (tot - s), 3), "-"] if c != "torchvision" else ["-", _fmt(1000 * (tot - s), 3)])])
        print_table(["stage (CPU ms per image)", "glassnet", "torchvision"], srows,
                    title=f"where the time goes: CPU ms per image of each step, one process, first "
                          f"{stages['glassnet']['images']} files (decode includes the file read); 'CPU - sum' = the "
                          "loader's measured CPU per image minus the steps: sampling, RNG, Python, worker start, IPC")

    train = None
    if not args.no_train and args.only != "loaders":
        train = _run_child(me + ["--child", "train", "--train-batch", str(args.train_batch), "--train-workers",
                                 str(args.train_workers), "--train-warmup", str(args.train_warmup), "--train-steps",
                                 str(args.train_steps)], "ResNet-18 training")
        step, wait, fixed, scpu, fcpu = (statistics.median(train[k]) for k in (
            "step_s", "wait_s", "fixed_step_s", "step_cpu_s", "fixed_step_cpu_s"))
        print_table(["ResNet-18 training, 224x224", "batch", "steps", "images/s", "images/s (median step)",
                     "step ms (median)", "step CPU ms (median)", "wait for batch ms (median)"],
                    [[f"from the folder (simplejpeg), {args.train_workers} workers", args.train_batch,
                      args.train_steps, _fmt(train["images_per_s"], 2), _fmt(args.train_batch / (step + wait), 2),
                      _fmt(1000 * step, 0), _fmt(1000 * scpu, 0), _fmt(1000 * wait, 0)],
                     ["one fixed batch, no loader", args.train_batch, args.train_steps,
                      _fmt(train["fixed_images_per_s"], 2), _fmt(args.train_batch / fixed, 2), _fmt(1000 * fixed, 0),
                      _fmt(1000 * fcpu, 0), "-"]],
                    title=f"glassnet ResNet-18 training throughput (SGD momentum; load {train['load_before']:.1f} "
                          "when it started)")
    loads = [o["load_before"] for outs in res.values() for o in outs] + ([train["load_before"]] if train else [])
    if loads:
        print(f"\nload average (1 min) before each process: {min(loads):.1f}-{max(loads):.1f} "
              f"(median {statistics.median(loads):.1f}); total run {time.perf_counter() - t_run:.0f} s")
    if args.json:
        dump_json(args.json, env, settings, {
            "folder": finfo, "cache": cinfo, "stages": stages, "train": train,
            "samples": {f"{c}/{w}": outs for (c, w), outs in res.items()},
            "summary": {f"{c}/{w}": s for (c, w), s in summary.items()}})


if __name__ == "__main__":
    main()
