"""Benchmark: how a kernel GEMM is cut over glassnet's threads -- row blocks, column blocks, or one BLAS call.

What it measures
----------------
``glassnet.gemm.matmul`` runs a large GEMM as parts, one BLAS call each with the
BLAS held to one thread, spread over glassnet's kernel threads
(:func:`glassnet.gemm.gemm_parts` picks rows or columns). This script times, for
the GEMM shapes of the zoo's training steps and forward passes (SmallCNN b128,
ResNet-18 b1 and b8, VGG16 b2, AlexNet b16, the MLP's and SmallCNN's fully
connected layers), each way of cutting C = A·B on 2 threads:

===========  ===================================================================
rows         two blocks of C's rows: each part reads its rows of A and *all* of B
columns      two blocks of C's columns: each part reads all of A and its columns of B
matmul       ``glassnet.gemm.matmul`` itself, cut as ``gemm_parts`` chose
===========  ===================================================================

and, with ``--own-blas``, in a separate process (OpenBLAS's threads left to spin
after each call would otherwise steal a core from the split variants),
``numpy.matmul`` on OpenBLAS's own threads. Operands are laid out as the kernels
pass them (``AT``/``BT``: a transposed view, as ``X_colᵀ`` or ``W_rowᵀ``).

Method: the variants of one shape alternate for ``--rounds`` rounds of
``--repeat`` calls each, after one untimed call; the minimum per variant is
reported (the machine's noise only ever adds time). The BLAS kernel in use
(threadpoolctl) is printed. Run as users run it::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_gemm_parts.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_gemm_parts.py --own-blas

``--quick`` times three shapes once (a smoke run).
"""
import _blas_env  # noqa: F401  (first: before NumPy loads OpenBLAS)

import argparse
import subprocess
import sys
import time

import numpy as np

from _timing import dump_json, environment, print_header, print_table

#: (name, m, k, n, layout): C (m×n) = A (m×k) · B (k×n); layout "C" (both C-contiguous),
#: "AT" (A a transposed view), "BT" (B a transposed view)
SHAPES = [
    ("small_cnn conv1 W_row·X_col", 33, 10, 100352, "C"),
    ("small_cnn conv1 dW (X_col·dOᵀ)", 10, 100352, 32, "BT"),
    ("small_cnn conv2 W_row·X_col", 65, 289, 25088, "C"),
    ("small_cnn conv2 W_rowᵀ·dO", 288, 64, 25088, "AT"),
    ("small_cnn conv2 dW (X_col·dOᵀ)", 289, 25088, 64, "BT"),
    ("small_cnn fc1 x·Wᵀ", 128, 3136, 128, "BT"),
    ("small_cnn fc1 dX", 128, 128, 3136, "C"),
    ("resnet18 b1 layer1 3x3", 64, 576, 3136, "C"),
    ("resnet18 b1 layer3 3x3", 256, 2304, 196, "C"),
    ("resnet18 b1 layer4 3x3", 512, 4608, 49, "C"),
    ("resnet18 b1 stem 7x7/2", 64, 147, 12544, "C"),
    ("resnet18 b8 layer4 3x3", 512, 4608, 392, "C"),
    ("vgg16 b2 conv1_2 dW", 577, 100352, 64, "BT"),
    ("vgg16 b2 conv5 W_row·X_col", 512, 4609, 392, "C"),
    ("alexnet b16 fc6 x·Wᵀ", 16, 9216, 4096, "BT"),
    ("alexnet b16 fc6 dW", 4096, 16, 9216, "AT"),
]
QUICK = ("small_cnn conv2 W_row·X_col", "small_cnn fc1 x·Wᵀ", "resnet18 b1 layer4 3x3")


def operands(m, k, n, layout, rng):
    """A (m×k), B (k×n) float32 in ``layout``, and an output C (m×n)."""
    a = rng.standard_normal((k, m) if layout == "AT" else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if layout == "BT" else (k, n), dtype=np.float32)
    return (a.T if layout == "AT" else a), (b.T if layout == "BT" else b), np.empty((m, n), np.float32)


