"""The conv family's settings: one frozen :class:`ConvSettings`, held in a context variable.

    >>> from glassnet.ops.conv.settings import conv_settings, current_settings
    >>> with conv_settings(winograd=False):        # im2col + GEMM only, inside the block
    ...     current_settings().winograd
    False
    >>> current_settings().winograd
    True

Nothing is a module global flipped by a setter: :func:`conv_settings` sets the context variable
for its block and restores it on exit (blocks nest; each thread and ``asyncio`` task sees its own
value). The entry points (:func:`~glassnet.ops.conv.forward.conv2d_forward`, whose cache carries
them to :func:`~glassnet.ops.conv.backward.conv2d_backward`) read the settings once and pass the
values down explicitly: context variables do not propagate into the worker threads of
:mod:`glassnet.threads`, and a backward may run after its forward's block has closed.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from dataclasses import dataclass

from ...errors import InvalidArgumentError

__all__ = ["ConvSettings", "conv_settings", "current_settings", "DEFAULT_WORKSPACE_LIMIT"]

DEFAULT_WORKSPACE_LIMIT = 256 * 2**20  # bytes of one im2col buffer


@dataclass(frozen=True)
class ConvSettings:
    """How the conv kernels run (results agree to float rounding whatever the choice).

    Attributes:
        winograd: stride-1 3×3 and 5×5 convolutions with many channels use Winograd's
            algorithms where :data:`~glassnet.ops.conv.tuning.WINOGRAD_RULES` say they pay
            (default True); False: im2col + GEMM only, the exact path (~1e-5 relative
            difference in float32).
        winograd_on_gpu: let those rules apply to CuPy arrays too (default False: on a GPU
            cuBLAS runs im2col's one GEMM faster than Winograd's many small transforms, see
            :mod:`glassnet.ops.conv.tuning`).
        cache_cols: an unchunked forward keeps X_col (or, on the Winograd path, the input
            transform V) in its cache for the backward (default True): the backward is ~20 %
            faster, at kH·kW times the input's memory per layer until the backward runs.
        workspace_limit: bytes one im2col-sized buffer (X_col, dX_col, Winograd's V) may take
            (default 256 MiB); larger convolutions work through the batch in chunks. The
            ``workspace_limit_bytes`` argument of ``conv2d_forward`` overrides it per call.
        winograd_rules: the rules to select by, ``None`` for the measured table
            :data:`~glassnet.ops.conv.tuning.WINOGRAD_RULES` (tests and ``benchmarks/tune_conv.py``
            pass their own to force an algorithm).

    Shape:
        not applicable (flags and a byte count).
    """

    winograd: bool = True
    winograd_on_gpu: bool = False
    cache_cols: bool = True
    workspace_limit: int = DEFAULT_WORKSPACE_LIMIT
    winograd_rules: tuple | None = None

    def __post_init__(self):
        limit = self.workspace_limit
        if isinstance(limit, bool) or int(limit) != limit or limit < 1:
            raise InvalidArgumentError(
                f"ConvSettings: workspace_limit must be a positive number of bytes, got {limit!r}")
        put = object.__setattr__  # frozen: normalise in place, once
        put(self, "workspace_limit", int(limit))
        for name in ("winograd", "winograd_on_gpu", "cache_cols"):
            put(self, name, bool(getattr(self, name)))
        if self.winograd_rules is not None:
            put(self, "winograd_rules", tuple(self.winograd_rules))


_SETTINGS = contextvars.ContextVar("glassnet_conv_settings", default=ConvSettings())


def current_settings() -> ConvSettings:
    """The :class:`ConvSettings` in force in this context (thread, task).

    Shape: not applicable.
    """
    return _SETTINGS.get()


@contextlib.contextmanager
def conv_settings(**changes):
    """Run a block under the current settings with ``changes`` (field names of
    :class:`ConvSettings`; ``workspace_limit=None`` restores the 256 MiB default).

    Yields the new :class:`ConvSettings`; the previous ones return on exit.

    Shape: not applicable.
    """
    if changes.get("workspace_limit", 0) is None:
        changes["workspace_limit"] = DEFAULT_WORKSPACE_LIMIT
    try:
        new = dataclasses.replace(current_settings(), **changes)
    except TypeError as e:
        fields = [f.name for f in dataclasses.fields(ConvSettings)]
        raise InvalidArgumentError(f"conv_settings: {e}; the settings are {fields}") from None
    token = _SETTINGS.set(new)
    try:
        yield new
    finally:
        _SETTINGS.reset(token)

