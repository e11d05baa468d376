"""Benchmark: whole-model training steps and forward passes, glassnet vs PyTorch CPU.

What it measures
----------------
For each case, float32, identical initial weights (glassnet's ``state_dict``
loaded into the PyTorch model, ``strict=True``), timed in the same process,
interleaved (glassnet, torch, glassnet, torch, ...) after warm-up (see
``_timing.time_interleaved``):

=============  ======  ===========  ==================================================
case           batch   input        what
=============  ======  ===========  ==================================================
mlp            128     1x28x28      training step of the 784-512-10 ReLU MLP (zoo ``mlp``)
small_cnn      128     1x28x28      training step of the Fashion-MNIST CNN (zoo ``small_cnn``)
alexnet        16      3x224x224    training step of torchvision's AlexNet
vgg16          2       3x224x224    training step of VGG16
resnet18       8       3x224x224    training step of ResNet-18 (BatchNorm in train mode)
vgg16-fwd      1       3x224x224    forward pass, eval mode, no grad
resnet18-fwd   1       3x224x224    forward pass, eval mode, no grad
=============  ======  ===========  ==================================================

A *training step* is ``loss = CrossEntropyLoss(model(x), y); opt.zero_grad();
loss.backward(); opt.step()`` with SGD lr 1e-4, momentum 0.9, on one fixed
batch, models in ``train()`` mode (dropout active, so the two
frameworks draw different masks; that changes no cost). The batch is what
training feeds (``--input images``, the default: Fashion-MNIST images for the
28x28 cases, photo-like images for the 224 px ones; see :func:`make_batch`),
or standard normal values (``--input random``). The small rate keeps
the repeated steps on one batch from diverging (at 0.01 ResNet-18 reached
inf/NaN within ~15 steps); after timing, both losses are asserted finite.

Correctness first: before timing, each case checks (1) eval-mode logits of
glassnet and PyTorch on the benchmark batch (``|g - t| <= 1e-4·max|t| +
1e-4·|t|``) and, for training cases, (2) one train-mode forward + backward
with dropout switched off: the loss (rel 1e-4) and every parameter gradient
(``|g - t| <= 5e-2·max|t| + 1e-2·|t|`` per tensor, and the largest difference
relative to the tensor's max is printed). The gradient tolerance is loose
because it has to be: with BatchNorm in train mode (ResNet-18, batch 8),
float32 gradients differ from a float64 PyTorch reference by up to 3% of the
tensor's max in PyTorch *and* in glassnet alike (measured: worst 3.2e-2 vs
3.2e-2), while a broken kernel is off by O(1). Plain conv/linear nets agree
to ~1e-6. A broken kernel cannot produce a fast wrong number.

Then, for glassnet, a *per-op breakdown* of one step: every differentiable op
goes through ``glassnet.tensor.apply_kernel(op, forward, backward, ...)``; the
script wraps it (in every ``glassnet.*`` module that imported it by name) and
times each op's forward kernel and, through the backward closure it hands to
the tape, its backward kernel. Ops built directly on ``Tensor._make`` (``add``
of a residual, ``reshape``, ``matmul``, ...) get their *backward* timed too
(their forward is cheap and lands in "other"). ``optimizer step`` and
``zero_grad`` are timed as phases; ``other`` = step time − everything timed
(the tape walk, gradient accumulation, Module.__call__, Python). All figures
come from the median (by total time) of ``--profile-steps`` instrumented
steps, so the parts add up to that step; shares are of its time, measured
with the instrumentation on (a few µs per op).

The header adds NumPy's (and torch's) 2048³ float32 GEMM throughput: the
ceiling for any im2col/GEMM-based NumPy implementation on this machine.

Reported: per case, median and min per call in ms for both, ratio
glassnet/torch (> 1 means glassnet is slower), images/s.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_models.py                     # all cases, several minutes
    .venv/bin/python benchmarks/bench_models.py --quick             # 2 repetitions, 1 profiled step
    .venv/bin/python benchmarks/bench_models.py --only mlp,small_cnn --repeat 10
    .venv/bin/python benchmarks/bench_models.py --only resnet18 --json out/models.json
    .venv/bin/python benchmarks/bench_models.py --no-profile        # timing table only

Peak memory (RSS) of the same steps: ``benchmarks/bench_memory.py``.

This module imports neither torch nor glassnet at import time (bench_memory
and time_to_accuracy import its builders into processes that must contain
only one framework).
"""
from __future__ import annotations

