"""The CuPy backend gives the NumPy backend's results: every registered layer,
every zoo model (a training step with SGD), the optimizers, the fast kernels
(Winograd convolution, max pooling) and the training loop with checkpoints.

The NumPy backend is the reference here: it is itself checked against
float64 numerical gradients and PyTorch by the rest of the suite. Layers and
models are compared in float64 (backends agree to ~1e-12, so a tight
tolerance catches any wrong index or missing term); the kernels that have
float32-only fast paths are compared in float32.

Every test here needs CuPy and a GPU and is skipped cleanly without them (CI
has no GPU); ``scripts/gpu_check.sh`` runs this file on a GPU machine.
"""
from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
from glassnet.backend import cupy_available
from tests.layer_registry import CASES

pytestmark = pytest.mark.skipif(not cupy_available(), reason="CuPy with a GPU not available")

#: image side per zoo model (default 32: the smallest VGG takes)
#: ResNets get 64: at 32 their last stage is 1×1, and batch norm over two
#: values per channel is so ill-conditioned that float64 rounding differences
#: between the backends grow to ~1e-6 through ResNet-101 (measured on an H200).
ZOO_SIDES = {"lenet5": 28, "mlp": 28, "small_cnn": 28, "convnet_pattern": 28,
             "alexnet": 64, "googlenet": 64, "alexnet_lecture": 227, "zfnet": 224,
             **{f"resnet{d}": 64 for d in (18, 34, 50, 101, 152)}}


def _gpu(a):
    import cupy

    return cupy.asarray(a)


def _cpu(a):
    import cupy

    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


def _is_gpu(a) -> bool:
    import cupy

    return isinstance(a, cupy.ndarray)


def _rel(a, b, scale=0.0) -> float:
    """Largest difference relative to the reference's largest magnitude (or ``scale``, if larger)."""
    a, b = _cpu(a).astype(np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(b).max(), scale, 1e-300))


def _assert_close(what, gpu_value, cpu_value, tol, scale=0.0):
    """``|gpu − cpu| ≤ tol · max(|cpu|, scale)`` elementwise-max; ``scale`` is
    the size of the model's whole gradient or weights, so a tensor that is
    zero up to rounding (a conv bias followed by batch norm) is not judged
    on its own noise."""
    err = _rel(gpu_value, cpu_value, scale)
    assert err <= tol, f"{what}: GPU and CPU differ, rel err {err:.3e} > {tol:.0e}"


def _tensors(arrays, dtype, on_gpu):
    out = []
    for a in arrays:
        a = np.asarray(a)
        floating = a.dtype.kind == "f"
        a = a.astype(dtype if floating else np.int64)
        out.append(gn.tensor(_gpu(a) if on_gpu else a, requires_grad=floating))
    return out


def _module_pair(build, dtype):
    """The same freshly built module twice: on the CPU and on the GPU."""
    gn.manual_seed(0)
    cpu = build().to(dtype=dtype)
    gpu = build().to(dtype=dtype)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    return cpu, gpu


