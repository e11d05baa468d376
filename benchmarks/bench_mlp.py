"""Benchmark: one MLP training step, glassnet vs PyTorch CPU (vs a bare NumPy floor).

What it measures
----------------
One full training step of the lecture's 2-layer net, float32::

    Flatten -> Linear(784, 512) -> ReLU -> Linear(512, 10)
    loss = CrossEntropyLoss(logits, labels)        batch 128 (default)
    opt.zero_grad(); loss.backward(); opt.step()   SGD lr 0.01, momentum 0.9

in three implementations, timed in the same process, interleaved
(glassnet, torch, numpy, glassnet, torch, numpy, ...) after warm-up; each
sample is ``--steps-per-sample`` (5) steps back to back, preceded by one
untimed priming step (see ``_timing.time_interleaved``):

* ``glassnet`` -- ``glassnet.nn`` modules, autograd tape and ``glassnet.optim.SGD``;
* ``torch``    -- the same model in ``torch.nn`` with identical initial weights
  (copied through ``state_dict``) and ``torch.optim.SGD``;
* ``numpy``    -- the same step hand-written as the minimal NumPy ops (three
  GEMMs for backward, two for forward, softmax, momentum update) with no
  framework at all: the floor glassnet's NumPy kernels could reach.

Before any timing, one step is run on glassnet and torch from the same weights
and the loss, every gradient and every updated weight are asserted equal
(``allclose``), so a broken kernel cannot produce a fast wrong number. After
timing, both models (which took the same number of steps on the same batch)
are compared again to catch drift.

Then a profile splits each framework's step into forward / loss / zero_grad /
backward / optimizer step (medians over repetitions, also interleaved).

Reported: median and min per step in ms, and the ratio glassnet / torch
(> 1 means glassnet is slower). Thread settings are left at their defaults.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_mlp.py                 # ~15 s on an idle 2-core machine
    .venv/bin/python benchmarks/bench_mlp.py --quick         # smoke run, few seconds
    .venv/bin/python benchmarks/bench_mlp.py --repeat 50 --batch 256 --json out/mlp.json
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

import glassnet as gn  # noqa: E402
import glassnet.nn as gnn  # noqa: E402
from glassnet.optim import SGD as GSGD  # noqa: E402

from _timing import (add_common_args, add_runtime_options, apply_runtime_options, check_close, dump_json, environment, fmt_ms,  # noqa: E402
                     print_header, print_table, ratio, time_interleaved, time_phases)

IN, HIDDEN, OUT = 784, 512, 10
LR, MOMENTUM = 0.01, 0.9


def build(batch: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, OUT, size=batch).astype(np.int64)

    gn.manual_seed(seed)
    gmodel = gnn.Sequential(gnn.Flatten(), gnn.Linear(IN, HIDDEN), gnn.ReLU(), gnn.Linear(HIDDEN, OUT))
    tmodel = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
                                 torch.nn.Linear(HIDDEN, OUT))
    sd = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in gmodel.state_dict().items()}
    tmodel.load_state_dict(sd)
    for k, v in gmodel.state_dict().items():
        assert v.dtype == np.float32, f"glassnet parameter {k} is {v.dtype}, expected float32"
    return x, y, gmodel, tmodel


class NumpyMLP:
    """The same step with bare NumPy: the floor for a NumPy implementation."""

    def __init__(self, sd):
        self.p = {k: np.array(v, copy=True) for k, v in sd.items()}
        self.buf = None

    def step(self, x, y):
        p = self.p
        W1, b1, W2, b2 = p["1.weight"], p["1.bias"], p["3.weight"], p["3.bias"]
        n = x.shape[0]
        x2 = x.reshape(n, -1)
        h = x2 @ W1.T
        h += b1
        a = np.maximum(h, 0)
        z = a @ W2.T
        z += b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.log(s[:, 0]).mean() - z[np.arange(n), y].mean())
        dz = e / s
        dz[np.arange(n), y] -= 1
        dz *= np.float32(1.0 / n)
        g = {"3.weight": dz.T @ a, "3.bias": dz.sum(axis=0)}
        da = dz @ W2
        da *= h > 0
        g["1.weight"] = da.T @ x2
        g["1.bias"] = da.sum(axis=0)
        if self.buf is None:
            self.buf = {k: v.copy() for k, v in g.items()}
        else:
            for k, v in g.items():
                self.buf[k] *= np.float32(MOMENTUM)
                self.buf[k] += v
        for k in p:
            p[k] -= np.float32(LR) * self.buf[k]
        return loss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(ap, default_repeat=40, quick_repeat=10, default_warmup=10, quick_warmup=2)
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    ap.add_argument("--steps-per-sample", type=int, default=5,
                    help="training steps timed back to back per sample (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    add_runtime_options(ap)
    args = ap.parse_args(argv)
    apply_runtime_options(args)
    repeat = args.repeat or (10 if args.quick else 40)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 10)
    settings = {"model": f"MLP {IN}-{HIDDEN}-{OUT} ReLU", "batch": args.batch, "dtype": "float32",
                "optimizer": f"SGD lr={LR} momentum={MOMENTUM}", "repeat": repeat, "warmup": warmup,
                "order": "interleaved glassnet, torch, numpy",
                "steps_per_sample": args.steps_per_sample}
    env = environment()
    print_header("bench_mlp: one training step (fwd + CE loss + bwd + SGD momentum)", env, settings)

    x, y, gmodel, tmodel = build(args.batch, args.seed)
    npm = NumpyMLP(gmodel.state_dict())
    gx, gy = gn.from_numpy(x), gn.from_numpy(y)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    gloss_fn, tloss_fn = gnn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    gopt = GSGD(gmodel.parameters(), lr=LR, momentum=MOMENTUM)
    topt = torch.optim.SGD(tmodel.parameters(), lr=LR, momentum=MOMENTUM)

    # ---- sanity: one step from identical weights must agree --------------------
    gl = gloss_fn(gmodel(gx), gy)
    gopt.zero_grad()
    gl.backward()
    ggrads = {k: np.array(p.grad, copy=True) for k, p in zip(gmodel.state_dict(), gmodel.parameters())}
    gopt.step()
    tl = tloss_fn(tmodel(tx), ty)
    topt.zero_grad()
    tl.backward()
    tgrads = {k: p.grad.numpy().copy() for k, p in tmodel.named_parameters()}
    topt.step()
    nl = npm.step(x, y)
    check_close("loss", np.float32(gl.data), tl.item(), rtol=1e-5)
    check_close("numpy-floor loss", nl, tl.item(), rtol=1e-5)
    for k in tgrads:
        check_close(f"grad {k}", ggrads[k], tgrads[k])
    tsd = tmodel.state_dict()
    for k, v in gmodel.state_dict().items():
        check_close(f"updated {k}", v, tsd[k].numpy())
        check_close(f"numpy-floor updated {k}", npm.p[k], tsd[k].numpy())
    print(f"\nsanity: loss glassnet {float(gl.data):.6f} torch {tl.item():.6f} numpy {nl:.6f};"
          " grads and updated weights allclose")

    # ---- timing ----------------------------------------------------------------
    def g_step():
        loss = gloss_fn(gmodel(gx), gy)
        gopt.zero_grad()
        loss.backward()
        gopt.step()

    def t_step():
        loss = tloss_fn(tmodel(tx), ty)
        topt.zero_grad()
        loss.backward()
        topt.step()

    def n_step():
        npm.step(x, y)

    # A fixed number of steps per sample (and one priming step), the same for
    # every contender, so all take the same number of steps (drift check below).
    st = time_interleaved({"glassnet": g_step, "torch": t_step, "numpy": n_step},
                          repeat=repeat, warmup=warmup, number=args.steps_per_sample,
                          prime=True)
    g, t, n = st["glassnet"], st["torch"], st["numpy"]
    rows = [[k, fmt_ms(s.median), fmt_ms(s.min), fmt_ms(s.iqr), f"{ratio(s.median, t.median):.2f}",
             f"{ratio(s.min, t.min):.2f}"] for k, s in st.items()]
    print_table(["step", "median ms", "min ms", "IQR ms", "/torch (median)", "/torch (min)"], rows,
                title=f"Training step, batch {args.batch} ({repeat} interleaved repetitions)")
    print(f"glassnet/torch = {ratio(g.median, t.median):.2f}x (median), "
          f"{ratio(g.min, t.min):.2f}x (min); glassnet/numpy-floor = {ratio(g.median, n.median):.2f}x")

    # ---- drift: same number of steps on the same batch ------------------------
    # float32 rounding differs between the libraries and compounds over hundreds
    # of steps, so this tolerance is looser than the one-step check above: it
    # catches a step that stopped updating or diverged, not last-bit drift.
    tsd = tmodel.state_dict()
    drift = max(check_close(f"after timing {k}", v, tsd[k].numpy(), rtol=1e-2, atol_rel=1e-3)
                for k, v in gmodel.state_dict().items())
    n_steps = 1 + warmup + repeat * (1 + args.steps_per_sample)
    print(f"drift check: after {n_steps} steps glassnet and torch weights still agree "
          f"(max |diff| {drift:.2g})")

    # ---- profile: where glassnet's step time goes ------------------------------
    # The two libraries share the step's API (model(x), loss_fn(out, y),
    # zero_grad, backward, step), so one function times both.
    def phases(model, x, y, loss_fn, opt):
        def run(clock):
            out = model(x)
            clock("forward (model)")
            loss = loss_fn(out, y)
            clock("loss (CE fwd)")
            opt.zero_grad()
            clock("zero_grad")
            loss.backward()
            clock("backward")
            opt.step()
            clock("optimizer step")
        return run

    g_phases = phases(gmodel, gx, gy, gloss_fn, gopt)
    t_phases = phases(tmodel, tx, ty, tloss_fn, topt)
    prof = time_phases({"glassnet": g_phases, "torch": t_phases}, repeat=repeat, warmup=warmup)
    gp, tp = prof["glassnet"], prof["torch"]
    gtot = sum(s.median for k, s in gp.items() if k != "total")
    rows = []
    for ph in gp:
        a, b = gp[ph].median, tp[ph].median
        share = f"{100 * a / gtot:.0f}%" if ph != "total" else "100%"
        rows.append([ph, fmt_ms(a), share, fmt_ms(b), f"{ratio(a, b):.2f}"])
    print_table(["phase", "glassnet ms", "share", "torch ms", "glassnet/torch"], rows,
                title="Where the step time goes (median per phase; shares of the sum of phase medians)")

    if args.json:
        dump_json(args.json, env, settings, {
            "step": st, "ratio_median": ratio(g.median, t.median), "ratio_min": ratio(g.min, t.min),
            "ratio_vs_numpy_floor": ratio(g.median, n.median), "profile": prof})


if __name__ == "__main__":
    main()
