"""Exact resume after a real SIGKILL / SIGINT of a real `glassnet train` process, and NaN stops."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
from glassnet.cli import main
from glassnet.data import ArrayDataset, DataLoader
from glassnet.io import load_checkpoint, load_state_dict_file
from glassnet.io.checkpoint import CheckpointError, read_checkpoint_info
from glassnet.optim import SGD
from glassnet.train import Trainer, TrainingDivergedError
from tests.data_required import require_fashion_mnist

REPO = Path(__file__).resolve().parents[1]
# mlp with dropout (global RNG) + seeded augmentation: both must replay exactly after a resume
ARGS = ["--model", "mlp", "--model-arg", "dropout=0.5", "--limit-train", "1000", "--val-size", "200",
        "--limit-test", "200", "--epochs", "2", "--batch-size", "32", "--checkpoint-every", "5",
        "--augment", "--lr", "0.01", "--seed", "3", "--no-progress"]


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    return env


def _start(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "glassnet.cli", "train", *ARGS, "--out", str(out), *extra],
                            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _resume(out):
    return subprocess.run([sys.executable, "-m", "glassnet.cli", "train", "--resume", str(out), "--no-progress"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240)


def _wait_mid_epoch(proc, out, timeout=120):
    """Poll the last checkpoint until it is a mid-epoch one of epoch 1."""
    stem = out / "checkpoints" / "last"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"training ended (rc {proc.returncode}) before a mid-epoch checkpoint:\n"
                        + proc.stdout.read())
        try:
            meta = read_checkpoint_info(stem)
            if meta["epoch"] == 0 and meta["step"] > 0:
                return meta
        except CheckpointError:  # not written yet (each write is atomic: never a torn file)
            pass
        time.sleep(0.005)
    proc.kill()
    pytest.fail("no mid-epoch checkpoint appeared")


def _final_arrays(out):
    return load_state_dict_file(out / "checkpoints" / "last.safetensors")


def _assert_bitwise_equal(out_a, out_b):
    a, b = _final_arrays(out_a), _final_arrays(out_b)
    assert a.keys() == b.keys()
    assert any(k.startswith("optimizer.") for k in a)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    ma, mb = read_checkpoint_info(out_a / "checkpoints" / "last"), read_checkpoint_info(out_b / "checkpoints" / "last")
    assert (ma["epoch"], ma["step"], ma["global_step"]) == (mb["epoch"], mb["step"], mb["global_step"])
    assert ma["rng_states"] == mb["rng_states"]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("epoch_time_s", "images_per_s")} for r in rows]
    ha = json.loads((out_a / "history.json").read_text())
    hb = json.loads((out_b / "history.json").read_text())
    assert strip(ha) == strip(hb) and len(ha) == 2
    assert json.loads((out_a / "test.json").read_text())["accuracy"] == \
        json.loads((out_b / "test.json").read_text())["accuracy"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run with the same seed, started in the background."""
    require_fashion_mnist()
    out = tmp_path_factory.mktemp("reference") / "run"
    proc = _start(out)
    state = {"out": out, "proc": proc}

    def finished():
        if proc.returncode is None:
            text, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, text
        return out

    state["finished"] = finished
    yield state
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(reference, tmp_path):
    out = tmp_path / "killed"
    proc = _start(out)
    _wait_mid_epoch(proc, out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    meta = read_checkpoint_info(out / "checkpoints" / "last")
    assert meta["epoch"] < 2 and meta["global_step"] < 50  # it really stopped early
    assert not (out / "test.json").exists()
    result = _resume(out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resumed from" in result.stdout and "last.safetensors" in result.stdout
    assert f"global step {meta['global_step']}" in result.stdout
    _assert_bitwise_equal(out, reference["finished"]())


def test_ctrl_c_saves_exits_130_and_resumes_bitwise_identical(reference, tmp_path):
    out = tmp_path / "interrupted"
    proc = _start(out)
    _wait_mid_epoch(proc, out)
    os.kill(proc.pid, signal.SIGINT)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, text
    assert "interrupted: saved checkpoint" in text
    assert f"resume with: glassnet train --resume {out}" in text
    meta = read_checkpoint_info(out / "checkpoints" / "last")
    assert meta["global_step"] < 50
    result = _resume(out)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_bitwise_equal(out, reference["finished"]())


def test_resume_refuses_conflicting_options(reference, capsys):
    out = reference["finished"]()
    assert main(["train", "--resume", str(out), "--lr", "0.5", "--no-progress"]) == 2
    assert "--lr 0.5 (the run used 0.01)" in capsys.readouterr().err
    assert main(["train", "--resume", str(out.parent / "nope")]) == 2


def _blobs(n=256, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, 8)) * 4
    y = rng.integers(0, 3, n)
    return ArrayDataset((centers[y] + rng.standard_normal((n, 8))).astype(np.float32), y.astype(np.int64))


def test_nan_stop_keeps_the_last_good_checkpoint(tmp_path):
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    data = _blobs()
    loader = DataLoader(data, batch_size=32, shuffle=True, seed=1)
    bad_batch = 5  # of epoch 2 (8 batches per epoch): global step 8 + 5

    def poison(epoch, row):  # after epoch 1, one sample of epoch 2's 6th batch overflows
        data.x[loader.order(1)[bad_batch * 32]] = np.inf

    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, loader, opt, 3, out_dir=tmp_path, checkpoint_every=3, progress=False, log=None,
                      on_epoch_end=poison)
    with pytest.raises(TrainingDivergedError, match=r"(?s)loss became (nan|inf) at batch 5 of epoch 2/3.*"
                                                    r"last good checkpoint is .*last\.safetensors"):
        trainer.fit()
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    # the last checkpoint is the one from global step 12 (a multiple of 3, before the bad step 13)
    fresh = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    meta = load_checkpoint(tmp_path / "checkpoints" / "last", fresh, SGD(fresh.parameters(), lr=0.05, momentum=0.9))
    assert (meta["epoch"], meta["step"], meta["global_step"]) == (1, 4, 12)
    assert all(np.isfinite(p.data).all() for p in fresh.parameters())


