"""Random ``kill -9`` of a real ``glassnet train --checkpoint-every 1``: no run is ever lost.

A campaign trains one reference run uninterrupted, then runs the same
training again and again killing it with SIGKILL at random instants (during
start-up, mid-step, mid-save), resuming with ``--resume`` each time, until
one attempt completes. It then checks:

* every resume after the first checkpoint succeeded (a run is never lost);
* the final weights and optimizer state are bitwise equal to the reference's;
* the history (less timings) equals the reference's;
* no temporary file remains in the run folder.

Run by hand for the full campaign (the closing note's figures)::

    .venv/bin/python -m tests.fuzz.kill_resume --kills 50 --val-size 0
    .venv/bin/python -m tests.fuzz.kill_resume --kills 50 --val-size 200

``tests/fuzz/test_kill_resume.py`` runs a few kills of each kind in CI.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TRAIN_ARGS = ["--model", "mlp", "--model-arg", "dropout=0.5", "--limit-train", "640", "--limit-test", "200",
              "--epochs", "2", "--batch-size", "64", "--checkpoint-every", "1", "--augment", "--lr", "0.01",
              "--seed", "5", "--no-progress"]


@dataclass
class CampaignReport:
    """What one campaign saw."""
    kills: int = 0
    killed_before_first_checkpoint: int = 0
    resumes: int = 0
    lost_runs: int = 0
    bitwise_equal: bool = False
    temporaries_left: list = field(default_factory=list)
    failures: list = field(default_factory=list)


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def _command(out: Path, val_size: int, resume: bool) -> list:
    if resume:
        return [sys.executable, "-m", "glassnet.cli", "train", "--resume", str(out), "--no-progress"]
    return [sys.executable, "-m", "glassnet.cli", "train", *TRAIN_ARGS, "--val-size", str(val_size),
            "--out", str(out)]


def _has_checkpoint(out: Path) -> bool:
    return any((out / "checkpoints").glob("*.safetensors"))


def _final_state(out: Path):
    from glassnet.io import load_state_dict_file

    arrays = load_state_dict_file(out / "checkpoints" / "last.safetensors")
    history = json.loads((out / "history.json").read_text())
    strip = [{k: v for k, v in row.items() if k not in ("epoch_time_s", "images_per_s")} for row in history]
    return arrays, strip


def reference_run(out: Path, val_size: int) -> float:
    """Train uninterrupted into ``out``; return its wall time."""
    t0 = time.monotonic()
    done = subprocess.run(_command(out, val_size, resume=False), cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - t0


def campaign(root: Path, kills: int, val_size: int, seed: int = 0, log=print) -> CampaignReport:
    """Kill ``kills`` times at random instants, resume, finish; compare with an uninterrupted run."""
    rng = random.Random(seed)
    report = CampaignReport()
    ref = root / "reference"
    duration = reference_run(ref, val_size)
    out = root / "killed"
    while report.kills < kills:
        resume = _has_checkpoint(out)
        if not resume and out.exists():
            shutil.rmtree(out)  # killed before its first checkpoint: nothing was saved, start again
        proc = subprocess.Popen(_command(out, val_size, resume), cwd=REPO, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(rng.uniform(0.2, duration * 0.9))
        if proc.poll() is not None:  # it finished (or failed) before the kill
            text = proc.stdout.read()
            if proc.returncode != 0:
                report.failures.append(f"attempt exited {proc.returncode} before the kill: {text[-500:]}")
                report.lost_runs += int("no valid checkpoint" in text)
                break
            shutil.rmtree(out)  # completed: start a fresh run to keep killing
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        report.kills += 1
        if not _has_checkpoint(out):
            report.killed_before_first_checkpoint += 1
        else:
            report.resumes += 1
        if log and report.kills % 10 == 0:
            log(f"  {report.kills}/{kills} kills")
    # finish the run
    while True:
        resume = _has_checkpoint(out)
        if not resume and out.exists():
            shutil.rmtree(out)
        done = subprocess.run(_command(out, val_size, resume), cwd=REPO, env=_env(), capture_output=True,
                              text=True, timeout=600)
        if done.returncode == 0:
            break
        report.failures.append(f"final attempt exited {done.returncode}: {(done.stdout + done.stderr)[-800:]}")
        report.lost_runs += int("no valid checkpoint" in done.stdout + done.stderr)
        return report
    a, ha = _final_state(out)
    b, hb = _final_state(ref)
    report.bitwise_equal = (a.keys() == b.keys() and ha == hb
                            and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a))
    report.temporaries_left = sorted(str(p.relative_to(out)) for p in out.rglob("*.tmp"))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--val-size", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = campaign(Path(tmp), args.kills, args.val_size, args.seed)
    print(json.dumps(report.__dict__, indent=1))
    ok = report.bitwise_equal and not report.lost_runs and not report.failures and not report.temporaries_left
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
