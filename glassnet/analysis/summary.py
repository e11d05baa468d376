"""``summary(model)``: the lecture's architecture table, computed by running the model.

One row per leaf layer, in execution order:

* output shape and **activations** — values the layer writes (count, and
  bytes at the model's dtype), per ``batch_size`` images;
* **parameters**, weights and biases counted apart (the lecture counts
  weights without biases);
* **MACs** (multiply–accumulates) of convolution and fully connected
  layers, and **FLOPs = 2 × MACs**; other layers count 0, as in the figures
  torchvision publishes;
* **receptive field** ``r``, effective stride (**jump**) ``j`` and the
  **start** (centre of the first output's field, in input pixels) of the
  layer's output, followed op by op along the real data flow (residual
  ``+``, ``cat``, functional ``F.relu`` included) by
  :mod:`glassnet.analysis.receptive_field`: a window recurs as
  ``r_out = r_in + (k_eff − 1)·j_in``, ``j_out = j_in·s``,
  ``start_out = start_in + ((k_eff − 1)/2 − p)·j_in``; after a global pool,
  a flatten or a fully connected layer the field is "global";
* for convolutions the **algorithm** that ran (the op record's, e.g.
  ``im2col`` or a Winograd variant; ``?`` when the record does not say and
  the geometry does not decide it) and, unless it is known to be another
  algorithm, the **im2col matrices**: ``X_col`` is
  [C_in/groups·kH·kW × Ho·Wo] and ``W_row`` [C_out × C_in/groups·kH·kW]
  (AlexNet's CONV1: [363 × 3025] and [96 × 363]);
* a flag where the window does not tile the padded input
  ((N − F + 2P)/S + 1 is not an integer, so PyTorch's floor drops pixels).

``view="lecture"`` folds activation functions, dropout, flatten and adaptive
pools that change nothing (torchvision's 7×7 → 7×7 in VGG) into the layer before them and adds the input as the first row — how the lecture's
tables count memory (VGG16: ≈ 15.2M activations, 61 MB per image forward).
``view="leaves"`` lists every leaf module.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_default_dtype
from ..errors import InvalidArgumentError
from ..io.tracing import trace
from ..kernels.conv import WINOGRAD_RULES
from ..ops.conv.args import ConvArgs
from ..ops.pool.args import PoolArgs
from ..tensor import Tensor
from .receptive_field import UNKNOWN, receptive_fields
from .summary_table import LayerRow, ModelSummary

__all__ = ["summary", "ModelSummary", "LayerRow", "conv_algorithm"]

FOLDED_TYPES = {"ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Dropout", "Dropout2d", "Flatten", "Identity",
                "Softmax", "LogSoftmax"}


def _count_params(module):
    weights = biases = 0
    for name, p in module._parameters.items():
        if p is None:
            continue
        if name.endswith("bias"):
            biases += int(p.data.size)
        else:
            weights += int(p.data.size)
    return weights, biases


def _macs(module, out_shape):
    kind = type(module).__name__
    if kind == "Conv2d":
        c_out, cg, kh, kw = module.weight.shape
        return int(np.prod(out_shape)) * cg * kh * kw
    if kind == "Linear":
        return int(np.prod(out_shape)) * module.in_features
    if kind == "Maxout":
        return int(np.prod(out_shape)) * module.in_features * module.num_pieces
    return 0


def _shape_of(x):
    return tuple(x.shape) if hasattr(x, "shape") else ()


def conv_algorithm(op) -> str:
    """The algorithm a ``conv2d`` op record says it ran, else what its geometry decides.

    ``op.algorithm`` when the kernel filled it; otherwise ``"im2col"`` where no
    Winograd algorithm applies (a non-square kernel or one no rule of
    :data:`glassnet.kernels.conv.WINOGRAD_RULES` takes, stride or dilation
    other than 1, groups, or padding beyond k − 1), and ``"?"`` where the
    kernel's run-time rules (channels, sizes, workspace) would have decided.

    Shape:
        op.args is a :class:`~glassnet.ops.conv.args.ConvArgs`; returns a string.
    """
    if op.algorithm:
        return op.algorithm
    a = op.args
    kh, kw = a.kernel_size
    winograd_sizes = {rule[0] for rule in WINOGRAD_RULES}
    possible = (kh == kw and kh in winograd_sizes and tuple(a.stride) == (1, 1) and tuple(a.dilation) == (1, 1)
                and a.groups == 1 and max(a.padding) <= kh - 1)
    return "?" if possible else "im2col"


def _tiles(args, in_hw):
    """Whether the window covers the padded input exactly: (N + before + after − k_eff) % s == 0."""
    if isinstance(args, ConvArgs):
        t, b, l, r = args.padding
        pads = (t + b, l + r)
    else:
        pads = (2 * args.padding[0], 2 * args.padding[1])
    keff = [d * (k - 1) + 1 for k, d in zip(args.kernel_size, args.dilation)]
    return all((n + p - ke) % s == 0 for n, p, ke, s in zip(in_hw, pads, keff, args.stride))


def _ops_inside(tr, inputs, output):
    """The op records between a module's inputs and its output (found by walking back from the output)."""
    stop = {id(t) for t in inputs}
    seen, todo, found = set(), [output], []
    while todo:
        t = todo.pop()
        if id(t) in stop or id(t) in seen:
            continue
        seen.add(id(t))
        rec = tr.records.get(id(t))
        if rec is None:
            continue
        found.append(rec)
        todo.extend(rec.inputs)
    return found


