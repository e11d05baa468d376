"""Export a glassnet model to ONNX.

    from glassnet.io.onnx_export import export_onnx
    export_onnx(model, "model.onnx", input_size=(3, 224, 224))

How: the model runs once in eval mode on a probe input under a tracer
(:mod:`glassnet.io.tracing`). Every leaf layer glassnet knows (Conv2d,
Linear, BatchNorm, pooling, activations, LRN, Maxout, Dropout, Flatten, ...)
becomes one ONNX node (or a short fixed sequence of them), whatever ops its
``forward`` runs internally; the tensor ops a model does between layers
(residual ``+``, ``glassnet.cat``, ``.flatten(1)``, ``F.relu``, slicing, ...)
are mapped op by op. Weights become initializers named by their dotted
``state_dict`` names (``features.0.weight``), so an ONNX graph reads like the
model's ``print``. The graph input is ``input`` (N, C, H, W), the output
``output``; with ``dynamic_batch`` the batch axis is the symbol ``batch``.

Spatial sizes are fixed at export: pooling pads are computed from the probe's
shapes so that PyTorch's ``ceil_mode`` rule (a last window that would start
in the right padding is dropped) is reproduced exactly with explicit
asymmetric pads instead of ONNX's own ``ceil_mode``.

Needs the ``onnx`` package (``pip install glassnet[onnx]``); running the
result needs ``onnxruntime`` or any ONNX runtime.
"""
# Over 500 lines: this session touched it only for the error family (and, in train.py/tensor.py, the
# checkpoint resume checks and gradient hooks); splitting it by job is issue 13's restructuring (ops layer,
# train/ package), planned with farm-studio, not done piecemeal here.

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..backend import get_default_dtype, to_numpy
from ..tensor import Tensor
from . import tracing
from ..errors import InvalidArgumentError, MissingDependencyError

__all__ = ["export_onnx", "ExportResult", "MIN_OPSET"]

