"""Layer-level converters: a leaf layer glassnet knows (Conv2d, Linear,
BatchNorm, pooling, activations, LRN, Maxout, Dropout, Flatten, ...) becomes
one ONNX node (or a short fixed sequence of them), whatever ops its
``forward`` runs internally.

Tracing (:mod:`glassnet.io.tracing`) records such a layer as one producer:
the module object, its qualified name and its input tensors. A converter
reads the layer's own attributes (``stride``, ``eps``, ...) and parameters;
the weights become initializers named by their ``state_dict`` names.
Every converter is ``convert(graph, record, x, base, prefix) -> value name``.
"""
from __future__ import annotations

import numpy as np

from .emit import (emit_adaptive, emit_avg_pool, emit_batch_norm, emit_conv, emit_linear, emit_lp_pool, emit_lrn,
                   emit_max_pool, emit_maxout, emit_reshape, pair)


def _conv_pads(module, kshape):
    pad = module.padding
    if isinstance(pad, str):
        if pad == "valid":
            return (0, 0)
        d = pair(module.dilation)
        out = []
        for kk, dd in zip(kshape, d):
            total = dd * (kk - 1)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    return pair(pad)


def _weight_and_bias(g, m, prefix):
    """The initializer names of a layer's ``weight`` and ``bias`` (``None`` without a bias)."""
    return g.param(m.weight, prefix + "weight"), None if m.bias is None else g.param(m.bias, prefix + "bias")


def _mod_conv(g, rec, x, base, prefix):
    m = rec.module
    if rec.inputs[0].ndim != 4:
        raise NotImplementedError(f"ONNX export: {base} (Conv2d) got a {rec.inputs[0].ndim}-D input; only (N, C, H, W)")
    w, b = _weight_and_bias(g, m, prefix)
    kshape = tuple(m.weight.shape[2:])
    return emit_conv(g, x, w, b, m.stride, _conv_pads(m, kshape), m.dilation, m.groups, kshape, base)


def _mod_linear(g, rec, x, base, prefix):
    m = rec.module
    w, b = _weight_and_bias(g, m, prefix)
    return emit_linear(g, x, w, b, rec.inputs[0].ndim, base)


def _mod_maxout(g, rec, x, base, prefix):
    m = rec.module
    if rec.inputs[0].ndim != 2:
        raise NotImplementedError(f"ONNX export: {base} (Maxout) needs a 2-D input, got {rec.inputs[0].shape}")
    w, b = _weight_and_bias(g, m, prefix)
    return emit_maxout(g, x, w, b, tuple(m.weight.shape), base)


def _mod_batch_norm(g, rec, x, base, prefix):
    m = rec.module
    if m.running_mean is None or m.running_var is None:
        raise NotImplementedError(
            f"ONNX export: {base} ({type(m).__name__}) normalises with batch statistics "
            "(track_running_stats=False); only batch norm with running statistics exports "
            "(as ONNX BatchNormalization)")
    C = m.num_features
    dtype = np.dtype(rec.output.dtype)
    scale = g.param(m.weight, prefix + "weight") if m.weight is not None else g.const(np.ones(C, dtype), prefix + "weight")
    bias = g.param(m.bias, prefix + "bias") if m.bias is not None else g.const(np.zeros(C, dtype), prefix + "bias")
    mean = g.param(m.running_mean, prefix + "running_mean")
    var = g.param(m.running_var, prefix + "running_var")
    return emit_batch_norm(g, x, scale, bias, mean, var, m.eps, base)


def _mod_act(op_type, **attr_fns):
    def convert(g, rec, x, base, prefix):
        attrs = {k: fn(rec.module) for k, fn in attr_fns.items()}
        return g.node(op_type, [x], base, **attrs)
    return convert


def _softmax_axis(m, ndim):
    dim = getattr(m, "dim", None)
    if dim is None:  # PyTorch's legacy implicit dim
        dim = 0 if ndim in (0, 1, 3) else 1
    return int(dim)