def _window_details(records):
    """Algorithm, im2col matrices and tiling flag of a leaf module's conv / pool ops."""
    algorithm = x_col = w_row = None
    tiles = True
    for rec in records:
        args = rec.record.args if rec.record is not None else None
        in_shape = tuple(rec.inputs[0].shape) if rec.inputs else ()
        if not isinstance(args, (ConvArgs, PoolArgs)) or len(in_shape) != 4:
            continue
        tiles = tiles and _tiles(args, in_shape[2:])
        if isinstance(args, ConvArgs) and rec.record.name == "conv2d":
            algorithm = conv_algorithm(rec.record)
            if algorithm == "?" or algorithm.startswith("im2col"):
                c_out, cg, kh, kw = rec.inputs[1].shape
                x_col = (cg * kh * kw, int(np.prod(rec.output.shape[2:])))
                w_row = (c_out, cg * kh * kw)
    return algorithm, x_col, w_row, tiles


def _capture(model, probe):
    """Run ``model(probe)`` once: the op trace (no module collapsed) and every module call in order,
    as ``(name, module, is_leaf, inputs, output)``."""
    calls = []

    def hook_for(name, leaf):
        def hook(module, inputs, output):
            calls.append((name, module, leaf, inputs, output))
        return hook

    handles = [m.register_forward_hook(hook_for(n, not any(True for _ in m.children())))
               for n, m in model.named_modules()]
    try:
        tr = trace(model, probe, is_leaf=lambda m: False)
    finally:
        for h in handles:
            h.remove()
    return tr, calls