def _forward(module, xs, seed):
    """Forward with a fixed RNG seed, so dropout draws the same mask on both
    backends (masks come from the global NumPy generator on either)."""
    gn.manual_seed(seed)
    return module(*xs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_matches_cpu(case):
    rng = np.random.default_rng(0)
    arrays = case.inputs(rng)
    cpu, gpu = _module_pair(case.build, np.float64)
    xs_cpu = _tensors(arrays, np.float64, on_gpu=False)
    xs_gpu = _tensors(arrays, np.float64, on_gpu=True)

    out_cpu = _forward(cpu, xs_cpu, seed=1)
    projection = rng.standard_normal(out_cpu.shape)
    (out_cpu * gn.tensor(projection)).sum().backward()
    out_gpu = _forward(gpu, xs_gpu, seed=1)
    (out_gpu * gn.tensor(_gpu(projection))).sum().backward()
    assert _is_gpu(out_gpu.data), f"{case.id}: output left the GPU ({type(out_gpu.data).__name__})"
    assert out_gpu.dtype == np.float64
    _assert_close(f"{case.id} output", out_gpu.data, out_cpu.data, 1e-10)
    for i, (a, b) in enumerate(zip(xs_gpu, xs_cpu)):
        if b.requires_grad:
            assert _is_gpu(a.grad), f"{case.id}: input {i} gradient left the GPU"
            _assert_close(f"{case.id} d/dinput{i}", a.grad, b.grad, 1e-10)
    for (name, p_gpu), p_cpu in zip(gpu.named_parameters(), cpu.parameters()):
        assert _is_gpu(p_gpu.grad), f"{case.id}: gradient of {name} left the GPU"
        _assert_close(f"{case.id} d/d{name}", p_gpu.grad, p_cpu.grad, 1e-10)

    cpu.eval()
    gpu.eval()
    with gn.no_grad():
        _assert_close(f"{case.id} eval output", gpu(*xs_gpu).data, cpu(*xs_cpu).data, 1e-10)
    for (name, b_gpu), b_cpu in zip(gpu.named_buffers(), cpu.buffers()):
        _assert_close(f"{case.id} buffer {name}", b_gpu, b_cpu, 1e-10)


def _zoo_model(name):
    from glassnet.models import get_model

    extra = {"init_weights": False} if name.startswith("vgg") else {}
    in_channels = 3 if name in ("alexnet_lecture", "zfnet") else 2
    return lambda: get_model(name, num_classes=5, in_channels=in_channels, **extra), in_channels


def _zoo_names():
    from glassnet.models import list_models

    return list_models()


@pytest.mark.parametrize("name", _zoo_names())
def test_zoo_training_step_matches_cpu(name):
    """Forward, cross-entropy, backward and two SGD (Nesterov, weight decay)
    steps of every zoo model, in float64, on both backends."""
    from glassnet.optim import SGD

    build, in_channels = _zoo_model(name)
    cpu, gpu = _module_pair(build, np.float64)
    side = ZOO_SIDES.get(name, 32)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, in_channels, side, side))
    y = rng.integers(0, 5, size=2)
    loss_fn = nn.CrossEntropyLoss()
    results = {}
    for label, model, move in (("cpu", cpu, np.asarray), ("gpu", gpu, _gpu)):
        model.train()
        opt = SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
        losses = []
        for step in range(2):
            gn.manual_seed(10 + step)
            logits = model(gn.tensor(move(x)))
            loss = loss_fn(logits, gn.tensor(move(y)))
            opt.zero_grad()
            loss.backward()
            if step == 0:
                results[label, "grads"] = [p.grad.copy() for p in model.parameters()]
            opt.step()
            losses.append(float(loss.data))
        model.eval()
        with gn.no_grad():
            results[label, "eval"] = model(gn.tensor(move(x))).data
        results[label, "losses"] = losses
        results[label, "params"] = [p.data for p in model.parameters()]
    losses = results["gpu", "losses"], results["cpu", "losses"]
    assert np.allclose(*losses, rtol=1e-8), f"{name}: losses {losses[0]} (GPU) vs {losses[1]} (CPU)"
    names = [n for n, _ in cpu.named_parameters()]
    grad_scale = max(float(np.abs(g).max()) for g in results["cpu", "grads"])
    for n, a, b in zip(names, results["gpu", "grads"], results["cpu", "grads"]):
        assert _is_gpu(a), f"{name}: gradient of {n} left the GPU"
        _assert_close(f"{name} d/d{n}", a, b, 1e-8, grad_scale)
    weight_scale = max(float(np.abs(p).max()) for p in results["cpu", "params"])
    for n, a, b in zip(names, results["gpu", "params"], results["cpu", "params"]):
        assert _is_gpu(a), f"{name}: {n} left the GPU after the optimizer step"
        _assert_close(f"{name} {n} after two steps", a, b, 1e-8, weight_scale)
    _assert_close(f"{name} eval logits", results["gpu", "eval"], results["cpu", "eval"], 1e-7)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "AdamW"])
