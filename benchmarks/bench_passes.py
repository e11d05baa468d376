"""Memory-bound kernel passes, old code path against new, in one process.

Times, kernel by kernel, the passes that issue 16 item 2 asks to make cheap, on the
shapes of ResNet-18 at batch 8 and 224 px (channel-major inputs, as convolutions
return them):

* ``max_pool2d`` 3×3, stride 2, padding 1 (the stem) on 64×112×112: forward, backward,
  and the two together (the forward may keep more for the backward);
* ``batch_norm`` in training mode on 64×112×112 (the stem), 64×56×56, 128×28×28, 256×14×14, 512×7×7:
  forward and backward;
* ``relu`` backward on the same shapes (the ReLU after each batch norm).

The "old" code path is the kernel module as it is at ``--base`` (default: the
``main`` branch), loaded from git next to the working tree's; calls alternate old,
new, old, new, … (:func:`_timing.time_interleaved`), so a loaded machine slows both
alike and the ratio new/old is what to read. Before timing, old and new results are
compared: bitwise for max pooling and ReLU, within float32 rounding for batch norm.

Run it as::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_passes.py

(OpenBLAS then picks its own kernels for the CPU; the header prints which, via
threadpoolctl when it is installed).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _timing import (add_common_args, check_close, environment, fmt_ms, print_header,  # noqa: E402
                     print_table, ratio, time_interleaved, dump_json)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 8
BN_SHAPES = [(64, 112), (64, 56), (128, 28), (256, 14), (512, 7)]  # the stem, layer1..layer4
POOL_SHAPE = (64, 112)


def load_base(rel_path, package, rev, renames=()):
    """The module at ``rel_path`` as it is at git revision ``rev``, importable
    relative to ``package`` (its ``from .x import`` lines may be redirected to
    other base modules: ``renames`` = ((".x", "._base_x"), ...))."""
    src = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{rel_path}"], capture_output=True,
                         text=True, check=True).stdout
    for old, new in renames:
        src = src.replace(f"from {old} import", f"from {new} import")
    name = f"{package}._base_{os.path.splitext(os.path.basename(rel_path))[0]}"
    mod = types.ModuleType(name)
    mod.__package__ = package
    mod.__file__ = f"{rev}:{rel_path}"
    sys.modules[name] = mod
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    return mod


def channel_major(a):
    """Same values, stored as (C, N, H, W) like a convolution output."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def blas_kernels():
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{d.get('internal_api')} {d.get('version')} {d.get('architecture')} "
                     f"{d.get('num_threads')} threads" for d in threadpoolctl.threadpool_info())


def bench_pool(old, new, rng, repeat, warmup):
    C, S = POOL_SHAPE
    x = channel_major(rng.standard_normal((N, C, S, S)).astype(np.float32))
    args = ((3, 3), (2, 2), (1, 1))
    yo, co = old.max_pool2d_forward(x, *args)
    yn, cn = new.max_pool2d_forward(x, *args)
    dy = channel_major(rng.standard_normal(yo.shape).astype(np.float32))
    assert np.array_equal(yo, yn), "max_pool2d forward: old and new differ"
    dxo, dxn = old.max_pool2d_backward(dy, co), new.max_pool2d_backward(dy, cn)
    assert np.array_equal(dxo.view(np.uint32), dxn.view(np.uint32)) and dxo.strides == dxn.strides, \
        "max_pool2d backward: old and new differ (bits, signed zeros included, or memory order)"
    rows = []
    for what, fo, fn in [
        ("forward", lambda: old.max_pool2d_forward(x, *args), lambda: new.max_pool2d_forward(x, *args)),
        ("backward", lambda: old.max_pool2d_backward(dy, co), lambda: new.max_pool2d_backward(dy, cn)),
        ("fwd+bwd", lambda: old.max_pool2d_backward(dy, old.max_pool2d_forward(x, *args)[1]),
         lambda: new.max_pool2d_backward(dy, new.max_pool2d_forward(x, *args)[1])),
    ]:
        st = time_interleaved({"old": fo, "new": fn}, repeat=repeat, warmup=warmup)
        rows.append((f"max_pool2d 3/2/1 {what}", f"{C}x{S}x{S}", st))
    return rows


