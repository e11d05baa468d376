"""The ONNX graph under construction: nodes, initializers, value names."""
from __future__ import annotations

import numpy as np

from ...backend import to_numpy
from ...tensor import Tensor


class Graph:
    """Collects nodes and initializers; maps traced tensors to ONNX value names.

    Args:
        helper, numpy_helper: ``onnx.helper`` and ``onnx.numpy_helper``.
        opset: the target opset (some ops take their axes as inputs from 13/18 on).
        trace: the :class:`~glassnet.io.tracing.Trace` being converted.
        param_names: ``id(parameter or its array) -> dotted state_dict name``.
        input_name: the graph input's name.

    Shape: not applicable (a value name stands for a tensor of any shape).
    """

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
