"""GPU benchmark: glassnet on CuPy against PyTorch on CUDA, side by side.

    python benchmarks/bench_gpu.py                    # every case of bench_models
    python benchmarks/bench_gpu.py --only resnet18,vgg16 --repeat 20
    python benchmarks/bench_gpu.py --only vgg16-fwd --batch 32 --profile

The same cases as ``bench_models.py`` (training steps with SGD momentum, and
forward passes), on the first GPU. Each case first checks that the two
libraries agree (eval logits from the same weights), then times them in
alternating blocks (glassnet's block of steps, then PyTorch's, ``--rounds``
times), synchronising the device around every step; medians of all steps.
Also prints the peak GPU memory each library's allocator held, and how
long glassnet takes just to *issue* a step (Python and kernel launches,
without waiting for the GPU): when that is close to the step time, the step
is bound by the host, not by the GPU. ``--profile`` adds glassnet's per-op
breakdown, the device synchronised at every op boundary.

PyTorch runs in plain float32 (TF32 off for convolutions and matrix
products), as glassnet does; ``--tf32`` times PyTorch with TF32 allowed.
Needs CuPy (``pip install glassnet[gpu]``), a CUDA build of PyTorch and a GPU.
"""
from __future__ import annotations

import _blas_env  # noqa: F401 (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT, os.path.join(ROOT, "tests")):
    if _p not in sys.path:
        sys.path.append(_p)

from _timing import dump_json, fmt_ms, print_table, ratio  # noqa: E402
from bench_models import CASES, build_glassnet, build_torch, make_batch, make_steps  # noqa: E402


def _gpu_names() -> dict:
    import cupy
    import torch

    props = cupy.cuda.runtime.getDeviceProperties(0)
    return {"gpu": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
            "cupy": cupy.__version__, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "numpy": np.__version__}


def check_logits(case, gmodel, tmodel, x) -> float:
    """Eval-mode logits of both libraries from the same weights; returns the
    largest difference relative to the largest logit (raises above 1e-3)."""
    import cupy
    import torch

    import glassnet as gn

    gmodel.eval()
    tmodel.eval()
    with gn.no_grad():
        a = cupy.asnumpy(gmodel(gn.tensor(cupy.asarray(x))).data)
    with torch.no_grad():
        b = tmodel(torch.from_numpy(x).cuda()).cpu().numpy()
    rel = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
    if rel > 1e-3:
        raise AssertionError(f"{case}: glassnet (CuPy) and PyTorch (CUDA) logits differ, rel err {rel:.2e}")
    return rel


def time_blocks(steps: dict, sync: dict, repeat: int, warmup: int, rounds: int) -> dict:
    """Per-step times of each step function, in alternating blocks of
    ``repeat`` steps (``rounds`` times, the order flipping each round), each
    step bracketed by its library's device synchronisation."""
    times = {name: [] for name in steps}
    for name, fn in steps.items():
        for _ in range(warmup):
            fn()
        sync[name]()
    names = list(steps)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn, wait = steps[name], sync[name]
            for _ in range(repeat):
                wait()
                t0 = time.perf_counter()
                fn()
                wait()
                times[name].append(time.perf_counter() - t0)
    return times


def issue_time(step, sync, repeat: int) -> float:
    """Median time to issue ``step`` without waiting for the device (it is
    synchronised before each call and after, untimed)."""
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        sync()
    return float(np.median(times))