import _blas_env  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

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

from _timing import (add_common_args, add_runtime_options, apply_runtime_options, check_close, dump_json, environment, fmt_ms,  # noqa: E402
                     print_header, print_table, ratio, time_interleaved, Stats)

# A small rate: every case repeats steps on one fixed batch, and at lr 0.01 ResNet-18
# overflowed to inf/NaN after ~15 steps (which also slowed PyTorch ~2.5x). The rate
# changes no cost; the script asserts the loss is still finite after timing.
LR, MOMENTUM = 1e-4, 0.9

#: case name -> (zoo model, batch, input shape (C, H, W), classes, training step?)
CASES = {
    "mlp": ("mlp", 128, (1, 28, 28), 10, True),
    "small_cnn": ("small_cnn", 128, (1, 28, 28), 10, True),
    "alexnet": ("alexnet", 16, (3, 224, 224), 1000, True),
    "vgg16": ("vgg16", 2, (3, 224, 224), 1000, True),
    "resnet18": ("resnet18", 8, (3, 224, 224), 1000, True),
    "vgg16-fwd": ("vgg16", 1, (3, 224, 224), 1000, False),
    "resnet18-fwd": ("resnet18", 1, (3, 224, 224), 1000, False),
}
#: default timed repetitions: cheap cases get more
DEFAULT_REPEAT = {"mlp": 20, "small_cnn": 10}
DEFAULT_REPEAT_OTHER = 5


# --------------------------------------------------------------------------
# builders (shared with bench_memory.py and time_to_accuracy.py)
# --------------------------------------------------------------------------
#: ``--input images``: where the 28x28 cases' Fashion-MNIST batch is read from
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
#: ``--input`` choices
INPUTS = ("images", "random")


def make_batch(case: str, seed: int = 0, batch: int | None = None, inputs: str = "random",
               data_root: str = FASHION_MNIST_ROOT):
    """The fixed input batch (float32 NCHW) and int64 labels of a case.

    ``inputs="random"``: standard normal values and random labels. ``inputs="images"``:
    what a training run feeds — for the 28x28 cases ``batch`` Fashion-MNIST training images
    (a seeded draw, normalised with ``FASHION_MNIST_MEAN/STD`` as ``glassnet train`` does)
    with their labels, from ``data_root``; for the 224 px cases photo-like images
    (``bench_data.make_photo``: the centre 224x224 of a 375x500 photo, normalised with
    ImageNet's mean/std) and random labels. The values matter to PyTorch: its CPU max-pool
    branches on every comparison, and on random values (unpredictable branches) the small
    CNN's two pools took 13.4 against 8.5 ms per step on real images (BENCHMARKS.md).
    """
    _, n, shape, classes, _ = CASES[case]
    n = batch or n
    rng = np.random.default_rng(seed)
    if inputs == "random":
        x = rng.standard_normal((n, *shape), dtype=np.float32)
        y = rng.integers(0, classes, size=n).astype(np.int64)
        return x, y
    if inputs != "images":
        raise ValueError(f"make_batch: inputs must be one of {INPUTS}, got {inputs!r}")
    if shape == (1, 28, 28):
        return _fashion_mnist_batch(n, rng, data_root)
    return _photo_batch(n, shape, classes, rng)


