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
    st = _save(stem, model, opt, sched, epoch=3, step=7, global_step=37, extra={"x": (1, 2)},
               metrics={"loss": float("nan"), "best": float("-inf")})
    assert st.name == "ck.safetensors"
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]  # no temp left
    fresh = _model(seed=3)
    meta = load_checkpoint(stem, fresh, SGD(fresh.parameters(), lr=0.1, momentum=0.9))
    assert meta["epoch"] == 1
    _assert_same(_snapshot(fresh), good)


def test_disk_full_mid_write_keeps_previous_checkpoint_and_says_so(tmp_path, monkeypatch):
    """ENOSPC after half the bytes: a CheckpointWriteError (an OSError), the old file intact, no temporary."""
    import errno

    from glassnet.io import state_dict_file
    from glassnet.io.checkpoint import CheckpointWriteError

    model = _model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    stem = tmp_path / "last"
    _save(stem, model, opt, epoch=1)
    before = (tmp_path / "last.safetensors").read_bytes()
    real = state_dict_file._write_safetensors

    def half_then_full(f, arrays, metadata):
        class Full:
            written = 0

            def write(self, data):
                if self.written > 200:
                    raise OSError(errno.ENOSPC, "No space left on device")
                self.written += len(data)
                return f.write(data)
        real(Full(), arrays, metadata)

    monkeypatch.setattr(state_dict_file, "_write_safetensors", half_then_full)
    import glassnet.io.checkpoint_file as checkpoint_file
    monkeypatch.setattr(checkpoint_file, "_write_safetensors", half_then_full)
    _train_steps(model, opt)
    with pytest.raises(CheckpointWriteError, match=r"last\.safetensors.*No space left.*unchanged") as info:
        _save(stem, model, opt, epoch=2)
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]
    assert (tmp_path / "last.safetensors").read_bytes() == before


