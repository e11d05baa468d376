"""SyncBatchNorm in one process: the kernel's gradient check, twin ranks against batch norm of the
doubled batch, and convert_sync_batchnorm (the 2-rank comparison is in test_distributed_mpi.py)."""
import numpy as np
import pytest

import glassnet as gn
import glassnet.distributed as dist
from glassnet import nn
from glassnet.analysis.gradcheck import gradcheck
from glassnet.distributed.comm import LocalCommunicator
from glassnet.distributed.sync_batchnorm import sync_batch_norm_backward, sync_batch_norm_forward
from glassnet.tensor import apply_kernel
from tests.distributed_scripts.fakes import TwinComm


def _sync_bn(x, gamma, beta, comm, rm=None, rv=None):
    return apply_kernel("sync_batch_norm", sync_batch_norm_forward, sync_batch_norm_backward,
                        [x, gamma, beta], rm, rv, 0.1, 1e-5, comm)


def test_sync_batch_norm_kernel_gradcheck():
    rng = np.random.default_rng(0)
    x = gn.tensor(rng.standard_normal((3, 4, 5, 2)), requires_grad=True)
    gamma = gn.tensor(rng.standard_normal(4) + 1, requires_grad=True)
    beta = gn.tensor(rng.standard_normal(4), requires_grad=True)
    gradcheck(lambda a, g, b: _sync_bn(a, g, b, LocalCommunicator()), [x, gamma, beta], atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (3, 3, 4, 4)])
def test_sync_batch_norm_on_twin_ranks_equals_batch_norm_of_the_doubled_batch(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 3 + 2
    g = rng.standard_normal(shape)
    bn = nn.BatchNorm2d(3).double() if len(shape) == 4 else nn.BatchNorm1d(3).double()
    bn.weight.data[...] = rng.standard_normal(3)
    sync = dist.convert_sync_batchnorm(bn)
    object.__setattr__(sync, "_comm", TwinComm())
    ref = nn.BatchNorm2d(3).double() if len(shape) == 4 else nn.BatchNorm1d(3).double()
    ref.load_state_dict(bn.state_dict())
    xs, xr = gn.tensor(x, requires_grad=True), gn.tensor(np.concatenate([x, x]), requires_grad=True)
    out, out_ref = sync(xs), ref(xr)
    assert out._op.name == "sync_batch_norm" and (out._op.args.training, out._op.args.eps) == (True, 1e-5)
    out.backward(g)
    out_ref.backward(np.concatenate([g, g]))
    np.testing.assert_allclose(out.numpy(), out_ref.numpy()[:shape[0]], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(xs.grad, xr.grad[:shape[0]], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(sync.running_var, ref.running_var, rtol=1e-13)
    np.testing.assert_allclose(sync.running_mean, ref.running_mean, rtol=1e-13)
    np.testing.assert_allclose(sync.weight.grad * 2, ref.weight.grad, rtol=1e-12)  # local sums: DDP averages


def test_convert_sync_batchnorm_keeps_parameters_and_keys():
    from glassnet.models import get_model

    model = get_model("resnet18", num_classes=10)
    params = {n: id(p) for n, p in model.named_parameters()}
    keys = list(model.state_dict())
    converted = dist.convert_sync_batchnorm(model)
    bns = [m for m in converted.modules() if isinstance(m, nn.BatchNorm2d)]
    syncs = [m for m in converted.modules() if isinstance(m, dist.SyncBatchNorm)]
    assert not bns and len(syncs) == 20
    assert list(converted.state_dict()) == keys
    assert {n: id(p) for n, p in converted.named_parameters()} == params
    bn = nn.BatchNorm2d(2).double()
    x = gn.tensor(np.random.default_rng(0).standard_normal((3, 2, 4, 4)))
    np.testing.assert_array_equal(dist.SyncBatchNorm.convert_sync_batchnorm(bn)(x).numpy(), bn(x).numpy())


