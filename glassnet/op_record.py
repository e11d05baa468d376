"""What the tape remembers about one op: its name and its typed arguments.

Every tensor produced by a differentiable op carries an :class:`OpRecord`
(``tensor._op``), and graph capture (:mod:`glassnet.io.tracing`) receives the
same record for every op, in any grad mode. The ONNX exporter and
:func:`glassnet.analysis.summary` read these records — the op's name, its
frozen argument object (for example :class:`glassnet.ops.conv.args.ConvArgs`)
and the algorithm its kernel chose — instead of reading the variables a
backward closure happens to capture.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpRecord:
    """One op on the tape.

    Attributes:
        name: the op's name, PyTorch's where it has one (``"conv2d"``,
            ``"max_pool2d"``, ``"add"``, ``"pow"``, ``"reshape"``, ``"cat"``, ...).
        args: the op's non-tensor arguments as one frozen object (a dataclass
            with named fields, e.g. ``ConvArgs``), or ``None`` for ops without any.
        algorithm: which implementation ran, when the op has several (e.g.
            ``"im2col"`` or ``"winograd F(4x4,3x3)"`` for ``conv2d``), else ``None``.
            Filled in from the kernel's cache (its ``algorithm`` field).

    Shape:
        not applicable (metadata only).
    """

    name: str
    args: object = None
    algorithm: str | None = None

    def __str__(self) -> str:
        return self.name


def as_record(op) -> OpRecord:
    """``op`` as an :class:`OpRecord` (a bare name becomes a record without arguments)."""
    return op if isinstance(op, OpRecord) else OpRecord(str(op))
