"""A run's per-epoch metrics (:class:`History`) and the atomic text writes of its files.

    history = History()
    history.append({"epoch": 1, "lr": 0.05, "train_loss": 0.61, "train_accuracy": 0.78})
    history.save("runs/mlp")          # history.json and history.csv, each written atomically
"""
from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["History", "write_text_atomic"]


class History:
    """Per-epoch metrics of a run: a list of dicts with the same keys.

    Keys: ``epoch`` (1-based), ``lr``, ``train_loss``, ``train_accuracy``,
    ``val_loss`` and ``val_accuracy`` (when validating), ``epoch_time_s``,
    ``images_per_s``.
    """

    def __init__(self, rows=None):
        self.rows: list[dict] = list(rows or [])

    def append(self, row: dict) -> None:
        """Add one epoch's row (a copy of ``row``)."""
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def column(self, key: str) -> list:
        """The values of one metric over the epochs (``None`` where absent)."""
        return [row.get(key) for row in self.rows]

    def to_json(self, path) -> None:
        """Write the rows to ``path`` as a JSON list (indent 2)."""
        write_text_atomic(path, json.dumps(self.rows, indent=2) + "\n")

    def to_csv(self, path) -> None:
        """Write the rows to ``path`` as CSV: one column per key in order of first appearance,
        floats by ``repr`` (exact), absent values empty."""
        keys = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        lines = [",".join(keys)]
        for row in self.rows:
            lines.append(",".join("" if row.get(k) is None else _fmt(row[k]) for k in keys))
        write_text_atomic(path, "\n".join(lines) + "\n")

    @classmethod
    def from_json(cls, path) -> "History":
        """The history saved by :meth:`to_json` at ``path``."""
        with open(path) as f:
            return cls(json.load(f))

    def save(self, out_dir) -> None:
        """Write ``history.json`` and ``history.csv`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.to_json(out / "history.json")
        self.to_csv(out / "history.csv")


def _fmt(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.tmp`` (fsynced, then renamed over ``path``).

    The temporary's name ``NAME.tmp`` is the one :func:`glassnet.io.run_dir.clear_run_dir`
    removes with a run's files; a kill leaves ``NAME`` whole (old or new), never torn.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
