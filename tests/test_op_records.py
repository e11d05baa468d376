"""Every op on the tape carries an :class:`OpRecord` whose ``args`` hold its
non-tensor arguments by name (issue 13): readers of the tape (the ONNX
exporter, the summary) never look inside backward closures."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import glassnet as gn
from glassnet import op_args as A
from glassnet.joining import cat, stack
from glassnet.nn import functional as F
from glassnet.op_record import OpRecord

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _x(*shape, seed=0):
    return gn.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), requires_grad=True)


CASES = {
    "pow": (lambda x: x ** 3, "pow", A.PowArgs(3)),
    "sum": (lambda x: x.sum(axis=1, keepdims=True), "sum", A.ReduceArgs(1, True)),
    "max": (lambda x: x.max(axis=(0, 2)), "max", A.ReduceArgs((0, 2), False)),
    "reshape": (lambda x: x.reshape(2, -1), "reshape", A.ReshapeArgs((2, -1))),
    "reshape_tuple": (lambda x: x.reshape((6, 4)), "reshape", A.ReshapeArgs((6, 4))),
    "transpose": (lambda x: x.transpose(0, 2), "permute", A.PermuteArgs((2, 1, 0))),
    "permute_negative": (lambda x: x.permute(0, -1, 1), "permute", A.PermuteArgs((0, 2, 1))),
    "astype": (lambda x: x.astype(np.float64), "astype", A.CastArgs(np.dtype(np.float64))),
    "softmax": (lambda x: x.softmax(1), "softmax", A.SoftmaxArgs(1)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=-1), "log_softmax", A.SoftmaxArgs(-1)),
    "cat": (lambda x: cat([x, x], dim=-1), "cat", A.JoinArgs(2)),
    "stack": (lambda x: stack([x, x], dim=1), "stack", A.JoinArgs(1)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), "leaky_relu", A.LeakyReluArgs(0.2)),
    "elu": (lambda x: F.elu(x, 0.7), "elu", A.EluArgs(0.7)),
    "dropout": (lambda x: F.dropout(x, 0.25, training=True), "dropout", A.DropoutArgs(0.25, True)),
    "dropout2d": (lambda x: F.dropout2d(x, 0.3, training=False), "dropout2d", A.DropoutArgs(0.3, False)),
    "lrn": (lambda x: F.local_response_norm(x, 3, 0.5, 0.6, 2.0), "local_response_norm",
            A.LRNArgs(3, 0.5, 0.6, 2.0)),
    "pad": (lambda x: F.pad(x, (1, 2), mode="reflect"), "pad", A.PadArgs((1, 2), "reflect", 0.0)),
    "mse_loss": (lambda x: F.mse_loss(x, np.zeros(x.shape, np.float32), reduction="sum"), "mse_loss",
                 A.LossArgs("sum")),
    "add": (lambda x: x + 1.0, "add", None),
    "neg": (lambda x: -x, "neg", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_carries_its_arguments(case):
    fn, name, args = CASES[case]
    y = fn(_x(2, 3, 4))
    assert isinstance(y._op, OpRecord)
    assert y._op.name == name
    assert y._op.args == args
    if args is not None:
        assert type(y._op.args) is type(args)


def test_index_and_batch_norm_keep_their_non_tensor_inputs():
    x = _x(4, 3, 2)
    y = x[1:, ::2]
    assert y._op.name == "index" and y._op.args.index == (slice(1, None), slice(None, None, 2))
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    z = F.batch_norm(x, mean, var, training=False, momentum=0.2, eps=1e-3)
    assert z._op.name == "batch_norm"
    assert (z._op.args.training, z._op.args.momentum, z._op.args.eps) == (False, 0.2, 1e-3)
    assert z._op.args.running_mean is mean and z._op.args.running_var is var


def test_args_are_frozen():
    y = _x(2, 3) ** 2
    with pytest.raises(AttributeError):
        y._op.args.exponent = 3


def test_no_reader_of_backward_closures():
    """Ops may rename their locals freely: nothing in glassnet reads a
    closure's captured variables (``__closure__`` / ``co_freevars``)."""
    hits = [str(p.relative_to(ROOT)) for p in (ROOT / "glassnet").rglob("*.py")
            if "__closure__" in p.read_text() or "co_freevars" in p.read_text()]
    assert hits == []