MIN_OPSET = 13


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise MissingDependencyError(
            "ONNX export needs the 'onnx' package: pip install glassnet[onnx] "
            f"(or pip install onnx onnxruntime); import failed: {exc}") from exc
    return onnx, helper, numpy_helper


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote."""

    path: str
    num_nodes: int
    num_initializers: int
    num_parameters: int
    file_size: int
    opset: int
    input_shape: tuple
    output_shape: tuple

    def __str__(self):
        return (f"{self.path}: {self.num_nodes} nodes, {self.num_initializers} initializers "
                f"({self.num_parameters:,} values), {self.file_size:,} bytes, opset {self.opset}")


def _pair(v):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        return int(v[0]), int(v[1])
    return int(v), int(v)


# =========================================================================== graph builder
class _Graph:
    """Collects nodes and initializers; maps traced tensors to ONNX value names."""

    def __init__(self, helper, numpy_helper, opset, trace, param_names, input_name="input"):
        self.helper, self.numpy_helper, self.opset = helper, numpy_helper, opset
        self.trace = trace
        self.param_names = param_names  # id(array or Tensor) -> dotted name
        self.nodes = []
        self.inits = {}  # name -> np.ndarray
        self.names = {}  # id(tensor) -> value name
        self.used = {input_name}
        self.input_name = input_name
        self._int_consts = {}

    # ---------------------------------------------------------------- names
    def fresh(self, base: str) -> str:
        base = base or "v"
        name, i = base, 1
        while name in self.used or name in self.inits:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name

    def init(self, name: str, array) -> str:
        """An initializer called ``name`` (reused if that name already holds it)."""
        array = np.ascontiguousarray(to_numpy(array))
        if name in self.inits:
            if self.inits[name].shape == array.shape and np.array_equal(self.inits[name], array):
                return name
            name = self.fresh(name)
        self.used.add(name)
        self.inits[name] = array
        return name

    def const(self, array, base="const") -> str:
        return self.init(self.fresh(base), np.asarray(array))

    def ints(self, values) -> str:
        key = tuple(int(v) for v in values)
        if key not in self._int_consts:
            self._int_consts[key] = self.const(np.array(key, dtype=np.int64), "shape_const")
        return self._int_consts[key]

    def scalar(self, value, dtype) -> str:
        return self.const(np.array(value, dtype=dtype), "scalar")

    def param(self, t, fallback: str) -> str:
        """Initializer for a parameter/buffer (by its dotted name) or any other array."""
        data = t.data if isinstance(t, Tensor) else t
        name = self.param_names.get(id(t)) or self.param_names.get(id(data)) or fallback
        return self.init(name, data)

    def value(self, t: Tensor) -> str:
        """The ONNX name of a traced tensor: a node output, the graph input,
        a parameter, or a constant baked in as an initializer."""
        key = id(t)
        if key in self.names:
            return self.names[key]
        if t is self.trace.input:
            return self.input_name
        name = self.param_names.get(key) or self.param_names.get(id(t.data))
        if name is not None:
            self.names[key] = self.init(name, t.data)
        else:
            self.names[key] = self.const(t.data, "const")
        return self.names[key]

    # ---------------------------------------------------------------- nodes
    def node(self, op_type, inputs, base, n_out=1, **attrs):
        """Append a node; returns its output name (or names when ``n_out > 1``)."""
        outs = [self.fresh(f"{base}_{op_type}" if n_out == 1 else f"{base}_{op_type}_{i}") for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=self.fresh(f"{base}/{op_type}"),
                                                **attrs))
        return outs[0] if n_out == 1 else outs

    def reduce(self, op_type, x, axes, keepdims, base):
        """ReduceSum/Max/Mean with ``axes`` as an attribute or input, as the opset wants."""
        axes_as_input = self.opset >= (13 if op_type == "ReduceSum" else 18)
        if axes is None:
            return self.node(op_type, [x], base, keepdims=int(keepdims))
        axes = [int(a) for a in axes]
        if axes_as_input:
            return self.node(op_type, [x, self.ints(axes)], base, keepdims=int(keepdims))
        return self.node(op_type, [x], base, axes=axes, keepdims=int(keepdims))

    def squeeze(self, x, axes, base):
        return self.node("Squeeze", [x, self.ints(axes)], base)

    def unsqueeze(self, x, axes, base):
        return self.node("Unsqueeze", [x, self.ints(axes)], base)


# =========================================================================== emitters
# Each takes the graph, the input value name(s) and plain parameters (normalised),
# plus probe shapes where the ONNX attributes depend on them.

def _window_end_pads(in_hw, out_hw, k, s, p, d):
    """Bottom/right pads that make ONNX's floor rule give PyTorch's output size
    (covers ceil_mode without ONNX's own, subtly different, ceil_mode)."""
    ends = []
    for n, o, kk, ss, pp, dd in zip(in_hw, out_hw, k, s, p, d):
        needed = (o - 1) * ss + dd * (kk - 1) + 1
        ends.append(max(pp, needed - n - pp))
    return ends


def _emit_max_pool(g, x, in_shape, out_shape, k, s, p, d, base):
    k, s, p, d = _pair(k), _pair(s), _pair(p), _pair(d)
    ends = _window_end_pads(in_shape[-2:], out_shape[-2:], k, s, p, d)
    return g.node("MaxPool", [x], base, kernel_shape=list(k), strides=list(s),
                  pads=[p[0], p[1], ends[0], ends[1]], dilations=list(d))


def _emit_avg_pool(g, x, in_shape, out_shape, k, s, p, count_include_pad, divisor_override, base):
    k, s, p = _pair(k), _pair(s), _pair(p)
    ends = _window_end_pads(in_shape[-2:], out_shape[-2:], k, s, p, (1, 1))
    if divisor_override is not None:
        # every window lies inside the (explicitly) padded input: average × k·k = window sum
        y = g.node("AveragePool", [x], base, kernel_shape=list(k), strides=list(s),
                   pads=[p[0], p[1], ends[0], ends[1]], count_include_pad=1)
        dtype = np.dtype(g.trace.input.dtype)
        return g.node("Mul", [y, g.scalar(k[0] * k[1] / float(divisor_override), dtype)], base)
    if count_include_pad and (p[0] or p[1]):
        # PyTorch counts the zero padding but not the extra ceil_mode overhang:
        # pad explicitly with zeros, then average over real (now padded) elements only
        x = g.node("Pad", [x, g.ints([0, 0, p[0], p[1], 0, 0, p[0], p[1]])], base, mode="constant")
        return g.node("AveragePool", [x], base, kernel_shape=list(k), strides=list(s),
                      pads=[0, 0, ends[0] - p[0], ends[1] - p[1]], count_include_pad=0)
    return g.node("AveragePool", [x], base, kernel_shape=list(k), strides=list(s),
                  pads=[p[0], p[1], ends[0], ends[1]], count_include_pad=0)


def _emit_lp_pool(g, x, in_shape, out_shape, norm_type, k, s, base):
    """glassnet's (= PyTorch's) lp_pool2d, step by step: (avg_pool(x^p)·kH·kW)^(1/p)."""
    k = _pair(k)
    s = k if s is None else _pair(s)
    p = float(norm_type)
    dtype = np.dtype(g.trace.input.dtype)
    if math.isinf(p):
        sgn = 1 if p > 0 else -1
        a = g.node("Abs", [x], base)
        if sgn < 0:
            a = g.node("Neg", [a], base)
        y = _emit_max_pool(g, a, in_shape, out_shape, k, s, 0, 1, base)
        return y if sgn > 0 else g.node("Neg", [y], base)
    xp = g.node("Pow", [x, g.scalar(p, dtype)], base)
    a = _emit_avg_pool(g, xp, in_shape, out_shape, k, s, 0, True, None, base)
    t = g.node("Mul", [a, g.scalar(k[0] * k[1], dtype)], base)
    return g.node("Pow", [t, g.scalar(1.0 / p, dtype)], base)


def _adaptive_bounds(n, o):
    """PyTorch's adaptive windows along one axis: [⌊i·n/o⌋, ⌈(i+1)·n/o⌉)."""
    return [((i * n) // o, -((-(i + 1) * n) // o)) for i in range(o)]


def _emit_adaptive(g, x, in_shape, out_shape, kind, base):
    """Adaptive pooling with fixed sizes: Global*Pool for 1×1, *Pool when the
    windows tile evenly, else exactly by separability (a rectangle's mean/max
    is the mean/max over rows of the mean/max over columns): averaging matrices
    (MatMul) for avg, per-window Slice+ReduceMax+Concat for max."""
    H, W = in_shape[-2:]
    out_hw = tuple(out_shape[-2:])
    oh, ow = out_hw
    if (H, W) == out_hw:
        return g.node("Identity", [x], base)
    if out_hw == (1, 1):
        return g.node("GlobalAveragePool" if kind == "avg" else "GlobalMaxPool", [x], base)
    if H % oh == 0 and W % ow == 0:
        k = [H // oh, W // ow]
        return g.node("AveragePool" if kind == "avg" else "MaxPool", [x], base, kernel_shape=k, strides=k)
    if kind == "avg":
        dtype = np.dtype(g.trace.input.dtype)
        A_h = np.zeros((oh, H), dtype)
        for i, (a, b) in enumerate(_adaptive_bounds(H, oh)):
            A_h[i, a:b] = 1.0 / (b - a)
        A_w = np.zeros((W, ow), dtype)
        for j, (a, b) in enumerate(_adaptive_bounds(W, ow)):
            A_w[a:b, j] = 1.0 / (b - a)
        y = x if ow == W else g.node("MatMul", [x, g.const(A_w, base + ".cols")], base)
        return y if oh == H else g.node("MatMul", [g.const(A_h, base + ".rows"), y], base)
    y = x
    for axis, n, o in ((3, W, ow), (2, H, oh)):
        if n == o:
            continue
        parts = [g.reduce("ReduceMax", g.node("Slice", [y, g.ints([a]), g.ints([b]), g.ints([axis])], base),
                          [axis], 1, base) for a, b in _adaptive_bounds(n, o)]
        y = g.node("Concat", parts, base, axis=axis)
    return y


def _emit_lrn(g, x, in_shape, size, alpha, beta, k, base):
    size = int(size)
    if size % 2 == 1:  # same window as PyTorch; ONNX's alpha is also divided by size
        return g.node("LRN", [x], base, size=size, alpha=float(alpha), beta=float(beta), bias=float(k))
    # even size: PyTorch's window is c − n/2 … c + n/2 − 1, ONNX's is the other way round;
    # do it by hand: mean of squares over the window with AveragePool on a (N, 1, C, rest) view
    dtype = np.dtype(g.trace.input.dtype)
    C = in_shape[1]
    sq = g.node("Mul", [x, x], base)
    v = g.node("Reshape", [sq, g.ints([0, 1, C, -1])], base)
    m = g.node("AveragePool", [v], base, kernel_shape=[size, 1], strides=[1, 1],
               pads=[size // 2, 0, (size - 1) // 2, 0], count_include_pad=1)
    shape = g.node("Shape", [x], base)
    m = g.node("Reshape", [m, shape], base)
    den = g.node("Add", [g.node("Mul", [m, g.scalar(alpha, dtype)], base), g.scalar(k, dtype)], base)
    den = g.node("Pow", [den, g.scalar(beta, dtype)], base)
    return g.node("Div", [x, den], base)


def _emit_conv(g, x, w, b, stride, pads, dilation, groups, kshape, base):
    if isinstance(pads, str):
        raise NotImplementedError(f"ONNX export: unresolved conv padding {pads!r} in {base}")
    if isinstance(pads[0], (tuple, list)):
        (t, bo), (le, r) = pads
    else:
        t = bo = int(pads[0])
        le = r = int(pads[1])
    ins = [x, w] + ([b] if b is not None else [])
    return g.node("Conv", ins, base, kernel_shape=list(kshape), strides=list(_pair(stride)),
                  pads=[int(t), int(le), int(bo), int(r)], dilations=list(_pair(dilation)), group=int(groups))


def _conv_pads(module, kshape):
    pad = module.padding
    if isinstance(pad, str):
        if pad == "valid":
            return (0, 0)
        d = _pair(module.dilation)
        out = []
        for kk, dd in zip(kshape, d):
            total = dd * (kk - 1)
            out.append((total // 2, total - total // 2))
        return tuple(out)
    return _pair(pad)


def _emit_linear(g, x, w, b, x_ndim, base):
    if x_ndim == 2:
        return g.node("Gemm", [x, w] + ([b] if b is not None else []), base, transB=1)
    wt = g.node("Transpose", [w], base, perm=[1, 0])
    y = g.node("MatMul", [x, wt], base)
    return g.node("Add", [y, b], base) if b is not None else y


def _emit_maxout(g, x, w, b, wshape, base):
    k, out_f, in_f = wshape
    w2 = g.node("Reshape", [w, g.ints([k * out_f, in_f])], base)
    z = g.node("Gemm", [x, w2], base, transB=1)
    z = g.node("Reshape", [z, g.ints([-1, k, out_f])], base)
    if b is not None:
        z = g.node("Add", [z, b], base)
    return g.reduce("ReduceMax", z, [1], 0, base)


def _emit_batch_norm(g, x, scale, bias, mean, var, eps, base):
    return g.node("BatchNormalization", [x, scale, bias, mean, var], base, epsilon=float(eps))


def _emit_reshape(g, x, in_shape, out_shape, base):
    """Flatten when it is one; otherwise Reshape keeping the batch dim symbolic (0 = copy)."""
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if len(in_shape) >= 2 and len(out_shape) == 2 and out_shape[0] == in_shape[0] \
            and out_shape[1] == int(np.prod(in_shape[1:])):
        return g.node("Flatten", [x], base, axis=1)
    if in_shape and out_shape and out_shape[0] == in_shape[0]:
        return g.node("Reshape", [x, g.ints((0,) + out_shape[1:])], base)
    return g.node("Reshape", [x, g.ints(out_shape)], base)


_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "neg": "Neg", "exp": "Exp", "log": "Log",
          "sqrt": "Sqrt", "abs": "Abs", "to": "Identity"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "matmul": "MatMul"}


# =========================================================================== module converters
def _mod_conv(g, rec, x, base, prefix):
    m = rec.module
    if rec.inputs[0].ndim != 4:
        raise NotImplementedError(f"ONNX export: {base} (Conv2d) got a {rec.inputs[0].ndim}-D input; only (N, C, H, W)")
    w = g.param(m.weight, prefix + "weight")
    b = None if m.bias is None else g.param(m.bias, prefix + "bias")
    kshape = tuple(m.weight.shape[2:])
    return _emit_conv(g, x, w, b, m.stride, _conv_pads(m, kshape), m.dilation, m.groups, kshape, base)


def _mod_linear(g, rec, x, base, prefix):
    m = rec.module
    w = g.param(m.weight, prefix + "weight")
    b = None if m.bias is None else g.param(m.bias, prefix + "bias")
    return _emit_linear(g, x, w, b, rec.inputs[0].ndim, base)


def _mod_maxout(g, rec, x, base, prefix):
    m = rec.module
    if rec.inputs[0].ndim != 2:
        raise NotImplementedError(f"ONNX export: {base} (Maxout) needs a 2-D input, got {rec.inputs[0].shape}")
    w = g.param(m.weight, prefix + "weight")
    b = None if m.bias is None else g.param(m.bias, prefix + "bias")
    return _emit_maxout(g, x, w, b, tuple(m.weight.shape), base)


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
    return _emit_batch_norm(g, x, scale, bias, mean, var, m.eps, base)


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
    return _emit_reshape(g, x, rec.inputs[0].shape, rec.output.shape, base)


def _check_pool_4d(rec, base):
    if rec.inputs[0].ndim != 4:
        raise NotImplementedError(
            f"ONNX export: {base} ({type(rec.module).__name__}) got a {rec.inputs[0].ndim}-D input "
            f"{rec.inputs[0].shape}; only batched (N, C, H, W) pooling exports")


def _mod_max_pool(g, rec, x, base, prefix):
    m = rec.module
    _check_pool_4d(rec, base)
    return _emit_max_pool(g, x, rec.inputs[0].shape, rec.output.shape, m.kernel_size, m.stride, m.padding,
                          m.dilation, base)


def _mod_avg_pool(g, rec, x, base, prefix):
    m = rec.module
    _check_pool_4d(rec, base)
    return _emit_avg_pool(g, x, rec.inputs[0].shape, rec.output.shape, m.kernel_size, m.stride, m.padding,
                          m.count_include_pad, m.divisor_override, base)


def _mod_lp_pool(g, rec, x, base, prefix):
    m = rec.module
    _check_pool_4d(rec, base)
    return _emit_lp_pool(g, x, rec.inputs[0].shape, rec.output.shape, m.norm_type, m.kernel_size, m.stride, base)


def _mod_adaptive(kind):
    def convert(g, rec, x, base, prefix):
        _check_pool_4d(rec, base)
        return _emit_adaptive(g, x, rec.inputs[0].shape, rec.output.shape, kind, base)
    return convert


def _mod_lrn(g, rec, x, base, prefix):
    m = rec.module
    return _emit_lrn(g, x, rec.inputs[0].shape, m.size, m.alpha, m.beta, m.k, base)


def _module_converters():
    from .. import nn

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


def _find_converter(table, module):
    for cls in type(module).__mro__:
        if cls in table:
            return table[cls]
    return None


# =========================================================================== op converters
def _convert_op(g, rec, base):
    """One traced tensor op (outside any leaf layer) → ONNX node(s), from its
    record: the op's name and its argument object (``rec.record.args``)."""
    op = rec.op
    a = rec.record.args
    ins = [g.value(t) for t in rec.inputs]
    in_shape = rec.inputs[0].shape if rec.inputs else ()
    out_shape = rec.output.shape
    dtype = np.dtype(rec.output.dtype)

    if op in _BINARY and len(ins) == 2:
        return g.node(_BINARY[op], ins, base)
    if op == "pow":  # tensor ** constant
        return g.node("Pow", [ins[0], g.scalar(a.exponent, rec.inputs[0].dtype)], base)
    if op in _UNARY:
        return g.node(_UNARY[op], ins[:1], base)
    if op == "leaky_relu":
        return g.node("LeakyRelu", ins, base, alpha=float(a.negative_slope))
    if op == "elu":
        return g.node("Elu", ins, base, alpha=float(a.alpha))
    if op in ("softmax", "log_softmax"):
        return g.node("Softmax" if op == "softmax" else "LogSoftmax", ins, base, axis=int(a.dim))
    if op in ("dropout", "dropout2d"):
        if a.training and float(a.p) > 0:
            raise NotImplementedError(f"ONNX export: {base}: functional dropout with training=True")
        return g.node("Identity", ins, base)
    if op == "astype":
        from onnx import helper
        return g.node("Cast", ins, base, to=helper.np_dtype_to_tensor_dtype(dtype))
    if op == "reshape":
        return _emit_reshape(g, ins[0], in_shape, out_shape, base)
    if op == "permute":
        return g.node("Transpose", ins, base, perm=[int(i) for i in a.dims])
    if op in ("sum", "max"):
        axis, keepdims = a.axis, a.keepdims
        axes = None if axis is None else [ax % len(in_shape) for ax in np.atleast_1d(axis)]
        if axes is None and not keepdims:  # reduce to a scalar
            y = g.reduce("ReduceSum" if op == "sum" else "ReduceMax", ins[0], None, 1, base)
            return g.node("Reshape", [y, g.ints([])], base)
        return g.reduce("ReduceSum" if op == "sum" else "ReduceMax", ins[0], axes, keepdims, base)
    if op == "index":
        return _emit_index(g, ins[0], in_shape, a.index, base)
    if op == "cat":
        return g.node("Concat", ins, base, axis=int(a.dim))
    if op == "stack":
        axis = int(a.dim)
        return g.node("Concat", [g.unsqueeze(v, [axis], base) for v in ins], base, axis=axis)
    if op == "linear":
        return _emit_linear(g, ins[0], ins[1], ins[2] if len(ins) > 2 else None, len(in_shape), base)
    if op == "maxout":
        return _emit_maxout(g, ins[0], ins[1], ins[2] if len(ins) > 2 else None, rec.inputs[1].shape, base)
    if op == "conv2d":
        t, bo, le, r = a.padding
        return _emit_conv(g, ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.stride, ((t, bo), (le, r)),
                          a.dilation, a.groups, a.kernel_size, base)
    if op == "batch_norm":
        if a.training or a.running_mean is None:
            raise NotImplementedError(f"ONNX export: {base}: batch_norm with batch statistics (training=True)")
        C = in_shape[1]
        scale = ins[1] if len(ins) > 1 else g.const(np.ones(C, dtype), base + ".weight")
        bias = ins[2] if len(ins) > 2 else g.const(np.zeros(C, dtype), base + ".bias")
        return _emit_batch_norm(g, ins[0], scale, bias, g.param(a.running_mean, base + ".running_mean"),
                                g.param(a.running_var, base + ".running_var"), a.eps, base)
    if op == "max_pool2d":
        return _emit_max_pool(g, ins[0], in_shape, out_shape, a.kernel_size, a.stride, a.padding, a.dilation, base)
    if op == "avg_pool2d":
        return _emit_avg_pool(g, ins[0], in_shape, out_shape, a.kernel_size, a.stride, a.padding,
                              a.count_include_pad, a.divisor_override, base)
    if op == "lp_pool2d":
        return _emit_lp_pool(g, ins[0], in_shape, out_shape, a.norm_type, a.kernel_size, a.stride, base)
    if op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        return _emit_adaptive(g, ins[0], in_shape, out_shape, "avg" if "avg" in op else "max", base)
    if op == "local_response_norm":
        return _emit_lrn(g, ins[0], in_shape, a.size, a.alpha, a.beta, a.k, base)
    raise NotImplementedError(
        f"ONNX export: the tensor op {op!r} (inputs {[t.shape for t in rec.inputs]} -> {out_shape}) "
        "has no ONNX mapping in glassnet's exporter")


def _emit_index(g, x, in_shape, index, base):
    if index is None:
        raise NotImplementedError(f"ONNX export: {base}: could not recover the index of a slicing op")
    items = list(index) if isinstance(index, tuple) else [index]
    if any(i is Ellipsis for i in items):
        pos = items.index(Ellipsis)
        fill = len(in_shape) - (len(items) - 1)
        items = items[:pos] + [slice(None)] * fill + items[pos + 1:]
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, it in enumerate(items):
        if isinstance(it, slice):
            if it == slice(None):
                continue
            start, stop, step = it.indices(in_shape[axis])
            if step < 0 and stop < 0:
                stop = -in_shape[axis] - 1  # run past the beginning
            starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
        elif isinstance(it, (int, np.integer)):
            i = int(it) % in_shape[axis]
            starts.append(i), ends.append(i + 1), axes.append(axis), steps.append(1)
            squeeze.append(axis)
        else:
            raise NotImplementedError(
                f"ONNX export: {base}: indexing with {type(it).__name__} is not exported "
                "(only ints, slices and ...)")
    y = x
    if axes:
        y = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)], base)
    if squeeze:
        y = g.squeeze(y, squeeze, base)
    if y is x:
        y = g.node("Identity", [x], base)
    return y


# =========================================================================== driver
def _topological(trace):
    """Records reachable from the output, producers before consumers (iterative DFS)."""
    order, done, onstack = [], set(), set()
    out = trace.output
    stack = [(out, False)]
    while stack:
        t, expanded = stack.pop()
        rec = trace.producer(t)
        if rec is None:
            continue
        key = id(t)
        if expanded:
            onstack.discard(key)
            if key not in done:
                done.add(key)
                order.append(rec)
            continue
        if key in done or key in onstack:
            continue
        onstack.add(key)
        stack.append((t, True))
        for parent in reversed(rec.inputs):
            if id(parent) not in done and trace.producer(parent) is not None:
                stack.append((parent, False))
    return order


def _model_dtype(model):
    for p in model.parameters():
        return np.dtype(p.dtype)
    return np.dtype(get_default_dtype())


def export_onnx(model, path, input_size=(1, 28, 28), batch_size: int = 1, opset: int = 17,
                dynamic_batch: bool = True, progress: bool = False, input_name: str = "input",
                output_name: str = "output", check: bool = True) -> ExportResult:
    """Write ``model`` as an ONNX file at ``path``.

    Args:
        model: a :class:`glassnet.nn.Module` (zoo model or your own built from
            glassnet layers). It is run once in eval mode; its train/eval
            state is restored afterwards.
        path: the ``.onnx`` file to write (its folder is created).
        input_size: one input's shape without the batch axis, (C, H, W).
        batch_size: the probe's batch size (and the static batch size when
            ``dynamic_batch=False``).
        opset: the ONNX opset to target (≥ 13; 17 by default).
        dynamic_batch: make the batch axis of input and output symbolic
            (``batch``), so any batch size runs.
        progress: show a tqdm bar while converting (useful for big models).
        check: run ``onnx.checker.check_model`` on the result.

    Returns an :class:`ExportResult` (path, node count, file size, ...).

    Raises:
        ImportError: the ``onnx`` package is missing (``pip install glassnet[onnx]``).
        NotImplementedError: a layer or op has no ONNX equivalent here
            (the message names it and why).
    """
    onnx, helper, numpy_helper = _import_onnx()
    if int(opset) < MIN_OPSET:
        raise InvalidArgumentError(f"export_onnx: opset must be >= {MIN_OPSET}, got {opset}")
    opset = int(opset)
    input_size = tuple(int(v) for v in input_size)
    dtype = _model_dtype(model)

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        return _export(model, path, input_size, batch_size, opset, dynamic_batch, progress, input_name,
                       output_name, check, dtype, onnx, helper, numpy_helper)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)


def _export(model, path, input_size, batch_size, opset, dynamic_batch, progress, input_name, output_name,
            check, dtype, onnx, helper, numpy_helper):
    from ..random import get_rng

    probe = Tensor(get_rng().standard_normal((int(batch_size),) + input_size).astype(dtype))
    table = _module_converters()
    tr = tracing.trace(model, probe, lambda m: _find_converter(table, m) is not None)
    if not isinstance(tr.output, Tensor):
        raise NotImplementedError(
            f"ONNX export: the model returned a {type(tr.output).__name__}, not one Tensor; "
            "only single-output models export")

    param_names = {}
    for name, p in model.named_parameters():
        param_names.setdefault(id(p), name)
        param_names.setdefault(id(p.data), name)
    for name, b in model.named_buffers():
        if b is not None:
            param_names.setdefault(id(b), name)
            param_names.setdefault(id(getattr(b, "data", b)), name)

    g = _Graph(helper, numpy_helper, opset, tr, param_names, input_name=input_name)
    g.used.add(output_name)
    order = _topological(tr)
    bar = None
    n_weights = sum(int(p.data.size) for p in model.parameters())
    if progress and (n_weights >= 1_000_000 or len(order) >= 100):  # only worth a bar when big
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order) + 2, desc="export onnx", unit="step", leave=False)
    for i, rec in enumerate(order):
        if bar is not None:
            bar.update(1)
        if rec.kind == "module":
            base = rec.name or type(rec.module).__name__
            prefix = f"{rec.name}." if rec.name else ""
            conv = _find_converter(table, rec.module)
            out = conv(g, rec, g.value(rec.inputs[0]), base, prefix)
        else:
            out = _convert_op(g, rec, f"{rec.op}_{i}")
        g.names[id(rec.output)] = out
    final = g.value(tr.output)
    g.nodes.append(helper.make_node("Identity", [final], [output_name], name="output/Identity"))

    elem = helper.np_dtype_to_tensor_dtype(dtype)
    out_elem = helper.np_dtype_to_tensor_dtype(np.dtype(tr.output.dtype))
    in_dims = ["batch" if dynamic_batch else int(batch_size)] + list(input_size)
    out_shape = tuple(tr.output.shape)
    out_dims = list(out_shape)
    if dynamic_batch and out_dims and out_dims[0] == int(batch_size):
        out_dims[0] = "batch"
    inputs = [helper.make_tensor_value_info(input_name, elem, in_dims)]
    outputs = [helper.make_tensor_value_info(output_name, out_elem, out_dims)]
    used_inits = {n for node in g.nodes for n in node.input}
    inits = [numpy_helper.from_array(a, name=n) for n, a in g.inits.items() if n in used_inits]
    graph = helper.make_graph(g.nodes, type(model).__name__, inputs, outputs, initializer=inits)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="glassnet")
    try:
        proto.ir_version = helper.find_min_ir_version_for(opsets)
    except Exception:  # pragma: no cover - very old onnx
        pass
    if bar is not None:
        bar.set_postfix_str("serialize")
    data = proto.SerializeToString()
    del proto, graph, inits
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str("check")
    if check:
        onnx.checker.check_model(data)
    if bar is not None:
        bar.update(1)
        bar.close()

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:  # written whole, then renamed: never a half-written .onnx
        f.write(data)
    os.replace(tmp, path)
    n_values = int(sum(a.size for n, a in g.inits.items() if n in used_inits))
    return ExportResult(path=path, num_nodes=len(g.nodes), num_initializers=len(used_inits & set(g.inits)),
                        num_parameters=n_values, file_size=os.path.getsize(path), opset=opset,
                        input_shape=tuple(in_dims), output_shape=tuple(out_dims))
