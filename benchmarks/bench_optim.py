"""Benchmark: the optimizer update alone (``optimizer.step()``), glassnet vs ``torch.optim`` on CPU.

What it measures
----------------
For each network's parameters (``small_cnn``, ``resnet18``, ``vgg16`` from
:func:`glassnet.models.get_model`; PyTorch gets float32 tensors of the same
shapes) every parameter gets a fixed random gradient, and one
``optimizer.step()`` is timed per call, nothing else (no forward, no
backward, no ``zero_grad``). Optimizers (``--optimizers``)::

    sgd              SGD(lr=1e-4)
    sgd-momentum     SGD(lr=1e-4, momentum=0.9)              (glassnet train's default)
    sgd-nesterov-wd  SGD(lr=1e-4, momentum=0.9, nesterov=True, weight_decay=5e-4)
    adam             Adam(lr=1e-4)
    adamw            AdamW(lr=1e-4, weight_decay=1e-2)
    adam-amsgrad     Adam(lr=1e-4, amsgrad=True)

PyTorch runs with its defaults (on CPU tensors: the per-tensor loop, not
``foreach``/``fused``); the table says which path it took. On a loaded
machine PyTorch's OpenMP threads can stall for a time slice at every
parallel region (single steps then take 10-100x longer):
``--threads 1 --torch-threads 1`` compares one core each.

Each framework is timed alone in a fresh process (one per network), the
processes alternating glassnet, torch, then torch, glassnet, ... for
``--rounds`` rounds; the samples are pooled and medians reported (see
``bench_models.py`` for why: neither library's worker threads ever spin
beside the other's). Inside a process, each optimizer is timed after
``--warmup`` untimed steps with :func:`_timing.time_interleaved`.

Correctness first: in each process, every optimizer starts from the same
seeded parameters and gradients and takes 3 steps; the sum and the sum of
squares of all parameters (float64) must agree between the frameworks to
1e-6 (relative), so a fast wrong update cannot pass.

Also printed: the BLAS kernel OpenBLAS chose (threadpoolctl), and each
case's *minimum memory traffic* (bytes the update must read and write once:
SGD with momentum reads p, g, b and writes p, b) divided by the median time,
as GB/s: the update is memory-bound, so this says how close it is to one
pass over memory.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_optim.py
    .venv/bin/python benchmarks/bench_optim.py --only small_cnn,resnet18 --optimizers sgd-momentum,adam
    .venv/bin/python benchmarks/bench_optim.py --quick --json out/optim.json

Measure with OpenBLAS picking its own kernel: ``env -u OPENBLAS_CORETYPE -u
OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_optim.py``.
"""
from __future__ import annotations

import _blas_env  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import json
import os
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

from _timing import (Stats, add_common_args, add_runtime_options, apply_runtime_options, dump_json,  # noqa: E402
                     environment, fmt_ms, print_header, print_table, ratio, time_interleaved)

#: network -> (zoo model, classes, input channels)
CASES = {"small_cnn": ("small_cnn", 10, 1), "resnet18": ("resnet18", 1000, 3), "vgg16": ("vgg16", 1000, 3)}
#: optimizer name -> (class name, keyword arguments, arrays the update reads, arrays it writes)
OPTIMIZERS = {
    "sgd": ("SGD", dict(lr=1e-4), 2, 1),
    "sgd-momentum": ("SGD", dict(lr=1e-4, momentum=0.9), 3, 2),
    "sgd-nesterov-wd": ("SGD", dict(lr=1e-4, momentum=0.9, nesterov=True, weight_decay=5e-4), 3, 2),
    "adam": ("Adam", dict(lr=1e-4), 4, 3),
    "adamw": ("AdamW", dict(lr=1e-4, weight_decay=1e-2), 4, 3),
    "adam-amsgrad": ("Adam", dict(lr=1e-4, amsgrad=True), 5, 4),
}
DEFAULT_OPTIMIZERS = ("sgd", "sgd-momentum", "sgd-nesterov-wd", "adam", "adamw")
CHECK_STEPS = 3


def parameter_shapes(case: str) -> list:
    """The shapes of ``case``'s parameters, in ``model.parameters()`` order."""
    from glassnet.models import get_model

    name, classes, channels = CASES[case]
    return [list(p.data.shape) for p in get_model(name, num_classes=classes, in_channels=channels).parameters()]


def initial_arrays(shapes, seed: int, which: str):
    """Seeded float32 values: ``which="params"`` (scale 0.05) or ``"grads"`` (scale 1e-3)."""
    rng = np.random.default_rng([seed, 0 if which == "params" else 1])
    scale = np.float32(0.05 if which == "params" else 1e-3)
    return [rng.standard_normal(s, dtype=np.float32) * scale for s in shapes]


