"""One ONNX emitter per op name: the tensor ops a model runs outside its
leaf layers (residual ``+``, ``glassnet.cat``, ``.flatten(1)``, ``F.relu``,
slicing, functional conv/pool/norm, ...).

An emitter reads only the op's :class:`~glassnet.op_record.OpRecord` (its
name picks the emitter, its frozen ``args`` object gives the arguments) and
the traced tensors' shapes and dtypes — never the op's backward closure.
"""
from __future__ import annotations

import numpy as np

from .emit import (emit_adaptive, emit_avg_pool, emit_batch_norm, emit_conv, emit_index, emit_linear,
                   emit_lp_pool, emit_lrn, emit_max_pool, emit_maxout, emit_reshape)

_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "neg": "Neg", "exp": "Exp", "log": "Log",
          "sqrt": "Sqrt", "abs": "Abs", "to": "Identity"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "matmul": "MatMul"}


def _optional(ins, i):
    return ins[i] if len(ins) > i else None


def _pow(g, rec, ins, base):
    if len(ins) == 2:  # tensor ** tensor
        return g.node("Pow", ins, base)
    return g.node("Pow", [ins[0], g.scalar(rec.record.args.exponent, rec.inputs[0].dtype)], base)


def _softmax(op_type):
    def emit(g, rec, ins, base):
        return g.node(op_type, ins, base, axis=int(rec.record.args.dim))
    return emit


def _dropout(g, rec, ins, base):
    a = rec.record.args
    if a.training and float(a.p) > 0:
        raise NotImplementedError(f"ONNX export: {base}: functional dropout with training=True")
    return g.node("Identity", ins, base)


def _astype(g, rec, ins, base):
    return g.node("Cast", ins, base, to=g.helper.np_dtype_to_tensor_dtype(np.dtype(rec.output.dtype)))


def _reshape(g, rec, ins, base):
    return emit_reshape(g, ins[0], rec.inputs[0].shape, rec.output.shape, base)


def _permute(g, rec, ins, base):
    return g.node("Transpose", ins, base, perm=[int(i) for i in rec.record.args.dims])


def _reduction(op_type):
    def emit(g, rec, ins, base):
        a, ndim = rec.record.args, rec.inputs[0].ndim
        axes = None if a.axis is None else [ax % ndim for ax in np.atleast_1d(a.axis)]
        if axes is None and not a.keepdims:  # reduce to a scalar
            y = g.reduce(op_type, ins[0], None, 1, base)
            return g.node("Reshape", [y, g.ints([])], base)
        return g.reduce(op_type, ins[0], axes, a.keepdims, base)
    return emit


def _index(g, rec, ins, base):
    return emit_index(g, ins[0], rec.inputs[0].shape, rec.record.args.index, base)


def _cat(g, rec, ins, base):
    return g.node("Concat", ins, base, axis=int(rec.record.args.dim))


def _stack(g, rec, ins, base):
    axis = int(rec.record.args.dim)
    return g.node("Concat", [g.unsqueeze(v, [axis], base) for v in ins], base, axis=axis)


def _linear(g, rec, ins, base):
    return emit_linear(g, ins[0], ins[1], _optional(ins, 2), rec.inputs[0].ndim, base)


def _maxout(g, rec, ins, base):
    return emit_maxout(g, ins[0], ins[1], _optional(ins, 2), rec.inputs[1].shape, base)


def _conv2d(g, rec, ins, base):
    a = rec.record.args  # ConvArgs
    t, b, le, r = a.padding
    return emit_conv(g, ins[0], ins[1], _optional(ins, 2), a.stride, ((t, b), (le, r)), a.dilation, a.groups,
                     a.kernel_size, base)


def _batch_norm(g, rec, ins, base):
    a = rec.record.args  # BatchNormArgs
    if a.training or a.running_mean is None:
        raise NotImplementedError(f"ONNX export: {base}: batch_norm with batch statistics (training=True)")
    C, dtype = rec.inputs[0].shape[1], np.dtype(rec.output.dtype)
    scale = ins[1] if len(ins) > 1 else g.const(np.ones(C, dtype), base + ".weight")
    bias = ins[2] if len(ins) > 2 else g.const(np.zeros(C, dtype), base + ".bias")
    return emit_batch_norm(g, ins[0], scale, bias, g.param(a.running_mean, base + ".running_mean"),
                           g.param(a.running_var, base + ".running_var"), a.eps, base)


