"""Benchmark: conv2d and max-pool kernels, glassnet vs PyTorch CPU, and where glassnet's time goes.

What it measures
----------------
Kernel level, float32, no Tensor/autograd layer on the glassnet side:

* glassnet ``glassnet.ops.conv.conv2d_forward`` / ``conv2d_backward`` and
  ``glassnet.ops.pool.max_pool2d_forward`` / ``max_pool2d_backward``;
* PyTorch ``torch.nn.functional.conv2d`` / ``max_pool2d``, backward through
  autograd (``torch.autograd.grad`` with ``retain_graph=True`` for the
  backward-only timing, so the same graph is reused and nothing accumulates).

Per layer three timings, each interleaved glassnet, torch, glassnet, torch, ...
after warm-up, median (and min) of ``--repeat`` samples:

* ``fwd``      forward at the forward batch. torch runs under ``no_grad``
  (what an inference forward costs); glassnet's forward is the same in both
  modes (it always returns the cache its backward needs);
* ``bwd``      backward only at the training batch, from a cached forward:
  glassnet ``conv2d_backward(dout, cache)`` -> (dx, dW, db); torch
  ``autograd.grad(out, (x, W, b), dout)``; likewise dx for pooling;
* ``fwd+bwd``  one forward (torch with autograd recording) plus its backward.

Layers (convolutions with bias, 3x3/1 pad 1 unless said; max pools 2x2/2
unless said):

* the small Fashion-MNIST CNN, batch 128: conv 1->32 @28x28, pool, conv
  32->64 @14x14, pool;
* VGG16's 13 convolutions and 5 pools on a 224x224 image, batch 1 for the
  forward and batch 2 for backward and fwd+bwd. By default (and with
  ``--quick``) one representative convolution per VGG stage (conv1_2,
  conv2_2, conv3_2, conv4_2, conv5_2) and every pool; ``--full`` runs all 13;
* torchvision's AlexNet at batch 16 (forward and backward): conv1 11x11/4
  pad 2, conv2 5x5 pad 2, conv3-5 3x3, and its three 3x3/2 pools;
* ResNet-18, forward at batch 1, backward at batch 8: conv1 7x7/2 pad 3, one
  3x3 conv per stage (56, 28, 14, 7 px), the 3x3/2 pad 1 max pool; ``--full``
  adds the stride-2 convolutions and a 1x1/2 downsample.

Then, for glassnet's convolutions:

* achieved GFLOP/s of the forward, ``2·N·C_out·Ho·Wo·C_in/groups·kH·kW / t``,
  next to NumPy's float32 GEMM throughput measured here -- a 2048x2048 @
  2048x2048 matmul (the "GEMM ceiling") and a matmul of exactly the conv's
  ``W_row · X_col`` shape -- as fractions of those ceilings;
* where the forward time goes: ``im2col`` (timed alone with the public
  ``glassnet.ops.conv.im2col``) vs the GEMM vs the rest (bias, reshapes);
* where the backward time goes: the dW GEMM (``Σ_n dO_n·X_col,nᵀ``), the
  dX_col GEMM (``W_rowᵀ·dO``), ``col2im``, and the rest (db, reshapes).
  The pieces are timed separately on the same shapes, so "rest" is the total
  minus the pieces and can be slightly negative through noise.

Before any timing each layer's forward output and every gradient are asserted
close to PyTorch's (scaled ``allclose``), so a broken kernel cannot produce a
fast wrong number.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_conv.py            # subset, ~1-2 min
    .venv/bin/python benchmarks/bench_conv.py --quick    # subset, 3 repeats, ~1 min idle
    .venv/bin/python benchmarks/bench_conv.py --full     # all 13 VGG convs, several minutes
    .venv/bin/python benchmarks/bench_conv.py --only fmnist --repeat 20 --json out/conv.json

Ratios are glassnet / torch: > 1 means glassnet is slower.
"""
from __future__ import annotations