def blas_kernel() -> str:
    """NumPy's BLAS as threadpoolctl reports it: library, version, kernel (architecture), threads."""
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed"
    found = [f"{d.get('internal_api')} {d.get('version')} kernel {d.get('architecture', '?')}, "
             f"{d.get('num_threads')} threads" for d in threadpoolctl.threadpool_info() if d.get("user_api") == "blas"]
    return "; ".join(found) or "no BLAS loaded"


# --------------------------------------------------------------------------
# one framework in one process
# --------------------------------------------------------------------------
class _Framework:
    """Parameters with gradients and optimizers of one framework, behind one small interface."""

    def __init__(self, framework: str, case: str, shapes, seed: int):
        self.framework, self.shapes, self.seed = framework, shapes, seed
        grads = initial_arrays(shapes, seed, "grads")
        if framework == "glassnet":
            from glassnet.models import get_model

            name, classes, channels = CASES[case]
            self.params = list(get_model(name, num_classes=classes, in_channels=channels).parameters())
            assert [list(p.data.shape) for p in self.params] == [list(s) for s in shapes]
            for p, g in zip(self.params, grads):
                p.grad = g
        else:
            import torch

            self.params = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float32)) for s in shapes]
            for p, g in zip(self.params, grads):
                p.grad = torch.from_numpy(g)
        self.reset()

    def reset(self) -> None:
        """Put the seeded initial values back into the parameters."""
        values = initial_arrays(self.shapes, self.seed, "params")
        if self.framework == "glassnet":
            for p, v in zip(self.params, values):
                p.data[...] = v
            return
        import torch

        with torch.no_grad():
            for p, v in zip(self.params, values):
                p.copy_(torch.from_numpy(v))

    def optimizer(self, name: str):
        cls_name, kwargs, _, _ = OPTIMIZERS[name]
        if self.framework == "glassnet":
            import glassnet.optim as optim
        else:
            import torch.optim as optim
        return getattr(optim, cls_name)(self.params, **kwargs)

    def checksum(self) -> list:
        """Sum and sum of squares of all parameters, in float64."""
        arrays = [np.asarray(p.data if self.framework == "glassnet" else p.detach().numpy(), dtype=np.float64)
                  for p in self.params]
        return [float(sum(a.sum() for a in arrays)), float(sum((a * a).sum() for a in arrays))]


def child_time(framework, case, shapes, optimizers, repeat, warmup, seed) -> dict:
    """Runs in a subprocess: per optimizer, the checksum after CHECK_STEPS steps, then the timing."""
    fw = _Framework(framework, case, shapes, seed)
    out = {}
    for name in optimizers:
        fw.reset()
        opt = fw.optimizer(name)
        for _ in range(CHECK_STEPS):
            opt.step()
        check = fw.checksum()
        st = time_interleaved({name: opt.step}, repeat=repeat, warmup=warmup)[name]
        path = "glassnet" if framework == "glassnet" else \
            ("foreach" if opt.defaults.get("foreach") else "fused" if opt.defaults.get("fused") else "for-loop")
        out[name] = {"samples": st.samples, "number": st.number, "check": check, "path": path}
        del opt
    return {"results": out, "blas": blas_kernel()}


