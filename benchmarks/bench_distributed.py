"""Data parallelism on MPI: glassnet's gradient buckets against bare mpi4py, overlap, scaling, a cost model.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_distributed.py
    .venv/bin/python benchmarks/bench_distributed.py --quick --json /tmp/bench/dist.json

Each measurement is an ``mpiexec -n N`` run of ``_distributed_child.py`` (the mpich wheel's mpiexec
beside this Python; OPENBLAS_NUM_THREADS = cores / N per rank, at least 1). Reported:

1. **Allreduce of ResNet-18's and VGG16's gradients** (float32, 2 ranks): one bare
   ``comm.Allreduce`` of a buffer of the buckets' bytes (the engine's own limit) against glassnet's
   buckets (25 and 5 MiB): ``comm`` = the buckets' ``Iallreduce`` + wait, ``full`` = ``reduce_now()``
   (copy into the buckets, allreduce, divide, copy back into ``.grad``); ratio to bare.
2. **Hidden fraction** for ResNet-18 at 2 ranks: DDP training steps alternating with the same steps
   under ``no_sync()`` (no traffic). ``hidden (wait)`` = 1 − (wait after backward) / (the buckets'
   allreduces alone): the share of the communication done by the time backward ends. ``hidden (step)``
   = 1 − (DDP step − local step) / ``reduce_now()`` alone: what the whole synchronisation (copies
   included) adds to a step — on a machine with no idle core this is the honest figure.
3. **Step time and images/s** at 1, 2 and 4 ranks (ResNet-18, per-rank batch ``--batch``).
4. **Ring-allreduce cost model** T(N, bytes) = 2(N−1)/N · bytes/B + 2(N−1)·α per bucket, (α, B) fitted
   to the 2-rank bare sweep (8 B .. 256 MiB: α from ≤ 512 B, B from ≥ 16 MiB), checked against the buckets and the 4-rank sweep, and used
   to predict ResNet-50 / VGG16 data parallelism on 8-256 GPUs over stated networks.
"""
from __future__ import annotations

import _blas_env  # noqa: F401 (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _timing import dump_json, environment, print_header, print_table  # noqa: E402

CHILD = os.path.join(HERE, "_distributed_child.py")
MiB = 1 << 20
# networks for the predictions: (name, model) -- see predict()
IB_BW, IB_ALPHA = 12.5e9, 5e-6         # 100 Gb/s InfiniBand EDR line rate; per-step latency incl. software
NVL_BW, NVL_ALPHA = 360e9, 2e-6         # NVLink/NVSwitch allreduce bus bandwidth of an H100-class node
ASSUMED_IMG_S = {"resnet50": 800.0, "vgg16": 400.0}   # one A100-class GPU, TF32, batch 64 (assumption)
GPU_BATCH = 64


def mpiexec() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else "mpiexec"