import _blas_env  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from glassnet.ops import conv as gconv  # noqa: E402
from glassnet.ops import pool as gpool  # noqa: E402

from _timing import (add_common_args, add_runtime_options, apply_runtime_options, check_close, dump_json, environment, fmt_ms,  # noqa: E402
                     print_header, print_table, ratio, time_interleaved)

# name, C_in, C_out, H(=W), N forward, N backward, in the default subset, kernel, stride, padding
def _conv(name, cin, cout, hw, nf, nb, subset, k=3, s=1, p=1):
    return (name, cin, cout, hw, nf, nb, subset, k, s, p)


CONVS = [
    _conv("fmnist.conv1", 1, 32, 28, 128, 128, True),
    _conv("fmnist.conv2", 32, 64, 14, 128, 128, True),
    _conv("vgg.conv1_1", 3, 64, 224, 1, 2, False),
    _conv("vgg.conv1_2", 64, 64, 224, 1, 2, True),
    _conv("vgg.conv2_1", 64, 128, 112, 1, 2, False),
    _conv("vgg.conv2_2", 128, 128, 112, 1, 2, True),
    _conv("vgg.conv3_1", 128, 256, 56, 1, 2, False),
    _conv("vgg.conv3_2", 256, 256, 56, 1, 2, True),
    _conv("vgg.conv3_3", 256, 256, 56, 1, 2, False),
    _conv("vgg.conv4_1", 256, 512, 28, 1, 2, False),
    _conv("vgg.conv4_2", 512, 512, 28, 1, 2, True),
    _conv("vgg.conv4_3", 512, 512, 28, 1, 2, False),
    _conv("vgg.conv5_1", 512, 512, 14, 1, 2, False),
    _conv("vgg.conv5_2", 512, 512, 14, 1, 2, True),
    _conv("vgg.conv5_3", 512, 512, 14, 1, 2, False),
    # torchvision's AlexNet at its training batch (16) for forward and backward
    _conv("alexnet.conv1", 3, 64, 224, 16, 16, True, 11, 4, 2),
    _conv("alexnet.conv2", 64, 192, 27, 16, 16, True, 5, 1, 2),
    _conv("alexnet.conv3", 192, 384, 13, 16, 16, True),
    _conv("alexnet.conv4", 384, 256, 13, 16, 16, True),
    _conv("alexnet.conv5", 256, 256, 13, 16, 16, True),
    # ResNet-18: forward at batch 1, backward at its training batch 8
    _conv("resnet.conv1", 3, 64, 224, 1, 8, True, 7, 2, 3),
    _conv("resnet.layer1", 64, 64, 56, 1, 8, True),
    _conv("resnet.layer2.0.conv1", 64, 128, 56, 1, 8, False, 3, 2, 1),
    _conv("resnet.layer2.0.downsample", 64, 128, 56, 1, 8, False, 1, 2, 0),
    _conv("resnet.layer2", 128, 128, 28, 1, 8, True),
    _conv("resnet.layer3.0.conv1", 128, 256, 28, 1, 8, False, 3, 2, 1),
    _conv("resnet.layer3", 256, 256, 14, 1, 8, True),
    _conv("resnet.layer4.0.conv1", 256, 512, 14, 1, 8, False, 3, 2, 1),
    _conv("resnet.layer4", 512, 512, 7, 1, 8, True),
]
# name, C, H(=W), N forward, N backward, kernel, stride, padding
POOLS = [
    ("fmnist.pool1", 32, 28, 128, 128, 2, 2, 0),
    ("fmnist.pool2", 64, 14, 128, 128, 2, 2, 0),
    ("vgg.pool1", 64, 224, 1, 2, 2, 2, 0),
    ("vgg.pool2", 128, 112, 1, 2, 2, 2, 0),
    ("vgg.pool3", 256, 56, 1, 2, 2, 2, 0),
    ("vgg.pool4", 512, 28, 1, 2, 2, 2, 0),
    ("vgg.pool5", 512, 14, 1, 2, 2, 2, 0),
    ("alexnet.pool1", 64, 55, 16, 16, 3, 2, 0),
    ("alexnet.pool2", 192, 27, 16, 16, 3, 2, 0),
    ("alexnet.pool5", 256, 13, 16, 16, 3, 2, 0),
    ("resnet.maxpool", 64, 112, 1, 8, 3, 2, 1),
]
GROUPS = ("fmnist", "vgg", "alexnet", "resnet")
BLOCKS = True  # --order: blocks (default) or interleaved, see main()