def _child(arguments, what: str) -> dict:
    """Run this script in a fresh process with ``arguments``; its last output line, parsed as JSON."""
    p = subprocess.run([sys.executable, os.path.abspath(__file__), *arguments], capture_output=True, text=True)
    last = (p.stdout.strip().splitlines() or [""])[-1]
    if p.returncode != 0 or not last.startswith("{"):
        raise RuntimeError(f"bench_optim: the {what} child failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(last)


def time_in_processes(case, shapes, args, repeat, warmup) -> tuple:
    """Alternate fresh subprocesses for ``args.rounds`` rounds; pool the samples per optimizer."""
    stats = {fw: {o: Stats() for o in args.optimizers} for fw in ("glassnet", "torch")}
    info = {"glassnet": {}, "torch": {}}
    with tempfile.TemporaryDirectory() as tmp:
        shapes_file = os.path.join(tmp, "shapes.json")
        with open(shapes_file, "w") as f:
            json.dump(shapes, f)
        runtime = (["--threads", str(args.threads)] if args.threads is not None else []) + \
            (["--default-malloc"] if args.default_malloc else []) + \
            (["--torch-threads", str(args.torch_threads)] if args.torch_threads is not None else [])
        for r in range(args.rounds):
            for framework in (("glassnet", "torch") if r % 2 == 0 else ("torch", "glassnet")):
                res = _child(["--child-time", case, framework, shapes_file, "--optimizers", ",".join(args.optimizers),
                              "--repeat", str(repeat), "--warmup", str(warmup), "--seed", str(args.seed), *runtime],
                             f"{framework} {case}")
                info[framework]["blas"] = res["blas"]
                for o, v in res["results"].items():
                    stats[framework][o].samples.extend(v["samples"])
                    stats[framework][o].number = v["number"]
                    info[framework][o] = {"check": v["check"], "path": v["path"]}
    return stats, info


def _check(case, name, info) -> float:
    g, t = info["glassnet"][name]["check"], info["torch"][name]["check"]
    worst = max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(g, t))
    assert worst < 1e-6, (f"{case} {name}: glassnet and torch disagree after {CHECK_STEPS} steps: "
                          f"sum, sum of squares {g} vs {t}")
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(ap, default_repeat=9, quick_repeat=2, default_warmup=2, quick_warmup=1)
    ap.add_argument("--only", metavar="NAME[,NAME]", default=",".join(CASES),
                    help=f"networks: {', '.join(CASES)} (default all)")
    ap.add_argument("--optimizers", metavar="NAME[,NAME]", default=",".join(DEFAULT_OPTIMIZERS),
                    help=f"optimizers: {', '.join(OPTIMIZERS)} (default {', '.join(DEFAULT_OPTIMIZERS)})")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of fresh processes (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--torch-threads", type=int, default=None, metavar="N",
                    help="torch.set_num_threads(N) in the torch processes (default: torch's own choice); "
                         "on a loaded machine --threads 1 --torch-threads 1 compares one core each")
    ap.add_argument("--child-time", nargs=3, metavar=("CASE", "FRAMEWORK", "SHAPES"), help=argparse.SUPPRESS)
    add_runtime_options(ap)
    args = ap.parse_args(argv)
    args.optimizers = [o for o in args.optimizers.split(",") if o]
    cases = [c for c in args.only.split(",") if c]
    for name, known in [(o, OPTIMIZERS) for o in args.optimizers] + [(c, CASES) for c in cases]:
        if name not in known:
            ap.error(f"unknown name {name!r}; known: {', '.join(known)}")
    repeat = args.repeat or (2 if args.quick else 9)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if args.child_time:
        case, framework, shapes_file = args.child_time
        with open(shapes_file) as f:
            shapes = json.load(f)
        if framework == "glassnet":
            apply_runtime_options(args, quiet=True)
        elif args.torch_threads is not None:
            import torch

            torch.set_num_threads(args.torch_threads)
        print(json.dumps(child_time(framework, case, shapes, args.optimizers, repeat, warmup, args.seed)))
        return

    per_process = max(1, -(-repeat // args.rounds))
    settings = {"cases": ",".join(cases), "optimizers": ",".join(args.optimizers), "dtype": "float32",
                "order": f"fresh process per framework and network, {args.rounds} alternating rounds",
                "repeat_per_process": per_process, "warmup": warmup,
                "torch_threads": "default" if args.torch_threads is None else args.torch_threads}
    env = environment()
    print_header("bench_optim: optimizer.step() alone, glassnet vs torch.optim", env, settings)
    apply_runtime_options(args)
    print(f"blas      {blas_kernel()} (threadpoolctl, this process)", flush=True)

    results, rows = {}, []
    for case in cases:
        t0 = time.perf_counter()
        shapes = parameter_shapes(case)
        n = int(sum(np.prod(s) for s in shapes))
        stats, info = time_in_processes(case, shapes, args, per_process, warmup)
        results[case] = {"parameters": n, "tensors": len(shapes), "blas_in_children": info["glassnet"].get("blas")}
        for name in args.optimizers:
            g, t = stats["glassnet"][name], stats["torch"][name]
            worst = _check(case, name, info)
            _, _, reads, writes = OPTIMIZERS[name]
            traffic = 4.0 * n * (reads + writes)
            results[case][name] = {"glassnet": g, "torch": t, "ratio_median": ratio(g.median, t.median),
                                   "check_max_rel_diff": worst, "torch_path": info["torch"][name]["path"],
                                   "min_traffic_bytes": traffic}
            rows.append([case, name, f"{n / 1e6:.2f}M/{len(shapes)}", fmt_ms(g.median), fmt_ms(t.median),
                         f"{ratio(g.median, t.median):.2f}", f"{traffic / g.median / 1e9:.1f}",
                         f"{traffic / t.median / 1e9:.1f}", info["torch"][name]["path"], len(g.samples)])
        print(f"{case}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    print_table(["network", "optimizer", "params/tensors", "glassnet med ms", "torch med ms", "g/t",
                 "glassnet GB/s", "torch GB/s", "torch path", "reps"], rows,
                title="optimizer.step() per call; g/t > 1 means glassnet is slower; "
                      "GB/s = minimum traffic / median time")
    if args.json:
        dump_json(args.json, env, settings, results)


if __name__ == "__main__":
    main()
