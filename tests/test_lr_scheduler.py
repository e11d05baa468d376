"""glassnet.optim.lr_scheduler against torch.optim.lr_scheduler, epoch by epoch."""
import warnings

import numpy as np
import pytest

from glassnet.optim import SGD, Adam
from glassnet.optim import lr_scheduler as gsched
from tests.test_optim import P  # the minimal parameter (array + grad) the optimizer tests use
from tests.torch_oracle import require_torch

EPOCHS = 30
LRS = (0.1, 0.05)


@pytest.fixture(scope="module")
def torch():
    return require_torch()


def _gn_opt(lrs=LRS):
    return SGD([{"params": [P(np.zeros(1))], "lr": lr} for lr in lrs], lr=lrs[0], momentum=0.9)


def _torch_opt(torch, lrs=LRS):
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs],
                           lr=lrs[0], momentum=0.9)


def _lr_sequence(opt, sched, step_opt, epochs=EPOCHS, metrics=None):
    """[group lrs] after construction and after each of ``epochs`` scheduler steps."""
    seq = [[g["lr"] for g in opt.param_groups]]
    for epoch in range(epochs):
        step_opt()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[epoch])
        lrs = [g["lr"] for g in opt.param_groups]
        assert list(sched.get_last_lr()) == lrs
        seq.append(lrs)
    return seq


SCHEDULERS = {
    "StepLR": ("StepLR", dict(step_size=3, gamma=0.5)),
    "StepLR_default_gamma": ("StepLR", dict(step_size=7)),
    "MultiStepLR": ("MultiStepLR", dict(milestones=[5, 12, 12, 20], gamma=0.3)),
    "ExponentialLR": ("ExponentialLR", dict(gamma=0.9)),
    "CosineAnnealingLR": ("CosineAnnealingLR", dict(T_max=10, eta_min=1e-3)),  # past T_max: 11 and 31 branch
    "CosineAnnealingLR_T7": ("CosineAnnealingLR", dict(T_max=7)),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_epoch_schedulers_match_torch(torch, name):
    cls, kwargs = SCHEDULERS[name]
    gopt, topt = _gn_opt(), _torch_opt(torch)
    gs = getattr(gsched, cls)(gopt, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, cls)(topt, **kwargs)
    assert [g["initial_lr"] for g in gopt.param_groups] == list(LRS)
    assert gs.base_lrs == list(LRS) and gs.last_epoch == 0
    got = _lr_sequence(gopt, gs, gopt.step)
    want = _lr_sequence(topt, ts, topt.step)
    assert got == want  # same Python float arithmetic: exactly equal
    assert gs.last_epoch == ts.last_epoch == EPOCHS


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR"])
def test_closed_form_step_with_epoch_matches_torch(torch, name):
    cls, kwargs = SCHEDULERS[name]
    gopt, topt = _gn_opt(), _torch_opt(torch)
    gs = getattr(gsched, cls)(gopt, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, cls)(topt, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (13, 4, 21):
            topt.step()
            gs.step(epoch)
            ts.step(epoch)
            assert gs.get_last_lr() == ts.get_last_lr()
    with pytest.warns(UserWarning, match="deprecated"):
        gs.step(3)


def test_initial_lr_is_kept_and_resume_requires_it():
    opt = _gn_opt()
    opt.param_groups[0]["initial_lr"] = 0.7  # an existing initial_lr is not overwritten (setdefault)
    s = gsched.StepLR(opt, step_size=2)
    assert s.base_lrs == [0.7, 0.05]
    with pytest.raises(KeyError, match=r"param_groups\[0\] has no 'initial_lr'"):
        gsched.ExponentialLR(_gn_opt(), gamma=0.5, last_epoch=4)


def test_resume_with_last_epoch_matches_torch(torch):
    """Constructing with last_epoch >= 0 (the old resume idiom) gives torch's values."""
    gopt, topt = _gn_opt(), _torch_opt(torch)
    for g in gopt.param_groups + topt.param_groups:
        g["initial_lr"] = g["lr"] * 2
    gs = gsched.CosineAnnealingLR(gopt, T_max=12, last_epoch=5)
    ts = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=12, last_epoch=5)
    assert _lr_sequence(gopt, gs, gopt.step, epochs=10) == _lr_sequence(topt, ts, topt.step, epochs=10)


# ------------------------------------------------------------ ReduceLROnPlateau

_PLATEAU = [1.0, 0.9, 0.9, 0.9, 0.95, 0.89995, 0.8999, 0.85, 0.85, 0.851, 0.85, 0.85, 0.85, 0.85,
            0.7, 0.7, 0.7, 0.7, 0.7, 0.70001, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69,
            0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6] + [0.59999] * 12

PLATEAU_CONFIGS = {
    "default": (dict(), _PLATEAU),
    "min_rel_patience2": (dict(patience=2, threshold=1e-3), _PLATEAU),
    "min_abs_cooldown": (dict(patience=1, threshold=0.01, threshold_mode="abs", cooldown=3), _PLATEAU),
    "max_rel": (dict(mode="max", patience=2, factor=0.5), [1 / m for m in _PLATEAU]),
    "max_abs_cooldown": (dict(mode="max", threshold_mode="abs", threshold=0.02, patience=0, cooldown=2),
                         [2 - m for m in _PLATEAU]),
    "min_lr_scalar": (dict(patience=0, factor=0.5, min_lr=0.01), _PLATEAU),
    "min_lr_per_group": (dict(patience=0, factor=0.3, min_lr=[0.02, 1e-3]), _PLATEAU),
    "eps_blocks_small_steps": (dict(patience=0, factor=0.5, eps=0.02), _PLATEAU),
    "patience0_zero_threshold": (dict(patience=0, threshold=0.0), _PLATEAU),
}


@pytest.mark.parametrize("name", list(PLATEAU_CONFIGS))
def test_reduce_lr_on_plateau_matches_torch(torch, name):
    kwargs, metrics = PLATEAU_CONFIGS[name]
    gopt, topt = _gn_opt(), _torch_opt(torch)
    gs = gsched.ReduceLROnPlateau(gopt, **kwargs)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    got = _lr_sequence(gopt, gs, gopt.step, epochs=len(metrics), metrics=metrics)
    want = _lr_sequence(topt, ts, topt.step, epochs=len(metrics), metrics=metrics)
    assert got == want
    assert got[-1] != got[0], "the scripted metrics should trigger at least one reduction"
    assert (gs.best, gs.num_bad_epochs, gs.cooldown_counter, gs.last_epoch) == \
        (ts.best, ts.num_bad_epochs, ts.cooldown_counter, ts.last_epoch)
    assert "initial_lr" not in gopt.param_groups[0]  # as in torch


def test_reduce_lr_on_plateau_accepts_array_metric():
    opt = _gn_opt()
    s = gsched.ReduceLROnPlateau(opt, patience=0)
    s.step(np.float32(1.0))
    s.step(np.array(2.0))
    assert s.get_last_lr() == [0.1 * 0.1, 0.05 * 0.1]


# ----------------------------------------------------------------- state_dict

def _make(kind, opt):
    if kind == "StepLR":
        return gsched.StepLR(opt, step_size=4, gamma=0.5)
    if kind == "MultiStepLR":
        return gsched.MultiStepLR(opt, milestones=[3, 9, 9], gamma=0.5)
    if kind == "CosineAnnealingLR":
        return gsched.CosineAnnealingLR(opt, T_max=8, eta_min=1e-3)
    return gsched.ReduceLROnPlateau(opt, patience=1, cooldown=2, factor=0.5)


@pytest.mark.parametrize("kind", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "ReduceLROnPlateau"])
def test_scheduler_state_dict_round_trip(kind):
    metrics = _PLATEAU[:27]

    def advance(opt, s, epochs):
        for e in epochs:
            opt.step()
            s.step(metrics[e]) if kind == "ReduceLROnPlateau" else s.step()

    ref_opt = _gn_opt()
    ref = _make(kind, ref_opt)
    advance(ref_opt, ref, range(27))

    opt1 = _gn_opt()
    s1 = _make(kind, opt1)
    advance(opt1, s1, range(11))
    sd, osd = s1.state_dict(), opt1.state_dict()
    assert "optimizer" not in sd
    advance(opt1, s1, range(11, 13))  # stepping on must not alter the saved dict
    assert sd["last_epoch"] == 11

    opt2 = _gn_opt()
    s2 = _make(kind, opt2)  # scheduler first, then the optimizer's state (PyTorch's advice)
    s2.load_state_dict(sd)
    opt2.load_state_dict(osd)
    advance(opt2, s2, range(11, 27))
    assert s2.get_last_lr() == ref.get_last_lr()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in ref_opt.param_groups]
    assert s2.last_epoch == ref.last_epoch