def _out_size(hw, k, s, p):
    return (hw + 2 * p - k) // s + 1


def _rng(seed, name):
    return np.random.default_rng([seed, sum(map(ord, name))])


def _r(st, a, b):
    return f"{ratio(st[a].median, st[b].median):.2f}"


# --------------------------------------------------------------------------
# GEMM ceiling
# --------------------------------------------------------------------------
def gemm_ceiling(repeat, warmup, n=2048):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    st = time_interleaved({"numpy": lambda: a @ b, "torch": lambda: ta @ tb}, repeat=repeat, warmup=warmup, blocks=BLOCKS)
    flops = 2.0 * n ** 3
    return {k: flops / s.median / 1e9 for k, s in st.items()}, {k: flops / s.min / 1e9 for k, s in st.items()}, st


# --------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------
def _layout(cols, n, kg, L):
    if cols.shape == (kg, n * L):
        return "(C*kH*kW, N*Ho*Wo)"
    if cols.shape == (n, kg, L):
        return "(N, C*kH*kW, Ho*Wo)"
    raise AssertionError(f"bench_conv: unknown im2col layout {cols.shape} for N={n}, K={kg}, L={L}; "
                         "teach _gemm_fwd/_gemm_bwd about it")


def _gemm_fwd(w_row, cols, n, kg, L):
    """The forward GEMM W_row · X_col exactly as the kernel's layout needs it."""
    if _layout(cols, n, kg, L).startswith("(C"):
        return lambda: np.matmul(w_row, cols)                        # (C_out, N·L)
    w_g = w_row.reshape(1, *w_row.shape)
    return lambda: np.matmul(w_g, cols.reshape(n, 1, kg, L))         # (N, 1, C_out, L)


def _gemm_bwd(w_row, cols, dout, n, cout, kg, L):
    """(dW GEMM, dX_col GEMM, a dX_col array) for the backward breakdown."""
    if _layout(cols, n, kg, L).startswith("(C"):
        d_o = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).reshape(cout, n * L)
        dcols = w_row.T @ d_o
        return (lambda: np.matmul(d_o, cols.T)), (lambda: np.matmul(w_row.T, d_o)), dcols
    cols4 = cols.reshape(n, 1, kg, L)
    d_o = dout.reshape(n, 1, cout, L)
    w_gt = w_row.reshape(1, cout, kg).transpose(0, 2, 1)
    dcols = np.matmul(w_gt, d_o).reshape(n, kg, L)
    return ((lambda: np.matmul(d_o, cols4.transpose(0, 1, 3, 2)).sum(axis=0)),
            (lambda: np.matmul(w_gt, d_o)), dcols)


