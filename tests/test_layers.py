"""Registry-driven layer tests: shape, float64 gradcheck, PyTorch parity, state_dict.

Adding a layer to ``glassnet.nn`` without a case in ``tests/layer_registry.py``
fails ``test_every_layer_is_registered``.
"""
import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
from glassnet.analysis import gradcheck
from tests.layer_registry import CASES, NOT_LAYERS
from tests.torch_oracle import require_torch

IDS = [c.id for c in CASES]


def _registered_classes():
    names = set()
    for case in CASES:
        names.add(type(case.build()).__name__)
    return names


def test_every_layer_is_registered():
    exported = {n for n in nn.__all__ if n not in NOT_LAYERS}
    missing = exported - _registered_classes()
    assert not missing, f"layers without a registry case in tests/layer_registry.py: {sorted(missing)}"


def _to_tensors(arrays, dtype, requires_grad):
    out = []
    for a in arrays:
        if np.asarray(a).dtype.kind == "f":
            out.append(gn.tensor(np.asarray(a, dtype=dtype), requires_grad=requires_grad))
        else:
            out.append(gn.tensor(np.asarray(a, dtype=np.int64)))
    return out


def _build(case, dtype):
    gn.manual_seed(0)
    module = case.build()
    return module.to(dtype=dtype)


def _call(case, module, xs):
    if case.random:
        gn.manual_seed(1234)  # the same dropout mask on every call
    return module(*xs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case):
    rng = np.random.default_rng(0)
    module = _build(case, np.float64)
    xs = _to_tensors(case.inputs(rng), np.float64, requires_grad=True)
    params = list(module.parameters())
    n_inputs = len(xs)

    def fn(*args):
        return _call(case, module, args[:n_inputs])

    tol = dict(eps=1e-6, atol=1e-6, rtol=1e-4)
    tol.update(case.gradcheck_tol)
    result = gradcheck(fn, xs + params, **tol)
    assert result.ok, str(result)


def _torch_module(torch, case, module):
    if case.torch_build is not None:
        tm = case.torch_build(torch, module)
    else:
        tm = getattr(torch.nn, type(module).__name__)(*case.args, **case.kwargs)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in module.state_dict().items()}
    tm.load_state_dict(state, strict=True)  # parameter names and shapes must match PyTorch's
    return tm


def _rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-6, float(np.max(np.abs(b))))) if a.size else 0.0


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torch_parity_float32(case, seed):
    torch = require_torch()
    rng = np.random.default_rng(seed)
    arrays = case.inputs(rng)
    module = _build(case, np.float32)
    xs = _to_tensors(arrays, np.float32, requires_grad=True)
    out = _call(case, module, xs)

    tm = _torch_module(torch, case, module)
    txs = []
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            txs.append(torch.tensor(a.astype(np.float32), requires_grad=True))
        else:
            txs.append(torch.tensor(a.astype(np.int64)))
    tout = case.torch_forward(torch, tm, txs, out.numpy()) if case.torch_forward else tm(*txs)

    assert out.shape == tuple(tout.shape), f"{case.id}: shape {out.shape} vs torch {tuple(tout.shape)}"
    if case.expected_shape is not None:
        assert out.shape == case.expected_shape
    assert out.dtype == np.float32
    assert _rel_err(out.numpy(), tout.detach().numpy()) <= 1e-5

    upstream = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)
    tout.backward(torch.from_numpy(upstream))
    for i, (x, tx) in enumerate(zip(xs, txs)):
        if tx.grad is not None:
            assert _rel_err(x.grad, tx.grad.numpy()) <= 1e-4, f"{case.id}: input {i} grad"
    tparams = dict(tm.named_parameters())
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{case.id}: {name} got no gradient"
        assert p.grad.dtype == np.float32
        assert _rel_err(p.grad, tparams[name].grad.numpy()) <= 1e-4, f"{case.id}: {name} grad"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_state_dict_round_trip(case):
    rng = np.random.default_rng(3)
    gn.manual_seed(1)
    a = case.build()
    gn.manual_seed(2)
    b = case.build()
    b.load_state_dict(a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
        assert va is not vb  # copied, not aliased
    xs = _to_tensors(case.inputs(rng), np.float32, requires_grad=False)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(*xs).numpy(), b(*xs).numpy())


def test_every_public_layer_and_function_documents_its_shapes():
    """Docstrings with a ``Shape:`` section for every nn layer and functional op."""
    import inspect

    missing = [f"nn.{n}" for n in nn.__all__
               if inspect.isclass(getattr(nn, n)) and n not in ("Module", "Parameter", "ModuleList")
               and "Shape" not in (getattr(nn, n).__doc__ or "")]
    missing += [f"F.{n}" for n in nn.functional.__all__ if "Shape" not in (getattr(nn.functional, n).__doc__ or "")]
    assert not missing, f"docstrings without a Shape: section: {missing}"