def _mod_softmax(op_type):
    def convert(g, rec, x, base, prefix):
        return g.node(op_type, [x], base, axis=_softmax_axis(rec.module, rec.inputs[0].ndim))
    return convert


def _mod_identity(g, rec, x, base, prefix):
    return g.node("Identity", [x], base)


def _mod_dropout(g, rec, x, base, prefix):
    return g.node("Identity", [x], base)


def _mod_flatten(g, rec, x, base, prefix):
    m = rec.module
    ndim = rec.inputs[0].ndim
    if m.start_dim == 1 and m.end_dim % max(ndim, 1) == ndim - 1:
        return g.node("Flatten", [x], base, axis=1)
    return emit_reshape(g, x, rec.inputs[0].shape, rec.output.shape, base)


def _check_pool_4d(rec, base):
    if rec.inputs[0].ndim != 4:
        raise NotImplementedError(
            f"ONNX export: {base} ({type(rec.module).__name__}) got a {rec.inputs[0].ndim}-D input "
            f"{rec.inputs[0].shape}; only batched (N, C, H, W) pooling exports")


def _mod_max_pool(g, rec, x, base, prefix):
    m = rec.module
    _check_pool_4d(rec, base)
    return emit_max_pool(g, x, rec.inputs[0].shape, rec.output.shape, m.kernel_size, m.stride, m.padding,
                          m.dilation, base)


def _mod_avg_pool(g, rec, x, base, prefix):
    m = rec.module
    _check_pool_4d(rec, base)
    return emit_avg_pool(g, x, rec.inputs[0].shape, rec.output.shape, m.kernel_size, m.stride, m.padding,
                          m.count_include_pad, m.divisor_override, base)


def _mod_lp_pool(g, rec, x, base, prefix):
    m = rec.module
    _check_pool_4d(rec, base)
    return emit_lp_pool(g, x, rec.inputs[0].shape, rec.output.shape, m.norm_type, m.kernel_size, m.stride, base)


def _mod_adaptive(kind):
    def convert(g, rec, x, base, prefix):
        _check_pool_4d(rec, base)
        return emit_adaptive(g, x, rec.inputs[0].shape, rec.output.shape, kind, base)
    return convert


def _mod_lrn(g, rec, x, base, prefix):
    m = rec.module
    return emit_lrn(g, x, rec.inputs[0].shape, m.size, m.alpha, m.beta, m.k, base)


def module_converters():
    """``{layer class: converter}`` for every leaf layer the exporter turns into fixed ONNX node(s).

    Shape: not applicable (a table).
    """
    from ... import nn

    return {
        nn.Conv2d: _mod_conv,
        nn.Linear: _mod_linear,
        nn.Maxout: _mod_maxout,
        nn.BatchNorm1d: _mod_batch_norm,
        nn.BatchNorm2d: _mod_batch_norm,
        nn.ReLU: _mod_act("Relu"),
        nn.LeakyReLU: _mod_act("LeakyRelu", alpha=lambda m: float(m.negative_slope)),
        nn.ELU: _mod_act("Elu", alpha=lambda m: float(m.alpha)),
        nn.Sigmoid: _mod_act("Sigmoid"),
        nn.Tanh: _mod_act("Tanh"),
        nn.LogSoftmax: _mod_softmax("LogSoftmax"),
        nn.Softmax: _mod_softmax("Softmax"),
        nn.MaxPool2d: _mod_max_pool,
        nn.AvgPool2d: _mod_avg_pool,
        nn.LPPool2d: _mod_lp_pool,
        nn.AdaptiveAvgPool2d: _mod_adaptive("avg"),
        nn.AdaptiveMaxPool2d: _mod_adaptive("max"),
        nn.LocalResponseNorm: _mod_lrn,
        nn.Dropout: _mod_dropout,
        nn.Dropout2d: _mod_dropout,
        nn.Flatten: _mod_flatten,
        nn.Identity: _mod_identity,
    }


def find_converter(table, module):
    """The converter for ``module``'s class or its nearest listed base class, else ``None``.

    Shape: not applicable.
    """
    for cls in type(module).__mro__:
        if cls in table:
            return table[cls]
    return None
