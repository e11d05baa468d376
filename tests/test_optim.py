"""glassnet.optim: SGD, Adam, AdamW against torch.optim, plus the Optimizer base class.

Parameters are a tiny stand-in ``P`` with ``.data`` and ``.grad`` (the duck
type the optimizers rely on), not glassnet.nn.Parameter.
"""
import json

import numpy as np
import pytest

from glassnet.errors import ShapeError
from glassnet.optim import SGD, Adam, AdamW, Optimizer
from tests.torch_oracle import require_torch

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 20
RTOL = {np.float64: 1e-12, np.float32: 1e-6}


class P:
    """Minimal parameter: an array updated in place, and its gradient."""

    def __init__(self, data, grad=None):
        self.data = data
        self.grad = grad


@pytest.fixture(scope="module")
def torch():
    return require_torch()


def _problem(dtype, seed=0, steps=STEPS, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return init, grads


def _assert_close(actual, expected, dtype, what=""):
    """Equal to ``rtol`` relative to the tensor's scale (max |expected|, at least 1)."""
    rtol = RTOL[dtype]
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def _run_parity(torch, gn_cls, torch_cls, kwargs, dtype, groups=None, none_grad=None):
    """Feed the same 20 gradients to glassnet and torch; compare params after every step.

    ``groups``: optional list of (param indices, extra group kwargs).
    ``none_grad(step, i)``: True leaves param i's grad as None at that step.
    """
    init, grads = _problem(dtype)
    gp = [P(x.copy()) for x in init]
    tp = [torch.tensor(x.copy(), requires_grad=True) for x in init]
    if groups is None:
        gopt, topt = gn_cls(gp, **kwargs), torch_cls(tp, **kwargs)
    else:
        gopt = gn_cls([{"params": [gp[i] for i in idx], **extra} for idx, extra in groups], **kwargs)
        topt = torch_cls([{"params": [tp[i] for i in idx], **extra} for idx, extra in groups], **kwargs)
    buffers = [p.data for p in gp]
    for step, gs in enumerate(grads):
        for i, g in enumerate(gs):
            skip = none_grad is not None and none_grad(step, i)
            gp[i].grad = None if skip else g.copy()
            tp[i].grad = None if skip else torch.from_numpy(g.copy())
        gopt.step()
        topt.step()
        for i in range(len(gp)):
            assert gp[i].data is buffers[i], "step() must update p.data in place"
            assert gp[i].data.dtype == dtype, "step() changed the parameter dtype"
            _assert_close(gp[i].data, tp[i].detach().numpy(), dtype, f"step {step}, param {i}")
    for s in gopt.state.values():
        for k, v in s.items():
            if isinstance(v, np.ndarray):
                assert v.dtype == dtype, f"state {k!r} has dtype {v.dtype}, expected {dtype}"
    return gopt, topt


SGD_CONFIGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.1, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, momentum=0.5, weight_decay=0.1),
    "dampening": dict(lr=0.1, momentum=0.9, dampening=0.3),
    "maximize": dict(lr=0.1, momentum=0.9, weight_decay=0.01, maximize=True),
}
ADAM_CONFIGS = {
    "plain": dict(lr=1e-2),
    "weight_decay": dict(lr=1e-2, weight_decay=0.1),
    "amsgrad": dict(lr=1e-2, amsgrad=True),
    "amsgrad_wd_maximize": dict(lr=1e-2, amsgrad=True, weight_decay=0.05, maximize=True),
    "small_beta1": dict(lr=1e-2, betas=(0.3, 0.9), eps=1e-6),  # torch's lerp weight >= 0.5 branch
}
ADAMW_CONFIGS = {
    "default_wd": dict(lr=1e-2),
    "wd_amsgrad": dict(lr=1e-2, weight_decay=0.1, amsgrad=True),
    "maximize": dict(lr=1e-2, betas=(0.8, 0.99), maximize=True),
}
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("config", list(SGD_CONFIGS))
def test_sgd_matches_torch(torch, config, dtype):
    _run_parity(torch, SGD, torch.optim.SGD, SGD_CONFIGS[config], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("config", list(ADAM_CONFIGS))
def test_adam_matches_torch(torch, config, dtype):
    _run_parity(torch, Adam, torch.optim.Adam, ADAM_CONFIGS[config], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("config", list(ADAMW_CONFIGS))
def test_adamw_matches_torch(torch, config, dtype):
    _run_parity(torch, AdamW, torch.optim.AdamW, ADAMW_CONFIGS[config], dtype)


@pytest.mark.parametrize(
    "gn_cls, torch_name, kwargs",
    [(SGD, "SGD", dict(lr=0.1, momentum=0.9)), (Adam, "Adam", dict(lr=1e-2)), (AdamW, "AdamW", dict(lr=1e-2))],
    ids=["SGD", "Adam", "AdamW"],
)
def test_param_groups_and_missing_grads_match_torch(torch, gn_cls, torch_name, kwargs):
    """Two groups with their own lr (and weight decay); some grads None on some steps."""
    groups = [([0, 2], {"lr": 0.3}), ([1], {"weight_decay": 0.2})]
    gopt, _ = _run_parity(
        torch, gn_cls, getattr(torch.optim, torch_name), kwargs, np.float64,
        groups=groups, none_grad=lambda step, i: (i == 1 and step % 3 == 0) or (i == 2 and step < 2),
    )
    assert [g["lr"] for g in gopt.param_groups] == [0.3, kwargs["lr"]]
    if gn_cls is not SGD:
        steps = [gopt.state[g["params"][0]]["step"] for g in gopt.param_groups]
        assert steps == [STEPS, STEPS - 7]  # param 1 skipped at steps 0, 3, ..., 18


def test_param_with_none_grad_is_untouched_and_has_no_state():
    a, b = P(np.ones(3), np.ones(3)), P(np.ones(2))
    opt = Adam([a, b], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert b not in opt.state and a in opt.state


def test_zero_grad():
    a, b = P(np.ones(3), np.full(3, 2.0)), P(np.ones(2))
    opt = SGD([a, b], lr=0.1)
    g = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is g and np.all(g == 0) and b.grad is None
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_closure_loss_is_returned():
    a = P(np.ones(2), np.ones(2))
    assert SGD([a], lr=0.1).step(lambda: 3.5) == 3.5
    assert Adam([a]).step() is None


def test_float32_stays_float32_without_float64_temporaries():
    """np.float64 hyperparameters must not upcast float32 math (NEP 50 would)."""
    a = P(np.ones(4, np.float32), np.full(4, 0.5, np.float32))
    for opt in (SGD([a], lr=np.float64(0.1), momentum=np.float64(0.9), weight_decay=np.float64(0.1)),
                Adam([a], lr=np.float64(0.1), weight_decay=np.float64(0.1), amsgrad=True),
                AdamW([a], lr=np.float64(0.1))):
        opt.step()
        opt.step()
        assert a.data.dtype == np.float32
        for s in opt.state.values():
            assert all(v.dtype == np.float32 for v in s.values() if isinstance(v, np.ndarray))


def test_zero_dim_parameter():
    a = P(np.array(2.0), np.array(1.0))
    opt = SGD([a], lr=0.5, momentum=0.9)
    opt.step()
    opt.step()
    assert a.data.shape == () and a.data == pytest.approx(2.0 - 0.5 - 0.5 * 1.9)


# ---------------------------------------------------------------- state_dict

def _checkpoint_resume(make_opt, dtype=np.float64, split=10):
    """Return (params after 20 uninterrupted steps, params after 10 + save/load + 10)."""
    init, grads = _problem(dtype)

    ref = [P(x.copy()) for x in init]
    opt = make_opt(ref)
    for gs in grads:
        for p, g in zip(ref, gs):
            p.grad = g.copy()
        opt.step()

    first = [P(x.copy()) for x in init]
    opt1 = make_opt(first)
    for gs in grads[:split]:
        for p, g in zip(first, gs):
            p.grad = g.copy()
        opt1.step()
    saved = opt1.state_dict()
    snapshot = [p.data.copy() for p in first]
    saved_copy = {k: {kk: (vv.copy() if isinstance(vv, np.ndarray) else vv) for kk, vv in v.items()}
                  for k, v in saved["state"].items()}
    opt1.step()  # stepping on must not change the saved dict (it holds copies)
    for k, v in saved["state"].items():
        for kk, vv in v.items():
            np.testing.assert_array_equal(vv, saved_copy[k][kk])

    second = [P(x) for x in snapshot]
    opt2 = make_opt(second)
    opt2.param_groups[0]["lr"] = 123.0  # must be overwritten by the loaded hyperparameters
    opt2.load_state_dict(saved)
    for k, v in saved["state"].items():  # loading copies: mutating the dict later changes nothing
        for vv in v.values():
            if isinstance(vv, np.ndarray):
                vv[...] = np.nan
    for gs in grads[split:]:
        for p, g in zip(second, gs):
            p.grad = g.copy()
        opt2.step()
    return [p.data for p in ref], [p.data for p in second]


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        lambda ps: SGD([{"params": ps[:1], "lr": 0.2}, {"params": ps[1:]}], lr=0.05, momentum=0.5,
                       weight_decay=0.01),
        lambda ps: Adam(ps, lr=1e-2, amsgrad=True, weight_decay=0.1),
        lambda ps: AdamW([{"params": ps[1:]}, {"params": ps[:1], "lr": 0.03}], lr=1e-2),
    ],
    ids=["sgd_nesterov", "sgd_groups", "adam_amsgrad", "adamw_groups"],
)
def test_state_dict_round_trip_equals_uninterrupted(make_opt):
    uninterrupted, resumed = _checkpoint_resume(make_opt)
    for a, b in zip(uninterrupted, resumed):
        np.testing.assert_array_equal(a, b)


def test_state_dict_layout_uses_positions():
    a, b, c = (P(np.ones(s), np.ones(s)) for s in [(2,), (3,), (4,)])
    opt = SGD([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1, momentum=0.9)
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["state"][2]["momentum_buffer"].shape == (4,)
    assert sd["param_groups"][1]["lr"] == 0.5


def test_load_state_dict_accepts_json_style_keys_and_casts_to_param_dtype():
    """Keys as strings (after a JSON round trip of the metadata) and float64 arrays for float32 params."""
    a = P(np.ones(3, np.float32), np.ones(3, np.float32))
    opt = Adam([a], lr=0.1)
    opt.step()
    sd = opt.state_dict()
    sd = {"state": {str(k): {kk: (vv.astype(np.float64) if isinstance(vv, np.ndarray) else vv)
                             for kk, vv in v.items()} for k, v in sd["state"].items()},
          "param_groups": json.loads(json.dumps(sd["param_groups"]))}
    b = P(a.data.copy())
    opt2 = Adam([b], lr=0.1)
    opt2.load_state_dict(sd)
    st = opt2.state[b]
    assert st["step"] == 1 and st["exp_avg"].dtype == np.float32
    b.grad = np.ones(3, np.float32)
    opt2.step()
    assert b.data.dtype == np.float32


def _saved_sgd():
    a, b = P(np.ones(2), np.ones(2)), P(np.ones((3, 2)), np.ones((3, 2)))
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    opt.step()
    return opt.state_dict()


def test_load_state_dict_group_count_mismatch():
    sd = _saved_sgd()
    opt = SGD([{"params": [P(np.ones(2))]}, {"params": [P(np.ones((3, 2)))]}], lr=0.1)
    with pytest.raises(ValueError, match=r"1 parameter group\(s\) but this optimizer has 2"):
        opt.load_state_dict(sd)


def test_load_state_dict_param_count_mismatch():
    sd = _saved_sgd()
    opt = SGD([P(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"group 0 has 2 parameter\(s\) in the loaded state dict but 1"):
        opt.load_state_dict(sd)


def test_load_state_dict_shape_mismatch():
    sd = _saved_sgd()
    opt = SGD([P(np.ones(2)), P(np.ones((2, 3)))], lr=0.1)
    with pytest.raises(ShapeError, match=r"'momentum_buffer' of parameter 1 has shape \(3, 2\) but the parameter has shape \(2, 3\)"):
        opt.load_state_dict(sd)


def test_load_state_dict_unknown_index_and_bad_dict():
    sd = _saved_sgd()
    sd["state"][7] = sd["state"][0]
    opt = SGD([P(np.ones(2)), P(np.ones((3, 2)))], lr=0.1)
    with pytest.raises(ValueError, match="entry for parameter 7"):
        opt.load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_failed_load_leaves_optimizer_unchanged():
    sd = _saved_sgd()
    a, b = P(np.ones(2)), P(np.ones((2, 3)))
    opt = SGD([a, b], lr=0.7, momentum=0.9)
    with pytest.raises(ShapeError):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.7 and len(opt.state) == 0


# ------------------------------------------------------- groups and validation

def test_add_param_group_fills_defaults_and_rejects_duplicates():
    a, b = P(np.ones(2)), P(np.ones(3))
    opt = Adam([a], lr=0.1, weight_decay=0.01)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["params"] == [b]
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["weight_decay"] == 0.01
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="invalid lr = -1"):
        opt.add_param_group({"params": [P(np.ones(1))], "lr": -1})


def test_named_parameters_are_accepted():
    a, b = P(np.ones(2), np.ones(2)), P(np.ones(3), np.ones(3))
    opt = SGD([("w", a), ("b", b)], lr=0.1)
    opt.step()
    assert opt.param_groups[0]["params"] == [a, b]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda ps: SGD(ps, lr=-0.1), ValueError, r"SGD \(defaults\): invalid lr = -0.1; it must satisfy 0 <= lr"),
        (lambda ps: SGD(ps, momentum=-0.5), ValueError, "invalid momentum"),
        (lambda ps: SGD(ps, weight_decay=-1e-4), ValueError, "invalid weight_decay"),
        (lambda ps: SGD(ps, nesterov=True), ValueError, "Nesterov momentum requires momentum > 0 and dampening = 0"),
        (lambda ps: SGD(ps, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "Nesterov"),
        (lambda ps: SGD(ps, lr=None), TypeError, "lr must be a real number"),
        (lambda ps: Adam(ps, lr=-1e-3), ValueError, r"Adam \(defaults\): invalid lr"),
        (lambda ps: Adam(ps, eps=-1.0), ValueError, "invalid eps"),
        (lambda ps: Adam(ps, betas=(1.0, 0.999)), ValueError, r"invalid betas\[0\] = 1.0; it must satisfy 0 <= betas\[0\] < 1"),
        (lambda ps: Adam(ps, betas=(0.9, -0.1)), ValueError, r"invalid betas\[1\]"),
        (lambda ps: Adam(ps, betas=0.9), ValueError, "betas must be a pair"),
        (lambda ps: AdamW(ps, weight_decay=-0.01), ValueError, r"AdamW \(defaults\): invalid weight_decay"),
        (lambda ps: SGD([{"params": ps, "lr": -2}]), ValueError, r"SGD \(param group 0\): invalid lr"),
    ],
)
def test_hyperparameter_validation(make, error, match):
    with pytest.raises(error, match=match):
        make([P(np.ones(2))])


@pytest.mark.parametrize(
    "params, error, match",
    [
        ([], ValueError, "empty parameter list"),
        (P(np.ones(2)), TypeError, "single parameter"),
        ({"params": []}, TypeError, "wrap a single group in a list"),
        ({P(np.ones(2))}, TypeError, "not a set"),
        ([np.ones(2)], TypeError, r"objects with \.data and \.grad"),
        ([P(np.ones(2, dtype=np.int64))], TypeError, "floating-point parameters"),
    ],
)
def test_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        SGD(params, lr=0.1)


def test_same_param_twice_in_one_group():
    a = P(np.ones(2))
    with pytest.raises(ValueError, match="more than once"):
        SGD([a, a])


def test_grad_mismatch_errors():
    a = P(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ShapeError, match=r"shape \(2, 3\) has a gradient of shape \(3, 2\)"):
        SGD([a], lr=0.1).step()
    b = P(np.ones(2, np.float32), np.ones(2, np.float64))
    with pytest.raises(TypeError, match="float32 parameter has a float64 gradient"):
        Adam([b]).step()


def test_repr_lists_groups_like_torch():
    opt = SGD([{"params": [P(np.ones(2))]}, {"params": [P(np.ones(1))], "lr": 0.5}], lr=0.1, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD (\nParameter Group 0\n") and text.endswith("\n)")
    assert "    lr: 0.1\n" in text and "    momentum: 0.9\n" in text and "Parameter Group 1\n" in text
    assert "    lr: 0.5\n" in text and "params" not in text
    assert "    betas: (0.9, 0.999)\n" in repr(AdamW([P(np.ones(2))]))
    assert "weight_decay: 0.01" in repr(AdamW([P(np.ones(2))]))


def test_base_class_step_is_abstract():
    with pytest.raises(NotImplementedError):
        Optimizer([P(np.ones(2))], {"lr": 0.1}).step()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kw", [dict(momentum=0.9), dict(momentum=0.9, nesterov=True, weight_decay=5e-4),
                                dict(momentum=0.5, dampening=0.1, maximize=True), dict(weight_decay=0.01)])