def _batch_norm_relu(g, rec, ins, base):
    """``F.batch_norm_relu`` called directly: BatchNormalization, then Relu."""
    return g.node("Relu", [_batch_norm(g, rec, ins, base + ".bn")], base)


def _batch_norm_add_relu(g, rec, ins, base):
    """``F.batch_norm_add_relu`` called directly: BatchNormalization, Add, Relu."""
    normed = _batch_norm(g, rec, [ins[0]] + ins[2:], base + ".bn")
    return g.node("Relu", [g.node("Add", [normed, ins[1]], base + ".add")], base)


def _max_pool2d(g, rec, ins, base):
    a = rec.record.args  # PoolArgs
    return emit_max_pool(g, ins[0], rec.inputs[0].shape, rec.output.shape, a.kernel_size, a.stride, a.padding,
                         a.dilation, base)


def _avg_pool2d(g, rec, ins, base):
    a = rec.record.args
    return emit_avg_pool(g, ins[0], rec.inputs[0].shape, rec.output.shape, a.kernel_size, a.stride, a.padding,
                         a.count_include_pad, a.divisor_override, base)


def _lp_pool2d(g, rec, ins, base):
    a = rec.record.args
    return emit_lp_pool(g, ins[0], rec.inputs[0].shape, rec.output.shape, a.norm_type, a.kernel_size, a.stride,
                        base)


def _adaptive(kind):
    def emit(g, rec, ins, base):
        return emit_adaptive(g, ins[0], rec.inputs[0].shape, rec.output.shape, kind, base)
    return emit


def _lrn(g, rec, ins, base):
    a = rec.record.args  # LRNArgs
    return emit_lrn(g, ins[0], rec.inputs[0].shape, a.size, a.alpha, a.beta, a.k, base)


def _simple(op_type, alpha=None):
    def emit(g, rec, ins, base):
        attrs = {} if alpha is None else {"alpha": float(getattr(rec.record.args, alpha))}
        return g.node(op_type, ins[:1] if alpha is None else ins, base, **attrs)
    return emit


def _binary(op_type):
    def emit(g, rec, ins, base):
        return g.node(op_type, ins, base)
    return emit


OPS = {name: _simple(op_type) for name, op_type in _UNARY.items()}
OPS.update({name: _binary(op_type) for name, op_type in _BINARY.items()})
OPS.update({
    "pow": _pow,
    "leaky_relu": _simple("LeakyRelu", alpha="negative_slope"),
    "elu": _simple("Elu", alpha="alpha"),
    "softmax": _softmax("Softmax"),
    "log_softmax": _softmax("LogSoftmax"),
    "dropout": _dropout,
    "dropout2d": _dropout,
    "astype": _astype,
    "reshape": _reshape,
    "permute": _permute,
    "sum": _reduction("ReduceSum"),
    "max": _reduction("ReduceMax"),
    "index": _index,
    "cat": _cat,
    "stack": _stack,
    "linear": _linear,
    "maxout": _maxout,
    "conv2d": _conv2d,
    "batch_norm": _batch_norm,
    "batch_norm_relu": _batch_norm_relu,
    "batch_norm_add_relu": _batch_norm_add_relu,
    "max_pool2d": _max_pool2d,
    "avg_pool2d": _avg_pool2d,
    "lp_pool2d": _lp_pool2d,
    "adaptive_avg_pool2d": _adaptive("avg"),
    "adaptive_max_pool2d": _adaptive("max"),
    "local_response_norm": _lrn,
})


def convert_op(g, rec, base):
    """One traced tensor op (outside any leaf layer) → ONNX node(s); returns
    the output's value name. The record's op name picks the emitter.

    Shape: as the op's (the traced input and output shapes are used).

    Raises:
        NotImplementedError: the op has no ONNX mapping (the message names it and its shapes).
    """
    emit = OPS.get(rec.record.name)
    if emit is None:
        raise NotImplementedError(
            f"ONNX export: the tensor op {rec.record.name!r} (inputs {[t.shape for t in rec.inputs]} -> "
            f"{rec.output.shape}) has no ONNX mapping in glassnet's exporter")
    return emit(g, rec, [g.value(t) for t in rec.inputs], base)