def bench_conv_layer(spec, repeat, warmup, seed):
    name, cin, cout, hw, nf, nb, _, k, stride, pad = spec
    rng = _rng(seed, name)
    w = (rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32((2.0 / (cin * k * k)) ** 0.5))
    b = rng.standard_normal(cout, dtype=np.float32) * np.float32(0.1)
    tw, tb = torch.from_numpy(w), torch.from_numpy(b)
    res = {"layer": name, "C_in": cin, "C_out": cout, "H": hw, "W": hw, "N_fwd": nf, "N_bwd": nb,
           "kernel": k, "stride": stride, "padding": pad}

    def g_fwd(x):
        return gconv.conv2d_forward(x, w, b, (stride, stride), (pad, pad))

    # ---- forward at N_fwd ------------------------------------------------------
    xf = rng.standard_normal((nf, cin, hw, hw), dtype=np.float32)
    txf = torch.from_numpy(xf)
    out, _ = g_fwd(xf)
    with torch.no_grad():
        tout = F.conv2d(txf, tw, tb, stride, pad)
    res["maxdiff_out"] = check_close(f"{name} forward", out, tout.numpy(), rtol=1e-3, atol_rel=1e-4)
    del out, tout

    def t_fwd_nograd():
        with torch.no_grad():
            return F.conv2d(txf, tw, tb, stride, pad)

    # glassnet's forward pieces are timed in the same interleaved rounds, so the
    # breakdown shares the totals' noise: im2col alone, the GEMM alone.
    L = _out_size(hw, k, stride, pad) ** 2
    kg = cin * k * k
    cols_f = gconv.im2col(xf, k, k, stride, pad)
    w_row = w.reshape(cout, kg)
    gemm_f = _gemm_fwd(w_row, cols_f, nf, kg, L)
    res["cols_layout"] = _layout(cols_f, nf, kg, L)
    st = time_interleaved({
        "glassnet": lambda: g_fwd(xf), "torch": t_fwd_nograd,
        "im2col": lambda: gconv.im2col(xf, k, k, stride, pad),
        "gemm": gemm_f,
    }, repeat=repeat, warmup=warmup, blocks=BLOCKS)
    del cols_f
    st_f = {k: st[k] for k in ("glassnet", "torch")}
    st_fp = {k: st[k] for k in ("im2col", "gemm")}

    # ---- backward and fwd+bwd at N_bwd -----------------------------------------
    xb = xf if nb == nf else rng.standard_normal((nb, cin, hw, hw), dtype=np.float32)
    txb = torch.from_numpy(xb).requires_grad_(True)
    twg = torch.from_numpy(w).requires_grad_(True)
    tbg = torch.from_numpy(b).requires_grad_(True)
    out, cache = g_fwd(xb)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    tdout = torch.from_numpy(dout)
    dx, dw, db = gconv.conv2d_backward(dout, cache)
    tout = F.conv2d(txb, twg, tbg, stride, pad)
    tdx, tdw, tdb = torch.autograd.grad(tout, (txb, twg, tbg), tdout, retain_graph=True)
    res["maxdiff_dx"] = check_close(f"{name} dx", dx, tdx.numpy(), rtol=1e-3, atol_rel=1e-4)
    res["maxdiff_dw"] = check_close(f"{name} dW", dw, tdw.numpy(), rtol=1e-3, atol_rel=1e-4)
    res["maxdiff_db"] = check_close(f"{name} db", db, tdb.numpy(), rtol=1e-3, atol_rel=1e-4)
    del dx, dw, db, tdx, tdw, tdb, out

    # The backward pieces on the same shapes, in whichever column layout this
    # glassnet's im2col produces (so the breakdown follows kernel changes).
    cols_b = gconv.im2col(xb, k, k, stride, pad)
    dW_fn, dX_fn, dcols = _gemm_bwd(w_row, cols_b, dout, nb, cout, kg, L)
    st = time_interleaved({
        "glassnet": lambda: gconv.conv2d_backward(dout, cache),
        "torch": lambda: torch.autograd.grad(tout, (txb, twg, tbg), tdout, retain_graph=True),
        "dW gemm": dW_fn,
        "dXcol gemm": dX_fn,
        "col2im": lambda: gconv.col2im(dcols, xb.shape, k, k, stride, pad),
    }, repeat=repeat, warmup=warmup, blocks=BLOCKS)
    del tout, cols_b, dcols, cache, dW_fn, dX_fn
    st_b = {k: st[k] for k in ("glassnet", "torch")}
    st_bp = {k: st[k] for k in ("dW gemm", "dXcol gemm", "col2im")}

    def g_fb():
        o, c = g_fwd(xb)
        return gconv.conv2d_backward(dout, c)

    def t_fb():
        o = F.conv2d(txb, twg, tbg, stride, pad)
        return torch.autograd.grad(o, (txb, twg, tbg), tdout)

    st_fb = time_interleaved({"glassnet": g_fb, "torch": t_fb}, repeat=repeat, warmup=warmup, blocks=BLOCKS)

    flops_f = 2.0 * nf * cout * L * kg
    res.update({
        "fwd": st_f, "bwd": st_b, "fwd_bwd": st_fb, "fwd_parts": st_fp, "bwd_parts": st_bp,
        "gflop_fwd": flops_f / 1e9,
        "gflops_glassnet_fwd": flops_f / st_f["glassnet"].median / 1e9,
        "gflops_torch_fwd": flops_f / st_f["torch"].median / 1e9,
        "gflops_same_shape_gemm": flops_f / st_fp["gemm"].median / 1e9,
    })
    return res


