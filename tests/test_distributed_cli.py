"""``glassnet train`` on 2 ranks under ``mpiexec`` on localhost (issue 14, items 3-4).

A small CNN on a generated photo folder: the run trains and only rank 0 writes; a kill -9 of the whole
job then ``--resume`` gives bitwise the weights of an uninterrupted 2-rank run; a killed rank or a rank
with other data ends the job with a clear error; Ctrl-C saves one checkpoint. mpi4py and the mpich
wheel come with the ``test`` extra: without them these tests skip locally and fail under CI=true.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from glassnet.io import load_state_dict_file
from glassnet.io.checkpoint import CheckpointError, read_checkpoint_info
from tests.test_distributed_mpi import mpiexec
from tests.test_train_photos import SMALL, make_photos

ROOT = Path(__file__).resolve().parent.parent
ARGS = [*SMALL[:-2], "--input", "3x40x40", "--model-arg", "dropout=0.3", "--epochs", "2", "--batch-size", "3",
        "--val-size", "6", "--seed", "5", "--lr", "0.01", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photos(tmp_path_factory.mktemp("photos") / "tree", per_class=14)


def _env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "OMPI_", "PMIX", "MPI_", "HYDRA"))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return env


def _mpiexec_train(*argv):
    """``mpiexec -n 2 python -m glassnet.cli train ARGV`` (the same as ``mpiexec -n 2 glassnet train``)."""
    return [mpiexec(), "-n", "2", sys.executable, "-m", "glassnet.cli", "train", *map(str, argv)]


def _nproc_train(*argv):
    """``glassnet train --nproc 2 ARGV`` (starts mpiexec itself)."""
    mpiexec()
    return [sys.executable, "-m", "glassnet.cli", "train", "--nproc", "2", *map(str, argv)]


def _run(command, timeout=90):
    t0 = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)
    return proc, time.monotonic() - t0


def _start(command):
    return subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _wait_for_checkpoint(proc, stem, done=lambda meta: meta["step"] > 0, limit=60):
    end = time.monotonic() + limit
    while True:
        assert proc.poll() is None, "training ended before the checkpoint:\n" + proc.stdout.read()
        assert time.monotonic() < end, "no checkpoint appeared"
        try:
            meta = read_checkpoint_info(stem)
            if done(meta):
                return meta
        except CheckpointError:  # not written yet (each write is atomic)
            pass
        time.sleep(0.005)


def _weights(run):
    return load_state_dict_file(run / "checkpoints" / "last.safetensors")


def _assert_bitwise(a, b):
    assert a.keys() == b.keys() and any(k.startswith("optimizer.") for k in a)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def reference(photos, tmp_path_factory):
    """An uninterrupted 2-rank run through ``mpiexec -n 2 glassnet train`` (checkpoint every step)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    proc, _ = _run(_mpiexec_train("--data", photos, *ARGS, "--checkpoint-every", "1", "--out", out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc


def test_two_ranks_train_and_only_rank_0_writes(reference, photos):
    out, proc = reference
    # rank 0 alone prints: one header (per-rank and global batch), one line per epoch, one result
    assert proc.stdout.count("glassnet train: small_cnn") == 1, proc.stdout
    assert "data-parallel on 2 ranks: batch 3 per rank x 2 ranks = global batch 6" in proc.stdout
    assert len(re.findall(r"^epoch \d/2 ", proc.stdout, re.M)) == 2 and proc.stdout.count("test accuracy:") == 1
    assert re.search(r"glassnet\.distributed: 2 ranks: rank 0 pid \d+ on \S+, rank 1 pid \d+", proc.stderr)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert names == ["checkpoints", "checkpoints/best.safetensors", "checkpoints/last.safetensors", "config.json",
                     "history.csv", "history.json", "test.json"], names
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2
    meta = read_checkpoint_info(out / "checkpoints" / "last")
    loader = meta["rng_states"]["loader"]
    # 42 photos - 4 test - 6 val = 32 train: 16 per rank, 6 steps of 3 per rank (the last one 1)
    assert loader["world_size"] == 2 and loader["batch_size"] == 3 and loader["batches_per_epoch"] == 6
    assert meta["global_step"] == 12


def test_nproc_is_mpiexec(reference, photos, tmp_path):
    """``glassnet train --nproc 2`` starts the venv's mpiexec: bitwise the run of ``mpiexec -n 2``."""
    out = tmp_path / "run"
    proc, _ = _run(_nproc_train("--data", photos, *ARGS, "--checkpoint-every", "1", "--out", out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _assert_bitwise(_weights(out), _weights(reference[0]))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("epoch_time_s", "images_per_s")} for r in rows]
    assert strip(json.loads((out / "history.json").read_text())) == strip(
        json.loads((reference[0] / "history.json").read_text()))


def test_kill_9_of_the_job_then_resume_is_bitwise(reference, photos, tmp_path):
    killed = tmp_path / "killed"
    proc = _start(_mpiexec_train("--data", photos, *ARGS, "--checkpoint-every", "1", "--workers", "1",
                                 "--out", killed))
    _wait_for_checkpoint(proc, killed / "checkpoints" / "last",
                         done=lambda m: 2 <= m["global_step"] < 12)  # of 2 epochs x 6 steps
    os.killpg(proc.pid, signal.SIGKILL)  # mpiexec and both ranks (and their workers)
    proc.wait()
    assert not (killed / "test.json").exists()
    alone = tmp_path / "alone"
    shutil.copytree(killed, alone)
    resumed, _ = _run(_nproc_train("--resume", killed, "--workers", "0"))
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert resumed.stdout.count("resumed from") == 1
    _assert_bitwise(_weights(killed), _weights(reference[0]))
    # the same checkpoint on one process: the position rule (k steps x 3 x 2 ranks = step 2k of 11 of 3)
    saved = read_checkpoint_info(alone / "checkpoints" / "last")
    one, _ = _run([sys.executable, "-m", "glassnet.cli", "train", "--resume", alone])
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    assert f"continuing at epoch {saved['epoch'] + 1}/2, step {2 * saved['step']}/11" in one.stdout, one.stdout


def test_killed_rank_ends_the_job_in_seconds(photos, tmp_path):
    """Rank 1 is killed (SIGKILL) mid-run: the job ends in < 30 s; mpiexec names the dead PID, which
    rank 0's rank table maps to rank 1."""
    out, log = tmp_path / "run", tmp_path / "output.txt"
    with open(log, "w") as sink:
        proc = subprocess.Popen(_mpiexec_train("--data", photos, *ARGS, "--epochs", "30", "--checkpoint-every", "1",
                                               "--out", out), cwd=ROOT, env=_env(), stdout=sink,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        end, table = time.monotonic() + 60, None
        while table is None or not (out / "checkpoints" / "last.safetensors").exists():
            assert proc.poll() is None and time.monotonic() < end, log.read_text()[-3000:]
            table = re.search(r"glassnet\.distributed: 2 ranks: rank 0 pid (\d+) on \S+, rank 1 pid (\d+)",
                              log.read_text())
            time.sleep(0.01)
        victim = int(table.group(2))
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert proc.returncode != 0 and elapsed < 30, (elapsed, text[-3000:])
    assert re.search(rf"PID {victim}\b", text) and "signal 9" in text, text[-3000:]


@pytest.mark.parametrize("rank1_extra, expected", [
    (["--limit-train", "20"], r"rank 1: train set length is 14 on rank 1 but 32 on rank 0"),
    (["--model-arg", "width=4"], r"rank 1: parameter 'features\.0\.weight' has shape \(4, 3, 3, 3\) on rank 1 but "
                                 r"\(8, 3, 3, 3\) on rank 0"),
])
def test_rank_with_other_data_or_model_is_stopped_at_start(photos, tmp_path, rank1_extra, expected):
    """MPMD launch: rank 1 gets another option; every rank stops before training, naming the difference."""
    out = tmp_path / "run"
    rank = [sys.executable, "-m", "glassnet.cli", "train", "--data", str(photos), *ARGS, "--out", str(out)]
    proc, elapsed = _run([mpiexec(), "-n", "1", *rank, ":", "-n", "1", *rank, *rank1_extra], timeout=60)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "epoch 1/2" not in text, text[-3000:]
    assert "do not hold the same model/data" in text and re.search(expected, text), text[-3000:]
    assert elapsed < 30 and not (out / "checkpoints").exists()


def test_ctrl_c_saves_one_checkpoint_from_rank_0_and_exits(photos, tmp_path):
    out = tmp_path / "run"
    proc = _start(_nproc_train("--data", photos, *ARGS, "--epochs", "30", "--checkpoint-every", "0",
                               "--out", out))
    before = _wait_for_checkpoint(proc, out / "checkpoints" / "last", done=lambda m: m["epoch"] >= 1)
    os.kill(proc.pid, signal.SIGINT)  # the launcher forwards it to mpiexec, which passes it to every rank
    try:
        text, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, text[-3000:]
    assert text.count("interrupted: saved checkpoint") == 1 and "MPI_Abort" not in text, text[-3000:]
    meta = read_checkpoint_info(out / "checkpoints" / "last")
    saved = re.search(r"interrupted: saved checkpoint \S+ \(epoch \d+/30, step \d+/6, global step (\d+)\)", text)
    assert saved and int(saved.group(1)) == meta["global_step"] >= before["global_step"], text[-3000:]