def cut(a, b, out, axis, parts):
    """``out = a @ b`` as ``parts`` blocks of rows or columns on glassnet's threads, BLAS on one thread."""
    from glassnet.blas_threads import held_to_one_thread
    from glassnet.gemm import matmul_in_parts

    with held_to_one_thread():
        matmul_in_parts(a, b, out, axis, parts)


def best_ms(fns, rounds, repeat):
    """name -> the minimum ms per call over ``rounds`` alternating rounds of ``repeat`` calls."""
    best = {k: float("inf") for k in fns}
    for f in fns.values():
        f()
    for _ in range(rounds):
        for k, f in fns.items():
            for _ in range(repeat):
                t = time.perf_counter()
                f()
                best[k] = min(best[k], (time.perf_counter() - t) * 1e3)
    return best


def measure(own_blas, rounds, repeat, names):
    from glassnet import gemm, threads

    parts = max(2, threads.default_num_threads())
    rng = np.random.default_rng(0)
    rows = []
    for name, m, k, n, layout in SHAPES:
        if name not in names:
            continue
        a, b, out = operands(m, k, n, layout, rng)
        if own_blas:
            fns = {"own": lambda: np.matmul(a, b, out=out)}
        else:
            fns = {"rows": lambda: cut(a, b, out, "rows", parts), "columns": lambda: cut(a, b, out, "columns", parts),
                   "matmul": lambda: gemm.matmul(a, b, out=out)}
        best = best_ms(fns, rounds, repeat)
        axis, p = gemm.gemm_parts(m, n, k)
        rows.append({"name": name, "shape": f"{m}x{k}·{k}x{n} {layout}", "cut": f"{axis} x{p}", **best,
                     "gflops": 2 * m * k * n / 1e6 / min(best.values())})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--own-blas", action="store_true",
                    help="also time numpy.matmul on OpenBLAS's own threads (in a separate process)")
    ap.add_argument("--quick", action="store_true", help="three shapes, one round of one call")
    ap.add_argument("--json", metavar="PATH", help="also write the environment, settings and results here")
    ap.add_argument("--child", choices=("own",), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.repeat = 1, 1
    names = QUICK if args.quick else tuple(s[0] for s in SHAPES)
    if args.child:
        for r in measure(True, args.rounds, args.repeat, names):
            print(f"{r['name']}\t{r['own']}")
        return
    env = environment()
    settings = {"rounds": args.rounds, "repeat": args.repeat, "statistic": "min ms per call"}
    print_header("bench_gemm_parts: a kernel GEMM cut in row or column blocks over glassnet's threads", env,
                 settings)
    res = measure(False, args.rounds, args.repeat, names)
    own = {}
    if args.own_blas:
        cmd = [sys.executable, __file__, "--child", "own", "--rounds", str(args.rounds), "--repeat", str(args.repeat)]
        if args.quick:
            cmd.append("--quick")
        lines = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
        own = {name: float(ms) for name, ms in (line.split("\t") for line in lines)}
        for r in res:
            r["own"] = own[r["name"]]
    headers = ["GEMM", "shape (layout)", "rows ms", "columns ms", "gemm_parts", "matmul ms", "faster cut"]
    if own:
        headers += ["BLAS own ms"]
    table = []
    for r in res:
        cells = [r["name"], r["shape"], f"{r['rows']:.2f}", f"{r['columns']:.2f}", r["cut"], f"{r['matmul']:.2f}",
                 "rows" if r["rows"] < r["columns"] else "columns"]
        if own:
            cells.append(f"{own[r['name']]:.2f}")
        table.append(cells)
    print_table(headers, table, title="2 threads, min ms per call (matmul = glassnet.gemm.matmul as it runs)")
    if args.json:
        dump_json(args.json, env, settings, res)


if __name__ == "__main__":
    main()