# --------------------------------------------------------------------------
# max pooling
# --------------------------------------------------------------------------
def _g_pool_fwd(x, k, s, p):
    return gpool.max_pool2d_forward(x, (k, k), (s, s), (p, p), (1, 1), False)


def bench_pool_layer(spec, repeat, warmup, seed):
    name, c, hw, nf, nb, k, s, p = spec
    rng = _rng(seed, name)
    res = {"layer": name, "C": c, "H": hw, "W": hw, "N_fwd": nf, "N_bwd": nb, "kernel": k, "stride": s,
           "padding": p}

    xf = rng.standard_normal((nf, c, hw, hw), dtype=np.float32)
    txf = torch.from_numpy(xf)
    out, _ = _g_pool_fwd(xf, k, s, p)
    with torch.no_grad():
        tout = F.max_pool2d(txf, k, s, p)
    check_close(f"{name} forward", out, tout.numpy(), rtol=0, atol_rel=0)

    def t_fwd_nograd():
        with torch.no_grad():
            return F.max_pool2d(txf, k, s, p)

    st_f = time_interleaved({"glassnet": lambda: _g_pool_fwd(xf, k, s, p), "torch": t_fwd_nograd},
                            repeat=repeat, warmup=warmup)

    xb = xf if nb == nf else rng.standard_normal((nb, c, hw, hw), dtype=np.float32)
    txb = torch.from_numpy(xb).requires_grad_(True)
    out, cache = _g_pool_fwd(xb, k, s, p)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    tdout = torch.from_numpy(dout)
    dx = gpool.max_pool2d_backward(dout, cache)
    tout = F.max_pool2d(txb, k, s, p)
    (tdx,) = torch.autograd.grad(tout, (txb,), tdout, retain_graph=True)
    # overlapping windows add several routed gradients, in another order than PyTorch
    tol = 0 if s >= k else 1e-6
    check_close(f"{name} dx", dx, tdx.numpy(), rtol=tol, atol_rel=tol)

    st_b = time_interleaved({
        "glassnet": lambda: gpool.max_pool2d_backward(dout, cache),
        "torch": lambda: torch.autograd.grad(tout, (txb,), tdout, retain_graph=True),
    }, repeat=repeat, warmup=warmup, blocks=BLOCKS)

    def g_fb():
        o, c_ = _g_pool_fwd(xb, k, s, p)
        return gpool.max_pool2d_backward(dout, c_)

    def t_fb():
        o = F.max_pool2d(txb, k, s, p)
        return torch.autograd.grad(o, (txb,), tdout)

    st_fb = time_interleaved({"glassnet": g_fb, "torch": t_fb}, repeat=repeat, warmup=warmup, blocks=BLOCKS)
    res.update({"fwd": st_f, "bwd": st_b, "fwd_bwd": st_fb})
    return res


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def _cmp_row(r, shape):
    f, b, fb = r["fwd"], r["bwd"], r["fwd_bwd"]
    return [r["layer"], shape, f"{r['N_fwd']}/{r['N_bwd']}",
            fmt_ms(f["glassnet"].median), fmt_ms(f["torch"].median), _r(f, "glassnet", "torch"),
            fmt_ms(b["glassnet"].median), fmt_ms(b["torch"].median), _r(b, "glassnet", "torch"),
            fmt_ms(fb["glassnet"].median), fmt_ms(fb["torch"].median), _r(fb, "glassnet", "torch"),
            f"{ratio(fb['glassnet'].min, fb['torch'].min):.2f}"]


