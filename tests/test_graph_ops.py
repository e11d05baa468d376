"""Graph ops for branching networks: cat, stack, pad.

float64 gradcheck + float32 PyTorch parity (a fixed table and hypothesis
sweeps over ranks, dims, modes and pad tuples), error messages, and
residual / Inception-style graphs where a non-leaf is reused."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glassnet as gn
import glassnet.nn.functional as F
from glassnet.analysis import gradcheck
from glassnet.errors import ShapeError
from glassnet.ops import shape as K
from tests.torch_oracle import require_torch


def nrm(shape):
    return lambda rng: rng.standard_normal(shape)


def _tF():
    return require_torch().nn.functional


# (id, glassnet fn, torch fn, input drawers); both fns take the same positional tensors
CASES = [
    ("cat-dim0", lambda a, b: gn.cat([a, b]), lambda a, b: _torch().cat([a, b]), [nrm((2, 3)), nrm((4, 3))]),
    ("cat-dim1-3in", lambda a, b, c: gn.cat((a, b, c), dim=1),
     lambda a, b, c: _torch().cat((a, b, c), dim=1), [nrm((2, 1, 3)), nrm((2, 3, 3)), nrm((2, 2, 3))]),
    ("cat-neg-dim", lambda a, b: gn.cat([a, b], dim=-1), lambda a, b: _torch().cat([a, b], dim=-1),
     [nrm((2, 3, 1)), nrm((2, 3, 4))]),
    ("cat-same-tensor-twice", lambda a: gn.cat([a, a * 2.0, a], dim=0),
     lambda a: _torch().cat([a, a * 2.0, a], dim=0), [nrm((2, 3))]),
    ("cat-channels-nchw", lambda a, b: gn.cat([a, b], dim=1), lambda a, b: _torch().cat([a, b], dim=1),
     [nrm((2, 3, 2, 3)), nrm((2, 1, 2, 3))]),
    ("stack-dim0", lambda a, b: gn.stack([a, b]), lambda a, b: _torch().stack([a, b]), [nrm((2, 3)), nrm((2, 3))]),
    ("stack-last", lambda a, b, c: gn.stack([a, b, c], dim=-1),
     lambda a, b, c: _torch().stack([a, b, c], dim=-1), [nrm((3, 2)), nrm((3, 2)), nrm((3, 2))]),
    ("stack-mid", lambda a, b: gn.stack([a, b], dim=1), lambda a, b: _torch().stack([a, b], dim=1),
     [nrm((2, 3, 2)), nrm((2, 3, 2))]),
    ("pad-const", lambda a: F.pad(a, (1, 2)), lambda a: _tF().pad(a, (1, 2)), [nrm((2, 3))]),
    ("pad-const-value-2d", lambda a: F.pad(a, (1, 0, 2, 1), value=1.5),
     lambda a: _tF().pad(a, (1, 0, 2, 1), value=1.5), [nrm((1, 2, 3, 3))]),
    ("pad-const-crop", lambda a: F.pad(a, (-1, 2, 1, -2)), lambda a: _tF().pad(a, (-1, 2, 1, -2)),
     [nrm((2, 4, 5))]),
    ("pad-const-3dims", lambda a: F.pad(a, (0, 1, -1, 1, 1, 0)), lambda a: _tF().pad(a, (0, 1, -1, 1, 1, 0)),
     [nrm((2, 3, 3))]),
    ("pad-reflect-1d", lambda a: F.pad(a, (2, 3), mode="reflect"),
     lambda a: _tF().pad(a, (2, 3), mode="reflect"), [nrm((2, 2, 5))]),
    ("pad-reflect-2d", lambda a: F.pad(a, (2, 1, 1, 2), mode="reflect"),
     lambda a: _tF().pad(a, (2, 1, 1, 2), mode="reflect"), [nrm((1, 2, 3, 4))]),
    ("pad-reflect-crop", lambda a: F.pad(a, (-1, 3, 2, -1), mode="reflect"),
     lambda a: _tF().pad(a, (-1, 3, 2, -1), mode="reflect"), [nrm((1, 1, 4, 5))]),
    ("pad-replicate-2d", lambda a: F.pad(a, (3, 1, 0, 2), mode="replicate"),
     lambda a: _tF().pad(a, (3, 1, 0, 2), mode="replicate"), [nrm((1, 2, 3, 2))]),
    ("pad-replicate-3d", lambda a: F.pad(a, (1, 1, 2, 0, 0, 2), mode="replicate"),
     lambda a: _tF().pad(a, (1, 1, 2, 0, 0, 2), mode="replicate"), [nrm((1, 2, 2, 2))]),
    ("pad-replicate-overcrop", lambda a: F.pad(a, (-4, 4, 2, -3), mode="replicate"),
     lambda a: _tF().pad(a, (-4, 4, 2, -3), mode="replicate"), [nrm((1, 2, 3, 3))]),
    ("pad-circular-2d", lambda a: F.pad(a, (2, 1, 1, 3), mode="circular"),
     lambda a: _tF().pad(a, (2, 1, 1, 3), mode="circular"), [nrm((1, 2, 3, 3))]),
    ("pad-circular-crop", lambda a: F.pad(a, (-1, 2, 1, -1), mode="circular"),
     lambda a: _tF().pad(a, (-1, 2, 1, -1), mode="circular"), [nrm((1, 1, 4, 4))]),
]
IDS = [c[0] for c in CASES]


def _torch():
    return require_torch()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case):
    _, fn, _, drawers = case
    rng = np.random.default_rng(0)
    xs = [gn.tensor(d(rng), requires_grad=True) for d in drawers]
    assert all(x.dtype == np.float64 for x in xs)
    res = gradcheck(fn, xs, atol=1e-6, rtol=1e-5)
    assert res.ok, str(res)


def _summation_bound(tfn, arrays, requires, g):
    """Per input, the most two float32 gradients of the data-movement op ``tfn`` can differ elementwise.

    Each dX element is a sum of the dY elements copied from it: one term for a plain copy, several where pad's
    reflect/replicate/circular borders (up to 9^3 = 729 for a 1-wide dim padded by 4+4 in 3 dims) or a tensor used
    twice gather them. Summed in any order, n terms come within gamma_(n-1) * sum|terms| of the exact sum
    (gamma_k = k u / (1 - k u), u = 2^-24; Higham, Accuracy and Stability of Numerical Algorithms, eq. 4.4), so
    glassnet's and torch's orders differ by at most twice that, and plain copies must agree exactly. n and
    sum|terms| are the op's float64 backward of ones and of |dY|. (The former flat rtol=1e-5, atol=1e-6 failed on 16
    of 900 draws of 1-wide dims replicate-padded by 4+4, where 729-term sums cancel to near 0; this bound held on
    all 1500 such draws, worst error 0.39 of it, and still caught 99% of gradients missing one dY term.)
    """
    torch = require_torch()

    def backward_of(dy):
        ts = [torch.tensor(np.asarray(a, np.float64), requires_grad=r) for a, r in zip(arrays, requires)]
        tfn(*ts).backward(torch.from_numpy(dy.astype(np.float64)))
        return [None if t.grad is None else t.grad.numpy() for t in ts]

    u = 2.0 ** -24
    bounds = []
    for n, abs_sum in zip(backward_of(np.ones_like(g)), backward_of(np.abs(g))):
        if n is None:
            bounds.append(None)
            continue
        k = np.maximum(n - 1, 0) * u
        bounds.append(2 * k / (1 - k) * abs_sum)
    return bounds


def _parity(fn, tfn, arrays, requires=None):
    """float32 forward + backward of ``fn`` vs ``tfn``; returns nothing, asserts."""
    torch = require_torch()
    requires = requires or [True] * len(arrays)
    xs = [gn.tensor(a, requires_grad=r) for a, r in zip(arrays, requires)]
    txs = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, requires)]
    out, tout = fn(*xs), tfn(*txs)
    assert out.shape == tuple(tout.shape)
    assert out.dtype == np.float32, "float32 in must stay float32"
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())  # pure data movement: exact
    if not any(requires):
        assert not out.requires_grad
        return
    g = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    for x, tx, bound in zip(xs, txs, _summation_bound(tfn, arrays, requires, g)):
        if tx.grad is None:
            assert x.grad is None
            continue
        assert x.grad.shape == x.shape and x.grad.dtype == np.float32
        err = np.abs(x.grad.astype(np.float64) - tx.grad.numpy())
        if not np.all(err <= bound):
            i = np.unravel_index(np.argmax(err - bound), err.shape)
            pytest.fail(f"grad{list(i)} differs from torch's by {err[i]:.3g}, over the summation bound {bound[i]:.3g}")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torch_parity_float32(case):
    _, fn, tfn, drawers = case
    rng = np.random.default_rng(1)
    _parity(fn, tfn, [d(rng).astype(np.float32) for d in drawers])


# --------------------------------------------------------------- hypothesis
@st.composite
def cat_inputs(draw):
    ndim = draw(st.integers(1, 4))
    k = draw(st.integers(2, 4))
    dim = draw(st.integers(-ndim, ndim - 1))
    base = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    shapes = []
    for _ in range(k):
        s = list(base)
        s[dim] = draw(st.integers(0, 3))
        shapes.append(tuple(s))
    requires = draw(st.lists(st.booleans(), min_size=k, max_size=k))
    seed = draw(st.integers(0, 2**16))
    return shapes, dim, requires, seed


@settings(max_examples=40, deadline=None)
@given(cat_inputs())
def test_cat_hypothesis_parity(params):
    torch = require_torch()
    shapes, dim, requires, seed = params
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    _parity(lambda *xs: gn.cat(list(xs), dim=dim), lambda *xs: torch.cat(list(xs), dim=dim), arrays, requires)


@st.composite
def stack_inputs(draw):
    ndim = draw(st.integers(0, 3))
    k = draw(st.integers(1, 4))
    dim = draw(st.integers(-ndim - 1, ndim))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    return shape, k, dim, draw(st.integers(0, 2**16))


@settings(max_examples=25, deadline=None)
@given(stack_inputs())
def test_stack_hypothesis_parity(params):
    torch = require_torch()
    shape, k, dim, seed = params
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(np.float32) for _ in range(k)]
    _parity(lambda *xs: gn.stack(list(xs), dim=dim), lambda *xs: torch.stack(list(xs), dim=dim), arrays)


@st.composite
def pad_inputs(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    if mode == "constant":
        ndim = draw(st.integers(1, 4))
        npairs = draw(st.integers(1, ndim))
    else:  # PyTorch's supported combinations: 1 pair on 2-3D, 2 on 3-4D, 3 on 4-5D
        npairs = draw(st.integers(1, 3))
        ndim = npairs + draw(st.integers(1, 2))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    pad = []
    for k in range(npairs):
        n = shape[ndim - 1 - k]
        if mode == "constant":
            before = draw(st.integers(-n, 3))
            after = draw(st.integers(-(n + before) if before < 0 else -n, 3))
            after = max(after, -(n + before))  # output size >= 0
        elif mode == "reflect":
            before = draw(st.integers(-(n - 1), n - 1))
            after = draw(st.integers(-(n - 1), n - 1))
            if n + before + after < 1:
                before, after = max(before, 0), max(after, 0)
        elif mode == "replicate":
            before = draw(st.integers(-(n - 1), 4))
            after = draw(st.integers(-(n - 1), 4))
            if n + before + after < 1:
                before, after = max(before, 0), max(after, 0)
        else:  # circular: non-negative, at most one wrap
            before = draw(st.integers(0, n))
            after = draw(st.integers(0, n))
        pad += [before, after]
    value = draw(st.sampled_from([0.0, -1.25])) if mode == "constant" else 0.0
    return shape, tuple(pad), mode, value, draw(st.integers(0, 2**16))


@settings(max_examples=40, deadline=None)
@given(pad_inputs())
def test_pad_hypothesis_parity(params):
    tF = _tF()
    shape, pad, mode, value, seed = params
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    kw = {"value": value} if mode == "constant" else {}
    _parity(lambda a: F.pad(a, pad, mode=mode, **kw), lambda a: tF.pad(a, pad, mode=mode, **kw), [x])


# ------------------------------------------------------------ kernel-level
def test_kernels_are_pure_and_split_views():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(4.0).reshape(2, 2)
    out, cache = K.cat_forward([a, b], axis=-1)
    assert out.shape == (2, 5)
    ga, gb = K.cat_backward(out, cache)
    np.testing.assert_array_equal(ga, a)
    np.testing.assert_array_equal(gb, b)
    out, cache = K.stack_forward([a, a + 1], axis=1)
    assert out.shape == (2, 2, 3)
    g0, g1 = K.stack_backward(out, cache)
    np.testing.assert_array_equal(g1, a + 1)


def test_kernel_caches_are_named():
    # the caches name what the backward reads (no positional tuples)
    a, b = np.zeros((2, 3)), np.zeros((2, 4))
    _, cache = K.cat_forward([a, b], axis=-1)
    assert isinstance(cache, K.CatCache) and (cache.axis, cache.sizes) == (1, (3, 4))
    _, cache = K.stack_forward([a, a, a], axis=-1)
    assert isinstance(cache, K.StackCache) and (cache.axis, cache.count) == (2, 3)
    _, cache = K.pad_forward(a, (1, -1), "constant")
    assert isinstance(cache, K.PadConstantCache) and cache.shape == (2, 3)
    assert cache.src[1] == slice(0, 2) and cache.dst[1] == slice(1, 3)
    _, cache = K.pad_forward(a, (2, 1), "reflect")
    assert isinstance(cache, K.PadCopyCache) and cache.mode == "reflect" and len(cache.maps) == 1
    m = cache.maps[0]
    assert (m.axis, m.src_start, m.dst_start, m.width) == (1, 0, 2, 3)
    np.testing.assert_array_equal(m.border, [0, 1, 5])
    np.testing.assert_array_equal(m.source, [2, 1, 1])


def test_pad_backward_reflect_counts():
    # with dY = 1 everywhere, dX[i] counts how many output positions copy X[i]
    x = np.zeros((1, 5))
    out, cache = K.pad_forward(x, (2, 3), "reflect")
    dx = K.pad_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx, [[1, 3, 3, 2, 1]])  # y = x2 x1 | x0..x4 | x3 x2 x1
    out, cache = K.pad_forward(x, (2, 3), "replicate")
    np.testing.assert_array_equal(K.pad_backward(np.ones_like(out), cache), [[3, 1, 1, 1, 4]])


# --------------------------------------------------------------- semantics
def test_cat_mixed_requires_grad_and_no_grad():
    a = gn.tensor(np.ones((2, 2)), requires_grad=True)
    b = gn.tensor(np.ones((1, 2)))
    y = gn.cat([b, a])
    assert y.requires_grad
    (y * y).sum().backward()
    np.testing.assert_array_equal(a.grad, 2 * np.ones((2, 2)))
    assert b.grad is None
    with gn.no_grad():
        assert not gn.cat([a, b]).requires_grad
        assert not gn.stack([a, a]).requires_grad
        assert not F.pad(a, (1, 1)).requires_grad


def test_dtypes_kept_and_never_upcast():
    a32 = gn.tensor(np.ones((2, 2), np.float32))
    a64 = gn.tensor(np.ones((2, 2), np.float64))
    assert gn.cat([a32, a32]).dtype == np.float32
    assert gn.stack([a64, a64]).dtype == np.float64
    assert F.pad(a32, (1, 1), value=2).dtype == np.float32
    for op in (gn.cat, gn.stack):
        with pytest.raises(TypeError, match=op.__name__ + r".*float32 and float64"):
            op([a32, a64])
    ints = gn.tensor(np.arange(4).reshape(2, 2))
    assert gn.cat([ints, ints]).dtype == ints.dtype


def test_cat_errors():
    a = gn.zeros(2, 3, 4)
    with pytest.raises(ShapeError, match=r"cat: tensor 2 has shape \(2, 5, 5\).*\(2, 3, 4\).*dim 2: 5 vs 4"):
        gn.cat([a, gn.zeros(2, 1, 4), gn.zeros(2, 5, 5)], dim=1)
    with pytest.raises(ShapeError, match=r"cat: tensor 1 has 2 dims \(shape \(2, 3\)\).*same number of dims"):
        gn.cat([a, gn.zeros(2, 3)])
    with pytest.raises(ShapeError, match="cat: tensor 0 is zero-dimensional"):
        gn.cat([gn.tensor(1.0), gn.tensor(2.0)])
    with pytest.raises(IndexError, match=r"cat: dim 3 is out of range.*\[-3, 2\]"):
        gn.cat([a, a], dim=3)
    with pytest.raises(IndexError, match="cat: dim -4"):
        gn.cat([a, a], dim=-4)
    with pytest.raises(ValueError, match="non-empty"):
        gn.cat([])
    with pytest.raises(TypeError, match="cat: expected a list or tuple"):
        gn.cat(a)
    with pytest.raises(TypeError, match="element 1 is a ndarray"):
        gn.cat([a, np.zeros((2, 3, 4))])


def test_stack_errors():
    with pytest.raises(ShapeError, match=r"stack: tensor 1 has shape \(3, 2\) but tensor 0 has shape \(2, 3\)"):
        gn.stack([gn.zeros(2, 3), gn.zeros(3, 2)])
    with pytest.raises(IndexError, match=r"stack: dim 3 is out of range.*\[-3, 2\]"):
        gn.stack([gn.zeros(2, 3)], dim=3)


def test_pad_errors():
    x = gn.zeros(1, 2, 3, 4)
    with pytest.raises(ValueError, match=r"pad: padding length must be even.*\(1, 2, 3\)"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ShapeError, match=r"pad: padding length 10 .*\(1, 2, 3, 4\).*<= 2 \* ndim = 8"):
        F.pad(x, (1,) * 10)
    with pytest.raises(ShapeError, match=r"pad: dim 3 \(size 4\).*reflect padding must be less than the input size"):
        F.pad(x, (4, 0), mode="reflect")
    with pytest.raises(ShapeError, match=r"pad: dim 2 \(size 3\).*negative size -1"):
        F.pad(x, (0, 0, -2, -2))
    with pytest.raises(ShapeError, match="circular padding can wrap around at most once"):
        F.pad(x, (5, 0), mode="circular")
    with pytest.raises(ShapeError, match="left after cropping"):
        F.pad(x, (3, -2), mode="circular")  # only 2 elements kept: 3 would wrap twice
    with pytest.raises(ValueError, match="pad: unknown mode 'mirror'"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="doesn't take a value"):
        F.pad(x, (1, 1), mode="reflect", value=3.0)
    with pytest.raises(TypeError, match="pad: pad must contain ints"):
        F.pad(x, (1.5, 1))
    # crops to an empty dim are allowed in constant mode, as in PyTorch
    assert F.pad(x, (-2, -2)).shape == (1, 2, 3, 0)


# ------------------------------------------------- residual / Inception graphs
def _residual_inception(lib, x, W1, W2, Wa, Wb, Wc):
    """y = relu(x W1) W2 + x (a non-leaf h reused by the skip and the next
    block); then an Inception-style block: two branches of the same input
    joined by cat, projected, and summed with the residual."""
    def relu(t):
        return t.relu()

    cat = gn.cat if lib == "gn" else _torch().cat
    pad = F.pad if lib == "gn" else _tF().pad
    y = relu(x @ W1) @ W2 + x                       # residual block
    b1 = relu(y @ Wa)                                # branch 1
    b2 = pad(y @ Wb, (1, 1), mode="constant")        # branch 2 (padded to match widths)
    z = cat([b1, b2], dim=1) @ Wc + y                # filter concatenation, then skip sum
    return (z * z).sum() + y.sum()


def test_residual_and_inception_gradients_match_torch():
    torch = require_torch()
    rng = np.random.default_rng(3)
    shapes = {"x": (5, 4), "W1": (4, 6), "W2": (6, 4), "Wa": (4, 3), "Wb": (4, 1), "Wc": (6, 4)}
    arrays = {k: rng.standard_normal(s) for k, s in shapes.items()}
    g = {k: gn.tensor(v, requires_grad=True) for k, v in arrays.items()}
    t = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    loss = _residual_inception("gn", *g.values())
    tloss = _residual_inception("torch", *t.values())
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    loss.backward()
    tloss.backward()
    for k in shapes:
        np.testing.assert_allclose(g[k].grad, t[k].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    # and the whole graph passes a float64 numerical check
    fresh = [gn.tensor(v, requires_grad=True) for v in arrays.values()]
    res = gradcheck(lambda *ts: _residual_inception("gn", *ts), fresh, atol=1e-6, rtol=1e-5)
    assert res.ok, str(res)
