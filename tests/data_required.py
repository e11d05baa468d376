"""Tests that need the real Fashion-MNIST files: skip locally when absent, fail in CI."""
import os
from pathlib import Path

import pytest

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def require_fashion_mnist() -> Path:
    if (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        return FASHION_MNIST_DIR
    message = "Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " — required in CI")
    pytest.skip(message)