CMP_HEAD = ["layer", "shape", "N f/b", "fwd g", "fwd t", "fwd g/t", "bwd g", "bwd t", "bwd g/t",
            "f+b g", "f+b t", "f+b g/t", "f+b g/t(min)"]


def _sum_row(label, rows, key):
    g = sum(r[key]["glassnet"].median for r in rows)
    t = sum(r[key]["torch"].median for r in rows)
    return g, t


def report(convs, pools, ceiling, ceiling_min):
    rows = [_cmp_row(r, f"{r['C_in']}->{r['C_out']} @{r['H']} {r['kernel']}x{r['kernel']}/{r['stride']}")
            for r in convs]
    for grp in GROUPS:
        sel = [r for r in convs if r["layer"].startswith(grp)]
        if sel:
            tot = [f"sum {grp}", "", ""]
            for key in ("fwd", "bwd", "fwd_bwd"):
                g, t = _sum_row(grp, sel, key)
                tot += [fmt_ms(g), fmt_ms(t), f"{ratio(g, t):.2f}"]
            rows.append(tot + [""])
    print_table(CMP_HEAD, rows, title="conv2d + bias (kernel/stride in the shape; padding as the network's), "
                                      "float32 -- median ms per call (g = glassnet, t = torch; g/t > 1: glassnet slower)")
    if pools:
        rows = [_cmp_row(r, f"{r['C']} @{r['H']} {r['kernel']}x{r['kernel']}/{r['stride']}") for r in pools]
        print_table(CMP_HEAD, rows, title="max_pool2d (kernel/stride in the shape), float32 -- median ms per call")

    rows = []
    for r in convs:
        gf = r["gflops_glassnet_fwd"]
        rows.append([r["layer"], f"{r['gflop_fwd']:.3f}", f"{gf:.0f}", f"{r['gflops_torch_fwd']:.0f}",
                     f"{r['gflops_same_shape_gemm']:.0f}", f"{gf / r['gflops_same_shape_gemm']:.2f}",
                     f"{gf / ceiling['numpy']:.2f}"])
    print_table(["layer", "GFLOP fwd", "glassnet GFLOP/s", "torch GFLOP/s", "same-shape GEMM GFLOP/s",
                 "frac of same-shape", "frac of 2048 GEMM"], rows,
                title=f"Forward throughput vs NumPy float32 GEMM ceiling (2048x2048 @ 2048x2048: "
                      f"numpy {ceiling['numpy']:.0f} GFLOP/s median / {ceiling_min['numpy']:.0f} best, "
                      f"torch {ceiling['torch']:.0f} / {ceiling_min['torch']:.0f})")

    rows = []
    for r in convs:
        tot = r["fwd"]["glassnet"].median
        i2c = r["fwd_parts"]["im2col"].median
        gm = r["fwd_parts"]["gemm"].median
        rest = tot - i2c - gm
        rows.append([r["layer"], r["N_fwd"], fmt_ms(tot), fmt_ms(i2c), f"{100 * i2c / tot:.0f}%",
                     fmt_ms(gm), f"{100 * gm / tot:.0f}%", fmt_ms(rest), f"{100 * rest / tot:.0f}%"])
    print_table(["layer", "N", "fwd total", "im2col", "%", "GEMM", "%", "rest", "%"], rows,
                title="Where glassnet's conv forward time goes (medians, ms; X_col layout "
                      f"{convs[0].get('cols_layout') if convs else '?'})")

    rows = []
    for r in convs:
        tot = r["bwd"]["glassnet"].median
        p = r["bwd_parts"]
        dw, dxc, c2i = p["dW gemm"].median, p["dXcol gemm"].median, p["col2im"].median
        rest = tot - dw - dxc - c2i
        rows.append([r["layer"], r["N_bwd"], fmt_ms(tot), fmt_ms(dw), f"{100 * dw / tot:.0f}%",
                     fmt_ms(dxc), f"{100 * dxc / tot:.0f}%", fmt_ms(c2i), f"{100 * c2i / tot:.0f}%",
                     fmt_ms(rest), f"{100 * rest / tot:.0f}%"])
    print_table(["layer", "N", "bwd total", "dW GEMM", "%", "dXcol GEMM", "%", "col2im", "%", "rest", "%"],
                rows, title="Where glassnet's conv backward time goes (medians, ms; X_col cached by the forward)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(ap, default_repeat=5, quick_repeat=3)
    ap.add_argument("--full", action="store_true",
                    help="all 13 VGG16 convolutions and ResNet-18's strided ones (default: one per stage)")
    ap.add_argument("--only", choices=list(GROUPS), default=None, help="run one network's layers only")
    ap.add_argument("--no-pool", action="store_true", help="skip the max-pool layers")
    ap.add_argument("--order", choices=["blocks", "interleaved"], default="blocks",
                    help="blocks (default): all samples of one contender, then the next; interleaved: "
                         "glassnet, torch, glassnet, ... (the second library then meets the first one's "
                         "spinning threads, which inflates short calls)")
    ap.add_argument("--seed", type=int, default=0)
    add_runtime_options(ap)
    args = ap.parse_args(argv)
    apply_runtime_options(args)
    global BLOCKS
    BLOCKS = args.order == "blocks"
    repeat = args.repeat or (3 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else 1
    convs = [c for c in CONVS if args.full or c[6]]
    pools = [] if args.no_pool else list(POOLS)
    if args.only:
        convs = [c for c in convs if c[0].startswith(args.only)]
        pools = [p for p in pools if p[0].startswith(args.only)]
    settings = {"repeat": repeat, "warmup": warmup, "layers": "full" if args.full else "subset",
                "convs": [c[0] for c in convs], "pools": [p[0] for p in pools], "dtype": "float32",
                "order": "blocks per contender" if BLOCKS else "interleaved glassnet, torch",
                "workspace_limit_MiB": gconv.current_settings().workspace_limit / 2**20}
    env = environment()
    print_header("bench_conv: conv2d / max_pool2d kernels, glassnet vs torch", env,
                 {k: v for k, v in settings.items() if k not in ("convs", "pools")})

    ceiling, ceiling_min, st_gemm = gemm_ceiling(repeat, warmup)
    print(f"\nGEMM ceiling 2048^3 float32: numpy {ceiling['numpy']:.0f} GFLOP/s, torch {ceiling['torch']:.0f}"
          " GFLOP/s (median)", flush=True)

    conv_res, pool_res = [], []
    for spec in convs:
        print(f"  conv {spec[0]} ...", end="", flush=True)
        r = bench_conv_layer(spec, repeat, warmup, args.seed)
        conv_res.append(r)
        print(f" fwd+bwd g/t = {_r(r['fwd_bwd'], 'glassnet', 'torch')}  (outputs and grads allclose)", flush=True)
    for spec in pools:
        print(f"  pool {spec[0]} ...", end="", flush=True)
        r = bench_pool_layer(spec, repeat, warmup, args.seed)
        pool_res.append(r)
        print(f" fwd+bwd g/t = {_r(r['fwd_bwd'], 'glassnet', 'torch')}  (outputs equal, grads "
              f"{'equal' if spec[6] >= spec[5] else 'allclose'})", flush=True)

    report(conv_res, pool_res, ceiling, ceiling_min)
    try:
        print(f"\nload avg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    if args.json:
        dump_json(args.json, env, settings, {"gemm_ceiling_gflops_median": ceiling,
                                             "gemm_ceiling_gflops_min": ceiling_min, "gemm": st_gemm,
                                             "conv": conv_res, "pool": pool_res})


if __name__ == "__main__":
    main()
