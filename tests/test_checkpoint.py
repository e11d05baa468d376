"""glassnet.io.checkpoint: round trip, contiguity, atomic writes, and every way a checkpoint can be bad."""
import json
import os

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
from glassnet.errors import StateDictError
from glassnet.io import CheckpointError, load_checkpoint, load_state_dict_file, save_checkpoint
from glassnet.optim import SGD, Adam
from glassnet.optim.lr_scheduler import MultiStepLR, ReduceLROnPlateau, StepLR


def _model(seed=0, hidden=6):
    gn.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def _train_steps(model, opt, n=3, seed=0):
    rng = np.random.default_rng(seed)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(n):
        x = gn.tensor(rng.standard_normal((5, 4)).astype(np.float32))
        y = gn.tensor(rng.integers(0, 3, 5))
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _snapshot(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _save(stem, model, opt=None, sched=None, **kw):
    args = dict(epoch=1, step=2, metrics={"history": []}, config={"model": "test"},
                rng_states={"glassnet": gn.random.get_rng_state()})
    args.update(kw)
    return save_checkpoint(stem, model, opt, sched, **args)


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_round_trip_with_optimizer_state_and_scheduler(tmp_path, opt_cls):
    model = _model()
    kwargs = {"momentum": 0.9, "weight_decay": 5e-4} if opt_cls is SGD else {"betas": (0.8, 0.99)}
    opt = opt_cls(model.parameters(), lr=0.1, **kwargs)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    _train_steps(model, opt)
    sched.step()
    stem = tmp_path / "ck"
    rng_state = gn.random.get_rng_state()
    st, js = _save(stem, model, opt, sched, epoch=3, step=7, global_step=37, extra={"x": (1, 2)},
                   metrics={"loss": float("nan"), "best": float("-inf")})
    assert st.name == "ck.safetensors" and js.name == "ck.json"
    saved_model, saved_opt, saved_sched = _snapshot(model), opt.state_dict(), sched.state_dict()

    model2 = _model(seed=1)
    opt2 = opt_cls(model2.parameters(), lr=0.1, **kwargs)
    sched2 = StepLR(opt2, step_size=1, gamma=0.5)
    meta = load_checkpoint(stem, model2, opt2, sched2)
    _assert_same(_snapshot(model2), saved_model)
    loaded = opt2.state_dict()
    assert loaded["param_groups"] == saved_opt["param_groups"]
    assert saved_opt["state"], "the optimizer had state to save"
    for idx, entry in saved_opt["state"].items():
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                assert loaded["state"][idx][key].dtype == value.dtype
                np.testing.assert_array_equal(loaded["state"][idx][key], value)
            else:
                assert loaded["state"][idx][key] == value
    assert sched2.state_dict() == saved_sched
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.05
    assert (meta["epoch"], meta["step"], meta["global_step"]) == (3, 7, 37)
    assert meta["extra"] == {"x": (1, 2)}
    assert np.isnan(meta["metrics"]["loss"]) and meta["metrics"]["best"] == float("-inf")
    assert meta["rng_states"]["glassnet"] == rng_state

    # continuing from the loaded state is the same as continuing the original
    _train_steps(model, opt, seed=5)
    _train_steps(model2, opt2, seed=5)
    _assert_same(_snapshot(model2), _snapshot(model))


def test_plateau_scheduler_with_infinite_best_and_counter_milestones(tmp_path):
    model = _model()
    opt = SGD(model.parameters(), lr=0.1)
    for sched_cls, make in [(ReduceLROnPlateau, lambda o: ReduceLROnPlateau(o, mode="max", patience=1)),
                            (MultiStepLR, lambda o: MultiStepLR(o, milestones=[2, 2, 5]))]:
        sched = make(opt)
        sched.step(0.5) if sched_cls is ReduceLROnPlateau else sched.step()
        _save(tmp_path / "s", model, opt, sched)
        opt2 = SGD(_model().parameters(), lr=0.1)
        sched2 = make(opt2)
        load_checkpoint(tmp_path / "s", _model(), opt2, sched2)
        assert sched2.state_dict() == sched.state_dict()


def test_transposed_weight_is_stored_contiguous(tmp_path):
    model = _model()
    w = model[0].weight.data
    transposed = np.ascontiguousarray(w.T).T  # same values, Fortran order
    assert not transposed.flags.c_contiguous
    model[0].weight.data = transposed
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train_steps(model, opt, n=1)
    _save(tmp_path / "t", model, opt)
    raw = load_state_dict_file(tmp_path / "t.safetensors")
    assert raw["model.0.weight"].tobytes() == np.ascontiguousarray(model[0].weight.data).tobytes()
    np.testing.assert_array_equal(raw["optimizer.state.0.momentum_buffer"],
                                  opt.state[model[0].weight]["momentum_buffer"])


def test_crash_between_temp_write_and_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = _model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train_steps(model, opt)
    stem = tmp_path / "last"
    _save(stem, model, opt, epoch=1)
    good = _snapshot(model)
    _train_steps(model, opt, seed=9)  # new weights, then a "crash" while saving them

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        _save(stem, model, opt, epoch=2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors"]  # no temp left
    fresh = _model(seed=3)
    meta = load_checkpoint(stem, fresh, SGD(fresh.parameters(), lr=0.1, momentum=0.9))
    assert meta["epoch"] == 1
    _assert_same(_snapshot(fresh), good)


def test_torn_pair_is_detected(tmp_path, monkeypatch):
    """Weights renamed into place but the JSON not: the old JSON's hash no longer matches."""
    model = _model()
    opt = SGD(model.parameters(), lr=0.1)
    stem = tmp_path / "last"
    _save(stem, model, opt)
    _train_steps(model, opt)
    real_replace = os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("simulated crash between the two renames")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_json)
    with pytest.raises(OSError):
        _save(stem, model, opt)
    monkeypatch.undo()
    target = _model(seed=4)
    before = _snapshot(target)
    with pytest.raises(CheckpointError, match=r"last\.safetensors.*SHA-256"):
        load_checkpoint(stem, target, SGD(target.parameters(), lr=0.1))
    _assert_same(_snapshot(target), before)


def _bad_case(tmp_path, name):
    """Write a good checkpoint of a model, then break it as ``name`` says; return (stem, match)."""
    model = _model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train_steps(model, opt)
    stem = tmp_path / "ck"
    st, js = _save(stem, model, opt)
    meta = json.loads(js.read_text())

    def rehash():
        import hashlib
        meta["weights_sha256"] = hashlib.sha256(st.read_bytes()).hexdigest()
        js.write_text(json.dumps(meta))

    if name == "truncated":
        st.write_bytes(st.read_bytes()[:-100])
        rehash()  # hash fine, file truncated: the safetensors reader must catch it
        return stem, r"ck\.safetensors.*truncated|ck\.safetensors.*past the end"
    if name == "corrupt_header":
        data = bytearray(st.read_bytes())
        data[10:20] = b"\xff" * 10
        st.write_bytes(bytes(data))
        rehash()
        return stem, r"ck\.safetensors.*(JSON|corrupt)"
    if name == "wrong_hash":
        meta["weights_sha256"] = "0" * 64
        js.write_text(json.dumps(meta))
        return stem, r"ck\.safetensors.*SHA-256"
    if name == "bad_json":
        js.write_text(js.read_text()[:50])
        return stem, r"ck\.json.*not valid JSON"
    if name == "missing_weights":
        st.unlink()
        return stem, r"ck\.safetensors.*not found"
    if name == "missing_json":
        js.unlink()
        return stem, r"ck\.json.*not found"
    if name in ("missing_key", "wrong_shape", "missing_opt_key", "wrong_dtype"):
        from glassnet.io import save_state_dict_file

        arrays = load_state_dict_file(st)
        if name == "missing_key":
            del arrays["model.2.bias"]
            match = r"ck\.safetensors.*missing model key '2\.bias'"
        elif name == "wrong_shape":
            arrays["model.0.weight"] = np.zeros((5, 4), np.float32)
            match = r"ck\.safetensors.*'0\.weight'.*shape \(5, 4\).*\(6, 4\)"
        elif name == "wrong_dtype":
            arrays["model.0.bias"] = arrays["model.0.bias"].astype(np.float64)
            match = r"ck\.safetensors.*'0\.bias'.*dtype float64"
        else:
            del arrays["optimizer.state.1.momentum_buffer"]
            match = r"ck\.safetensors.*missing optimizer key 'optimizer\.state\.1\.momentum_buffer'"
        save_state_dict_file(arrays, st)
        rehash()
        return stem, match
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["truncated", "corrupt_header", "wrong_hash", "bad_json", "missing_weights",
                                  "missing_json", "missing_key", "wrong_shape", "wrong_dtype",
                                  "missing_opt_key"])