def bench_bn(old, new, rng, repeat, warmup):
    rows = []
    for C, S in BN_SHAPES:
        x = channel_major((rng.standard_normal((N, C, S, S)) * 2 + 0.5).astype(np.float32))
        dy = channel_major(rng.standard_normal(x.shape).astype(np.float32))
        g, b = rng.standard_normal(C).astype(np.float32), rng.standard_normal(C).astype(np.float32)

        def fwd(mod):
            rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
            return mod.batch_norm_forward(x, g, b, rm, rv, True, 0.1, 1e-5)

        (yo, co), (yn, cn) = fwd(old), fwd(new)
        check_close(f"batch_norm forward {C}", yn, yo)
        for k, (go, gn) in enumerate(zip(old.batch_norm_backward(dy, co), new.batch_norm_backward(dy, cn))):
            check_close(f"batch_norm backward {C} grad {k}", gn, go, rtol=1e-3, atol_rel=1e-4)
        shape = f"{C}x{S}x{S}"
        st = time_interleaved({"old": lambda: fwd(old), "new": lambda: fwd(new)}, repeat=repeat, warmup=warmup)
        rows.append(("batch_norm train forward", shape, st))
        st = time_interleaved({"old": lambda: old.batch_norm_backward(dy, co),
                               "new": lambda: new.batch_norm_backward(dy, cn)}, repeat=repeat, warmup=warmup)
        rows.append(("batch_norm train backward", shape, st))
    return rows


def bench_relu(old, new, rng, repeat, warmup):
    rows = []
    for C, S in BN_SHAPES:
        x = channel_major(rng.standard_normal((N, C, S, S)).astype(np.float32))
        dy = channel_major(rng.standard_normal(x.shape).astype(np.float32))
        f, cache = new.relu_forward(x)
        assert np.array_equal(old.relu_backward(dy, cache), new.relu_backward(dy, cache))
        st = time_interleaved({"old": lambda: old.relu_backward(dy, cache),
                               "new": lambda: new.relu_backward(dy, cache)}, repeat=repeat, warmup=warmup)
        rows.append(("relu backward", f"{C}x{S}x{S}", st))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, default_repeat=9, quick_repeat=3, default_warmup=2)
    p.add_argument("--base", default="main",
                   help="git revision of the old code paths (default: main; 030aa55 is the one before issue 16)")
    p.add_argument("--kernels", default="pool,bn,relu", help="comma-separated subset of pool,bn,relu")
    args = p.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 9)
    warmup = args.warmup or (1 if args.quick else 2)

    from glassnet.ops import activations as new_act, norm as new_norm
    from glassnet.ops.pool import max_pool as new_pool

    env = environment()
    base = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", args.base], capture_output=True,
                          text=True, check=True).stdout.strip()
    print_header("memory-bound passes: old (--base) vs new code paths, interleaved", env,
                 {"base": f"{args.base} ({base})", "repeat": repeat, "warmup": warmup, "batch": N})
    print(f"blas      {blas_kernels()}")
    print("note      old and new alternate in this one process; on a shared machine read the ratio")
    rng = np.random.default_rng(0)
    rows = []
    kernels = args.kernels.split(",")
    if "pool" in kernels:
        load_base("glassnet/ops/pool/cache.py", "glassnet.ops.pool", args.base)  # the old pool's caches
        old_pool = load_base("glassnet/ops/pool/max_pool.py", "glassnet.ops.pool", args.base,
                             renames=((".cache", "._base_cache"),))
        rows += bench_pool(old_pool, new_pool, rng, repeat, warmup)
    if "bn" in kernels:
        rows += bench_bn(load_base("glassnet/ops/norm.py", "glassnet.ops", args.base), new_norm, rng, repeat, warmup)
    if "relu" in kernels:
        rows += bench_relu(load_base("glassnet/ops/activations.py", "glassnet.ops", args.base), new_act, rng,
                           repeat, warmup)
    table = [(k, s, fmt_ms(st["old"].median), fmt_ms(st["new"].median),
              f"{ratio(st['new'].median, st['old'].median):.2f}") for k, s, st in rows]
    print_table(["kernel", f"shape (N={N})", "old ms", "new ms", "new/old"], table,
                title=f"medians of {repeat} alternating samples")
    if args.json:
        dump_json(args.json, env, {"base": args.base, "repeat": repeat},
                  [{"kernel": k, "shape": s, "old": st["old"], "new": st["new"]} for k, s, st in rows])


if __name__ == "__main__":
    main()
