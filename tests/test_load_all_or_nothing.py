"""load_state_dict of modules, optimizers and schedulers: validate everything, then write (or write nothing)."""
import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
from glassnet.errors import InvalidArgumentError, StateDictError
from glassnet.optim import SGD, Adam
from glassnet.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR, ReduceLROnPlateau, StepLR


def _net():
    gn.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4) if hasattr(nn, "BatchNorm1d") else nn.ReLU(),
                         nn.Linear(4, 2))


def _snapshot(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("break_it, match", [
    (lambda sd: sd.__setitem__("2.bias", np.array(["a", "b"])), r"2\.bias: has dtype <U1, which is not numeric"),
    (lambda sd: sd.__setitem__("2.bias", np.array([1 + 2j, 3j])), r"2\.bias: has complex dtype"),
    (lambda sd: sd.__setitem__("2.bias", [[1.0, 2.0]]), r"2\.bias: checkpoint has shape \(1, 2\)"),
    (lambda sd: sd.__setitem__("2.bias", np.array([object(), object()])), r"2\.bias: has dtype object"),
])
def test_module_load_refuses_uncastable_values_and_writes_nothing(break_it, match):
    """The *last* key is bad: the keys before it must not have been written already."""
    model = _net()
    other = _net()
    for p in other.parameters():
        p.data[...] = 7.0
    sd = {k: np.array(v) for k, v in other.state_dict().items()}
    break_it(sd)
    before = _snapshot(model)
    with pytest.raises(StateDictError, match=match):
        model.load_state_dict(sd)
    after = _snapshot(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_module_load_refuses_non_integral_values_for_integer_buffers():
    bn = nn.BatchNorm2d(3)
    sd = {k: np.array(v) for k, v in bn.state_dict().items()}
    if "num_batches_tracked" not in sd:
        pytest.fail("BatchNorm2d should have a num_batches_tracked buffer, as in PyTorch")
    sd["num_batches_tracked"] = np.array(2.5)
    with pytest.raises(StateDictError, match="num_batches_tracked: has non-integral"):
        bn.load_state_dict(sd)
    sd["num_batches_tracked"] = np.array(np.nan)
    with pytest.raises(StateDictError, match="num_batches_tracked"):
        bn.load_state_dict(sd)
    sd["num_batches_tracked"] = np.array(4.0)  # integral floats are fine (PyTorch casts them too)
    bn.load_state_dict(sd)
    assert int(bn.num_batches_tracked) == 4


@pytest.mark.parametrize("field, value, match", [
    ("lr", float("inf"), "lr"), ("lr", float("nan"), "lr"), ("momentum", -0.5, "momentum"),
    ("weight_decay", float("inf"), "weight_decay"), ("lr", "0.1", "real number"),
])
def test_optimizer_load_refuses_bad_hyperparameters_and_keeps_its_state(field, value, match):
    model = _net()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    sd["param_groups"][0][field] = value
    with pytest.raises((InvalidArgumentError, TypeError), match=match):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9


def test_adam_load_refuses_a_negative_step_count():
    model = _net()
    opt = Adam(model.parameters(), lr=1e-3)
    x = gn.tensor(np.ones((2, 3), np.float32))
    model(x).sum().backward()
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["step"] = -3
    with pytest.raises(InvalidArgumentError, match="'step' of parameter 0 must be an integer >= 0"):
        opt.load_state_dict(sd)
    assert opt.state[next(iter(model.parameters()))]["step"] == 1


@pytest.mark.parametrize("make, field, value, match", [
    (lambda o: StepLR(o, step_size=2), "step_size", 0, r"StepLR\.step_size = 0 must be an integer >= 1"),
    (lambda o: StepLR(o, step_size=2), "gamma", float("inf"), r"StepLR\.gamma = inf must be finite"),
    (lambda o: StepLR(o, step_size=2), "base_lrs", [float("inf")], r"base_lrs.*must be finite"),
    (lambda o: MultiStepLR(o, milestones=[2]), "milestones", {2: 1}, r"milestones.*Counter"),
    (lambda o: CosineAnnealingLR(o, T_max=5), "T_max", 0, r"T_max = 0 must be > 0"),
    (lambda o: ReduceLROnPlateau(o), "factor", 1.5, r"factor = 1\.5 must be < 1"),
    (lambda o: ReduceLROnPlateau(o), "mode", "sideways", r"mode = 'sideways' must be one of"),
    (lambda o: ReduceLROnPlateau(o), "patience", -1, r"patience = -1 must be an integer >= 0"),
])
def test_scheduler_load_refuses_out_of_range_fields_and_changes_nothing(make, field, value, match):
    opt = SGD(_net().parameters(), lr=0.1)
    sched = make(opt)
    sd = sched.state_dict()
    before = sched.state_dict()
    sd[field] = value
    with pytest.raises(InvalidArgumentError, match=match):
        sched.load_state_dict(sd)
    assert sched.state_dict() == before


def test_rng_state_is_checked_before_it_is_set():
    gn.manual_seed(3)
    state = gn.random.get_rng_state()
    bad = dict(state, state={"state": "not a number", "inc": 1})
    with pytest.raises(InvalidArgumentError, match="not a valid PCG64 state"):
        gn.random.set_rng_state(bad)
    assert gn.random.get_rng_state() == state


def _stepped(opt_cls, **kw):
    model = nn.Linear(4, 5)
    opt = opt_cls(model.parameters(), lr=0.1, **kw)
    model(gn.tensor(np.ones((2, 4), np.float32))).sum().backward()
    opt.step()
    return model, opt


@pytest.mark.parametrize("opt_cls, kw, break_it, match", [
    (SGD, {"momentum": 0.9}, lambda e: e.__setitem__("momentum_buffer", np.array(0.5, np.float32)),
     r"'momentum_buffer' of parameter 0 has shape \(\) but the parameter has shape \(5, 4\)"),
    (SGD, {"momentum": 0.9}, lambda e: e.__setitem__("momentum_buffer", np.zeros((5, 4), np.uint8)),
     r"'momentum_buffer' of parameter 0 has dtype uint8; it must be a floating-point array"),
    (Adam, {}, lambda e: e.__setitem__("exp_avg", np.zeros((5, 4), bool)), r"'exp_avg'.*dtype bool"),
    (Adam, {}, lambda e: e.pop("exp_avg"), r"state of parameter 0 lacks \['exp_avg'\]"),
    (Adam, {}, lambda e: e.pop("step"), r"lacks \['step'\]"),
    (Adam, {}, lambda e: e.__setitem__("step", 10 ** 400), None),  # a huge int is finite: accepted, no OverflowError
    (Adam, {}, lambda e: e.__setitem__("surprise", 1.0), r"'surprise' of parameter 0 is not one of Adam's"),
])
def test_optimizer_state_entries_that_would_break_the_next_step_are_refused(opt_cls, kw, break_it, match):
    """Found by tests/fuzz: each of these used to load, then fail inside the next step()."""
    model, opt = _stepped(opt_cls, **kw)
    sd = opt.state_dict()
    break_it(sd["state"][0])
    before = {k: np.array(v) if hasattr(v, "shape") else v for k, v in opt.state[model.weight].items()}
    if match is None:
        opt.load_state_dict(sd)
        return
    with pytest.raises(InvalidArgumentError, match=match):
        opt.load_state_dict(sd)
    after = opt.state[model.weight]
    assert before.keys() == after.keys()
    opt.step()  # still usable
