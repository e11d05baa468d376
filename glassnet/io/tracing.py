"""Graph capture: run a model once and record what produced each tensor.

The exporter (:mod:`glassnet.io.onnx`) needs the model's dataflow
graph. glassnet builds no static graph, so we run the model once on a probe
input and record two kinds of producer:

* **modules**: a forward hook on every *leaf* module whose type the exporter
  knows (``Conv2d``, ``BatchNorm2d``, ``MaxPool2d``, ...) records
  ``(module, its input tensors)`` for the tensor it returned. The ops inside
  that module's ``forward`` are thereby collapsed into one node: the graph
  walk from the output only ever reaches the module's record;
* **ops**: :data:`glassnet.autograd.tracer` is set for the run, so every
  tensor op (``Tensor._make`` and ``apply_kernel``) reports its result, its
  parents and its :class:`~glassnet.op_record.OpRecord` (the op's name and
  its frozen argument object: what the exporter reads). This
  catches the glue that models do outside modules: residual ``+``,
  ``glassnet.cat`` in Inception, ``.flatten(1)``, ``F.relu`` called
  functionally, slicing, ...

The tracer reports in any grad mode, so the run happens under ``no_grad``
(no backward graph is kept). Every reported tensor is held alive until the
trace is dropped, so a tensor's ``id()`` is never reused inside one trace.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import autograd
from ..tensor import Tensor
from ..errors import GlassnetRuntimeError


@dataclass
class Record:
    """What produced one tensor.

    ``kind`` is ``"module"`` (then ``module``/``name`` are set) or ``"op"``
    (then ``record`` — the op's :class:`~glassnet.op_record.OpRecord`, whose
    ``args`` hold its arguments by name — and ``op`` (its name) are set;
    ``backward_fn``, ``args`` and ``kwargs`` are what the op passed the tracer
    besides: its backward closure and a kernel's positional/keyword arguments,
    for inspection only). ``inputs`` are the producer's tensor inputs in order.

    Shape: not applicable (metadata).
    """

    kind: str
    output: Tensor
    inputs: list
    op: str | None = None
    module: object = None
    name: str | None = None
    backward_fn: object = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    record: object = None  # the op's glassnet.op_record.OpRecord


class Trace:
    """The result of :func:`trace`: ``records`` maps ``id(tensor)`` to its
    :class:`Record`; ``input`` is the probe tensor, ``output`` the model's."""

    def __init__(self):
        self.records: dict[int, Record] = {}
        self.input: Tensor | None = None
        self.output = None
        self._keep: list = []  # keep every seen tensor alive: ids stay unique

    def producer(self, t: Tensor) -> Record | None:
        return self.records.get(id(t))

    # called by glassnet.autograd.tracer
    def _on_op(self, out, parents, record, backward_fn, args, kwargs):
        self._keep.append(out)
        self._keep.extend(parents)
        self.records[id(out)] = Record("op", out, list(parents), op=record.name, backward_fn=backward_fn,
                                       args=tuple(args), kwargs=dict(kwargs), record=record)

    def _module_hook(self, name):
        def hook(module, inputs, output):
            if not isinstance(output, Tensor):
                raise NotImplementedError(
                    f"ONNX export: layer {name!r} ({type(module).__name__}) returned a "
                    f"{type(output).__name__}, not a single Tensor (e.g. return_indices=True); "
                    "this cannot be exported")
            tensors = [t for t in inputs if isinstance(t, Tensor)]
            if any(output is t for t in tensors):
                return None  # Identity / eval-mode Dropout handing its input through
            self._keep.append(output)
            self._keep.extend(tensors)
            self.records[id(output)] = Record("module", output, tensors, module=module, name=name)
            return None
        return hook


def trace(model, probe: Tensor, is_leaf) -> Trace:
    """Run ``model(probe)`` once under ``no_grad`` and record every producer.

    Args:
        model: a :class:`glassnet.nn.Module` (put it in the mode you want first).
        probe: the input tensor.
        is_leaf: ``is_leaf(module) -> bool``: modules to record as single nodes.

    Returns a :class:`Trace`. ``autograd.tracer`` and the hooks are removed
    afterwards, even if the forward raises.
    """
    if autograd.tracer is not None:
        raise GlassnetRuntimeError("trace: another graph capture is already running (autograd.tracer is set)")
    tr = Trace()
    tr.input = probe
    handles = []
    try:
        for name, module in model.named_modules():  # name "" is a bare layer exported on its own
            if is_leaf(module):
                handles.append(module.register_forward_hook(tr._module_hook(name)))
        autograd.tracer = tr._on_op
        with autograd.no_grad():
            tr.output = model(probe)
    finally:
        autograd.tracer = None
        for h in handles:
            h.remove()
    return tr