def test_bad_checkpoint_raises_and_leaves_model_untouched(tmp_path, name):
    stem, match = _bad_case(tmp_path, name)
    target = _model(seed=7)
    opt = SGD(target.parameters(), lr=0.3, momentum=0.9)
    _train_steps(target, opt, seed=2)
    before, opt_before = _snapshot(target), opt.state_dict()
    with pytest.raises(CheckpointError, match="(?s)" + match) as info:
        load_checkpoint(stem, target, opt)
    assert isinstance(info.value, StateDictError)
    _assert_same(_snapshot(target), before)
    after = opt.state_dict()
    assert after["param_groups"] == opt_before["param_groups"]
    for idx in opt_before["state"]:
        np.testing.assert_array_equal(after["state"][idx]["momentum_buffer"],
                                      opt_before["state"][idx]["momentum_buffer"])


def test_checkpoint_of_a_different_model_is_refused(tmp_path):
    small = _model(hidden=6)
    _save(tmp_path / "ck", small, SGD(small.parameters(), lr=0.1))
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 3))
    before = _snapshot(other)
    with pytest.raises(CheckpointError, match=r"(?s)ck\.safetensors.*(shape|missing model key)") as info:
        load_checkpoint(tmp_path / "ck", other, SGD(other.parameters(), lr=0.1))
    assert "nothing was loaded" in str(info.value)
    _assert_same(_snapshot(other), before)
    # a different optimizer type or a missing scheduler is refused too
    same = _model(seed=2)
    with pytest.raises(CheckpointError, match="optimizer is a SGD in the checkpoint but a Adam"):
        load_checkpoint(tmp_path / "ck", same, Adam(same.parameters()))
    opt = SGD(same.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match="no scheduler state"):
        load_checkpoint(tmp_path / "ck", same, opt, StepLR(opt, 2))