def test_sliced_sgd_update_is_bitwise_the_whole_array_update(kw, threads):
    """Large parameters are updated slice by slice (over the kernel threads);
    the arithmetic must be exactly the whole-array rule's."""
    from glassnet.optim.elementwise import _CHUNK

    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3 * _CHUNK + 7, 1)).astype(np.float32)
    grads = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(3)]
    f32 = np.float32
    lr, mu, tau, wd = f32(0.01), f32(kw.get("momentum", 0)), kw.get("dampening", 0), kw.get("weight_decay", 0)
    expected, buf = p0.copy(), None
    for g in grads:  # the documented update rule on whole arrays
        g = -g if kw.get("maximize") else g
        if wd:
            g = expected * f32(wd) + g
        if mu:
            if buf is None:
                buf = g.copy()
            else:
                buf = buf * mu + (f32(1 - tau) * g if tau else g)
            g = g + mu * buf if kw.get("nesterov") else buf
        expected = expected - lr * g
    np.testing.assert_array_equal(_steps_with_threads(SGD, kw, p0, grads, threads), expected)


def _steps_with_threads(cls, kw, p0, grads, threads):
    """The parameter after one ``cls(lr=0.01, **kw)`` step per gradient, with
    ``threads`` kernel threads."""
    import glassnet.threads as th

    param = P(p0.copy())
    opt = cls([param], lr=0.01, **kw)
    th.set_num_threads(threads)
    try:
        for g in grads:
            param.grad = g.copy()
            opt.step()
    finally:
        th.set_num_threads(1)
    return param.data


@pytest.mark.parametrize("cls_kw", [("Adam", dict()), ("Adam", dict(weight_decay=0.1, amsgrad=True)),
                                    ("AdamW", dict(maximize=True)), ("Adam", dict(betas=(0.3, 0.9)))])
def test_sliced_adam_update_is_bitwise_the_whole_array_update(cls_kw, monkeypatch):
    """Large parameters are updated slice by slice over the kernel threads;
    the result must equal the update on whole arrays bit for bit."""
    import glassnet.optim as optim_pkg
    import glassnet.optim.elementwise as optimizer_mod

    name, kw = cls_kw
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((3 * optimizer_mod._CHUNK + 7,)).astype(np.float32)
    grads = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(3)]

    def run(chunk, threads):
        monkeypatch.setattr(optimizer_mod, "_CHUNK", chunk)
        return _steps_with_threads(getattr(optim_pkg, name), kw, p0, grads, threads)

    whole = run(1 << 40, 1)
    np.testing.assert_array_equal(run(1 << 18, 2), whole)