def test_in_process_resume_from_every_checkpoint_is_exact(tmp_path):
    """Python API: stop after any checkpoint, resume, and end where an uninterrupted run ends."""
    def build():
        gn.manual_seed(5)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
        from glassnet.optim.lr_scheduler import StepLR
        return model, opt, StepLR(opt, 1, 0.5), DataLoader(_blobs(), batch_size=32, shuffle=True, seed=2)

    model, opt, sched, loader = build()
    Trainer(model, loader, opt, 2, scheduler=sched, progress=False, log=None).fit()
    expected = {k: v.copy() for k, v in model.state_dict().items()}

    class Stop(Exception):
        pass

    for stop_after in (3, 8, 11):
        out = tmp_path / f"stop{stop_after}"
        model, opt, sched, loader = build()
        trainer = Trainer(model, loader, opt, 2, scheduler=sched, out_dir=out, checkpoint_every=1,
                          progress=False, log=None)
        real_save = trainer._save

        def save_then_stop(which, glassnet_state=None, _real=real_save, _n=stop_after, _t=trainer):
            stem = _real(which, glassnet_state)
            if which == "last" and _t.global_step == _n:
                raise Stop
            return stem

        trainer._save = save_then_stop
        with pytest.raises(Stop):
            trainer.fit()
        model, opt, sched, loader = build()
        logs = []
        Trainer(model, loader, opt, 2, scheduler=sched, out_dir=out, progress=False, log=logs.append).fit(resume=True)
        assert any(f"global step {stop_after}" in line for line in logs)
        for k, v in model.state_dict().items():
            assert np.array_equal(v, expected[k]), (stop_after, k)


