"""A state dict saved by PyTorch (torch.save) loads into the matching zoo model in a
process where ``import torch`` fails, and gives PyTorch's logits."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.torch_oracle import require_torch

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name,side", [("resnet18", 64), ("googlenet", 64)])
def test_torch_saved_weights_give_torch_logits_without_torch(tmp_path, name, side):
    torch = require_torch()
    from tests import torch_reference_models as ref

    torch.manual_seed(0)
    theirs = ref.MODELS[name]()
    # move BatchNorm's running statistics off their defaults so they matter
    theirs.train()
    with torch.no_grad():
        theirs(torch.randn(4, 3, side, side))
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, side, side)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    torch.save(theirs.state_dict(), tmp_path / f"{name}.pth")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", expected)

    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        import glassnet as gn
        from glassnet.io import load_state_dict_file
        from glassnet.models import get_model
        try:
            import torch  # noqa: F401
            raise SystemExit("torch is importable")
        except ImportError:
            pass
        model = get_model({name!r})
        model.load_state_dict(load_state_dict_file(r"{tmp_path / f'{name}.pth'}"))
        model.eval()
        with gn.no_grad():
            got = model(gn.tensor(np.load(r"{tmp_path / 'x.npy'}"))).numpy()
        expected = np.load(r"{tmp_path / 'expected.npy'}")
        rel = np.abs(got - expected).max() / np.abs(expected).max()
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules if sys.modules[m] is not None)
        print(f"rel={{rel:.3e}}")
        assert rel <= 1e-4, rel
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "rel=" in res.stdout
