"""The lecture's "full implementation of training a 2-layer neural network",
written with glassnet's kernel functions and backprop by hand (no autograd).

Part 1 is the lecture's code: random data, N×D_in inputs, a sigmoid hidden
layer of H units, D_out linear outputs, L2 loss, plain gradient descent.
Part 2 swaps the L2 loss for a softmax classifier and trains it on
Fashion-MNIST (if the data is installed).

    python examples/two_layer_net.py

Weights use glassnet's (= PyTorch's) layout W: (out, in), so the hidden layer
is h = σ(x W1ᵀ + b1). Each backward line is the chain rule for one node.
"""
from __future__ import annotations

import numpy as np

from glassnet.ops.activations import sigmoid_backward, sigmoid_forward
from glassnet.ops.linear import linear_backward, linear_forward
from glassnet.ops.losses import (
    cross_entropy_backward,
    cross_entropy_forward,
    mse_loss_backward,
    mse_loss_forward,
)


def init_params(d_in, h, d_out, rng, scale=None, dtype=np.float32):
    """W1 (H, D_in), b1 (H,), W2 (D_out, H), b2 (D_out,)."""
    s1 = scale if scale is not None else 1 / np.sqrt(d_in)
    s2 = scale if scale is not None else 1 / np.sqrt(h)
    return {
        "W1": (rng.standard_normal((h, d_in)) * s1).astype(dtype),
        "b1": np.zeros(h, dtype),
        "W2": (rng.standard_normal((d_out, h)) * s2).astype(dtype),
        "b2": np.zeros(d_out, dtype),
    }


def forward_backward(params, x, y, loss="l2"):
    """One forward and backward pass of the two-layer net.

    Forward:  a = x W1ᵀ + b1;  h = σ(a);  ŷ = h W2ᵀ + b2;  L = loss(ŷ, y)
    Backward (chain rule, node by node):
        dŷ  = dL/dŷ                              (2(ŷ − y) for L2; p − onehot(y) for softmax)
        dW2 = dŷᵀ h,   db2 = Σ dŷ,   dh = dŷ W2
        da  = dh ⊙ h ⊙ (1 − h)                   (sigmoid gate)
        dW1 = daᵀ x,   db1 = Σ da
    Returns ``(loss, grads)``, grads keyed like ``params``.
    """
    a, cache1 = linear_forward(x, params["W1"], params["b1"])
    h, cache_s = sigmoid_forward(a)
    y_pred, cache2 = linear_forward(h, params["W2"], params["b2"])
    if loss == "l2":
        value, cache_l = mse_loss_forward(y_pred, y, reduction="sum")
        dy_pred, _ = mse_loss_backward(np.ones((), y_pred.dtype), cache_l)
    elif loss == "softmax":
        value, cache_l = cross_entropy_forward(y_pred, y, reduction="mean")
        dy_pred = cross_entropy_backward(np.ones((), y_pred.dtype), cache_l)
    else:
        raise ValueError(f"loss must be 'l2' or 'softmax', got {loss!r}")
    dh, dW2, db2 = linear_backward(dy_pred, cache2)
    da = sigmoid_backward(dh, cache_s)
    _, dW1, db1 = linear_backward(da, cache1)
    return float(value), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def predict(params, x):
    a, _ = linear_forward(x, params["W1"], params["b1"])
    h, _ = sigmoid_forward(a)
    scores, _ = linear_forward(h, params["W2"], params["b2"])
    return scores.argmax(axis=1)


def train_l2_random(steps=2000, lr=1e-4, seed=0, log_every=200):
    """The lecture's loop: N=64, D_in=1000, H=100, D_out=10, random x and y."""
    N, D_in, H, D_out = 64, 1000, 100, 10
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D_in)).astype(np.float32)
    y = rng.standard_normal((N, D_out)).astype(np.float32)
    params = init_params(D_in, H, D_out, rng, scale=1.0)
    losses = []
    for t in range(steps):
        loss, grads = forward_backward(params, x, y, loss="l2")
        for k in params:
            params[k] -= lr * grads[k]
        losses.append(loss)
        if log_every and t % log_every == 0:
            print(f"step {t:5d}  L2 loss {loss:.3f}")
    return losses


def train_softmax_fashion_mnist(epochs=3, hidden=256, lr=0.5, batch_size=128, seed=0):
    """Part 2: the same net as a softmax classifier on Fashion-MNIST."""
    from glassnet.data import FashionMNIST

    train, test = FashionMNIST(train=True), FashionMNIST(train=False)
    x_train = (train.data.reshape(len(train), -1) / np.float32(255)).astype(np.float32)
    x_test = (test.data.reshape(len(test), -1) / np.float32(255)).astype(np.float32)
    y_train, y_test = np.asarray(train.targets), np.asarray(test.targets)
    rng = np.random.default_rng(seed)
    params = init_params(784, hidden, 10, rng)
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            loss, grads = forward_backward(params, x_train[idx], y_train[idx], loss="softmax")
            for k in params:
                params[k] -= lr * grads[k]
        acc = float((predict(params, x_test) == y_test).mean())
        print(f"epoch {epoch + 1}: last batch loss {loss:.3f}, test accuracy {acc:.4f}")
    return acc


if __name__ == "__main__":
    print("Part 1: the lecture's 2-layer net, sigmoid hidden layer, L2 loss, random data")
    train_l2_random()
    print("\nPart 2: softmax classifier on Fashion-MNIST")
    try:
        train_softmax_fashion_mnist()
    except FileNotFoundError as exc:
        print(f"skipped: {exc}")