def test_optimizer_matches_cpu(opt_name):
    from glassnet import optim

    kwargs = {"SGD": dict(lr=0.1, momentum=0.9, weight_decay=1e-3),
              "Adam": dict(lr=0.01, weight_decay=1e-3, amsgrad=True),
              "AdamW": dict(lr=0.01, weight_decay=1e-2)}[opt_name]
    rng = np.random.default_rng(0)
    shapes = [(300, 1200), (7,), (4, 3, 3, 3)]  # one large enough to be updated in slices
    start = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(3)]
    finals = {}
    for label, move in (("cpu", np.asarray), ("gpu", _gpu)):
        params = [nn.Parameter(move(a.copy())) for a in start]
        opt = getattr(optim, opt_name)(params, **kwargs)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = move(g.copy())
            opt.step()
        finals[label] = [p.data for p in params]
        state = opt.state_dict()
    for i, (a, b) in enumerate(zip(finals["gpu"], finals["cpu"])):
        assert _is_gpu(a)
        _assert_close(f"{opt_name} parameter {i}", a, b, 1e-12)
    # the GPU optimizer's state loads into a CPU optimizer and back
    params = [nn.Parameter(np.asarray(a.copy())) for a in start]
    cpu_opt = getattr(optim, opt_name)(params, **kwargs)
    cpu_opt.load_state_dict(state)
    for value in cpu_opt.state[params[0]].values():
        assert not _is_gpu(value)


@pytest.mark.parametrize("winograd_on_gpu", [False, True], ids=["gpu-im2col", "gpu-winograd"])
@pytest.mark.parametrize("n, c, size, k, stride, padding", [
    (1, 128, 64, 3, 1, 1),   # Winograd F(4×4, 3×3) on the CPU: forward, dX and dW
    (8, 128, 14, 3, 1, 1),   # Winograd F(3×3, 3×3) on the CPU
    (3, 64, 27, 5, 1, 2),    # Winograd F(3×3, 5×5) on the CPU
    (2, 16, 15, 3, 2, 1),    # im2col with a stride
    (2, 8, 9, 3, 1, 0),      # im2col, no padding
])
def test_conv_kernel_float32_matches_cpu(n, c, size, k, stride, padding, winograd_on_gpu):
    """The GPU's im2col (its default) and its Winograd (forced on) against the CPU's path."""
    from glassnet.ops.conv import conv2d_backward, conv2d_forward, conv_settings

    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c, size, size), dtype=np.float32)
    w = (rng.standard_normal((c, c, k, k)) / np.sqrt(k * k * c)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    out, cache = conv2d_forward(x, w, b, (stride, stride), (padding, padding))
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    grads = conv2d_backward(dout, cache)
    with conv_settings(winograd_on_gpu=winograd_on_gpu):
        gout, gcache = conv2d_forward(_gpu(x), _gpu(w), _gpu(b), (stride, stride), (padding, padding))
    ggrads = conv2d_backward(_gpu(dout), gcache)  # under the forward's settings (the cache's)
    assert _is_gpu(gout) and gout.dtype == np.float32
    # the CPU's algorithm on the GPU only when Winograd is allowed there
    assert (gcache.algorithm != "im2col") == (cache.algorithm != "im2col" and winograd_on_gpu)
    # float32 on both: Winograd rounds to ~2e-6 of the largest value, and
    # cuBLAS sums in another order than OpenBLAS
    _assert_close("conv output", gout, out, 5e-5)
    for label, a, r in zip(("dx", "dw", "db"), ggrads, grads):
        assert _is_gpu(a) and a.dtype == np.float32, label
        _assert_close(f"conv {label}", a, r, 5e-5)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 2, 0), (3, 1, 1)])
