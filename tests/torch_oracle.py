"""Import PyTorch as the test oracle.

PyTorch is never a runtime dependency of glassnet; tests compare against it.
Outside CI a missing torch skips the parity test; under ``CI=true`` it fails,
so a parity test can never pass by not running.
"""
import os

import pytest


def require_torch():
    """Return the ``torch`` module, or skip (locally) / fail (CI=true)."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PyTorch is required for parity tests under CI=true: {exc}")
        pytest.skip("PyTorch not installed; parity test skipped (fails under CI=true)")
    torch.set_default_dtype(torch.float32)
    return torch
