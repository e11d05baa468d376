"""Benchmark: peak memory (RSS) of the bench_models steps, glassnet vs PyTorch CPU.

What it measures
----------------
For each case of ``bench_models.py`` (training steps of mlp, small_cnn,
alexnet, vgg16, resnet18; eval forward passes vgg16-fwd, resnet18-fwd; same
batches, float32, SGD momentum 0.9), each framework runs in a **fresh
subprocess** that imports only that framework (glassnet's never imports
torch, torch's never imports glassnet), so peaks do not mix:

1. ``baseline``: resident set size (``VmRSS``) after the imports and the input
   batch, before the model is built;
2. build the model and the optimizer, run ``--steps`` steps (default 3; the
   first allocates the momentum buffers and gradients);
3. ``peak``: the process's peak RSS -- ``VmHWM`` from ``/proc/self/status``,
   which exec resets, so nothing of the launching process is counted;
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is recorded too, but Linux
   carries the launching process's high-water mark across fork+exec into
   it, and this script's parent has imported torch (for the header), so for
   glassnet's small cases ``ru_maxrss`` shows the parent's ~270 MiB, not
   the child's peak. That is why ``VmHWM`` is the number reported.

``peak - baseline`` is the memory the model, its gradients, the optimizer
state and the step's activations/workspace need; ``peak`` includes the
framework's own footprint (PyTorch's libraries are far larger than NumPy's).
Reported for both, and the ratios glassnet/torch (> 1: glassnet uses more).

Note: RSS counts pages touched. Both frameworks return large buffers to the
OS (glibc ``mmap`` for NumPy; PyTorch's CPU allocator likewise), so RSS peaks
track live arrays closely, but allocator caching can make either side look
a little larger than its true live set.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_memory.py                  # all cases, ~2-4 min on 2 cores
    .venv/bin/python benchmarks/bench_memory.py --only mlp,small_cnn --steps 2
    .venv/bin/python benchmarks/bench_memory.py --json out/memory.json
"""
from __future__ import annotations

import _blas_env  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def child(case: str, framework: str, steps: int, seed: int) -> dict:
    """Runs in the subprocess: one framework, one case. Returns KiB figures."""
    import numpy as np

    import bench_models as bm

    if framework == "glassnet":
        import glassnet  # noqa: F401
    else:
        import torch  # noqa: F401
    assert not (framework == "glassnet" and "torch" in sys.modules), "torch leaked into the glassnet process"
    assert not (framework == "torch" and "glassnet" in sys.modules), "glassnet leaked into the torch process"
    x, y = bm.make_batch(case, seed)
    baseline = _status_kib("VmRSS")
    t0 = time.perf_counter()
    if framework == "glassnet":
        model = bm.build_glassnet(case, seed)
        nparams = sum(int(np.asarray(p.data).size) for p in model.parameters())
        step = bm.make_steps(case, model, None, x, y)[0]
    else:
        model = bm.build_torch(case)
        nparams = sum(p.numel() for p in model.parameters())
        step = bm.make_steps(case, None, model, x, y)[1]
    after_build = _status_kib("VmRSS")
    for _ in range(steps):
        step()
    return {"case": case, "framework": framework, "steps": steps, "params": nparams,
            "baseline_kib": baseline, "after_build_kib": after_build, "end_kib": _status_kib("VmRSS"),
            "peak_kib": _status_kib("VmHWM"),
            "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "seconds": time.perf_counter() - t0}


def run_child(case, framework, steps, seed, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", case, framework,
           "--steps", str(steps), "--seed", str(seed)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"bench_memory: {framework} {case} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"bench_memory: no result from {framework} {case}:\n{p.stdout[-2000:]}")


def mib(kib):
    return f"{kib / 1024:.0f}" if kib is not None else "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", metavar="NAME[,NAME]", help="cases (as in bench_models.py; default all)")
    ap.add_argument("--steps", type=int, default=3, help="steps per process (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per subprocess (default 900)")
    ap.add_argument("--json", metavar="PATH", help="also write all results to PATH as JSON")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "FRAMEWORK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.steps, args.seed)), flush=True)
        return

    import bench_models as bm
    from _timing import dump_json, environment, print_header, print_table

    cases = bm.parse_only(args.only)
    settings = {"cases": ",".join(cases), "steps": args.steps, "dtype": "float32",
                "optimizer": f"SGD lr={bm.LR} momentum={bm.MOMENTUM}",
                "method": "fresh subprocess per framework and case; baseline VmRSS after imports; peak VmHWM"}
    env = environment()  # imports torch and glassnet here, in the parent only
    print_header("bench_memory: peak RSS of one process per framework and case", env, settings)
    results = {}
    rows = []
    for case in cases:
        r = {}
        for fw in ("glassnet", "torch"):
            r[fw] = run_child(case, fw, args.steps, args.seed, args.timeout)
        g, t = r["glassnet"], r["torch"]
        gd, td = g["peak_kib"] - g["baseline_kib"], t["peak_kib"] - t["baseline_kib"]
        r["ratio_delta"] = gd / td if td > 0 else float("nan")
        r["ratio_peak"] = g["peak_kib"] / t["peak_kib"]
        results[case] = r
        _, batch, _, _, train = bm.CASES[case]
        row = [case, "train" if train else "fwd", batch, f"{4 * g['params'] / 2**20:.1f}",
               mib(g["baseline_kib"]), mib(g["peak_kib"]), mib(gd),
               mib(t["baseline_kib"]), mib(t["peak_kib"]), mib(td),
               f"{r['ratio_delta']:.2f}", f"{r['ratio_peak']:.2f}"]
        rows.append(row)
        print(f"{case:13s} glassnet peak {mib(g['peak_kib'])} MiB (+{mib(gd)} over baseline), "
              f"torch peak {mib(t['peak_kib'])} MiB (+{mib(td)}); ru_maxrss {mib(g['ru_maxrss_kib'])} / "
              f"{mib(t['ru_maxrss_kib'])} MiB", flush=True)
    print_table(["case", "kind", "batch", "params MiB", "g base MiB", "g peak", "g peak-base",
                 "t base MiB", "t peak", "t peak-base", "g/t (peak-base)", "g/t (peak)"], rows,
                title=f"Peak RSS after {args.steps} steps (fresh process each); g/t > 1 means glassnet uses more")
    if args.json:
        dump_json(args.json, env, settings, results)


if __name__ == "__main__":
    main()
