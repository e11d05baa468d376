"""The lecture's "full implementation of training a 2-layer network", exactly as the slide has it.

N = batch size, D_in = input size, H = hidden size, D_out = output size; a sigmoid hidden layer,
no biases, L2 loss, plain gradient descent with step 1e-4, NumPy only (the random data is seeded
here so that runs repeat):

    h      = 1 / (1 + exp(−x·w1))            (N, H)
    y_pred = h·w2                            (N, D_out)
    loss   = Σ (y_pred − y)²
    grad_y_pred = 2 (y_pred − y)
    grad_w2     = hᵀ · grad_y_pred
    grad_h      = grad_y_pred · w2ᵀ
    grad_w1     = xᵀ · (grad_h ⊗ h ⊗ (1 − h))
    w1 −= 1e-4 · grad_w1;  w2 −= 1e-4 · grad_w2

Beside it, the same loop with the gradients from glassnet's autograd (``train_glassnet``).
``examples/two_layer_net.py`` is today's version (biases, glassnet's kernels, a softmax
classifier on Fashion-MNIST).

    python examples/two_layer_lecture.py
"""
from __future__ import annotations

import numpy as np

N, D_in, H, D_out = 64, 1000, 100, 10
LEARNING_RATE = 1e-4


def lecture_data(seed=0):
    """Random x (N, D_in), y (N, D_out) and weights w1 (D_in, H), w2 (H, D_out), float64."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((N, D_in)), rng.standard_normal((N, D_out))
    w1, w2 = rng.standard_normal((D_in, H)), rng.standard_normal((H, D_out))
    return x, y, w1, w2


def hand_gradients(x, y, w1, w2):
    """The slide's forward pass and its gradients by the chain rule: ``(loss, grad_w1, grad_w2)``."""
    h = 1 / (1 + np.exp(-x.dot(w1)))
    y_pred = h.dot(w2)
    loss = np.square(y_pred - y).sum()

    grad_y_pred = 2.0 * (y_pred - y)
    grad_w2 = h.T.dot(grad_y_pred)
    grad_h = grad_y_pred.dot(w2.T)
    grad_w1 = x.T.dot(grad_h * h * (1 - h))
    return loss, grad_w1, grad_w2


def autograd_gradients(x, y, w1, w2):
    """The same forward pass on glassnet Tensors; ``backward()`` gives ``(loss, grad_w1, grad_w2)``."""
    import glassnet as gn

    w1_t, w2_t = gn.tensor(w1, requires_grad=True), gn.tensor(w2, requires_grad=True)
    h = 1 / (1 + (-(gn.tensor(x) @ w1_t)).exp())
    y_pred = h @ w2_t
    loss = ((y_pred - gn.tensor(y)) ** 2).sum()
    loss.backward()
    return loss.item(), w1_t.grad, w2_t.grad


def _train(gradients, steps, seed, log_every):
    x, y, w1, w2 = lecture_data(seed)
    losses = []
    for t in range(steps):
        loss, grad_w1, grad_w2 = gradients(x, y, w1, w2)
        losses.append(float(loss))
        if log_every and t % log_every == 0:
            print(t, loss)
        w1 -= LEARNING_RATE * grad_w1
        w2 -= LEARNING_RATE * grad_w2
    return losses


def train_numpy(steps=2000, seed=0, log_every=0):
    """The lecture's loop: ``steps`` steps of gradient descent, the losses per step."""
    return _train(hand_gradients, steps, seed, log_every)


def train_glassnet(steps=2000, seed=0, log_every=0):
    """The same loop, gradients by glassnet's autograd."""
    return _train(autograd_gradients, steps, seed, log_every)


if __name__ == "__main__":
    print("NumPy, gradients by hand:")
    train_numpy(log_every=200)
    print("glassnet autograd:")
    train_glassnet(log_every=200)
