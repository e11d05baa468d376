"""The benchmark scripts run end to end (smallest settings) and report what
they promise: the correctness checks pass, a ratio table and JSON come out.

They assert nothing about speed; this only keeps them from rotting.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.data_required import require_fashion_mnist
from tests.torch_oracle import require_torch

ROOT = Path(__file__).resolve().parent.parent


def _run(script, *args, tmp_path, timeout=300):
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


def test_bench_models_fresh_processes(tmp_path):
    require_torch()
    require_fashion_mnist()  # the default --input images reads a Fashion-MNIST batch for the 28x28 cases
    stdout, data = _run("bench_models.py", "--only", "mlp", "--quick", "--no-profile", "--rounds", "2",
                        "--threads", "2", tmp_path=tmp_path)
    assert "fresh process per framework, 2 alternating rounds" in stdout and "input=images" in stdout
    assert "OPENBLAS_THREAD_TIMEOUT=" in stdout and "glassnet kernel threads: 2" in stdout
    case = data["results"]["cases"]["mlp"]
    assert len(case["glassnet"]["samples_s"]) == len(case["torch"]["samples_s"]) == 2
    assert case["ratio_median"] > 0 and case["check"]["logits_max_rel_diff"] < 1e-4


def test_bench_conv_all_networks_layer_kinds(tmp_path):
    require_torch()
    stdout, data = _run("bench_conv.py", "--only", "resnet", "--quick", "--repeat", "1", tmp_path=tmp_path)
    names = [r["layer"] for r in data["results"]["conv"]] + [r["layer"] for r in data["results"]["pool"]]
    assert "resnet.conv1" in names and "resnet.maxpool" in names
    assert "7x7/2" in stdout and "3x3/2" in stdout and "allclose" in stdout


def test_bench_optim_fresh_processes(tmp_path):
    require_torch()
    stdout, data = _run("bench_optim.py", "--only", "small_cnn", "--optimizers", "sgd-momentum,adam", "--quick",
                        "--rounds", "2", "--threads", "2", tmp_path=tmp_path)
    assert "fresh process per framework and network, 2 alternating rounds" in stdout
    assert "(threadpoolctl, this process)" in stdout and "glassnet kernel threads: 2" in stdout
    from glassnet.models import get_model

    params = list(get_model("small_cnn", num_classes=10, in_channels=1).parameters())
    case = data["results"]["small_cnn"]
    assert case["parameters"] == sum(p.data.size for p in params) and case["tensors"] == len(params)
    for name in ("sgd-momentum", "adam"):
        r = case[name]
        assert len(r["glassnet"]["samples_s"]) == len(r["torch"]["samples_s"]) == 2
        assert r["ratio_median"] > 0 and r["check_max_rel_diff"] < 1e-6


def test_bench_gemm_parts_times_every_cut(tmp_path):
    stdout, data = _run("bench_gemm_parts.py", "--quick", "--own-blas", tmp_path=tmp_path)
    rows = data["results"]
    assert len(rows) == 3 and "faster cut" in stdout
    for r in rows:
        assert min(r["rows"], r["columns"], r["matmul"], r["own"]) > 0 and r["gflops"] > 0
        assert r["cut"].split()[0] in ("rows", "columns")


def test_time_to_accuracy_smoke(tmp_path):
    require_torch()
    require_fashion_mnist()
    stdout, data = _run("time_to_accuracy.py", "--limit-train", "1000", "--limit-test", "500", "--max-epochs", "1",
                        tmp_path=tmp_path)
    assert "glassnet/torch" in stdout


def test_bench_gpu_without_a_gpu_says_so():
    """bench_gpu.py needs CuPy and a GPU (scripts/gpu_check.sh runs it on one);
    without them it exits 2 with a message instead of a traceback."""
    from glassnet.backend import cupy_available

    if cupy_available():
        pytest.skip("a GPU is present: scripts/gpu_check.sh runs bench_gpu.py in full")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--only", "mlp"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "needs CuPy and a GPU" in proc.stderr


def test_bench_models_batches_are_what_training_feeds(monkeypatch):
    """--input images: real Fashion-MNIST images with their labels, normalised as glassnet train does;
    photo-like 224 px images, ImageNet-normalised; --input random: standard normal values."""
    root = require_fashion_mnist()
    from glassnet.data import FashionMNIST

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the scripts import their siblings
    import bench_models as bm

    x, y = bm.make_batch("small_cnn", seed=3, batch=16, inputs="images", data_root=str(root))
    assert x.shape == (16, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    data = FashionMNIST(str(root), train=True)
    index = np.random.default_rng(3).choice(len(data), size=16, replace=False)
    assert list(y) == [int(data[int(i)][1]) for i in index]
    first = np.asarray(data[int(index[0])][0], dtype=np.float32).reshape(28, 28)  # pixels in [0, 1]
    np.testing.assert_allclose(x[0, 0] * 0.3530 + 0.2860, first, atol=1e-6)
    assert x.min() < -0.8 and x.max() > 2  # (0 - 0.286)/0.353 and (1 - 0.286)/0.353: whole images, not dimmed
    photo, labels = bm.make_batch("alexnet", seed=0, batch=2, inputs="images")
    assert photo.shape == (2, 3, 224, 224) and photo.dtype == np.float32 and labels.max() < 1000
    assert -2.2 < photo.min() < photo.max() < 2.7 and photo.std() > 0.1  # ImageNet-normalised pixels
    noise, _ = bm.make_batch("small_cnn", seed=0, batch=4, inputs="random")
    assert abs(noise.mean()) < 0.2 and noise.min() < -2  # standard normal, not an image
    with pytest.raises(ValueError, match="inputs must be one of"):
        bm.make_batch("mlp", inputs="photos")
