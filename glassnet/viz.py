"""Pictures of a training run: learning curves, confusion matrix, first-layer filters, activation maps.

    from glassnet import viz
    viz.plot_curves(history_rows, "curves.png")
    viz.plot_confusion_matrix(cm, class_names, "confusion_matrix.png")
    viz.plot_filters(model_conv.weight.data, "filters.png")
    viz.plot_activations(feature_maps, "activations_conv1.png", title="conv1")

matplotlib is optional (``pip install glassnet[plot]``) and imported only
when a function here is called. Figures are built with the object-oriented
API on the non-interactive Agg canvas (no ``pyplot``, no global backend
switch), so this works on headless machines and leaves a notebook's
backend alone. Every function takes NumPy arrays and writes one PNG.
"""
from __future__ import annotations

import math
import os

import numpy as np
from .errors import InvalidArgumentError, MissingDependencyError

__all__ = ["plot_curves", "plot_confusion_matrix", "plot_filters", "filter_mosaic", "plot_activations", "grid_shape",
           "normalize_per_map", "require_matplotlib", "MatplotlibMissingError"]


class MatplotlibMissingError(MissingDependencyError):
    """matplotlib is not installed."""


def require_matplotlib():
    """Import matplotlib's Figure and Agg canvas, or raise :class:`MatplotlibMissingError`
    saying how to install it."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MatplotlibMissingError(
            f"plotting needs matplotlib, which is not installed ({exc}); install it with: "
            "pip install glassnet[plot]") from exc
    return Figure, FigureCanvasAgg


def _figure(figsize):
    """A new matplotlib Figure on an Agg canvas (headless; pyplot's state untouched)."""
    Figure, FigureCanvasAgg = require_matplotlib()
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    """(rows, cols) of a near-square grid holding ``n`` tiles, at most ``max_cols`` wide."""
    cols = max(1, min(max_cols, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def normalize_per_map(maps) -> np.ndarray:
    """Scale each map (first axis) to [0, 1] on its own; a constant map becomes 0.5."""
    a = np.asarray(maps, dtype=np.float64)
    flat = a.reshape(len(a), -1)
    lo = flat.min(axis=1).reshape((-1,) + (1,) * (a.ndim - 1))
    hi = flat.max(axis=1).reshape((-1,) + (1,) * (a.ndim - 1))
    span = hi - lo
    return np.where(span > 0, (a - lo) / np.where(span > 0, span, 1), 0.5)


def plot_curves(history, path, title: str | None = None) -> str:
    """Loss and accuracy vs epoch, train and (when present) validation; ``history`` is a list of dicts."""
    rows = list(history)
    if not rows:
        raise InvalidArgumentError("plot_curves: the history is empty (no epochs)")
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    fig = _figure((10, 4))
    for k, (metric, label) in enumerate((("loss", "loss"), ("accuracy", "accuracy"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for split, style in (("train", "-o"), ("val", "-s")):
            vals = [r.get(f"{split}_{metric}") for r in rows]
            pts = [(e, v) for e, v in zip(epochs, vals) if v is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, markersize=3, label=f"{split} {label}")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(cm, class_names, path, title: str | None = None) -> str:
    """Counts of (true class, predicted class), rows = truth, with the counts written in the cells."""
    cm = np.asarray(cm)
    n = cm.shape[0]
    names = list(class_names)[:n] + [str(i) for i in range(len(class_names), n)]
    side = max(5.0, 0.6 * n + 2)
    fig = _figure((side + 1, side))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 30:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > threshold else "black")
    total = cm.sum()
    acc = np.trace(cm) / total if total else float("nan")
    ax.set_title(title or f"confusion matrix (accuracy {acc:.4f}, {int(total)} images)")
    return _save(fig, path)


def filter_mosaic(weight, max_filters: int = 96, cols: int | None = None, pad: int = 1):
    """The conv filters (C_out, C_in, kH, kW) tiled into one picture, as the lecture draws AlexNet's.

    Each filter is min-max normalised to [0, 1] on its own (over all its input
    channels together, so its colours keep their balance). C_in = 3 gives an RGB
    mosaic (rows, cols, 3); C_in = 1 a grayscale one; other C_in the mean over the
    input channels. Tiles are ``pad`` pixels apart on a white background, ``cols`` per
    row (default: the narrowest grid of at least ``sqrt(n)`` columns that the filters fill
    exactly -- AlexNet's 96 in 8 rows of 12 -- at most 16 wide).

    Returns ``(mosaic, shown, note)``: the float64 picture in [0, 1], the number of
    filters drawn (at most ``max_filters``) and a note for the title ("" or
    " (mean over C input channels)").

    Shape:
        - weight: (C_out, C_in, kH, kW)
        - mosaic: (rows·(kH+pad)−pad, cols·(kW+pad)−pad[, 3])
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise InvalidArgumentError(f"plot_filters: expected a conv weight (C_out, C_in, kH, kW), got shape {w.shape}")
    c_in = w.shape[1]
    w = w[:max_filters]
    note = ""
    if c_in == 3:
        tiles = normalize_per_map(w).transpose(0, 2, 3, 1)  # (n, kH, kW, 3)
    else:
        if c_in != 1:
            note = f" (mean over {c_in} input channels)"
        tiles = normalize_per_map(w.mean(axis=1))  # (n, kH, kW)
    n, kh, kw = tiles.shape[:3]
    if cols is None:  # the narrowest full grid at least square, e.g. 96 -> 8 x 12, else near-square
        side = math.ceil(math.sqrt(n))
        cols = next((c for c in range(side, 17) if n % c == 0), min(side, 16))
    rows = math.ceil(n / cols)
    shape = (rows * (kh + pad) - pad, cols * (kw + pad) - pad) + tiles.shape[3:]
    mosaic = np.ones(shape)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        mosaic[r * (kh + pad):r * (kh + pad) + kh, c * (kw + pad):c * (kw + pad) + kw] = tile
    return mosaic, n, note


def plot_filters(weight, path, title: str | None = None, max_filters: int = 96) -> str:
    """The first conv layer's filters (C_out, C_in, kH, kW) as one mosaic (:func:`filter_mosaic`),
    each normalised to [0, 1] on its own: C_in = 3 in colour (RGB), C_in = 1 in gray, otherwise
    the mean over the input channels (the title says so)."""
    mosaic, shown, note = filter_mosaic(weight, max_filters)
    c_out, _, kh, kw = np.shape(weight)
    height, width = mosaic.shape[:2]
    scale = 10.0 / max(height, width)  # the longer side 10 inches
    fig = _figure((max(3.0, width * scale), max(2.0, height * scale) + 0.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(mosaic, cmap=None if mosaic.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    count = f"first {shown} of {c_out}" if shown < c_out else f"{c_out}"
    colour = ", RGB" if mosaic.ndim == 3 else ""
    ax.set_title((title or "first conv layer filters") + f": {count} filters {kh}×{kw}{colour}" + note)
    return _save(fig, path)


def plot_activations(maps, path, title: str | None = None, image=None, max_maps: int = 64) -> str:
    """A grid of one image's activation maps (C, H, W), each normalised on its own; ``image``
    (H, W) or (C, H, W), if given, is drawn first."""
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise InvalidArgumentError(f"plot_activations: expected maps of shape (C, H, W), got {a.shape}")
    c = a.shape[0]
    a = a[:max_maps]
    tiles = list(normalize_per_map(a))
    labels = [f"ch {i}" for i in range(len(tiles))]
    if image is not None:
        img = np.asarray(image, dtype=np.float64)
        if img.ndim == 3:
            img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
        tiles.insert(0, normalize_per_map(img[None])[0])
        labels.insert(0, "input")
    rows, cols = grid_shape(len(tiles))
    fig = _figure((1.4 * cols, 1.5 * rows + 0.6))
    for k, (tile, label) in enumerate(zip(tiles, labels)):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(tile, cmap=None if tile.ndim == 3 else ("gray" if label == "input" else "viridis"),
                  interpolation="nearest")
        ax.set_title(label, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    shown = f"first {len(a)} of {c}" if len(a) < c else f"{c}"
    fig.suptitle((title or "activations") + f": {shown} maps {a.shape[1]}×{a.shape[2]}")
    return _save(fig, path)