def run_child(n, phase, *extra, threads=None):
    threads = threads or max(1, (os.cpu_count() or 1) // n)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") and not k.startswith(("PMI", "OMPI_"))}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        cmd = [mpiexec(), "-n", str(n), sys.executable, CHILD, phase, "--out", out, *map(str, extra)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
        with open(out) as f:
            return json.load(f)


def ms(s):
    return f"{s * 1e3:.2f}" if s < 10 else f"{s * 1e3:.0f}"


# ------------------------------------------------------------------ cost model
def fit(sweep: dict, n: int = 2):
    """(α, B) of T = 2(N−1)·α + 2(N−1)/N · bytes/B: α from the fastest sample of the messages ≤ 512 B
    (latency-bound; their medians measure the scheduler of a busy machine more than MPI),
    then B by least squares (relative error) on those ≥ 16 MiB, the memory-bound regime gradient
    buckets live in (between 4 KiB and ~8 MiB the buffers stay in cache and go several times faster)."""
    sizes = np.array([float(k) for k in sweep])
    t = np.array([v["median_s"] for v in sweep.values()])
    fastest = np.array([v["min_s"] for v in sweep.values()])
    alpha = float(np.median(fastest[sizes <= 512])) / (2 * (n - 1))
    big = sizes >= 16 * MiB
    x = 2 * (n - 1) / n * sizes[big] / t[big]
    y = (t[big] - 2 * (n - 1) * alpha) / t[big]
    inv_bw = float(x @ y / (x @ x))
    return alpha, 1 / inv_bw


def ring(n, nbytes, bw, alpha):
    return 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * alpha if n > 1 else 0.0


def bucket_sizes(shapes, cap_bytes, itemsize=4):
    """Bucket byte sizes by glassnet's rule (reverse order, closed once >= cap)."""
    sizes, cur = [], 0
    for s in reversed(shapes):
        cur += int(np.prod(s)) * itemsize
        if cur >= cap_bytes:
            sizes.append(cur)
            cur = 0
    return sizes + ([cur] if cur else [])


def hierarchical(n, nbytes):
    """8-GPU nodes: reduce-scatter over NVLink, ring allreduce of 1/8 of the bytes per GPU over its
    own 100 Gb/s NIC across the n/8 nodes, all-gather over NVLink."""
    g = min(n, 8)
    intra = 2 * (g - 1) / g * nbytes / NVL_BW + 2 * (g - 1) * NVL_ALPHA
    return intra + ring(max(1, n // 8), nbytes / g, IB_BW, IB_ALPHA)


def predict(shapes, name, cap_mb=25):
    buckets = bucket_sizes(shapes, cap_mb * MiB)
    t_c = GPU_BATCH / ASSUMED_IMG_S[name]
    rows = []
    for n in (8, 16, 32, 64, 128, 256):
        for net, f in (("100 Gb/s IB ring", lambda b: ring(n, b, IB_BW, IB_ALPHA)),
                       ("8xNVLink nodes + IB", lambda b: hierarchical(n, b))):
            t_ar = sum(f(b) for b in buckets)
            exposed = max(f(buckets[-1]), t_ar - 2 / 3 * t_c)  # backward ~ 2/3 of the step; last bucket shows
            rows.append([name, n, net, ms(t_ar), f"{t_c / (t_c + t_ar):.0%}", f"{t_c / (t_c + exposed):.0%}",
                         f"{n * GPU_BATCH / (t_c + exposed):,.0f}"])
    return rows, buckets


def section_allreduce(a, results):
    sweep2 = results["sweep_2"] = run_child(2, "sweep", "--repeat", a.repeat, *(["--quick"] if a.quick else []))
    alpha, bw = fit(sweep2)
    results["fit"] = {"alpha_s": alpha, "bandwidth_Bps": bw}
    ar = results["allreduce"] = run_child(2, "allreduce", "--repeat", a.repeat, "--models", a.models)
    rows = []
    for name, row in ar.items():
        bare = row["times"]["bare"]["median_s"]
        for k, v in row["times"].items():
            b = row["buckets"][str(float(k.split()[1] if k != "bare" else 25))]
            pred = sum(ring(2, s, bw, alpha) for s in b["sizes"]) if k != "bare" else ring(2, b["bytes"], bw, alpha)
            rows.append([name, k, b["count"] if k != "bare" else 1, f"{b['bytes'] / MiB:.1f}", ms(v["median_s"]),
                         ms(v["min_s"]), f"{v['median_s'] / bare:.2f}", ms(pred)])
    print_table(["model", "contender", "buffers", "MiB", "median ms", "min ms", "/bare", "model ms"], rows,
                "Allreduce of all gradients, 2 ranks (float32; slowest rank; 'model' = fitted ring model)")


def section_overlap(a, results):
    overlap = results["overlap"] = {}
    for mb, mode in ((25, "thread"), (5, "thread"), (25, "poll")):
        r = overlap[f"{mb} {mode}"] = run_child(2, "train", "--local", "--train-bucket-mb", mb, "--overlap", mode,
                                                "--batch", a.batch, "--image", a.image, "--steps", a.steps,
                                                "--repeat", a.repeat)
        ddp, local = r["rows"]["ddp"], r["rows"]["local"]
        t_ar, t_comm = r["reduce_now"]["median_s"], r["comm_only"]["median_s"]
        wait = float(np.median([d["wait_s"] for d in ddp]))
        exposed_step = float(np.median([d["step_s"] for d in ddp]) - np.median([d["step_s"] for d in local]))
        r.update(t_ar=t_ar, t_comm=t_comm, hidden_wait=1 - wait / t_comm, hidden_step=1 - exposed_step / t_ar)

    def med(r, kind, key):
        return ms(np.median([d[key] for d in r["rows"][kind]]))
    print_table(["bucket MiB, overlap", "buckets", "DDP step ms", "local step ms", "backward ms", "hooks ms", "wait ms",
                 "allreduce alone ms", "reduce_now ms", "hidden (wait)", "hidden (step)"],
                [[k, len(r["buckets"]), med(r, "ddp", "step_s"), med(r, "local", "step_s"),
                  med(r, "ddp", "backward_s"), med(r, "ddp", "hook_s"), med(r, "ddp", "wait_s"), ms(r["t_comm"]),
                  ms(r["t_ar"]), f"{r['hidden_wait']:.0%}", f"{r['hidden_step']:.0%}"] for k, r in overlap.items()],
                f"Allreduce hidden behind backward: ResNet-18, 2 ranks x {a.batch} images of {a.image} px")


def section_scaling(a, results):
    scaling, rows = results.setdefault("scaling", {}), []
    cores = os.cpu_count() or 1
    configs = [(int(n), None) for n in a.ranks.split(",")]
    if 1 in [n for n, _ in configs] and cores > 1:
        configs.insert(1, (1, 1))
    for n, threads in configs:
        r = run_child(n, "train", "--batch", a.batch, "--image", a.image, "--steps", a.steps, "--repeat", a.repeat,
                      threads=threads)
        t = float(np.median([d["step_s"] for d in r["rows"]["ddp"]]))
        th = threads or max(1, cores // n)
        scaling[f"{n}x{th}"] = {**r, "step_s": t}
        rows.append([n, th, n * a.batch, ms(t), f"{n * a.batch / t:.2f}"])
    base = min(v["step_s"] for k, v in scaling.items() if k.startswith("1x"))  # the faster 1-rank setting
    for row, v in zip(rows, scaling.values()):
        row.append(f"{(row[2] / v['step_s']) / (a.batch / base):.2f}")
    print_table(["ranks", "threads/rank", "global batch", "step ms", "images/s", "vs best 1 rank"], rows,
                f"ResNet-18 training steps (SGD momentum, DDP 25 MiB buckets), {a.batch} images of {a.image} px "
                f"per rank, on {cores} cores")


def section_model(a, results):
    alpha, bw = results["fit"]["alpha_s"], results["fit"]["bandwidth_Bps"]
    check = []
    for name, row in results["allreduce"].items():
        for mb, b in row["buckets"].items():
            meas = row["times"][f"comm {float(mb):g} MiB"]["median_s"]
            pred = sum(ring(2, s, bw, alpha) for s in b["sizes"])
            check.append([f"{name} buckets {float(mb):g} MiB, 2 ranks", ms(meas), ms(pred), f"{pred / meas:.2f}"])
    if "4" in a.ranks.split(","):
        sweep4 = results["sweep_4"] = run_child(4, "sweep", "--repeat", a.repeat, "--quick")
        for k in list(sweep4)[::3]:
            meas, pred = sweep4[k]["median_s"], ring(4, float(k), bw, alpha)
            check.append([f"bare {int(k):,} B, 4 ranks (2 cores: oversubscribed)", ms(meas), ms(pred),
                          f"{pred / meas:.2f}"])
    print(f"\nRing model fitted to the 2-rank sweep ({len(results['sweep_2'])} sizes): alpha = {alpha * 1e6:.1f} us "
          f"per step, B = {bw / 1e9:.2f} GB/s (T = 2(N-1)/N * bytes/B + 2(N-1) alpha per buffer)")
    print_table(["check", "measured ms", "model ms", "model/measured"], check)
    from _distributed_child import param_shapes

    pred_rows = []
    for name in ("resnet50", "vgg16"):
        rows_, buckets = predict(param_shapes(name), name)
        results.setdefault("prediction", {})[name] = {"grad_MiB": sum(buckets) / MiB, "buckets": len(buckets)}
        pred_rows += rows_
    print_table(["model", "GPUs", "network", "allreduce ms", "eff. no overlap", "eff. overlap", "images/s"],
                pred_rows, "Predicted data-parallel scaling (float32 gradients, 25 MiB buckets, "
                f"{GPU_BATCH} images/GPU; assumed 1-GPU speed {ASSUMED_IMG_S} img/s; IB: B = {IB_BW / 1e9:g} GB/s, "
                f"alpha = {IB_ALPHA * 1e6:g} us; NVLink: B = {NVL_BW / 1e9:g} GB/s, alpha = {NVL_ALPHA * 1e6:g} us)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="ResNet-18 only, 112 px, fewer samples (smoke run)")
    ap.add_argument("--only", default="allreduce,overlap,scaling",
                    help="sections to run (allreduce includes the cost model and the predictions)")
    ap.add_argument("--repeat", type=int, default=None, help="samples per allreduce contender (default 10, 3 quick)")
    ap.add_argument("--ranks", default="1,2,4", help="rank counts for the scaling table")
    ap.add_argument("--batch", type=int, default=2, help="ResNet-18 images per rank (default 2)")
    ap.add_argument("--image", type=int, default=None, help="image side (default 224, 112 quick)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per configuration (default 3, 1 quick)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    a.repeat = a.repeat or (3 if a.quick else 10)
    a.image = a.image or (112 if a.quick else 224)
    a.steps = a.steps or (1 if a.quick else 3)
    a.models = "resnet18" if a.quick else "resnet18,vgg16"
    env = environment()
    try:
        import mpi4py  # only for the header: the driver itself runs no MPI

        env["mpi4py"] = mpi4py.__version__
    except ImportError as exc:
        raise SystemExit(f"bench_distributed needs mpi4py and mpich: pip install 'glassnet[mpi]' ({exc})")
    settings = {k: getattr(a, k) for k in ("only", "repeat", "batch", "image", "steps", "models", "ranks")}
    settings["mpiexec"] = mpiexec()
    print_header("bench_distributed: data parallelism on MPI (mpi4py + MPICH, localhost)", env, settings)
    kernels = [d.get("architecture") for d in env["blas"].get("threadpoolctl", [])]
    print(f"blas      kernel (threadpoolctl): {', '.join(map(str, kernels)) or 'unknown'}; per rank "
          f"OPENBLAS_NUM_THREADS = cores / ranks (>= 1); mpi4py {env['mpi4py']}", flush=True)
    results, only = {}, a.only.split(",")
    if "allreduce" in only:
        section_allreduce(a, results)
    if "overlap" in only:
        section_overlap(a, results)
    if "scaling" in only:
        section_scaling(a, results)
    if "allreduce" in only:
        section_model(a, results)
    if a.json:
        dump_json(a.json, env, settings, results)


if __name__ == "__main__":
    main()
