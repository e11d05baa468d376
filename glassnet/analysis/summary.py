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
  **start** (centre of the first output's field, in input pixels), by the
  recurrence ``r_out = r_in + (k_eff − 1)·j_in``, ``j_out = j_in·s``,
  ``start_out = start_in + ((k_eff − 1)/2 − p)·j_in``;
* for convolutions the **im2col matrices**: ``X_col`` is
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

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from ..autograd import no_grad
from ..backend import get_default_dtype
from ..tensor import Tensor
from ..errors import InvalidArgumentError, UnknownNameError

__all__ = ["summary", "ModelSummary", "LayerRow"]

FOLDED_TYPES = {"ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Dropout", "Dropout2d", "Flatten", "Identity",
                "Softmax", "LogSoftmax"}


@dataclass
class LayerRow:
    """One leaf layer of a :class:`ModelSummary` (shapes include the batch axis)."""

    name: str
    type: str
    output_shape: tuple
    activations: int
    activation_bytes: int
    weights: int = 0
    biases: int = 0
    macs: int = 0
    receptive_field: tuple = (1, 1)
    jump: tuple = (1, 1)
    start: tuple = (0.5, 0.5)
    x_col: tuple | None = None
    w_row: tuple | None = None
    tiles: bool = True
    folded: list = field(default_factory=list)
    input_shape: tuple = ()

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        return 2 * self.macs


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _window(module, in_hw, out_hw):
    """(kernel, stride, padding, dilation) pairs of a windowed layer, or None.

    An adaptive pool counts as the window that maps ``in_hw`` onto ``out_hw``:
    stride ``in // out``, kernel ``in − (out − 1)·stride``."""
    kind = type(module).__name__
    d = _pair(getattr(module, "dilation", 1))
    if kind == "Conv2d" or kind.startswith(("MaxPool", "AvgPool", "LPPool")):
        k = _pair(module.kernel_size)
        s = _pair(getattr(module, "stride", None) or module.kernel_size)
        pad = getattr(module, "padding", 0)
        if isinstance(pad, str):  # 'valid', or 'same' (stride 1): half the effective kernel
            pad = (0, 0) if pad == "valid" else tuple((dd * (kk - 1)) // 2 for kk, dd in zip(k, d))
        return k, s, _pair(pad), d
    if kind.startswith("Adaptive") and in_hw is not None:
        s = tuple(max(1, i // o) for i, o in zip(in_hw, out_hw))
        k = tuple(i - (o - 1) * st for i, o, st in zip(in_hw, out_hw, s))
        return k, s, (0, 0), (1, 1)
    return None


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


class ModelSummary:
    """The result of :func:`summary`: rows, totals, and text/Markdown/JSON views."""

    def __init__(self, model_name, input_shape, rows, totals, view, dtype):
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.rows: list[LayerRow] = rows
        self.totals: dict = totals
        self.view = view
        self.dtype = str(dtype)

    # ----------------------------------------------------------------- access
    def __getitem__(self, name) -> LayerRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise UnknownNameError(f"no layer named {name!r} in this summary")

    def to_dict(self) -> dict:
        rows = []
        for r in self.rows:
            d = asdict(r)
            d.update(params=r.params, flops=r.flops)
            rows.append(d)
        return {"model": self.model_name, "input_shape": list(self.input_shape), "view": self.view,
                "dtype": self.dtype, "layers": rows, "totals": dict(self.totals)}

    def to_json(self, indent=2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=list)

    # ----------------------------------------------------------------- tables
    _HEADERS = ["layer", "type", "output", "activations", "memory", "weights", "biases", "MACs", "RF", "jump",
                "start", "im2col X_col / W_row", "tiles"]

    def _cells(self):
        for r in self.rows:
            col = f"{_mat(r.x_col)} / {_mat(r.w_row)}" if r.x_col else ""
            kind = r.type + ("+" + "+".join(r.folded) if r.folded else "")
            yield [r.name, kind, "x".join(map(str, r.output_shape[1:])) or "-", _si(r.activations),
                   _bytes(r.activation_bytes), f"{r.weights:,}", f"{r.biases:,}", _si(r.macs),
                   _hw(r.receptive_field), _hw(r.jump), _hw(r.start), col, "" if r.tiles else "NO"]

    def _total_lines(self):
        t = self.totals
        return [
            f"input {self.input_shape}, {self.dtype}, view={self.view}",
            f"parameters: {t['params']:,} ({t['weights']:,} weights + {t['biases']:,} biases); "
            f"trainable {t['trainable_params']:,}, non-trainable {t['non_trainable_params']:,}",
            f"activations, forward: {t['activations']:,} values = {_bytes(t['activation_bytes'])} "
            f"(forward + backward ≈ {_bytes(t['train_activation_bytes'])})",
            f"MACs: {t['macs']:,} ({t['macs'] / 1e9:.3f} G), FLOPs = 2 x MACs = {t['flops'] / 1e9:.3f} G",
        ]

    def __str__(self) -> str:
        cells = list(self._cells())
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(self._HEADERS)]
        line = "  ".join(h.ljust(w) for h, w in zip(self._HEADERS, widths))
        out = [f"{self.model_name} summary", line, "-" * len(line)]
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
        out.append("-" * len(line))
        out += self._total_lines()
        return "\n".join(out)

    __repr__ = __str__

    def to_markdown(self) -> str:
        out = [f"### {self.model_name}", "", "| " + " | ".join(self._HEADERS) + " |",
               "|" + "---|" * len(self._HEADERS)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self._cells()]
        out.append("")
        out += [f"- {line}" for line in self._total_lines()]
        return "\n".join(out) + "\n"


def _mat(shape):
    return f"[{shape[0]}x{shape[1]}]"


def _hw(p):
    a, b = p
    fmt = (lambda v: f"{v:g}")
    return fmt(a) if a == b else f"{fmt(a)}x{fmt(b)}"


def _si(n):
    n = int(n)
    if n >= 10**9:
        return f"{n / 1e9:.2f}G"
    if n >= 10**6:
        return f"{n / 1e6:.2f}M"
    if n >= 10**4:
        return f"{n / 1e3:.1f}K"
    return str(n)


def _bytes(n):
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


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

    Returns a :class:`ModelSummary`; ``print`` it, or use ``to_markdown()`` /
    ``to_json()``. Totals: parameters (trainable and not), forward activation
    values and bytes (forward + backward estimated as twice that), MACs, FLOPs.

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
    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]
    rows: list[LayerRow] = []
    field_of = {}  # id(output array) -> (rf, jump, start)
    last = {"field": ((1, 1), (1, 1), (0.5, 0.5))}

    def hook_for(layer_name):
        def hook(module, inputs, output):
            x = inputs[0] if inputs else None
            x_data = x.data if isinstance(x, Tensor) else x
            in_shape = _shape_of(x_data)
            out_data = output.data if isinstance(output, Tensor) else output
            out_shape = _shape_of(out_data)
            rf, jump, start = field_of.get(id(x_data), last["field"])
            in_hw = in_shape[2:4] if len(in_shape) == 4 else None
            win = _window(module, in_hw, out_shape[2:4])
            x_col = w_row = None
            tiles = True
            if win is not None:
                k, s, p, d = win
                keff = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d))
                rf = tuple(r + (ke - 1) * j for r, ke, j in zip(rf, keff, jump))
                start = tuple(st + ((ke - 1) / 2 - pp) * j for st, ke, pp, j in zip(start, keff, p, jump))
                jump = tuple(j * ss for j, ss in zip(jump, s))
                if in_hw is not None and not type(module).__name__.startswith("Adaptive"):
                    tiles = all((n + 2 * pp - ke) % ss == 0 for n, pp, ke, ss in zip(in_hw, p, keff, s))
                if type(module).__name__ == "Conv2d":
                    c_out, cg, kh, kw = module.weight.shape
                    x_col = (cg * kh * kw, int(np.prod(out_shape[2:])))
                    w_row = (c_out, cg * kh * kw)
            field = (rf, jump, start)
            field_of[id(out_data)] = field
            last["field"] = field
            w, b = _count_params(module)
            count = int(np.prod(out_shape)) if out_shape else 1
            rows.append(LayerRow(layer_name, type(module).__name__, out_shape, count,
                                 count * np.dtype(getattr(out_data, "dtype", dtype)).itemsize, w, b,
                                 _macs(module, out_shape), rf, jump, start, x_col, w_row, tiles,
                                 input_shape=in_shape))
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in leaves]
    was_training = model.training
    model.eval()
    try:
        probe = Tensor(np.zeros((batch_size, *input_size), dtype=dtype))
        with no_grad():
            model(probe)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

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
    return ModelSummary(name or type(model).__name__, (batch_size, *input_size), rows, totals, view, dtype)


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