def test_temporaries_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    model = _model()
    stem = tmp_path / "last"
    (tmp_path / ".last.safetensors.abc123.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".best.safetensors.zz.tmp").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("a user's file stays")
    _save(stem, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors", "notes.txt"]


def test_a_checkpoint_is_one_file_readable_by_the_safetensors_package(tmp_path):
    from safetensors.numpy import load_file

    model = _model()
    path = _save(tmp_path / "ck", model, SGD(model.parameters(), lr=0.1, momentum=0.9))
    assert path == tmp_path / "ck.safetensors" and sorted(os.listdir(tmp_path)) == ["ck.safetensors"]
    arrays = load_file(str(path))
    np.testing.assert_array_equal(arrays["model.0.weight"], model[0].weight.data)


# ------------------------------------------------------------- bad files
def _rewrite(path, arrays=None, meta=None):
    """Write checkpoint ``path`` again, with its hash made valid, after changing arrays/meta in place."""
    from glassnet.io.checkpoint_file import read_checkpoint_metadata, write_checkpoint_file
    from glassnet.io.checkpoint_json import encode

    arrays = load_state_dict_file(path) if arrays is None else arrays
    meta = read_checkpoint_metadata(path) if meta is None else meta
    write_checkpoint_file(path, arrays, json.dumps(encode(meta)))


def _bad_case(tmp_path, name):
    """Write a good checkpoint of a model, then break it as ``name`` says; return (stem, match)."""
    from glassnet.io.checkpoint_file import read_checkpoint_metadata

    model = _model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=2)
    _train_steps(model, opt)
    stem = tmp_path / "ck"
    st = _save(stem, model, opt, sched)
    data = bytearray(st.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    arrays, meta = load_state_dict_file(st), read_checkpoint_metadata(st)

    if name == "truncated":
        st.write_bytes(bytes(data[:-100]))
        return stem, r"ck\.safetensors.*SHA-256"
    if name == "flipped_weight_bit":
        data[-3] ^= 0x10
        st.write_bytes(bytes(data))
        return stem, r"ck\.safetensors.*SHA-256.*corrupt"
    if name == "flipped_metadata_digit":  # lr 0.1 -> 0.3 inside the metadata JSON: no longer silent
        head = bytes(data[8:8 + header_len])
        at = head.index(b'\\"lr\\":0.1')
        data[8 + at + len(b'\\"lr\\":0.')] = ord("3")
        st.write_bytes(bytes(data))
        return stem, r"ck\.safetensors.*SHA-256"
    if name == "corrupt_header":
        data[10:20] = b"\xff" * 10
        st.write_bytes(bytes(data))
        return stem, r"ck\.safetensors.*(JSON|UTF-8|corrupt)"
    if name == "missing_file":
        st.unlink()
        return stem, r"ck\.safetensors.*not found"
    if name == "plain_state_dict":
        from glassnet.io import save_state_dict_file
        save_state_dict_file(arrays, st)
        return stem, r"ck\.safetensors.*not a glassnet checkpoint"
    if name == "missing_key":
        del arrays["model.2.bias"]
        match = r"ck\.safetensors.*missing keys: 2\.bias"
    elif name == "wrong_shape":
        arrays["model.0.weight"] = np.zeros((5, 4), np.float32)
        match = r"ck\.safetensors.*'?0\.weight'?.*shape \(5, 4\).*\(6, 4\)"
    elif name == "wrong_dtype":
        arrays["model.0.bias"] = arrays["model.0.bias"].astype(np.float64)
        match = r"ck\.safetensors.*'0\.bias'.*dtype float64"
    elif name == "missing_opt_key":
        del arrays["optimizer.state.1.momentum_buffer"]
        match = r"ck\.safetensors.*missing optimizer key 'optimizer\.state\.1\.momentum_buffer'"
    elif name == "nan_momentum":
        arrays["optimizer.state.1.momentum_buffer"] = np.full_like(arrays["optimizer.state.1.momentum_buffer"], np.nan)
        match = r"ck\.safetensors.*momentum_buffer.*NaN"
    elif name == "infinite_lr":
        meta["optimizer"]["param_groups"][0]["lr"] = float("inf")
        match = r"ck\.safetensors.*lr = inf"
    elif name == "negative_momentum":
        meta["optimizer"]["param_groups"][0]["momentum"] = -1.0
        match = r"ck\.safetensors.*momentum"
    elif name == "scheduler_step_size_0":
        meta["scheduler"]["state"]["step_size"] = 0
        match = r"ck\.safetensors.*StepLR\.step_size = 0 must be an integer >= 1"
    elif name == "scheduler_lrs_for_other_groups":
        meta["scheduler"]["state"]["base_lrs"] = [0.1, 0.1]
        match = r"ck\.safetensors.*base_lrs.*2 entries.*1 param group"
    elif name == "scheduler_unknown_field":
        meta["scheduler"]["state"]["surprise"] = 1
        match = r"ck\.safetensors.*unexpected fields \['surprise'\]"
    elif name == "epoch_is_a_string":
        meta["epoch"] = "3"
        match = r"ck\.safetensors.*'epoch' is '3'"
    elif name == "optimizer_state_not_a_dict":
        meta["optimizer"]["state"] = [1, 2]
        match = r"ck\.safetensors.*optimizer state is not an object"
    else:
        raise AssertionError(name)
    _rewrite(st, arrays, meta)
    return stem, match


BAD_CASES = ["truncated", "flipped_weight_bit", "flipped_metadata_digit", "corrupt_header", "missing_file",
             "plain_state_dict", "missing_key", "wrong_shape", "wrong_dtype", "missing_opt_key", "nan_momentum",
             "infinite_lr", "negative_momentum", "scheduler_step_size_0", "scheduler_lrs_for_other_groups",
             "scheduler_unknown_field", "epoch_is_a_string", "optimizer_state_not_a_dict"]


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_checkpoint_raises_and_leaves_model_optimizer_and_scheduler_untouched(tmp_path, name):
    stem, match = _bad_case(tmp_path, name)
    target = _model(seed=7)
    opt = SGD(target.parameters(), lr=0.3, momentum=0.9)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    _train_steps(target, opt, seed=2)
    before, opt_before, sched_before = _snapshot(target), opt.state_dict(), sched.state_dict()
    with pytest.raises(CheckpointError, match="(?s)" + match) as info:
        load_checkpoint(stem, target, opt, sched)
    assert isinstance(info.value, StateDictError)
    _assert_same(_snapshot(target), before)
    after = opt.state_dict()
    assert after["param_groups"] == opt_before["param_groups"]
    for idx in opt_before["state"]:
        np.testing.assert_array_equal(after["state"][idx]["momentum_buffer"],
                                      opt_before["state"][idx]["momentum_buffer"])
    assert sched.state_dict() == sched_before


def test_version_1_checkpoint_pair_still_loads(tmp_path):
    """A checkpoint written by glassnet before the one-file format (weights + JSON naming their hash)."""
    import hashlib

    from glassnet.io import save_state_dict_file
    from glassnet.io.checkpoint_json import encode

    model = _model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train_steps(model, opt)
    _save(tmp_path / "new", model, opt)
    from glassnet.io.checkpoint_file import read_checkpoint_metadata

    meta = read_checkpoint_metadata(tmp_path / "new.safetensors")
    st = tmp_path / "old.safetensors"
    save_state_dict_file(load_state_dict_file(tmp_path / "new.safetensors"), st)
    meta.update(format_version=1, weights_file=st.name, weights_sha256=hashlib.sha256(st.read_bytes()).hexdigest())
    (tmp_path / "old.json").write_text(json.dumps(encode(meta)))
    fresh = _model(seed=5)
    load_checkpoint(tmp_path / "old", fresh, SGD(fresh.parameters(), lr=0.1, momentum=0.9))
    _assert_same(_snapshot(fresh), _snapshot(model))
    st.write_bytes(st.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match=r"old\.safetensors.*SHA-256.*old\.json"):
        load_checkpoint(tmp_path / "old", fresh, SGD(fresh.parameters(), lr=0.1, momentum=0.9))


def test_deeply_nested_metadata_is_refused_without_recursing(tmp_path):
    model = _model()
    st = _save(tmp_path / "ck", model)
    from glassnet.io.checkpoint_file import write_checkpoint_file
    from glassnet.errors import LimitExceededError

    write_checkpoint_file(st, load_state_dict_file(st), '{"epoch": 0, "step": 0, "x": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(CheckpointError, match=r"ck\.safetensors.*nested more than 100") as info:
        load_checkpoint(tmp_path / "ck", model)
    assert isinstance(info.value.__cause__, LimitExceededError)


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


@pytest.mark.parametrize("where", ["metadata", "header"])
def test_integer_past_pythons_digit_limit_is_a_checkpoint_error(tmp_path, where):
    """Found by tests/fuzz: json.loads raises a plain ValueError for a 5000-digit integer."""
    import struct

    from glassnet.io.checkpoint import read_checkpoint_info
    from glassnet.io.checkpoint_file import write_checkpoint_file

    path = tmp_path / "ck.safetensors"
    if where == "metadata":
        write_checkpoint_file(path, {}, '{"epoch":' + "9" * 5000 + "}")
    else:
        head = b'{"__metadata__":{"format":"glassnet-checkpoint"},"x":' + b"9" * 5000 + b"}"
        path.write_bytes(struct.pack("<Q", len(head)) + head)
    with pytest.raises(CheckpointError, match=r"ck\.safetensors.*not valid JSON"):
        read_checkpoint_info(path)
