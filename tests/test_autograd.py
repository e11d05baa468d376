"""Autograd rules: deep graphs, reuse, accumulation, no_grad, dtypes, errors."""
import numpy as np
import pytest

import glassnet as gn


def test_long_chain_backprop_is_iterative():
    x = gn.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 5000, rel=1e-3)


def test_non_leaf_used_twice_gets_both_contributions():
    x = gn.tensor([2.0, 3.0], requires_grad=True)
    h = x * x           # non-leaf
    out = (h + h * 3).sum()  # h used twice: d/dh = 1 + 3 = 4
    out.backward()
    np.testing.assert_allclose(x.grad, 4 * 2 * np.array([2.0, 3.0]))


def test_diamond_graph():
    x = gn.tensor(1.5, requires_grad=True)
    a = x.exp()
    b = a * x
    c = a + b
    c.backward()
    # c = e^x + x e^x -> dc/dx = 2e^x + x e^x
    assert x.grad == pytest.approx(2 * np.exp(1.5) + 1.5 * np.exp(1.5), rel=1e-6)


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.zero_grad()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_leaf_grad_does_not_alias_upstream():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    y = gn.tensor([1.0, 2.0], requires_grad=True)
    (x + y).sum().backward()
    x.grad += 10
    np.testing.assert_allclose(y.grad, [1.0, 1.0])


def test_non_leaf_keeps_no_grad_unless_retained():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    k = x * 3
    k.retain_grad()
    (h + k).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(k.grad, [1.0, 1.0])


def test_no_grad_records_nothing():
    x = gn.tensor([1.0], requires_grad=True)
    with gn.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()

    @gn.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert gn.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, [1.0, 2.0])


def test_backward_needs_grad_for_non_scalar():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(3, dtype=np.float32))


def test_dtype_policy():
    assert gn.tensor([1.0, 2.0]).dtype == np.float32
    assert gn.tensor(np.zeros(2)).dtype == np.float64
    assert gn.tensor([1, 2]).dtype.kind == "i"
    assert gn.tensor([1.0], dtype=np.float64).dtype == np.float64
    a32 = gn.tensor([1.0, 2.0])
    assert (a32 * 2.5).dtype == np.float32
    assert (a32 / 3).dtype == np.float32
    assert (a32 ** 2).dtype == np.float32
    with pytest.raises(TypeError, match="never upcasts"):
        a32 + gn.tensor(np.ones(2))
    with pytest.raises(TypeError, match="floating-point"):
        gn.tensor([1, 2], requires_grad=True)


def test_default_dtype_can_be_changed():
    gn.set_default_dtype(np.float64)
    try:
        assert gn.tensor([1.0]).dtype == np.float64
        import glassnet.nn as nn
        assert nn.Linear(2, 2).weight.dtype == np.float64
    finally:
        gn.set_default_dtype(np.float32)
    assert gn.tensor([1.0]).dtype == np.float32


def test_item_numpy_repr():
    t = gn.tensor([[3.5]], requires_grad=True)
    assert t.item() == 3.5
    assert isinstance(t.numpy(), np.ndarray)
    assert "requires_grad=True" in repr(t)
    assert "grad_fn=<mul>" in repr(t * 2)
    with pytest.raises(ValueError, match="exactly 1"):
        gn.tensor([1.0, 2.0]).item()


def test_matmul_shape_error_is_clear():
    with pytest.raises(ValueError, match="inner dimensions"):
        gn.randn(3, 4) @ gn.randn(5, 2)


def test_numpy_on_left_defers_to_tensor():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], dtype=np.float32) * x
    assert isinstance(y, gn.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_backward_frees_the_graph_and_a_second_backward_says_so():
    """As in PyTorch: backward() drops every op's saved arrays; going through
    the same graph again is an error that names retain_graph."""
    import weakref

    import glassnet.nn.functional as F

    x = gn.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = gn.tensor(np.random.default_rng(1).standard_normal((4, 3, 3, 3)), requires_grad=True)
    h = F.conv2d(x, w, padding=1)
    saved = weakref.ref(h._backward_fn)  # the closure holding the conv's cache (X_col)
    loss = F.relu(h).sum()
    loss.backward()
    assert saved() is None  # freed, although `loss` and `h` are still alive
    assert h._parents == () and loss._parents == ()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 2).sum().backward()  # new ops on a freed intermediate reach the freed node


def test_retain_graph_keeps_it_and_gradients_add_up():
    x = gn.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * x.data))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