def test_scheduler_works_with_adam():
    opt = Adam([P(np.zeros(2))], lr=1e-3)
    s = gsched.ExponentialLR(opt, gamma=0.5)
    s.step()
    assert opt.param_groups[0]["lr"] == 5e-4 and s.get_last_lr() == [5e-4]


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda o: gsched.StepLR(o, step_size=0), ValueError, "step_size must be a positive integer"),
        (lambda o: gsched.StepLR(o, step_size=2.5), ValueError, "step_size"),
        (lambda o: gsched.MultiStepLR(o, milestones=[5, 3]), ValueError, "milestones must be increasing"),
        (lambda o: gsched.CosineAnnealingLR(o, T_max=0), ValueError, "T_max must be positive"),
        (lambda o: gsched.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor must be < 1.0"),
        (lambda o: gsched.ReduceLROnPlateau(o, mode="up"), ValueError, "mode must be 'min' or 'max'"),
        (lambda o: gsched.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold_mode must be"),
        (lambda o: gsched.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "expected 2 min_lrs"),
        (lambda o: gsched.ReduceLROnPlateau(o, patience=-1), ValueError, "patience must be >= 0"),
        (lambda o: gsched.StepLR(object(), step_size=2), TypeError, "expected a glassnet.optim.Optimizer"),
        (lambda o: gsched.ReduceLROnPlateau("sgd"), TypeError, "expected a glassnet.optim.Optimizer"),
    ],
)
def test_scheduler_validation(make, error, match):
    with pytest.raises(error, match=match):
        make(_gn_opt())


def test_repr_is_readable():
    text = repr(gsched.StepLR(_gn_opt(), step_size=3))
    assert text.startswith("StepLR(") and "step_size=3" in text and "gamma=0.1" in text