def _first_tensor(output):
    """A module's output tensor (the first one of a tuple, e.g. with ``return_indices``), or None."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((o for o in output if isinstance(o, Tensor)), None)
    return None


def _row(tr, fields, name, module, inputs, output, dtype):
    x = inputs[0] if inputs else None
    in_shape = _shape_of(x.data if isinstance(x, Tensor) else x)
    out_data = output.data if isinstance(output, Tensor) else output
    out_shape = _shape_of(out_data)
    out_t = _first_tensor(output)
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    records = _ops_inside(tr, tensors, out_t) if out_t is not None else []
    algorithm, x_col, w_row, tiles = _window_details(records)
    field = fields.get(id(out_t)) if out_t is not None else None
    kind = "unknown" if field is None else field.kind
    w, b = _count_params(module)
    count = int(np.prod(out_shape)) if out_shape else 1
    return LayerRow(name, type(module).__name__, out_shape, count,
                    count * np.dtype(getattr(out_data, "dtype", dtype)).itemsize, w, b, _macs(module, out_shape),
                    field.rf if kind == "window" else None, field.jump if kind == "window" else None,
                    field.start if kind == "window" else None, x_col, w_row, tiles, input_shape=in_shape,
                    field=kind, algorithm=algorithm)


def summary(model, input_size=(3, 224, 224), batch_size: int = 1, view: str = "leaves", dtype=None,
            name: str | None = None) -> ModelSummary:
    """Run ``model`` once on zeros of shape ``(batch_size, *input_size)`` and tabulate its leaf layers.

    Args:
        model: a ``glassnet.nn.Module``.
        input_size: one sample's shape, e.g. (3, 224, 224).
        batch_size: images per forward pass (activations and MACs scale with it).
        view: ``"leaves"`` (every leaf module) or ``"lecture"`` (activation
            functions, dropout and flatten folded into the layer before; the
            input counted as the first row).
        dtype: dtype of the probe input (default: the model's parameter dtype).
        name: the model's name in the table's title (default its class name).

    Returns a :class:`ModelSummary`; ``print`` it, or use ``to_markdown()`` /
    ``to_json()``. Totals: parameters (trainable and not), forward activation
    values and bytes (forward + backward estimated as twice that), MACs, FLOPs.
    Each row's receptive field is that of the layer's output tensor, followed
    through every op of the forward pass (see
    :mod:`glassnet.analysis.receptive_field`), so the same model gives the
    same table on every call. ``result.module_fields`` maps every module's
    name (containers too, ``""`` the model) to the
    :class:`~glassnet.analysis.receptive_field.Field` of its output (its
    last call's, for a module called more than once).

    Shape:
        the probe input is (batch_size, *input_size); ``LayerRow.output_shape``
        includes the batch axis.
    """
    if view not in ("leaves", "lecture"):
        raise InvalidArgumentError(f"summary: view must be 'leaves' or 'lecture', got {view!r}")
    params = list(model.parameters())
    if dtype is None:
        dtype = params[0].data.dtype if params else get_default_dtype()
    dtype = np.dtype(dtype)
    was_training = model.training
    model.eval()
    try:
        probe = Tensor(np.zeros((batch_size, *input_size), dtype=dtype))
        tr, calls = _capture(model, probe)
    finally:
        model.train(was_training)
    fields = receptive_fields(tr)
    rows = [_row(tr, fields, n, m, inputs, output, dtype) for n, m, leaf, inputs, output in calls if leaf]
    module_fields = {n: fields.get(id(_first_tensor(output))) or UNKNOWN for n, _, _, _, output in calls}
    del tr, calls, fields

    if view == "lecture":
        rows = _fold(rows, batch_size, input_size, dtype)
    weights = sum(r.weights for r in rows)
    biases = sum(r.biases for r in rows)
    total_params = sum(int(p.data.size) for p in params)
    trainable = sum(int(p.data.size) for p in params if p.requires_grad)
    act = sum(r.activations for r in rows)
    act_bytes = sum(r.activation_bytes for r in rows)
    macs = sum(r.macs for r in rows)
    totals = {"params": total_params, "weights": weights, "biases": biases, "trainable_params": trainable,
              "non_trainable_params": total_params - trainable,
              "buffers": sum(int(np.size(b)) for b in model.buffers()),
              "activations": act, "activation_bytes": act_bytes, "train_activation_bytes": 2 * act_bytes,
              "macs": macs, "flops": 2 * macs}
    result = ModelSummary(name or type(model).__name__, (batch_size, *input_size), rows, totals, view, dtype)
    result.module_fields = module_fields
    return result


def _fold(rows, batch_size, input_size, dtype):
    """The lecture's view: input row first, activation functions folded into the layer before."""
    count = batch_size * int(np.prod(input_size))
    out = [LayerRow("input", "Input", (batch_size, *input_size), count, count * dtype.itemsize)]
    for r in rows:
        no_op = r.type.startswith("Adaptive") and r.input_shape == r.output_shape
        if (r.type in FOLDED_TYPES or no_op) and len(out) > 1:
            prev = out[-1]
            prev.folded.append(r.type)  # same values (a flatten is a view): nothing new to store
            continue
        out.append(r)
    return out