def test_resume_after_a_kill_between_the_last_checkpoint_and_the_history_rewrites_the_history(tmp_path):
    """Killed after the final epoch's "last" checkpoint but before history.json/.csv were rewritten
    (a half-written history.csv.tmp left behind): --resume has no epoch left to run, and still leaves
    the history of the checkpoint, as an uninterrupted run does, and no temporary."""
    def build():
        gn.manual_seed(5)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        return model, SGD(model.parameters(), lr=0.05, momentum=0.9), DataLoader(_blobs(), batch_size=32, seed=2)

    class Killed(Exception):
        pass

    ref, out = tmp_path / "ref", tmp_path / "killed"
    model, opt, loader = build()
    Trainer(model, loader, opt, 2, out_dir=ref, progress=False, log=None).fit()
    model, opt, loader = build()
    trainer = Trainer(model, loader, opt, 2, out_dir=out, progress=False, log=None)
    real_write = trainer.write_history

    def killed_at_the_end(_real=real_write, _t=trainer):
        if _t.epoch == 2:
            (out / "history.csv.tmp").write_text("epoch,tra")
            raise Killed
        _real()

    trainer.write_history = killed_at_the_end
    with pytest.raises(Killed):
        trainer.fit()
    assert len(json.loads((out / "history.json").read_text())) == 1  # the kill's damage
    model, opt, loader = build()
    Trainer(model, loader, opt, 2, out_dir=out, progress=False, log=None).fit(resume=True)

    def rows(run):
        return [{k: v for k, v in r.items() if k not in ("epoch_time_s", "images_per_s")}
                for r in json.loads((run / "history.json").read_text())]

    assert rows(out) == rows(ref) and len(rows(out)) == 2
    assert (out / "history.csv").read_text().count("\n") == (ref / "history.csv").read_text().count("\n")
    assert not list(out.rglob("*.tmp"))


def test_in_process_resume_with_worker_processes_is_exact(tmp_path):
    """Per-sample augmentation built by 2 worker processes (DataLoader.iter_epoch): stopped after a
    mid-epoch checkpoint and resumed -- with workers or without -- the run ends bitwise where an
    uninterrupted run without workers ends."""
    from glassnet.data import transforms as T
    from glassnet.data.data_spec import PipelineDataset, RawImages

    rng = np.random.default_rng(0)
    raw = RawImages(rng.integers(0, 256, (60, 3, 12, 12), dtype=np.uint8), rng.integers(0, 3, 60))
    ds = PipelineDataset(raw, None, T.Compose([T.RandomCrop(10, padding=1), T.RandomHorizontalFlip(), T.ToFloat()]))

    def build(workers):
        gn.manual_seed(5)
        model = nn.Sequential(nn.Flatten(), nn.Linear(300, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
        return model, opt, DataLoader(ds, batch_size=8, shuffle=True, seed=2, num_workers=workers,
                                      persistent_workers=workers > 0)

    model, opt, loader = build(0)
    Trainer(model, loader, opt, 2, progress=False, log=None).fit()
    expected = {k: v.copy() for k, v in model.state_dict().items()}

    class Stop(Exception):
        pass

    for resume_workers in (0, 2):
        out = tmp_path / f"resume{resume_workers}"
        model, opt, loader = build(2)
        trainer = Trainer(model, loader, opt, 2, out_dir=out, checkpoint_every=1, progress=False, log=None)
        real_save = trainer._save

        def save_then_stop(which, glassnet_state=None, _real=real_save, _t=trainer):
            stem = _real(which, glassnet_state)
            if which == "last" and _t.global_step == 11:  # epoch 2, step 3 of 8
                raise Stop
            return stem

        trainer._save = save_then_stop
        try:
            with pytest.raises(Stop):
                trainer.fit()
        finally:
            loader.close()
        model, opt, loader = build(resume_workers)
        try:
            Trainer(model, loader, opt, 2, out_dir=out, progress=False, log=None).fit(resume=True)
        finally:
            loader.close()
        for k, v in model.state_dict().items():
            assert np.array_equal(v, expected[k]), (resume_workers, k)
