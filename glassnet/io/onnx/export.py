"""Export a glassnet model to ONNX.

    from glassnet.io.onnx import export_onnx
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

The package: :mod:`.export` (this driver), :mod:`.graph` (the graph
builder), :mod:`.ops` (one emitter per tape op name, reading the op's
:class:`~glassnet.op_record.OpRecord`), :mod:`.modules` (one converter per
leaf layer), :mod:`.emit` (the node patterns both share). Spatial sizes are
fixed at export (see :mod:`.emit` for pooling's ``ceil_mode``).

Needs the ``onnx`` package (``pip install glassnet[onnx]``); running the
result needs ``onnxruntime`` or any ONNX runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ...backend import get_default_dtype
from ...errors import InvalidArgumentError, MissingDependencyError
from ...tensor import Tensor
from .. import tracing
from .graph import Graph
from .modules import find_converter, module_converters
from .ops import convert_op

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
    """What :func:`export_onnx` wrote.

    Shape: ``input_shape`` / ``output_shape`` are the graph's, with ``"batch"``
    for a dynamic batch axis.
    """

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


def topological(trace):
    """Records reachable from the output, producers before consumers (iterative DFS).

    Shape: not applicable (a list of :class:`~glassnet.io.tracing.Record`).
    """
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

    Shape: graph input (batch, *input_size), ``batch`` symbolic with
    ``dynamic_batch`` (else ``batch_size``); output as the model's.

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
    from ...random import get_rng

    probe = Tensor(get_rng().standard_normal((int(batch_size),) + input_size).astype(dtype))
    table = module_converters()
    tr = tracing.trace(model, probe, lambda m: find_converter(table, m) is not None)
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

    g = Graph(helper, numpy_helper, opset, tr, param_names, input_name=input_name)
    g.used.add(output_name)
    order = topological(tr)
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
            conv = find_converter(table, rec.module)
            out = conv(g, rec, g.value(rec.inputs[0]), base, prefix)
        else:
            out = convert_op(g, rec, f"{rec.op}_{i}")
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
