"""Two ranks under ``mpiexec`` on localhost (tests/distributed_scripts/worker.py), against one process.

One launch trains every scenario (one bucket, many buckets, unused parameters,
SyncBatchNorm, mismatched models); the test process recomputes each on the
global batch in a single process. Each failure mode is a launch of its own,
timed. mpi4py and the mpich wheel come with the ``test`` extra: without them
these tests skip locally and fail under CI=true.
"""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import nn
from tests.distributed_scripts import common as C
from tests.torch_oracle import in_ci

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "distributed_scripts" / "worker.py"
REL = 1e-12  # float64: DDP on 2 ranks vs one process on the global batch


def mpiexec():
    """The mpiexec next to this Python (the mpich wheel's), or skip / fail under CI."""
    found = Path(sys.executable).parent / "mpiexec"
    path = str(found) if found.exists() else shutil.which("mpiexec")
    if importlib.util.find_spec("mpi4py") is None or path is None:
        message = "mpi4py and an mpiexec are needed (pip install 'glassnet[mpi]': mpi4py + mpich)"
        if in_ci():
            pytest.fail(message + " -- required under CI=true")
        pytest.skip(message)
    return path


def launch(scenario, out, timeout=90):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "OMPI_", "PMIX", "MPI_", "HYDRA"))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    proc = subprocess.run([mpiexec(), "-n", "2", sys.executable, str(WORKER), scenario, str(out)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    return proc, time.monotonic() - t0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    proc, _ = launch("train", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    def load(name):
        return [(dict(np.load(out / f"{name}.rank{r}.npz")), json.loads((out / f"{name}.rank{r}.json").read_text()))
                for r in range(C.RANKS)]
    return load


def assert_close(got, want, what):
    for k, w in want.items():
        g = got[k]
        scale = max(float(np.max(np.abs(w))), 1e-300)
        err = float(np.max(np.abs(g - w))) / scale
        assert err <= REL, f"{what}: {k} differs from the single process by {err:.2e} (relative to its max)"


def assert_ranks_bitwise_equal(ranks, what):
    (a, _), (b, _) = ranks
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{what}: {k} differs between rank 0 and rank 1"


def single_process_plain():
    model = C.small_cnn()
    opt = C.sgd(model.parameters())
    for s in range(C.STEPS):
        C.step(model, opt, *C.global_batch(s))
    return C.weights(model)


@pytest.mark.parametrize("name", ["one_bucket", "many_buckets", "many_buckets_poll"])
def test_sgd_momentum_ranks_bitwise_equal_and_equal_to_one_process(trained, name):
    """rank 1 started from other weights (broadcast fixes it); 5 SGD-momentum steps on 2 x 4 samples
    equal 5 steps of one process on the 8 samples, to 1e-12 in float64; both ranks bitwise equal."""
    ranks = trained(name)
    assert_ranks_bitwise_equal(ranks, name)
    assert_close(ranks[0][0], single_process_plain(), name)
    facts = ranks[0][1]
    assert facts["keys"] == list(C.small_cnn().state_dict())  # the inner model's names, no "module."
    assert facts["overlap"] == ("poll" if name.endswith("poll") else "thread")  # mpi4py: MPI_THREAD_MULTIPLE
    # an elementwise sum of two values does not depend on the bucket layout: bitwise the one-bucket run
    assert_ranks_bitwise_equal([ranks[0], trained("one_bucket")[0]], f"{name} vs one_bucket")


def test_bucket_boundaries(trained):
    """bucket_mb=0.0005 (524 bytes): several buckets, parameters in reverse registration order, each parameter in one
    bucket; buckets started during backward; same weights as with one bucket."""
    (_, many), (_, one) = trained("many_buckets_poll")[0], trained("one_bucket")[0]
    assert len(one["layout"]) == 1 and len(many["layout"]) >= 3
    flat = [i for bucket in many["layout"] for i in bucket]
    assert flat == list(range(len(flat)))[::-1]
    assert all(s["launched_in_backward"] >= 1 for s in many["stats"])
    assert all(s["buckets"] == len(many["layout"]) for s in many["stats"])


def test_parameters_without_gradient(trained):
    """Branchy.extra used by both ranks, rank 0 only, no rank, rank 1 only: no deadlock, weights equal a
    single process computing the same per-rank losses, and grad stays None where no rank used it."""
    ranks = trained("unused")
    assert_ranks_bitwise_equal(ranks, "unused")
    assert ranks[0][1]["extra_grad_none"] == [False, False, True, False]
    model = C.Branchy()
    opt = C.sgd(model.parameters())
    for s, use in enumerate(C.EXTRA_USE):
        x, y = C.global_batch(s, shape=(6,), classes=3)
        losses = [nn.CrossEntropyLoss()(model(gn.tensor(C.shard(x, r)), use_extra=use[r]), gn.tensor(C.shard(y, r)))
                  for r in range(C.RANKS)]
        opt.zero_grad()
        ((losses[0] + losses[1]) * 0.5).backward()
        opt.step()
    assert_close(ranks[0][0], C.weights(model), "unused")


def test_sync_batchnorm_equals_batchnorm_over_the_global_batch(trained):
    """SyncBatchNorm on 2 x 4 samples: the first step's normalised output, running statistics, input
    gradient (x N: each rank's loss is a mean over its own samples) and averaged parameter gradients, and
    the weights and statistics after 5 steps, equal plain BatchNorm2d in one process on the 8 samples."""
    ranks = trained("syncbn")
    assert ranks[0][1]["type"] == "SyncBatchNorm"
    assert_ranks_bitwise_equal([({k: v for k, v in a.items() if k.startswith("w.")}, f) for a, f in ranks],
                               "syncbn")
    model = C.small_cnn(batch_norm=True)
    opt = C.sgd(model.parameters())
    seen = {}
    model[1].register_forward_hook(lambda m, i, o: None if "out" in seen else seen.update(out=o))
    x, y = C.global_batch(0)
    xt = gn.tensor(x, requires_grad=True)
    loss = nn.CrossEntropyLoss()(model(xt), gn.tensor(y))
    opt.zero_grad()
    loss.backward()
    for r, (arrays, _) in enumerate(ranks):
        first = {k[len("first."):]: v for k, v in arrays.items() if k.startswith("first.")}
        assert_close({"bn_out": first["bn_out"], "x_grad": first["x_grad"] / C.RANKS},
                     {"bn_out": C.shard(seen["out"].numpy(), r), "x_grad": C.shard(xt.grad, r)}, f"rank {r}")
        # the conv bias before batch norm has a zero gradient in exact arithmetic: only rounding noise
        assert np.abs(first.pop("grad.0.bias")).max() < 1e-14 and np.abs(model[0].bias.grad).max() < 1e-14
        assert_close(first, {"running_mean": model[1].running_mean, "running_var": model[1].running_var,
                             **{"grad." + n: p.grad for n, p in model.named_parameters() if n != "0.bias"}},
                     f"rank {r}")
    opt.step()
    for s in range(1, C.STEPS):
        C.step(model, opt, *C.global_batch(s))
    got = {k[2:]: v for k, v in ranks[0][0].items() if k.startswith("w.")}
    assert_close(got, {k: v for k, v in C.weights(model).items() if k != "1.num_batches_tracked"}, "syncbn")
    assert int(got["1.num_batches_tracked"]) == C.STEPS


def test_rank_with_another_model_or_dataset_is_named(trained):
    """Rank 1 builds a wider model / has a longer dataset: every rank raises RankMismatchError naming rank 1,
    the parameter and both shapes (or both lengths) -- no hang, no wrong result later."""
    ranks = trained("mismatch")
    assert ranks[0][1] == ranks[1][1]
    facts = ranks[0][1]
    assert "rank 1: parameter '0.weight' has shape (5, 3, 3, 3) on rank 1 but (4, 3, 3, 3) on rank 0" in facts["model"]
    assert "rank 1: dataset length is 103 on rank 1 but 100 on rank 0" in facts["dataset"]


@pytest.mark.parametrize("how, expected", [
    ("raise", r"rank 1 of 2 \(pid \d+ on .*\) failed: ValueError: deliberate failure on rank 1; stopping all 2 ranks"),
    ("exit", r"rank 1 of 2 \(pid \d+ on .*\) exited with status 3; stopping all 2 ranks"),
    ("stuck", r"rank [01] of 2 \(pid \d+ on .*\) failed: DistributedTimeoutError: DistributedDataParallel: the "
              r"allreduce of gradient bucket 0"),
])
def test_failing_rank_ends_the_job_naming_the_rank(tmp_path, how, expected):
    """Rank 1 raises / calls sys.exit(3) / hangs (DDP's timeout_s=5) at step 2 while rank 0 waits in the
    gradient allreduce: the job ends in < 30 s, non-zero, with a line naming the rank."""
    proc, elapsed = launch(how, tmp_path, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "finished all steps" not in output
    assert re.search(expected, output), output[-3000:]
    assert elapsed < 30, f"the job took {elapsed:.1f} s to end"


def test_killed_rank_ends_the_job(tmp_path):
    """Rank 1 is killed (SIGKILL) at step 2: mpiexec ends the job in < 30 s, reporting the dead PID, which
    init()'s rank table (printed by rank 0) maps to rank 1."""
    proc, elapsed = launch("kill", tmp_path, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "finished all steps" not in output, output[-3000:]
    table = re.search(r"glassnet\.distributed: 2 ranks: rank 0 pid (\d+) on \S+, rank 1 pid (\d+) on \S+", output)
    assert table, output[-3000:]
    assert re.search(rf"PID {table.group(2)}\b", output) and "signal 9" in output, output[-3000:]
    assert elapsed < 30, f"the job took {elapsed:.1f} s to end"
