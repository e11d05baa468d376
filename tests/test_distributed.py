"""glassnet.distributed in one process: gradient buckets and DDP, the consistency check, init,
without MPI (the 2-rank runs are in test_distributed_mpi.py; hooks, sampler and SyncBatchNorm in
test_distributed_{hooks,sampler,syncbn}.py).

A "twin" communicator stands for 2 ranks holding identical data (every sum doubles), which pins
down the bucket and averaging logic exactly: averaged gradients must equal the local ones bitwise.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import glassnet.distributed as dist
from glassnet import nn
from glassnet.distributed.comm import LocalCommunicator
from glassnet.errors import InvalidArgumentError
from tests.distributed_scripts import common as C
from tests.distributed_scripts.fakes import OtherRankComm, TwinComm, loss_of, mlp

ROOT = Path(__file__).resolve().parent.parent


def test_buckets_reverse_registration_order_dtype_and_size():
    model = mlp()
    ddp = dist.DistributedDataParallel(model, bucket_mb=600 / 2 ** 20, comm=TwinComm())  # 600 bytes
    layout = ddp.buckets.layout()
    assert [i for b in layout for i in b] == [5, 4, 3, 2, 1, 0]
    sizes = [p.data.nbytes for p in model.parameters()]
    for bucket in layout[:-1]:  # closed once >= 600 bytes, not before
        assert sum(sizes[i] for i in bucket) >= 600 and sum(sizes[i] for i in bucket[:-1]) < 600
    mixed = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double())
    assert dist.DistributedDataParallel(mixed, comm=TwinComm()).buckets.layout() == [[3, 2], [1, 0]]


@pytest.mark.parametrize("bucket_mb", [25, 1e-4])
def test_twin_average_is_the_local_gradient_bitwise(bucket_mb):
    reference, model = mlp(), mlp()
    loss_of(reference).backward()
    ddp = dist.DistributedDataParallel(model, bucket_mb=bucket_mb, comm=TwinComm())
    loss_of(ddp).backward()
    for (n, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=n)
    assert ddp.buckets.stats["buckets"] == len(ddp.buckets.layout())


def test_threaded_communicator_reduces_in_order_on_its_thread():
    import threading

    from glassnet.distributed.threaded import ThreadedCommunicator

    threads = []
    reference, model = mlp(), mlp()
    loss_of(reference).backward()
    twin = TwinComm(log=lambda a: threads.append(threading.current_thread().name))
    twin.allreduce_ = lambda a: (threads.append(threading.current_thread().name), TwinComm.allreduce_(twin, a))[1]
    ddp = dist.DistributedDataParallel(model, bucket_mb=1e-4, comm=twin, overlap="thread")
    assert ddp.overlap == "thread"
    loss_of(ddp).backward()
    assert threads and set(threads) == {"glassnet-allreduce"}
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)
    assert isinstance(ddp.buckets.comm, ThreadedCommunicator)


@pytest.mark.parametrize("as_view", [True, False])
def test_gradients_as_bucket_views_and_in_place_zeroing(as_view):
    model, reference = mlp(), mlp()
    ddp = dist.DistributedDataParallel(model, bucket_mb=1e-4, comm=TwinComm(), gradient_as_bucket_view=as_view)
    slots = [b.buffer for b in ddp.buckets.buckets]
    for seed in (1, 2):  # the second backward accumulates into the zeroed .grad (a bucket view or not)
        model.zero_grad(set_to_none=False)
        reference.zero_grad(set_to_none=False)
        loss_of(ddp, seed=seed).backward()
        loss_of(reference, seed=seed).backward()
        for p, q in zip(model.parameters(), reference.parameters()):
            np.testing.assert_array_equal(p.grad, q.grad)
            assert any(np.shares_memory(p.grad, s) for s in slots) == as_view


def test_bucket_allreduce_starts_during_backward():
    model = mlp()
    started = []
    ddp = dist.DistributedDataParallel(model, bucket_mb=1e-4, comm=TwinComm(
        log=lambda a: started.append(model[0].weight.grad is None)))
    loss_of(ddp).backward()
    assert len(started) == len(ddp.buckets.layout()) >= 3
    assert started[0] is True  # bucket 0 (the last layer) left before the first layer's gradient existed
    assert ddp.buckets.stats["launched_in_backward"] >= 1


def test_unused_parameters_keep_grad_none_and_used_ones_average():
    model, reference = C.Branchy(), C.Branchy()
    ddp = dist.DistributedDataParallel(model, bucket_mb=1e-4, comm=TwinComm())
    loss_of(ddp, use_extra=False).backward()
    loss_of(reference, use_extra=False).backward()
    assert model.extra.weight.grad is None and model.extra.bias.grad is None
    np.testing.assert_array_equal(model.trunk.weight.grad, reference.trunk.weight.grad)


def test_no_sync_accumulates_locally_then_the_next_backward_reduces():
    model = mlp()
    reduced = []
    ddp = dist.DistributedDataParallel(model, comm=TwinComm(log=lambda a: reduced.append(1)))
    with ddp.no_sync():
        loss_of(ddp, seed=1).backward()
    assert not reduced
    loss_of(ddp, seed=2).backward()
    assert len(reduced) == 1
    reference = mlp()
    loss_of(reference, seed=1).backward()
    loss_of(reference, seed=2).backward()
    np.testing.assert_allclose(model[0].weight.grad, reference[0].weight.grad, rtol=1e-15, atol=1e-17)


def test_wrapper_exposes_the_inner_model_and_its_state_dict_keys():
    inner = C.small_cnn()
    ddp = dist.DistributedDataParallel(inner, comm=LocalCommunicator())
    assert ddp.module is inner and ddp.buckets is None and dist.unwrap(ddp) is inner
    assert list(ddp.state_dict()) == list(inner.state_dict())
    assert [id(p) for p in ddp.parameters()] == [id(p) for p in inner.parameters()]
    other = C.small_cnn(seed=5)
    other.load_state_dict(ddp.state_dict())
    ddp.load_state_dict(C.small_cnn(seed=7).state_dict())
    ddp.eval()
    assert not inner.training and not inner[0].training and not ddp.training
    with pytest.raises(InvalidArgumentError, match="bucket_mb"):
        dist.DistributedDataParallel(inner, bucket_mb=0, comm=LocalCommunicator())


def test_model_changed_after_wrapping_is_a_clear_error():
    model = mlp()
    ddp = dist.DistributedDataParallel(model, comm=TwinComm())
    model.float()
    with pytest.raises(dist.DistributedError, match="changed dtype or shape after it was wrapped"):
        loss_of(ddp).backward()


# ----------------------------------------------------------- consistency, init
def test_consistency_check_names_each_difference():
    mine = C.small_cnn()
    theirs = {"model": dist.model_signature(C.small_cnn(width=5)), "dataset length": 12, "batch_size": 64}
    with pytest.raises(dist.RankMismatchError) as info:
        dist.check_consistency(mine, dataset_length=10, batch_size=32, comm=OtherRankComm(theirs))
    text = str(info.value)
    assert "rank 1: parameter '0.weight' has shape (5, 3, 3, 3) on rank 1 but (4, 3, 3, 3) on rank 0" in text
    assert "rank 1: dataset length is 12 on rank 1 but 10 on rank 0" in text
    assert "rank 1: batch_size is 64 on rank 1 but 32 on rank 0" in text
    swapped = dist.model_signature(mine)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(dist.RankMismatchError, match="different order"):
        dist.check_consistency(mine, comm=OtherRankComm({"model": swapped, "dataset length": None}))
    floats = dist.model_signature(C.small_cnn().float())
    with pytest.raises(dist.RankMismatchError, match="dtype float32 on rank 1 but float64 on rank 0"):
        dist.check_consistency(mine, comm=OtherRankComm({"model": floats, "dataset length": None}))
    dist.check_consistency(mine, dataset_length=3, comm=OtherRankComm(
        {"model": dist.model_signature(C.small_cnn(seed=9)), "dataset length": 3}))  # values may differ


def _python(code, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PMI", "OMPI_", "PMIX", "MPI_", "MV2_"))}
    clean.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean, timeout=60)


def test_without_a_launcher_the_world_is_one_process_and_mpi_is_not_imported():
    proc = _python("import sys, glassnet.distributed as d; d.init(); "
                   "print(d.world_size(), d.rank(), d.local_rank(), d.is_main_process(), 'mpi4py' in sys.modules)")
    assert proc.stdout.split() == ["1", "0", "0", "True", "False"], proc.stderr


def test_under_a_launcher_without_mpi4py_the_error_names_the_extra():
    proc = _python("import sys; sys.modules['mpi4py'] = None\nimport glassnet.distributed as d\n"
                   "try:\n    d.init()\nexcept ImportError as e:\n    print(type(e).__name__, e)", PMI_SIZE="2")
    assert "MissingDependencyError" in proc.stdout and "pip install 'glassnet[mpi]'" in proc.stdout, proc.stderr


def test_abort_on_failure_with_one_rank_re_raises():
    with pytest.raises(ValueError, match="plain"):
        with dist.abort_on_failure(comm=LocalCommunicator()):
            raise ValueError("plain")
    with pytest.raises(InvalidArgumentError, match="backend"):
        dist.init("nccl")