def _fashion_mnist_batch(n, rng, root):
    from time_to_accuracy import fashion_mnist  # the data set and transforms of the time-to-accuracy run

    try:
        data = fashion_mnist(root, train=True)
    except Exception as e:  # the data set is not installed: say how to get it, in one line
        raise SystemExit(f"bench_models: --input images needs Fashion-MNIST under {root} ({e}); install it with "
                         "`apt-get install -y dataset-fashion-mnist`, pass --data-root, or use --input random")
    samples = [data[int(i)] for i in rng.choice(len(data), size=n, replace=False)]
    x = np.stack([np.asarray(image, dtype=np.float32) for image, _ in samples]).reshape(n, 1, 28, 28)
    y = np.array([int(label) for _, label in samples], dtype=np.int64)
    return x, y


def _photo_batch(n, shape, classes, rng):
    from bench_data import HEIGHT, WIDTH, make_photo

    from glassnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    c, h, w = shape
    top, left = (HEIGHT - h) // 2, (WIDTH - w) // 2
    seeds = rng.integers(0, 2**31, size=n)
    photos = np.stack([make_photo(int(s))[top:top + h, left:left + w] for s in seeds]).astype(np.float32)
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    x = np.ascontiguousarray(((photos / np.float32(255) - mean) / std).transpose(0, 3, 1, 2))
    y = rng.integers(0, classes, size=n).astype(np.int64)
    return x, y


def build_glassnet(case: str, seed: int = 0):
    import glassnet as gn
    from glassnet.models import get_model

    name, _, shape, classes, _ = CASES[case]
    gn.manual_seed(seed)
    model = get_model(name, num_classes=classes, in_channels=shape[0])
    for k, v in model.state_dict().items():
        assert v.dtype in (np.float32, np.int64), f"glassnet {name}: {k} is {v.dtype}, expected float32"
    return model


def torch_small_cnn(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 32,
                    hidden: int = 128, dropout: float = 0.25):
    """PyTorch twin of ``glassnet.models.small_cnn`` with the same module names
    (``features.0/3`` convs, ``classifier.1/4`` linears)."""
    from torch import nn

    h = w = image_size
    classifier = [nn.Flatten(), nn.Linear(2 * width * (h // 4) * (w // 4), hidden), nn.ReLU()]
    if dropout:
        classifier.append(nn.Dropout(dropout))
    classifier.append(nn.Linear(hidden, num_classes))
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(*classifier),
    )


def build_torch(case: str, state_dict=None):
    """The PyTorch model of a case; with ``state_dict`` (glassnet arrays) loaded strictly."""
    import torch
    from torch import nn

    name, _, shape, classes, _ = CASES[case]
    if name == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(shape[0] * shape[1] * shape[2], 512), nn.ReLU(),
                              nn.Linear(512, classes))
    elif name == "small_cnn":
        class SmallCNN(nn.Module):
            def __init__(self):
                super().__init__()
                seq = torch_small_cnn(classes, shape[0], shape[1])
                self.features, self.classifier = seq[0], seq[1]

            def forward(self, x):
                return self.classifier(self.features(x))

        model = SmallCNN()
    else:
        from torch_reference_models import MODELS

        model = MODELS[name](num_classes=classes, in_channels=shape[0])
    if state_dict is not None:
        sd = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in state_dict.items()}
        model.load_state_dict(sd, strict=True)
    return model


# --------------------------------------------------------------------------
# correctness
# --------------------------------------------------------------------------
def _set_dropout(gmodel, tmodel, p_g=None, p_t=None):
    """Set every dropout's p (None: return the current ones)."""
    from torch import nn as tnn

    gd = [m for m in gmodel.modules() if type(m).__name__.startswith("Dropout")]
    td = [m for m in tmodel.modules() if isinstance(m, (tnn.Dropout, tnn.Dropout2d))]
    old = ([m.p for m in gd], [m.p for m in td])
    for i, m in enumerate(gd):
        m.p = 0.0 if p_g is None else p_g[i]
    for i, m in enumerate(td):
        m.p = 0.0 if p_t is None else p_t[i]
    return old


