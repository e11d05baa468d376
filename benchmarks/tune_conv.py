"""Re-measure glassnet's conv tuning data (glassnet/ops/conv/tuning.py) on this machine.

For every layer of ``tuning.MEASURED`` it times the forward (float32, kernel level) by im2col +
GEMM and by the row's Winograd algorithm (forced, whatever the rules say), and prints the stored
row, the fresh one in the same ``Measurement(...)`` format (to paste into tuning.py), and
whether Winograd paid here and there. The rules (``WINOGRAD_RULES``) are then drawn by hand.

    .venv/bin/python benchmarks/tune_conv.py            # every layer, a few minutes on 2 cores
    .venv/bin/python benchmarks/tune_conv.py --quick    # smoke run: shrunken layers, one sample
"""
from __future__ import annotations

import _blas_env  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from glassnet.ops.conv import conv2d_forward, conv_settings  # noqa: E402
from glassnet.ops.conv import tuning  # noqa: E402
from glassnet.ops.conv.winograd_tiles import F3X3_3X3, F3X3_5X5, F4X4_3X3  # noqa: E402

from _timing import add_runtime_options, apply_runtime_options, time_interleaved  # noqa: E402

ALGORITHMS = {"F(4x4,3x3)": F4X4_3X3, "F(3x3,3x3)": F3X3_3X3, "F(3x3,5x5)": F3X3_5X5}
UNRECORDED_BATCH = 8  # rows whose batch the original measurement did not record


def measure(row, repeat, warmup, shrink):
    """(im2col ms, Winograd ms, algorithm name, batch) of one layer's float32 forward."""
    name = row.algorithm or ("F(4x4,3x3)" if row.kernel == 3 else "F(3x3,5x5)")
    algorithm = ALGORITHMS[name]
    batch = row.batch or UNRECORDED_BATCH
    c_in, c_out, px = max(1, row.c_in // shrink), max(1, row.c_out // shrink), max(row.kernel, row.px // shrink)
    if shrink > 1:
        batch = 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, c_in, px, px), dtype=np.float32)
    w = rng.standard_normal((c_out, c_in, row.kernel, row.kernel), dtype=np.float32)
    b = rng.standard_normal(c_out, dtype=np.float32)
    pad = (row.kernel // 2, row.kernel // 2)

    def im2col():
        with conv_settings(winograd=False):
            return conv2d_forward(x, w, b, (1, 1), pad, need_dx=False)

    def winograd():
        with conv_settings(winograd_rules=[(row.kernel, algorithm, 1, 1, 0)], workspace_limit=1 << 40):
            return conv2d_forward(x, w, b, (1, 1), pad, need_dx=False)

    assert im2col()[1].algorithm == "im2col"
    assert winograd()[1].algorithm.startswith("winograd")
    stats = time_interleaved({"im2col": im2col, "winograd": winograd}, repeat=repeat, warmup=warmup)
    return stats["im2col"].median * 1e3, stats["winograd"].median * 1e3, name, batch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=None, help="timed samples per contender (default 5, 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke run: layers shrunk 8x (batch 1), one sample")
    ap.add_argument("--only", default=None, help="comma-separated layer names (e.g. conv1_2,layer3)")
    add_runtime_options(ap)
    args = ap.parse_args(argv)
    apply_runtime_options(args)
    repeat = args.repeat or (1 if args.quick else 5)
    shrink = 8 if args.quick else 1
    rows = [r for r in tuning.MEASURED if not args.only or r.layer in args.only.split(",")]
    print(f"tune_conv: forward ms, float32, im2col vs Winograd, median of {repeat}"
          + (" (QUICK: layers shrunk 8x, batch 1 — not for tuning)" if args.quick else ""))
    print(f"{'network layer':<28} {'stored ms':>15} {'this machine ms':>17}  Winograd pays (stored / here)")
    fresh = []
    for row in rows:
        t_col, t_win, name, batch = measure(row, repeat, 0 if args.quick else 1, shrink)
        fresh.append(row._replace(algorithm=name, batch=batch if row.batch or shrink > 1 else None,
                                  im2col_ms=round(t_col, 1), winograd_ms=round(t_win, 1)))
        print(f"{row.network + ' ' + row.layer:<28} {row.im2col_ms:6.1f} -> {row.winograd_ms:5.1f} "
              f"{t_col:8.1f} -> {t_win:6.1f}  {row.winograd_ms < row.im2col_ms} / {t_win < t_col}", flush=True)
    print("\n# fresh rows for glassnet/ops/conv/tuning.py (MEASURED), this machine:")
    for row in fresh:  # the source's format: Measurement("F(4x4,3x3)", "VGG16", "conv1_2", 64, ...),
        print("    Measurement(" + ", ".join(f'"{v}"' if isinstance(v, str) else repr(v) for v in row) + "),")
    return 0


if __name__ == "__main__":
    sys.exit(main())
