"""Graph (shape) kernels for branching networks: concatenate, stack, pad.

Contract (every kernel module): ``<op>_forward(...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> grads``. Pure functions on raw arrays (NumPy
or CuPy, via :func:`glassnet.backend.get_array_module`); no state, no Tensor.

These ops only move values around, so their backward passes only move
gradients around: ``cat``/``stack`` split ``dL/dY`` back into the pieces the
inputs came from (the Inception "filter concatenation" in reverse), and
``pad`` crops ``dL/dY`` to the input's window (constant mode) or, for the
modes that copy input values into the border (reflect, replicate, circular),
scatter-adds each border position's gradient onto the input position it was
copied from.

Notation: ``X`` an input, ``Y`` the output, ``dY`` = ``dL/dY`` (``dout``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module

PAD_MODES = ("constant", "reflect", "replicate", "circular")


# ------------------------------------------------------------------ caches
@dataclass(frozen=True, slots=True)
class CatCache:
    """What :func:`cat_backward` needs from :func:`cat_forward`.

    Attributes:
        axis: the (non-negative) axis the inputs were joined along.
        sizes: each input's extent nᵢ along ``axis``, in order.

    Shape:
        not applicable (ints).
    """

    axis: int
    sizes: tuple


@dataclass(frozen=True, slots=True)
class StackCache:
    """What :func:`stack_backward` needs from :func:`stack_forward`.

    Attributes:
        axis: the (non-negative) new axis of the output.
        count: the number k of stacked inputs.

    Shape:
        not applicable (ints).
    """

    axis: int
    count: int


@dataclass(frozen=True, slots=True)
class PadConstantCache:
    """A ``'constant'`` :func:`pad_forward`: the input window that survived and where it landed.

    Attributes:
        shape: the input's shape.
        src: per axis, the slice of the input that was kept.
        dst: per axis, the slice of the output it was copied to.

    Shape:
        src and dst: one slice per input dim, of equal lengths.
    """

    shape: tuple
    src: tuple
    dst: tuple


@dataclass(frozen=True, slots=True, eq=False)
class PadAxisMap:
    """How one padded axis of a copying pad (reflect, replicate, circular) maps output to input.

    Output positions ``[dst_start, dst_start + width)`` copy the kept input window
    ``[src_start, src_start + width)`` one to one; output position ``border[i]``
    copies input position ``source[i]``.

    Attributes:
        axis: the padded axis.
        src_start, dst_start, width: the one-to-one window.
        border: the output positions outside the window (int array).
        source: the input position each of them copies (int array).

    Shape:
        border, source (number of border positions,).
    """

    axis: int
    src_start: int
    dst_start: int
    width: int
    border: object
    source: object


@dataclass(frozen=True, slots=True, eq=False)
class PadCopyCache:
    """A reflect / replicate / circular :func:`pad_forward`: one map per padded axis.

    Attributes:
        mode: ``'reflect'``, ``'replicate'`` or ``'circular'``.
        shape: the input's shape.
        maps: one :class:`PadAxisMap` per padded axis, in the order the forward applied them.

    Shape:
        not applicable (the input's shape and the maps).
    """

    mode: str
    shape: tuple
    maps: list


# --------------------------------------------------------------------- cat
def cat_forward(arrays, axis=0, dtype=None):
    """Y = [X₀ | X₁ | … ] joined along ``axis``.

    Shape: every Xᵢ has the same shape except along ``axis``; Y has the
    common shape with ``axis`` of size Σᵢ Xᵢ.shape[axis]. ``dtype`` (optional)
    is the dtype every input is converted to first (the caller decides it;
    this kernel never picks one).
    """
    arrays = list(arrays)
    xp = get_array_module(*arrays)
    if dtype is not None:
        arrays = [a if a.dtype == dtype else a.astype(dtype) for a in arrays]
    ax = axis % arrays[0].ndim
    sizes = [int(a.shape[ax]) for a in arrays]
    out = xp.concatenate(arrays, axis=ax)
    return out, CatCache(ax, tuple(sizes))


def cat_backward(dout, cache):
    """dL/dXᵢ = dY[…, oᵢ : oᵢ + nᵢ, …] along ``axis``, with nᵢ = Xᵢ.shape[axis]
    and oᵢ = n₀ + … + nᵢ₋₁: the upstream gradient split at the offsets
    (a concatenation is a copy gate for each piece). Returns a tuple of views.
    """
    ax = cache.axis
    grads, start = [], 0
    for n in cache.sizes:
        index = (slice(None),) * ax + (slice(start, start + n),)
        grads.append(dout[index])
        start += n
    return tuple(grads)


# ------------------------------------------------------------------- stack
def stack_forward(arrays, axis=0, dtype=None):
    """Y[…, i, …] = Xᵢ: equal-shape inputs stacked along a new ``axis``.

    Shape: every Xᵢ has shape S; Y has S with a new dim of size k (the number
    of inputs) inserted at ``axis`` (``-1`` means after the last dim).
    """
    arrays = list(arrays)
    xp = get_array_module(*arrays)
    if dtype is not None:
        arrays = [a if a.dtype == dtype else a.astype(dtype) for a in arrays]
    ax = axis % (arrays[0].ndim + 1)
    out = xp.stack(arrays, axis=ax)
    return out, StackCache(ax, len(arrays))


def stack_backward(dout, cache):
    """dL/dXᵢ = dY[…, i, …] (index ``i`` along ``axis``): the gradient slab
    each input was copied into. Returns a tuple of views."""
    lead = (slice(None),) * cache.axis
    return tuple(dout[lead + (i,)] for i in range(cache.count))


# --------------------------------------------------------------------- pad
def _pad_pairs(pad, ndim):
    """PyTorch's flat pad tuple (last dim first) as {axis: (before, after)}."""
    return {ndim - 1 - k: (int(pad[2 * k]), int(pad[2 * k + 1])) for k in range(len(pad) // 2)}


def _source_index(xp, n, before, after, mode):
    """For each output position j along one axis, the input position it copies.

    j runs over n + before + after positions; i = j − before is the position
    in input coordinates (negative pads just shift/shorten the range). Then
    reflect: i < 0 → −i, i > n−1 → 2(n−1) − i (mirror without repeating the
    edge); replicate: clip(i, 0, n−1); circular: wrap inside the kept window
    [lo, hi) = [max(−before, 0), n − max(−after, 0)] (PyTorch crops first).
    """
    m = n + before + after
    i = xp.arange(m) - before
    if mode == "reflect":
        i = xp.abs(i)
        i = (n - 1) - xp.abs((n - 1) - i)
    elif mode == "replicate":
        i = xp.clip(i, 0, n - 1)
    elif mode == "circular":
        lo, hi = max(-before, 0), n - max(-after, 0)
        i = lo + (xp.arange(m) - max(before, 0)) % (hi - lo)
    return i


def _index_add(target, index, values):
    """target[index] += values along axis 0, summing repeated indices."""
    xp = get_array_module(target)
    if hasattr(xp.add, "at"):
        xp.add.at(target, index, values)
    else:  # pragma: no cover - GPU only (CuPy has no ufunc.at)
        import cupyx

        cupyx.scatter_add(target, index, values)


def pad_forward(x, pad, mode="constant", value=0.0):
    """Pad (or, with negative entries, crop) the last ``len(pad)//2`` dims.

    ``pad`` follows ``torch.nn.functional.pad``: last dim first,
    ``(left, right, top, bottom, front, back, …)``. Modes:

    * ``'constant'``: new border positions hold ``value``;
    * ``'reflect'``:  mirror about the edge, edge not repeated
      (``[a b c]`` padded by 2 on the left → ``c b | a b c``);
    * ``'replicate'``: repeat the edge value;
    * ``'circular'``: wrap around (after cropping, as PyTorch does).

    Shape: dims padded by (before, after) go from n to n + before + after;
    other dims are unchanged. Validation of the pad sizes is the caller's job
    (:func:`glassnet.nn.functional.pad`).
    """
    xp = get_array_module(x)
    pairs = _pad_pairs(pad, x.ndim)
    if mode == "constant":
        out_shape = tuple(n + sum(pairs.get(a, (0, 0))) for a, n in enumerate(x.shape))
        out = xp.full(out_shape, value, dtype=x.dtype)
        src, dst = _constant_windows(x.shape, pairs)
        if all(s.stop > s.start for s in src):
            out[dst] = x[src]
        return out, PadConstantCache(x.shape, src, dst)
    maps = []
    out = x
    for a in sorted(pairs):
        n, (before, after) = x.shape[a], pairs[a]
        idx = _source_index(xp, n, before, after, mode)
        out = xp.take(out, idx, axis=a)
        # output positions [d0, d0 + w) copy the kept input window [s0, s0 + w)
        # one to one; only the border positions outside it can repeat a source
        # (empty when a crop removes more than the dim holds, as replicate allows)
        m = idx.shape[0]
        s0, d0 = max(-before, 0), min(max(before, 0), m)
        w = max(n - s0 - max(-after, 0), 0)
        border = xp.concatenate([xp.arange(d0), xp.arange(d0 + w, m)])
        maps.append(PadAxisMap(a, s0, d0, w, border, idx[border]))
    return out, PadCopyCache(mode, x.shape, maps)


def _constant_windows(shape, pairs):
    """The input window that survives and where it lands in the output.

    Per padded axis with (before, after): the input keeps
    [max(−before, 0), n − max(−after, 0)) and lands at max(before, 0).
    """
    src, dst = [], []
    for a, n in enumerate(shape):
        before, after = pairs.get(a, (0, 0))
        s0, s1 = max(-before, 0), n - max(-after, 0)
        s1 = max(s1, s0)
        d0 = max(before, 0)
        src.append(slice(s0, s1))
        dst.append(slice(d0, d0 + (s1 - s0)))
    return tuple(src), tuple(dst)


def pad_backward(dout, cache):
    """dL/dX for :func:`pad_forward`.

    * constant: dX = dY cropped to the window the input landed in
      (dX[kept] = dY[landed], zero on input positions cropped away); the
      border only saw the constant, so its gradient is dropped.
    * reflect / replicate / circular: Y[j] = X[s(j)] along each padded axis
      (``s`` = the source map of :func:`_source_index`), so
      dX[i] = Σ_{j : s(j) = i} dY[j] — a scatter-add of every output
      position's gradient onto the input position it copied: interior
      positions get their own gradient plus those of their mirror images
      (reflect), the edge gets the whole border strip (replicate), or the
      wrapped copy (circular). Per padded axis (undone in reverse order) the
      one-to-one window is a slice copy and the border one vectorised
      scatter-add.
    """
    xp = get_array_module(dout)
    if isinstance(cache, PadConstantCache):
        dx = xp.zeros(cache.shape, dtype=dout.dtype)
        if all(s.stop > s.start for s in cache.src):
            dx[cache.src] = dout[cache.dst]
        return dx
    g = dout
    for m in reversed(cache.maps):
        a, s0, d0, w = m.axis, m.src_start, m.dst_start, m.width
        gm = xp.moveaxis(g, a, 0)
        acc = xp.zeros((cache.shape[a],) + gm.shape[1:], dtype=dout.dtype)
        acc[s0 : s0 + w] = gm[d0 : d0 + w]  # the one-to-one window: a plain copy
        if m.border.shape[0]:
            _index_add(acc, m.source, gm[m.border])  # the copied border: scatter-add
        g = xp.moveaxis(acc, 0, a)
    return g
