"""The rows of :func:`glassnet.analysis.summary.summary` and their text, Markdown and JSON views."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field

from ..errors import UnknownNameError

__all__ = ["ModelSummary", "LayerRow"]


@dataclass
class LayerRow:
    """One leaf layer of a :class:`ModelSummary`.

    ``field`` is ``"window"`` when ``receptive_field``, ``jump`` and ``start``
    hold numbers (see :class:`glassnet.analysis.receptive_field.Field`),
    ``"global"`` when every output sees the whole input (after a global pool,
    a flatten or a fully connected layer) and ``"unknown"`` otherwise; then
    the three are ``None``. ``algorithm`` is the convolution algorithm that
    ran (``"im2col"``, ``"winograd ..."``, or ``"?"`` when the op record does
    not say and the geometry does not decide it), ``None`` for other layers;
    ``x_col``/``w_row`` are the im2col matrices, left out (``None``) for
    convolutions that ran another algorithm.

    Shape:
        ``output_shape`` and ``input_shape`` include the batch axis;
        ``x_col`` is (C_in/groups·kH·kW, Ho·Wo), ``w_row`` (C_out, C_in/groups·kH·kW).
    """

    name: str
    type: str
    output_shape: tuple
    activations: int
    activation_bytes: int
    weights: int = 0
    biases: int = 0
    macs: int = 0
    receptive_field: tuple | None = (1, 1)
    jump: tuple | None = (1, 1)
    start: tuple | None = (0.5, 0.5)
    x_col: tuple | None = None
    w_row: tuple | None = None
    tiles: bool = True
    folded: list = dc_field(default_factory=list)
    input_shape: tuple = ()
    field: str = "window"
    algorithm: str | None = None

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        return 2 * self.macs


class ModelSummary:
    """The result of :func:`~glassnet.analysis.summary.summary`: rows, totals, and text/Markdown/JSON views.

    ``str(s)`` is the table, ``s.to_markdown()`` the same as Markdown,
    ``s.to_dict()`` / ``s.to_json()`` every row's fields; ``s["features.0"]``
    is the row of that layer.

    Shape:
        ``input_shape`` is the probe's (batch_size, *input_size); rows as
        :class:`LayerRow`.
    """

    def __init__(self, model_name, input_shape, rows, totals, view, dtype):
        self.model_name = model_name
        self.input_shape = tuple(input_shape)
        self.rows: list[LayerRow] = rows
        self.totals: dict = totals
        self.view = view
        self.dtype = str(dtype)
        self.module_fields: dict = {}  # module name -> Field of its output, filled in by summary()

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
                "start", "algorithm", "im2col X_col / W_row", "tiles"]

    def _cells(self):
        for r in self.rows:
            col = f"{_mat(r.x_col)} / {_mat(r.w_row)}" if r.x_col else ""
            kind = r.type + ("+" + "+".join(r.folded) if r.folded else "")
            yield [r.name, kind, "x".join(map(str, r.output_shape[1:])) or "-", _si(r.activations),
                   _bytes(r.activation_bytes), f"{r.weights:,}", f"{r.biases:,}", _si(r.macs),
                   *_field_cells(r), r.algorithm or "", col, "" if r.tiles else "NO"]

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


def _field_cells(row):
    """The RF, jump and start cells: numbers, or "global" / "?" in the RF cell."""
    if row.field == "window":
        return [_hw(row.receptive_field), _hw(row.jump), _hw(row.start)]
    return ["global" if row.field == "global" else "?", "", ""]


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


