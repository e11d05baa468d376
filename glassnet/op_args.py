"""The frozen argument objects of the tensor, joining and functional ops.

Each op that has non-tensor arguments puts them in one of these on its
:class:`~glassnet.op_record.OpRecord` (``record.args``), so that readers of
the tape (the ONNX exporter, the model summary) get them by name instead of
from the variables a backward closure happens to capture. The conv and pool
families have their own, richer objects (:class:`glassnet.ops.conv.args.ConvArgs`,
:class:`glassnet.ops.pool.args.PoolArgs`, :class:`~glassnet.ops.pool.args.AdaptivePoolArgs`).

Arguments are stored as the op used them: dims already normalised where the
op normalises them (``permute``, ``cat``), as given otherwise (``sum``'s
``axis``, ``reshape``'s ``shape`` with its ``-1``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PowArgs:
    """``x ** exponent`` with a constant exponent (``"pow"`` with one tensor input).

    Shape: output = input's shape.
    """

    exponent: object


@dataclass(frozen=True, slots=True)
class CastArgs:
    """``astype(dtype)``: the target NumPy dtype.

    Shape: output = input's shape.
    """

    dtype: object


@dataclass(frozen=True, slots=True)
class ToArgs:
    """``to(device)``: the target device (``"cpu"`` or ``"cuda"``).

    Shape: output = input's shape.
    """

    device: str


@dataclass(frozen=True, slots=True)
class ReduceArgs:
    """``sum`` / ``max`` over ``axis`` (an int, a tuple of ints, or ``None`` = all axes).

    Shape: the reduced axes are dropped, or kept with size 1 when ``keepdims``.
    """

    axis: object = None
    keepdims: bool = False


@dataclass(frozen=True, slots=True)
class ReshapeArgs:
    """``reshape(shape)``: the shape as requested (it may hold one ``-1``).

    Shape: output = ``shape`` with the ``-1`` resolved.
    """

    shape: tuple


@dataclass(frozen=True, slots=True)
class PermuteArgs:
    """``permute(dims)``: the permutation, each dim in ``[0, ndim)``.

    Shape: output dim i = input dim ``dims[i]``.
    """

    dims: tuple


@dataclass(frozen=True, slots=True)
class IndexArgs:
    """``x[index]``: the index as NumPy receives it (ints, slices, ``None``,
    ``...``, integer/boolean arrays; tensors already replaced by their arrays).

    Shape: NumPy's indexing rules.
    """

    index: object = field(compare=False)


@dataclass(frozen=True, slots=True)
class JoinArgs:
    """``cat`` / ``stack`` along ``dim`` (normalised to be non-negative).

    Shape: ``cat`` sums the sizes along ``dim``; ``stack`` inserts a new dim there.
    """

    dim: int


@dataclass(frozen=True, slots=True)
class SoftmaxArgs:
    """``softmax`` / ``log_softmax`` along ``dim`` (as given; may be negative).

    Shape: output = input's shape.
    """

    dim: int = -1


@dataclass(frozen=True, slots=True)
class LeakyReluArgs:
    """``leaky_relu``: y = x if x > 0 else ``negative_slope`` · x.

    Shape: output = input's shape.
    """

    negative_slope: float = 0.01


@dataclass(frozen=True, slots=True)
class EluArgs:
    """``elu``: y = x if x > 0 else ``alpha`` · (eˣ − 1).

    Shape: output = input's shape.
    """

    alpha: float = 1.0


@dataclass(frozen=True, slots=True)
class DropoutArgs:
    """``dropout`` / ``dropout2d``: drop probability ``p``; identity unless ``training``.

    Shape: output = input's shape.
    """

    p: float = 0.5
    training: bool = True


@dataclass(frozen=True, slots=True)
class BatchNormArgs:
    """``batch_norm``: ``training`` (batch statistics) or not (running ones),
    ``momentum``, ``eps``, and the running-statistics arrays (or ``None``),
    which are not part of equality or ``repr``.

    Shape: running_mean, running_var (C,) for an (N, C, *) input.
    """

    training: bool = False
    momentum: float = 0.1
    eps: float = 1e-5
    running_mean: object = field(default=None, compare=False, repr=False)
    running_var: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class LRNArgs:
    """``local_response_norm``: window ``size`` (channels), ``alpha``, ``beta``, ``k``.

    Shape: output = input's shape (N, C, *).
    """

    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


@dataclass(frozen=True, slots=True)
class PadArgs:
    """``pad``: the pad tuple (last dim first, PyTorch's convention), ``mode`` and fill ``value``.

    Shape: a padded dim of size n becomes n + before + after.
    """

    pad: tuple
    mode: str = "constant"
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class LossArgs:
    """A loss's ``reduction``: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape: output () for mean/sum, per-sample for none.
    """

    reduction: str = "mean"