def run_case(case, args) -> dict:
    import cupy
    import torch

    x, y = make_batch(case, args.seed, args.batch)
    gmodel = build_glassnet(case, args.seed)
    tmodel = build_torch(case, gmodel.state_dict()).cuda()
    gmodel.to("cuda")
    rel = check_logits(case, gmodel, tmodel, x)
    pool = cupy.get_default_memory_pool()
    torch.cuda.reset_peak_memory_stats()
    g, t, final_losses = make_steps(case, gmodel, tmodel, x, y, device="cuda")
    sync = {"glassnet": cupy.cuda.Device().synchronize, "torch": torch.cuda.synchronize}
    times = time_blocks({"glassnet": g, "torch": t}, sync, args.repeat, args.warmup, args.rounds)
    losses = list(final_losses().values())
    if not np.all(np.isfinite(losses)):
        raise AssertionError(f"{case}: loss became non-finite while timing: {losses}")
    gm, tm = float(np.median(times["glassnet"])), float(np.median(times["torch"]))
    issue = issue_time(g, sync["glassnet"], args.repeat)
    if args.profile:
        from bench_models import print_profile, profile_glassnet

        def synced_clock():
            sync["glassnet"]()
            return time.perf_counter()

        print_profile(case, profile_glassnet(g, args.repeat, clock=synced_clock), args.top,
                      batch=len(x), where=" (CuPy)")
    return {"case": case, "batch": len(x), "glassnet_s": gm, "torch_s": tm, "ratio": ratio(gm, tm),
            "glassnet_issue_s": issue, "logits_rel_err": rel,
            "glassnet_pool_mib": pool.total_bytes() / 2**20,
            "torch_peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
            "steps_timed": len(times["glassnet"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", metavar="NAME[,NAME]", help=f"cases: {', '.join(CASES)} (default all)")
    ap.add_argument("--repeat", type=int, default=10, help="steps per block (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="blocks per library (default 3)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, help="batch size for every case (default: each case's own)")
    ap.add_argument("--profile", action="store_true", help="also print glassnet's per-op breakdown")
    ap.add_argument("--top", type=int, default=12, help="ops shown per breakdown (default 12)")
    ap.add_argument("--no-winograd", action="store_true",
                    help="glassnet's 3×3 convolutions by im2col + GEMM only (glassnet.ops.conv.conv_settings(winograd=False))")
    ap.add_argument("--tf32", action="store_true", help="let PyTorch use TF32 (its cuDNN default)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)

    from glassnet.backend import cupy_available

    if not cupy_available():
        print("bench_gpu: needs CuPy and a GPU (pip install glassnet[gpu])", file=sys.stderr)
        return 2
    import torch

    if not torch.cuda.is_available():
        print("bench_gpu: this PyTorch build has no CUDA", file=sys.stderr)
        return 2
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = False

    cases = args.only.split(",") if args.only else list(CASES)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    env = _gpu_names()
    env["torch_tf32"] = args.tf32
    env["glassnet_winograd"] = not args.no_winograd
    print("glassnet (CuPy) vs PyTorch (CUDA): " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(f"median per step over {args.rounds} alternating blocks of {args.repeat} steps "
          f"({args.warmup} warm-up steps), device synchronised around each step")
    results, rows = [], []
    from glassnet.ops.conv import conv_settings

    with conv_settings(winograd=not args.no_winograd):
        for case in cases:
            r = run_case(case, args)
            results.append(r)
            rows.append([case, r["batch"], fmt_ms(r["glassnet_s"]), fmt_ms(r["torch_s"]), f"{r['ratio']:.2f}",
                         fmt_ms(r["glassnet_issue_s"]),
                         f"{r['glassnet_pool_mib']:.0f}", f"{r['torch_peak_reserved_mib']:.0f}",
                         f"{r['logits_rel_err']:.1e}"])
            print(f"  {case}: glassnet {fmt_ms(r['glassnet_s'])}, torch {fmt_ms(r['torch_s'])}", flush=True)
    print_table(["case", "batch", "glassnet ms", "torch ms", "ratio", "glassnet issue ms", "glassnet MiB",
                 "torch MiB", "logits rel err"], rows,
                title="GPU step times (ratio = glassnet / torch; issue = glassnet's host time to launch a "
                      "step; MiB = memory each allocator held)")
    if args.json:
        dump_json(args.json, env, vars(args), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
