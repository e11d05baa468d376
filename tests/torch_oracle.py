"""Import PyTorch (the test oracle) and the other optional test dependencies.

PyTorch is never a runtime dependency of glassnet; tests compare against it.
Outside CI a missing module skips the test that needs it; under ``CI=true``
it fails, so a test can never pass by not running.
"""
import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_module(name: str, extra: str = "test"):
    """Import an optional dependency, or skip (locally) / fail (CI=true)."""
    try:
        return __import__(name)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        if in_ci():
            pytest.fail(f"{name} is required under CI=true (pip install glassnet[{extra}]): {exc}")
        pytest.skip(f"{name} not installed (pip install glassnet[{extra}]); skipped (fails under CI=true)")


def require_torch():
    """Return the ``torch`` module, or skip (locally) / fail (CI=true)."""
    torch = require_module("torch", "test")
    torch.set_default_dtype(torch.float32)
    return torch
