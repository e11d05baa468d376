"""Exceptions glassnet raises for bad input.

Every message names the layer (or file), the shapes or values involved, and the
rule that was broken, so a user never has to decode a NumPy broadcasting error.
"""


class ShapeError(ValueError):
    """An input's shape breaks a layer's rule (wrong rank, mismatched sizes,
    a filter that does not fit)."""


class DataFormatError(ValueError):
    """A data or checkpoint file is corrupt, truncated or of the wrong kind."""


class StateDictError(RuntimeError):
    """A state dict does not match a module (missing, unexpected or wrong-shape keys)."""