def check_case(case, gmodel, tmodel, x, y) -> dict:
    """Logits (eval) and, for training cases, loss and gradients (train, no dropout)."""
    import torch

    import glassnet as gn
    import glassnet.nn as gnn

    info = {}
    gmodel.eval()
    tmodel.eval()
    with gn.no_grad():
        gl = np.asarray(gmodel(gn.from_numpy(x)).data)
    with torch.no_grad():
        tl = tmodel(torch.from_numpy(x)).numpy()
    d = check_close(f"{case}: eval logits", gl, tl, rtol=1e-4, atol_rel=1e-4)
    info["logits_max_abs_diff"] = d
    info["logits_max_rel_diff"] = d / max(float(np.abs(tl).max()), 1e-30)
    if not CASES[case][4]:
        return info
    gmodel.train()
    tmodel.train()
    old = _set_dropout(gmodel, tmodel)
    try:
        gloss = gnn.CrossEntropyLoss()(gmodel(gn.from_numpy(x)), gn.from_numpy(y))
        for p in gmodel.parameters():
            p.grad = None
        gloss.backward()
        tloss = torch.nn.CrossEntropyLoss()(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        tmodel.zero_grad(set_to_none=True)
        tloss.backward()
    finally:
        _set_dropout(gmodel, tmodel, *old)
    check_close(f"{case}: train loss", np.float32(gloss.data), tloss.item(), rtol=1e-4, atol_rel=1e-5)
    worst = 0.0
    tparams = dict(tmodel.named_parameters())
    for k, p in gmodel.named_parameters():
        tg = tparams[k].grad.numpy()
        gg = np.asarray(p.grad)
        # Loose on purpose: with BatchNorm in train mode, float32 gradients of ResNet-18
        # (batch 8) differ from a float64 reference by up to 3.2% of a tensor's max in
        # PyTorch and 6.2% in glassnet (measured 2026-11-28; median 0.12% and 0.42%):
        # its Winograd layers round ~10x more than im2col (~1e-6 relative per layer),
        # and 20 batch norms amplify that. With conv_settings(winograd=False) glassnet's median is
        # 3e-6. A broken kernel is off by O(100%).
        check_close(f"{case}: grad {k}", gg, tg, rtol=1e-2, atol_rel=1e-1)
        worst = max(worst, float(np.abs(gg - tg).max()) / max(float(np.abs(tg).max()), 1e-30))
    info["loss"] = (float(gloss.data), tloss.item())
    info["grad_worst_rel_diff"] = worst
    for p in gmodel.parameters():
        p.grad = None
    tmodel.zero_grad(set_to_none=True)
    return info


# --------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------
def make_steps(case, gmodel, tmodel, x, y, device="cpu"):
    """(glassnet step, torch step, final_losses): zero-argument step callables,
    models put in the right mode, and a function returning the last step's
    losses (training cases; ``{}`` otherwise). Either model may be None (its
    step is then None, and its library is not imported). ``device``: where the
    batch goes ("cpu", or "cuda" for ``bench_gpu.py``); the models must be there."""
    last = {}
    train = CASES[case][4]
    g_step = t_step = None
    if gmodel is not None:
        import glassnet as gn
        import glassnet.nn as gnn
        from glassnet.optim import SGD

        gx, gy = gn.from_numpy(x), gn.from_numpy(y)
        if device != "cpu":
            gx, gy = gx.to(device), gy.to(device)
        if train:
            gmodel.train()
            gloss_fn = gnn.CrossEntropyLoss()
            gopt = SGD(gmodel.parameters(), lr=LR, momentum=MOMENTUM)

            def g_step(clock=None):
                loss = gloss_fn(gmodel(gx), gy)
                last["glassnet"] = loss
                if clock:
                    clock("forward+loss")
                gopt.zero_grad()
                if clock:
                    clock("zero_grad")
                loss.backward()
                if clock:
                    clock("backward")
                gopt.step()
                if clock:
                    clock("optimizer step")
        else:
            gmodel.eval()

            def g_step(clock=None):
                with gn.no_grad():
                    gmodel(gx)
                if clock:
                    clock("forward")
    if tmodel is not None:
        import torch

        tx, ty = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        if train:
            tmodel.train()
            tloss_fn = torch.nn.CrossEntropyLoss()
            topt = torch.optim.SGD(tmodel.parameters(), lr=LR, momentum=MOMENTUM)

            def t_step():
                loss = tloss_fn(tmodel(tx), ty)
                last["torch"] = loss
                topt.zero_grad()
                loss.backward()
                topt.step()
        else:
            tmodel.eval()

            def t_step():
                with torch.no_grad():
                    tmodel(tx)

    def final_losses():
        """The last step's losses (training cases), or {}."""
        return {k: (float(v.data) if k == "glassnet" else v.item()) for k, v in last.items()}

    return g_step, t_step, final_losses


# --------------------------------------------------------------------------
# per-op profile of glassnet
# --------------------------------------------------------------------------
class OpProfiler:
    """Times every ``apply_kernel`` forward/backward and every tape backward of a ``Tensor._make`` op."""

    def __init__(self, clock=time.perf_counter):
        self.times: dict = {}  # (op name, "fwd"/"bwd") -> seconds in the current step
        self._patched = []
        self._in_kernel = 0
        self._clock = clock  # a GPU profile passes one that synchronises the device first

    def _add(self, key, dt):
        op, kind = key
        key = (getattr(op, "name", op), kind)  # one row per op name: records differ by their arguments
        self.times[key] = self.times.get(key, 0.0) + dt

    def __enter__(self):
        tmod = sys.modules["glassnet.tensor"]  # glassnet.tensor (attribute) is the function
        orig = tmod.apply_kernel
        Tensor = tmod.Tensor
        orig_make = Tensor.__dict__["_make"]
        prof = self
        perf = self._clock

        def timed_backward(backward, op):
            def bw(*a, **k):
                t0 = perf()
                try:
                    return backward(*a, **k)
                finally:
                    prof._add((op, "bwd"), perf() - t0)
            return bw

        def apply_kernel(op, forward, backward, inputs, *args, **kwargs):
            def fw(*a, **k):
                t0 = perf()
                try:
                    return forward(*a, **k)
                finally:
                    prof._add((op, "fwd"), perf() - t0)
            prof._in_kernel += 1
            try:
                return orig(op, fw, timed_backward(backward, op), inputs, *args, **kwargs)
            finally:
                prof._in_kernel -= 1

        def _make(data, parents, backward_fn, op):
            if not prof._in_kernel and backward_fn is not None:
                backward_fn = timed_backward(backward_fn, op)
            return orig_make.__func__(data, parents, backward_fn, op)

        for name, mod in list(sys.modules.items()):
            if (name == "glassnet" or name.startswith("glassnet.")) and mod is not None \
                    and getattr(mod, "apply_kernel", None) is orig:
                self._patched.append((mod, "apply_kernel", orig))
                setattr(mod, "apply_kernel", apply_kernel)
        Tensor._make = staticmethod(_make)
        self._patched.append((Tensor, "_make", orig_make))
        return self

    def __exit__(self, *exc):
        for obj, attr, orig in reversed(self._patched):
            setattr(obj, attr, orig)
        self._patched.clear()


def profile_glassnet(g_step, steps: int, clock=time.perf_counter) -> dict:
    """Per (op, dir) and per phase times of the median one of ``steps`` instrumented steps.

    The figures all come from the single step whose total is the median, so
    the parts add up to the step (medians taken part by part would not).
    ``clock`` reads the time (a GPU profile synchronises the device in it).
    """
    import gc

    records = []
    with OpProfiler(clock) as prof:
        g_step()  # warm the patched path
        for _ in range(steps):
            prof.times = {}
            marks = []
            gc_was = gc.isenabled()
            gc.disable()
            try:
                t0 = clock()
                g_step(lambda ph: marks.append((ph, clock())))
                t1 = clock()
            finally:
                if gc_was:
                    gc.enable()
            phases, prev = {}, t0
            for ph, t in marks:
                phases[ph] = t - prev
                prev = t
            records.append({"step_s": t1 - t0, "ops": dict(prof.times), "phases": phases})
    records.sort(key=lambda r: r["step_s"])
    med = records[(len(records) - 1) // 2]
    return {**med, "steps": len(records), "all_steps_s": [r["step_s"] for r in records]}


def print_profile(case, prof, top: int, batch: int | None = None, where: str = ""):
    step = prof["step_s"]
    ops: dict = {}
    for (op, d), t in prof["ops"].items():
        ops.setdefault(op, {"fwd": 0.0, "bwd": 0.0})[d] += t
    rows = []
    timed = 0.0
    for op, v in sorted(ops.items(), key=lambda kv: -(kv[1]["fwd"] + kv[1]["bwd"])):
        tot = v["fwd"] + v["bwd"]
        timed += tot
        fwd = fmt_ms(v["fwd"]) if (op, "fwd") in prof["ops"] else "-"
        bwd = fmt_ms(v["bwd"]) if (op, "bwd") in prof["ops"] else "-"
        rows.append([op, fwd, bwd, fmt_ms(tot), f"{100 * tot / step:.1f}%"])
    shown = rows[:top]
    rest = rows[top:]
    if rest:
        rt = sum(float(ops[r[0]]["fwd"] + ops[r[0]]["bwd"]) for r in rest)
        shown.append([f"({len(rest)} more ops)", "", "", fmt_ms(rt), f"{100 * rt / step:.1f}%"])
    ph = prof["phases"]
    extra = 0.0
    for name in ("optimizer step", "zero_grad"):
        if name in ph:
            extra += ph[name]
            shown.append([f"[{name}]", "", "", fmt_ms(ph[name]), f"{100 * ph[name] / step:.1f}%"])
    other = step - timed - extra
    shown.append(["[other: tape, Python, untimed]", "", "", fmt_ms(other), f"{100 * other / step:.1f}%"])
    shown.append(["step (instrumented)", "", "", fmt_ms(step), "100%"])
    what = "training step" if CASES[case][4] else "forward pass"
    print_table(["op", "fwd ms", "bwd ms", "total ms", "share"], shown,
                title=f"glassnet{where} {case}: where one {what} goes (batch {batch or CASES[case][1]}; the median "
                      f"of {prof['steps']} instrumented steps; '-': not timed)")


# --------------------------------------------------------------------------
# GEMM ceiling
# --------------------------------------------------------------------------
def gemm_ceiling(repeat: int = 3, warmup: int = 1, n: int = 2048) -> dict:
    """NumPy's (and torch's) float32 n³ matmul GFLOP/s, interleaved; median and best."""
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    st = time_interleaved({"numpy": lambda: a @ b, "torch": lambda: ta @ tb}, repeat=repeat, warmup=warmup)
    fl = 2.0 * n ** 3 / 1e9
    return {k: {"gflops_median": fl / s.median, "gflops_best": fl / s.min, "stats": s} for k, s in st.items()}


# --------------------------------------------------------------------------
def parse_only(text):
    if not text:
        return list(CASES)
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in CASES]
    if bad:
        raise SystemExit(f"--only: unknown case(s) {bad}; choose from {', '.join(CASES)}")
    return names


# --------------------------------------------------------------------------
# process mode: each framework timed alone in a fresh process, rounds alternating
# --------------------------------------------------------------------------
def child_time(case, framework, repeat, warmup, seed, inputs, data_root):
    """Runs in a subprocess: time ``repeat`` steps of one framework (after
    ``warmup``); returns per-call samples and the final loss."""
    x, y = make_batch(case, seed, inputs=inputs, data_root=data_root)
    gmodel = build_glassnet(case, seed)  # the torch model gets the same weights
    tmodel = build_torch(case, gmodel.state_dict()) if framework == "torch" else None
    g_step, t_step, final_losses = make_steps(case, gmodel if framework == "glassnet" else None, tmodel, x, y)
    step = g_step if framework == "glassnet" else t_step
    if framework == "torch":
        del gmodel
    st = time_interleaved({framework: step}, repeat=repeat, warmup=warmup)[framework]
    return {"samples": st.samples, "number": st.number, "final_losses": final_losses()}


def time_in_processes(case, args, repeat, warmup, rounds):
    """Alternate fresh subprocesses (glassnet, torch, then torch, glassnet, ...)
    for ``rounds`` rounds; pool their samples. No process ever has the other
    library's worker threads spinning beside it."""
    import json
    import subprocess

    stats = {"glassnet": Stats(), "torch": Stats()}
    losses = {}
    for r in range(rounds):
        for framework in (("glassnet", "torch") if r % 2 == 0 else ("torch", "glassnet")):
            cmd = [sys.executable, os.path.abspath(__file__), "--child-time", case, framework,
                   "--repeat", str(repeat), "--warmup", str(warmup), "--seed", str(args.seed),
                   "--input", args.input, "--data-root", args.data_root]
            if args.threads is not None:
                cmd += ["--threads", str(args.threads)]
            if args.default_malloc:
                cmd.append("--default-malloc")
            p = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            if p.returncode != 0 or not lines:
                raise RuntimeError(f"bench_models: {framework} {case} child failed (exit {p.returncode}):\n"
                                   f"{p.stderr[-3000:]}")
            out = json.loads(lines[-1])
            stats[framework].samples.extend(out["samples"])
            stats[framework].number = out["number"]
            losses.update(out["final_losses"])
    return stats, losses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(ap, default_repeat=DEFAULT_REPEAT_OTHER, quick_repeat=2, default_warmup=1, quick_warmup=1)
    ap.add_argument("--only", metavar="NAME[,NAME]", help=f"cases to run: {', '.join(CASES)} (default all)")
    ap.add_argument("--profile-steps", type=int, default=None,
                    help="instrumented glassnet steps per case for the per-op breakdown (default 3, 1 with --quick)")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-op breakdown")
    ap.add_argument("--top", type=int, default=8, help="ops shown per breakdown (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--input", choices=INPUTS, default="images",
                    help="images (default): a Fashion-MNIST batch for the 28x28 cases, photo-like images for the "
                         "224 px ones; random: standard normal values (PyTorch's max-pool is slower on them)")
    ap.add_argument("--data-root", default=FASHION_MNIST_ROOT,
                    help=f"where --input images reads Fashion-MNIST (default {FASHION_MNIST_ROOT})")
    ap.add_argument("--order", choices=["processes", "interleaved"], default="processes",
                    help="processes (default): each framework timed alone in fresh subprocesses, "
                         "alternating for --rounds rounds; interleaved: both in this process, call by call")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the processes order (default 3)")
    ap.add_argument("--child-time", nargs=2, metavar=("CASE", "FRAMEWORK"), help=argparse.SUPPRESS)
    add_runtime_options(ap)
    args = ap.parse_args(argv)
    if args.child_time:
        import json

        case, framework = args.child_time
        apply_runtime_options(args, quiet=True)
        print(json.dumps(child_time(case, framework, args.repeat, args.warmup or 1, args.seed, args.input,
                                    args.data_root)))
        return
    apply_runtime_options(args)
    cases = parse_only(args.only)
    # A fresh process needs two untimed steps: glassnet's second step still
    # grows the heap (measured: VGG16's first timed step 2.4 s vs 1.4 s after).
    warmup = args.warmup if args.warmup is not None else (1 if args.order == "interleaved" else 2)
    prof_steps = args.profile_steps or (1 if args.quick else 3)

    def repeat_of(case):
        if args.repeat:
            return args.repeat
        if args.quick:
            return 2
        return DEFAULT_REPEAT.get(case, DEFAULT_REPEAT_OTHER)

    import torch  # noqa: F401  (after argparse, so --help is fast)

    import glassnet  # noqa: F401

    settings = {"cases": ",".join(cases), "dtype": "float32", "input": args.input,
                "optimizer": f"SGD lr={LR} momentum={MOMENTUM}", "warmup": warmup,
                "repeat": "/".join(f"{c}:{repeat_of(c)}" for c in cases),
                "order": ("interleaved glassnet, torch" if args.order == "interleaved" else
                          f"fresh process per framework, {args.rounds} alternating rounds"),
                "profile_steps": 0 if args.no_profile else prof_steps}
    env = environment()
    print_header("bench_models: training steps and forward passes, glassnet vs torch", env, settings)
    gemm = gemm_ceiling(repeat=2 if args.quick else 3)
    print(f"gemm      2048^3 float32 matmul: numpy {gemm['numpy']['gflops_median']:.0f} GFLOP/s median"
          f" ({gemm['numpy']['gflops_best']:.0f} best), torch {gemm['torch']['gflops_median']:.0f}"
          f" ({gemm['torch']['gflops_best']:.0f} best)", flush=True)

    results = {}
    profiles = {}
    for case in cases:
        name, batch, shape, classes, train = CASES[case]
        t_start = time.perf_counter()
        x, y = make_batch(case, args.seed, inputs=args.input, data_root=args.data_root)
        gmodel = build_glassnet(case, args.seed)
        tmodel = build_torch(case, gmodel.state_dict())
        info = check_case(case, gmodel, tmodel, x, y)
        g_step, t_step, final_losses = make_steps(case, gmodel, tmodel, x, y)
        rep = repeat_of(case)
        if args.order == "interleaved":
            st = time_interleaved({"glassnet": g_step, "torch": t_step}, repeat=rep, warmup=warmup)
            fl = final_losses()
        else:
            st, fl = time_in_processes(case, args, max(1, -(-rep // args.rounds)), warmup, args.rounds)
        g, t = st["glassnet"], st["torch"]
        assert all(np.isfinite(v) for v in fl.values()), \
            f"{case}: loss diverged while timing ({fl}); the timings are not representative"
        res = {"model": name, "batch": batch, "input": shape, "train": train, "check": info,
               "glassnet": g, "torch": t, "ratio_median": ratio(g.median, t.median),
               "ratio_min": ratio(g.min, t.min), "final_losses": fl}
        chk = f"logits rel diff {info['logits_max_rel_diff']:.1e}"
        if train:
            chk += f", grads worst rel diff {info['grad_worst_rel_diff']:.1e}"
        print(f"{case:13s} glassnet {fmt_ms(g.median)} ms  torch {fmt_ms(t.median)} ms  "
              f"ratio {res['ratio_median']:.2f}  [{chk}; {time.perf_counter() - t_start:.0f} s]", flush=True)
        if not args.no_profile:
            p = profile_glassnet(g_step, prof_steps)
            fl = final_losses()
            assert all(np.isfinite(v) for v in fl.values()), f"{case}: loss diverged while profiling ({fl})"
            profiles[case] = p
            res["profile"] = {"step_s": p["step_s"], "phases": p["phases"],
                              "ops": {f"{op}:{d}": v for (op, d), v in p["ops"].items()}}
        results[case] = res
        del gmodel, tmodel, g_step, t_step

    rows = []
    for case, r in results.items():
        g, t = r["glassnet"], r["torch"]
        rows.append([case, "train" if r["train"] else "fwd", r["batch"], fmt_ms(g.median), fmt_ms(g.min),
                     fmt_ms(t.median), fmt_ms(t.min), f"{r['ratio_median']:.2f}", f"{r['ratio_min']:.2f}",
                     f"{r['batch'] / g.median:.1f}", f"{r['batch'] / t.median:.1f}", len(g.samples)])
    print_table(["case", "kind", "batch", "glassnet med ms", "min", "torch med ms", "min", "g/t (median)",
                 "g/t (min)", "glassnet img/s", "torch img/s", "reps"], rows,
                title="Per call (training step or forward pass); g/t > 1 means glassnet is slower")
    for case, p in profiles.items():
        print_profile(case, p, args.top)
    if args.json:
        dump_json(args.json, env, settings, {"gemm": gemm, "cases": results})


if __name__ == "__main__":
    main()