def test_max_pool_float32_matches_cpu(kernel, stride, padding):
    from glassnet.ops.pool import max_pool2d_backward, max_pool2d_forward

    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8, 17, 17), dtype=np.float32)
    x[0, 0, :4, :4] = 1.0  # ties: the first maximum in the window wins on both backends
    args = ((kernel, kernel), (stride, stride), (padding, padding))
    out, cache = max_pool2d_forward(x, *args)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    dx = max_pool2d_backward(dout, cache)
    gout, gcache = max_pool2d_forward(_gpu(x), *args)
    gdx = max_pool2d_backward(_gpu(dout), gcache)
    assert _is_gpu(gout) and _is_gpu(gdx)
    assert np.array_equal(_cpu(gout), out)
    _assert_close("max-pool dx", gdx, dx, 1e-6)


def test_trainer_on_gpu_checkpoint_and_resume(tmp_path):
    """The training loop runs a GPU model, saves checkpoints a CPU model can
    load (same logits), and resumes on the GPU bitwise like an uninterrupted run."""
    from glassnet.data import ArrayDataset, DataLoader
    from glassnet.io.checkpoint import load_checkpoint
    from glassnet.models import get_model
    from glassnet.optim import SGD
    from glassnet.train import Trainer, evaluate

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=192)
    x = (rng.standard_normal((192, 1, 28, 28)) * 0.5 + y[:, None, None, None]).astype(np.float32)
    data = ArrayDataset(x, y)

    def make(out_dir, epochs):
        gn.manual_seed(0)
        model = get_model("small_cnn", num_classes=3, in_channels=1).to("cuda")
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
        loader = DataLoader(data, batch_size=32, shuffle=True, seed=0)
        return model, Trainer(model, loader, opt, epochs, val_loader=DataLoader(data, batch_size=64),
                              out_dir=out_dir, progress=False, checkpoint_every=0)

    model, trainer = make(tmp_path / "full", 3)
    history = trainer.fit()
    losses = history.column("train_loss")
    assert losses[-1] < losses[0], f"training loss did not fall on the GPU: {losses}"
    assert all(_is_gpu(p.data) for p in model.parameters())
    assert evaluate(model, DataLoader(data, batch_size=64), progress=False)["accuracy"] > 0.9

    cpu_model = get_model("small_cnn", num_classes=3, in_channels=1)
    load_checkpoint(tmp_path / "full" / "checkpoints" / "last", cpu_model)
    assert not _is_gpu(next(cpu_model.parameters()).data)
    model.eval()
    cpu_model.eval()
    with gn.no_grad():
        _assert_close("checkpoint logits", model(gn.tensor(_gpu(x[:16]))).data, cpu_model(gn.tensor(x[:16])).data,
                      1e-5)

    _, first = make(tmp_path / "split", 2)
    first.fit()
    resumed_model, resumed = make(tmp_path / "split", 3)
    resumed.fit(resume=True)
    for (n, a), b in zip(resumed_model.named_parameters(), model.parameters()):
        assert np.array_equal(_cpu(a.data), _cpu(b.data)), f"{n}: resumed GPU run differs from the full run"


def test_cli_train_on_gpu(tmp_path, capsys):
    """``glassnet train --device cuda`` trains on the GPU and records the device."""
    import json

    from glassnet.cli import main
    from tests.data_required import require_fashion_mnist

    require_fashion_mnist()
    out = tmp_path / "run"
    code = main(["train", "--model", "small_cnn", "--device", "cuda", "--epochs", "1", "--limit-train", "3000",
                 "--val-size", "500", "--batch-size", "64", "--out", str(out), "--no-progress"])
    assert code == 0
    assert "test accuracy:" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["device"] == "cuda"
    assert json.loads((out / "test.json").read_text())["accuracy"] > 0.6  # chance is 0.1
