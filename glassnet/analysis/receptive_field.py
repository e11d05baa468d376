"""Receptive fields along the real data flow: one rule per op on the tape.

:func:`receptive_fields` walks the op records of a :class:`~glassnet.io.tracing.Trace`
in execution order and gives every tensor that depends on the probe input a
:class:`Field`: per spatial axis (H, W) the **receptive field** ``rf`` (how
many input pixels one output unit sees), the **jump** ``j`` (input pixels
between neighbouring output units) and the **start** (centre of unit 0's
field, in input pixel coordinates: pixel ``i`` covers ``[i, i + 1)``, so the
input itself has ``rf = 1, j = 1, start = 0.5``). Unit ``u`` then sees the
pixels ``[start + u·j − rf/2, start + u·j + rf/2)``.

Rules, by op (``args`` is the op record's argument object):

* **windows** — ``conv2d`` (:class:`~glassnet.ops.conv.args.ConvArgs`), ``max_pool2d``,
  ``avg_pool2d``, ``lp_pool2d`` (:class:`~glassnet.ops.pool.args.PoolArgs`), with
  ``k_eff = d·(k − 1) + 1`` and ``p`` the padding *before* the axis (top, left)::

      rf_out    = rf_in + (k_eff − 1)·j_in
      j_out     = j_in·s
      start_out = start_in + ((k_eff − 1)/2 − p)·j_in

* ``pad``: ``start_out = start_in − before·j_in`` (``rf`` and ``j`` unchanged);
* **adaptive pools**: output size = input size is the identity; a 1×1 output
  is **global**; an input size the output size divides is the window
  ``k = s = in/out``; otherwise the windows are unequal and the field is
  global;
* ``linear``, ``matmul``, ``maxout``, and reductions (``sum``, ``max``, ``mean``)
  that remove the spatial axes: **global** (every output sees the whole input);
  ``reshape`` keeps the field when the trailing (H, W) axes stay as they are,
  and makes it global when the result has at most 2 axes (a flatten);
* **everything else** whose output keeps the inputs' trailing (H, W) sizes
  (``add``, ``mul``, ``relu``, ``batch_norm``, ``dropout``, ``cat`` along
  channels, ...): the **union** of its inputs' fields, per axis: unit 0's
  intervals ``[start − rf/2, start + rf/2)`` are joined, so
  ``rf = max(hi) − min(lo)``, ``start = (max(hi) + min(lo))/2``. With centred
  inputs (equal starts, as in ResNet's residual add and GoogLeNet's ``cat``)
  this is the input with the largest ``rf``. The inputs must share the jump;
  a global input makes the output global;
* anything else (a shape-changing op without a rule): unknown (``"?"``).

Tensors that do not depend on the input (weights, constants) have no field
and take no part in a union. ``tests/test_receptive_field.py`` checks these
rules against receptive fields measured by back-propagation.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ops.conv.args import ConvArgs
from ..ops.pool.args import AdaptivePoolArgs, PoolArgs

__all__ = ["Field", "INPUT_FIELD", "GLOBAL", "UNKNOWN", "receptive_fields", "op_field"]

_GLOBAL_OPS = {"linear", "matmul", "maxout"}
_REDUCTIONS = {"sum", "max", "mean", "min"}


@dataclass(frozen=True)
class Field:
    """The receptive field of one tensor's units.

    Attributes:
        kind: ``"window"`` (the numbers below hold), ``"global"`` (every unit
            sees the whole input) or ``"unknown"``.
        rf: (rf_H, rf_W) in input pixels (``None`` unless a window).
        jump: (j_H, j_W), input pixels between neighbouring units.
        start: (start_H, start_W), centre of unit 0's field.

    Shape:
        per spatial axis (H, W) of a (N, C, H, W) tensor; unit ``u`` sees
        ``[start + u·jump − rf/2, start + u·jump + rf/2)``.
    """

    kind: str = "window"
    rf: tuple | None = (1, 1)
    jump: tuple | None = (1, 1)
    start: tuple | None = (0.5, 0.5)


INPUT_FIELD = Field()
GLOBAL = Field("global", None, None, None)
UNKNOWN = Field("unknown", None, None, None)


def _window(field, kernel, stride, before, dilation):
    """The window recurrence, per axis (see the module docstring)."""
    if field.kind != "window":
        return field
    keff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    rf = tuple(r + (ke - 1) * j for r, ke, j in zip(field.rf, keff, field.jump))
    start = tuple(st + ((ke - 1) / 2 - p) * j for st, ke, p, j in zip(field.start, keff, before, field.jump))
    jump = tuple(j * s for j, s in zip(field.jump, stride))
    return Field("window", rf, jump, start)


def _union(fields):
    """The union of the fields of same-sized tensors (see the module docstring)."""
    if not fields:
        return None
    kinds = {f.kind for f in fields}
    if "unknown" in kinds:
        return UNKNOWN
    if "global" in kinds:
        return GLOBAL
    if len(fields) == 1 or all(f == fields[0] for f in fields[1:]):
        return fields[0]
    if any(f.jump != fields[0].jump for f in fields[1:]):
        return UNKNOWN
    lo = tuple(min(f.start[a] - f.rf[a] / 2 for f in fields) for a in range(2))
    hi = tuple(max(f.start[a] + f.rf[a] / 2 for f in fields) for a in range(2))
    rf = tuple(_num(h - l) for h, l in zip(hi, lo))
    start = tuple((h + l) / 2 for h, l in zip(hi, lo))
    return Field("window", rf, fields[0].jump, start)


def _num(v):
    return int(v) if float(v).is_integer() else v


def _hw(shape):
    return tuple(shape[-2:]) if len(shape) >= 3 else None


def _adaptive(field, in_shape, out_shape):
    in_hw, out_hw = _hw(in_shape), _hw(out_shape)
    if in_hw is None or out_hw is None:
        return UNKNOWN
    if in_hw == out_hw:
        return field
    if out_hw == (1, 1) or any(i % o for i, o in zip(in_hw, out_hw)):
        return GLOBAL if field.kind != "unknown" else field
    k = tuple(i // o for i, o in zip(in_hw, out_hw))
    return _window(field, k, k, (0, 0), (1, 1))


def _pad(field, pads):
    if field.kind != "window":
        return field
    before_w = pads[0] if len(pads) >= 2 else 0
    before_h = pads[2] if len(pads) >= 4 else 0
    start = (field.start[0] - before_h * field.jump[0], field.start[1] - before_w * field.jump[1])
    return Field("window", field.rf, field.jump, start)


def op_field(record, inputs, out_shape):
    """The field of one op's output from its inputs' fields.

    Args:
        record: the op's :class:`~glassnet.io.tracing.Record` (its ``record``
            is the :class:`~glassnet.op_record.OpRecord`; ``args`` the
            kernel's extra positional arguments).
        inputs: ``[(field or None, shape), ...]`` for the op's tensor inputs
            in order (``None``: does not depend on the probe input).
        out_shape: the output's shape.

    Returns a :class:`Field`, or ``None`` when no input depends on the probe.

    Shape:
        fields per (H, W) axis of (N, C, H, W) tensors (see :class:`Field`).
    """
    known = [(f, s) for f, s in inputs if f is not None]
    if not known:
        return None
    op = record.record
    name = op.name if op is not None else record.op
    args = op.args if op is not None else None
    first, first_shape = known[0]
    if isinstance(args, ConvArgs) and name == "conv2d":
        t, _, l, _ = args.padding
        return _window(inputs[0][0] or first, args.kernel_size, args.stride, (t, l), args.dilation)
    if isinstance(args, PoolArgs):
        return _window(first, args.kernel_size, args.stride, args.padding, args.dilation)
    if isinstance(args, AdaptivePoolArgs):
        return _adaptive(first, first_shape, out_shape)
    if first.kind == "unknown" and len(known) == 1:
        return UNKNOWN
    if name in _GLOBAL_OPS:
        return _union([GLOBAL] + [f for f, _ in known if f.kind == "unknown"])
    if name == "pad" and record.args:
        return _pad(first, tuple(record.args[0]))
    same = all(_hw(s) is not None and _hw(out_shape) == _hw(s) for _, s in known)
    if name == "reshape":
        if same:
            return first
        return GLOBAL if len(out_shape) <= 2 and first.kind != "unknown" else UNKNOWN
    if name in _REDUCTIONS and not same:
        return GLOBAL if first.kind != "unknown" else UNKNOWN
    if same or all(f.kind == "global" for f, _ in known):
        return _union([f for f, _ in known])
    if len(out_shape) <= 2 and all(len(s) <= 2 for _, s in known):  # (N, features) tensors: no spatial axes
        return _union([f for f, _ in known])
    return UNKNOWN


def receptive_fields(trace) -> dict:
    """``{id(tensor): Field}`` for the probe input and every traced op output that depends on it.

    ``trace`` is a :class:`~glassnet.io.tracing.Trace` captured with no
    module collapsed (``is_leaf`` false for every module), so every op is a
    record; records are visited in execution order.

    Shape:
        see :class:`Field`.
    """
    fields = {id(trace.input): INPUT_FIELD}
    for key, rec in trace.records.items():
        if rec.kind != "op":
            continue
        inputs = [(fields.get(id(t)), tuple(t.shape)) for t in rec.inputs]
        field = op_field(rec, inputs, tuple(rec.output.shape))
        if field is not None:
            fields[key] = field
    return fields
