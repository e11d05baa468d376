"""The hand-written backprop in examples/two_layer_net.py equals autograd's."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn.functional as F

_spec = importlib.util.spec_from_file_location(
    "two_layer_net", Path(__file__).resolve().parents[1] / "examples" / "two_layer_net.py"
)
two_layer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(two_layer)


def _autograd_grads(params, x, y, loss):
    ps = {k: gn.tensor(v, requires_grad=True) for k, v in params.items()}
    h = F.sigmoid(F.linear(gn.tensor(x), ps["W1"], ps["b1"]))
    y_pred = F.linear(h, ps["W2"], ps["b2"])
    if loss == "l2":
        value = F.mse_loss(y_pred, gn.tensor(y), reduction="sum")
    else:
        value = F.cross_entropy(y_pred, gn.tensor(y))
    value.backward()
    return value.item(), {k: p.grad for k, p in ps.items()}


@pytest.mark.parametrize("loss", ["l2", "softmax"])
def test_hand_written_backprop_equals_autograd(loss):
    rng = np.random.default_rng(0)
    N, D_in, H, D_out = 16, 30, 12, 5
    params = two_layer.init_params(D_in, H, D_out, rng, dtype=np.float64)
    x = rng.standard_normal((N, D_in))
    y = rng.standard_normal((N, D_out)) if loss == "l2" else rng.integers(0, D_out, N)
    value, grads = two_layer.forward_backward(params, x, y, loss=loss)
    ref_value, ref = _autograd_grads(params, x, y, loss)
    assert value == pytest.approx(ref_value, rel=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-12)


def test_lecture_loop_reduces_the_loss():
    losses = two_layer.train_l2_random(steps=300, log_every=0)
    assert losses[-1] < 0.2 * losses[0]
