"""Every differentiable Tensor op: float64 gradcheck and PyTorch parity,
driven by one table (add an op here when you add it to Tensor)."""
import numpy as np
import pytest

import glassnet as gn
from glassnet.analysis import gradcheck
from tests.torch_oracle import require_torch


def pos(shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def nrm(shape):
    return lambda rng: rng.standard_normal(shape)


def distinct(shape):
    def draw(rng):
        n = int(np.prod(shape))
        return (rng.permutation(n).reshape(shape) - n / 2) * 0.37
    return draw


# (id, glassnet fn, torch fn, input drawers). Both fns take the same positional tensors.
OPS = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [nrm((3, 4)), nrm((3, 4))]),
    ("add-broadcast", lambda a, b: a + b, lambda a, b: a + b, [nrm((2, 3, 4)), nrm((3, 1))]),
    ("radd-scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, [nrm((3,))]),
    ("sub-broadcast", lambda a, b: a - b, lambda a, b: a - b, [nrm((4, 1)), nrm((5,))]),
    ("rsub-scalar", lambda a: 1.0 - a, lambda a: 1.0 - a, [nrm((2, 3))]),
    ("mul-broadcast", lambda a, b: a * b, lambda a, b: a * b, [nrm((2, 3)), nrm((1, 3))]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [nrm((3, 4)), pos((3, 4))]),
    ("rdiv-scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, [pos((3, 4))]),
    ("pow-const", lambda a: a ** 3, lambda a: a ** 3, [nrm((3, 4))]),
    ("pow-frac", lambda a: a ** 0.5, lambda a: a ** 0.5, [pos((3, 4))]),
    ("pow-tensor", lambda a, b: a ** b, lambda a, b: a ** b, [pos((3, 4)), nrm((3, 4))]),
    ("neg", lambda a: -a, lambda a: -a, [nrm((3, 4))]),
    ("matmul-2d", lambda a, b: a @ b, lambda a, b: a @ b, [nrm((3, 4)), nrm((4, 5))]),
    ("matmul-batched", lambda a, b: a @ b, lambda a, b: a @ b, [nrm((2, 3, 4)), nrm((4, 5))]),
    ("matmul-vec", lambda a, b: a @ b, lambda a, b: a @ b, [nrm((3, 4)), nrm((4,))]),
    ("matmul-vecmat", lambda a, b: a @ b, lambda a, b: a @ b, [nrm((4,)), nrm((4, 2))]),
    ("sum-all", lambda a: a.sum(), lambda a: a.sum(), [nrm((3, 4))]),
    ("sum-axis", lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), [nrm((3, 4, 2))]),
    ("sum-keepdims", lambda a: a.sum(axis=0, keepdims=True), lambda a: a.sum(dim=0, keepdim=True), [nrm((3, 4))]),
    ("mean-all", lambda a: a.mean(), lambda a: a.mean(), [nrm((3, 4))]),
    ("mean-axis", lambda a: a.mean(axis=-1), lambda a: a.mean(dim=-1), [nrm((3, 4))]),
    ("max-all", lambda a: a.max(), lambda a: a.max(), [distinct((3, 4))]),
    ("max-axis", lambda a: a.max(axis=1), lambda a: a.amax(dim=1), [distinct((3, 4, 2))]),
    ("min-axis", lambda a: a.min(axis=0), lambda a: a.amin(dim=0), [distinct((3, 4))]),
    ("exp", lambda a: a.exp(), lambda a: a.exp(), [nrm((3, 4))]),
    ("log", lambda a: a.log(), lambda a: a.log(), [pos((3, 4))]),
    ("sqrt", lambda a: a.sqrt(), lambda a: a.sqrt(), [pos((3, 4))]),
    ("abs", lambda a: a.abs(), lambda a: a.abs(), [distinct((3, 4))]),
    ("reshape", lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [nrm((3, 4))]),
    ("flatten", lambda a: a.flatten(1), lambda a: a.flatten(1), [nrm((2, 3, 4))]),
    ("transpose-T", lambda a: a.T, lambda a: a.T, [nrm((3, 4))]),
    ("transpose-dims", lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [nrm((2, 3, 4))]),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), [nrm((2, 3, 4))]),
    ("index-slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [nrm((3, 4))]),
    ("index-int", lambda a: a[1], lambda a: a[1], [nrm((3, 4))]),
    ("index-repeated", lambda a: a[np.array([0, 2, 0])], lambda a: a[[0, 2, 0]], [nrm((3, 4))]),
    ("index-pairs", lambda a: a[np.arange(3), np.array([1, 0, 1])],
     lambda a: a[np.arange(3), [1, 0, 1]], [nrm((3, 4))]),
    ("chain", lambda a, b: ((a @ b).exp() / (a * a).sum(axis=1, keepdims=True)).log().mean(),
     lambda a, b: ((a @ b).exp() / (a * a).sum(dim=1, keepdim=True)).log().mean(), [nrm((3, 4)), nrm((4, 2))]),
]
IDS = [o[0] for o in OPS]


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_op_gradcheck_float64(op):
    _, fn, _, drawers = op
    rng = np.random.default_rng(0)
    xs = [gn.tensor(d(rng), requires_grad=True) for d in drawers]
    assert all(x.dtype == np.float64 for x in xs)
    res = gradcheck(fn, xs, atol=1e-6, rtol=1e-5)
    assert res.ok, str(res)


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_op_torch_parity(op):
    torch = require_torch()
    _, fn, tfn, drawers = op
    rng = np.random.default_rng(1)
    arrays = [d(rng).astype(np.float32) for d in drawers]
    xs = [gn.tensor(a, requires_grad=True) for a in arrays]
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = fn(*xs), tfn(*txs)
    assert out.shape == tuple(tout.shape)
    assert out.dtype == np.float32, "float32 in must stay float32"
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    for x, tx in zip(xs, txs):
        assert x.grad.shape == x.shape and x.grad.dtype == np.float32
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
