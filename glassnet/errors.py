"""Exceptions glassnet raises for bad input: one family under :class:`GlassnetError`.

Every message names the layer, file or argument, the shapes or values
involved, and the rule that was broken, so a user never has to decode a NumPy
broadcasting error or a raw ``zipfile``/``json``/``struct`` exception.

Each class also keeps the builtin base that code catching it today expects
(``ShapeError`` is a ``ValueError``, ``RunDirError`` a ``FileNotFoundError``...),
so ``except ValueError`` still works and ``except GlassnetError`` catches them
all. The ``glassnet`` command prints any of them as one line on stderr and
exits with status 1 (2 for :class:`UsageError`).

    GlassnetError
    ├── InvalidArgumentError (ValueError)   a value outside its rule
    │   ├── ShapeError                      a shape breaks a layer's rule
    │   ├── UsageError                      a command-line option is wrong (exit status 2)
    │   └── DataFormatError                 a file is corrupt, truncated or of the wrong kind
    │       └── LimitExceededError          a file asks for more memory/depth than its limit
    ├── InvalidTypeError (TypeError)        an argument of the wrong type
    ├── UnknownNameError (KeyError)         an unknown model, layer or metric name
    ├── IndexOutOfRangeError (IndexError)   a dataset/sequence index out of range
    ├── StateDictError (RuntimeError)       a state dict does not fit a module/optimizer
    ├── GlassnetRuntimeError (RuntimeError) an operation that cannot run in this state
    └── MissingDependencyError (ImportError) an optional package is not installed

Readers' own classes (``StateDictFileError``, ``CheckpointError``,
``DatasetNotFoundError``, ``DownloadError``, ``RunDirError``...) live beside
their reader and derive from these.
"""

__all__ = ["GlassnetError", "InvalidArgumentError", "ShapeError", "UsageError", "DataFormatError",
           "LimitExceededError", "InvalidTypeError", "UnknownNameError", "IndexOutOfRangeError",
           "StateDictError", "GlassnetRuntimeError", "MissingDependencyError"]


class GlassnetError(Exception):
    """Base of every error glassnet raises for bad input or an impossible request."""


class InvalidArgumentError(GlassnetError, ValueError):
    """An argument's value breaks a rule (a negative size, an lr of inf, an unknown mode)."""


class ShapeError(InvalidArgumentError):
    """An input's shape breaks a layer's rule (wrong rank, mismatched sizes,
    a filter that does not fit)."""


class UsageError(InvalidArgumentError):
    """A command-line option or combination of options is wrong; ``glassnet`` exits with status 2."""


class DataFormatError(InvalidArgumentError):
    """A data or checkpoint file is corrupt, truncated or of the wrong kind."""


class LimitExceededError(DataFormatError):
    """Reading a file would need more than a reader's limit (bytes, nesting depth, entries).

    Attributes:
        limit_name: the limit's name as the reader's keyword takes it (e.g. ``"max_bytes"``).
        needed: what the file asked for (``None`` when unknown).
        limit: the limit in force.
    """

    def __init__(self, message, *, limit_name=None, needed=None, limit=None):
        super().__init__(message)
        self.limit_name = limit_name
        self.needed = needed
        self.limit = limit


class InvalidTypeError(GlassnetError, TypeError):
    """An argument is of a type the function does not take."""


class UnknownNameError(GlassnetError, KeyError):
    """A name (model, layer, metric, dataset) is not known; the message lists the known ones."""

    def __str__(self):  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class IndexOutOfRangeError(GlassnetError, IndexError):
    """An index is outside a dataset's or sequence's range."""


class StateDictError(GlassnetError, RuntimeError):
    """A state dict does not match a module (missing, unexpected or wrong-shape keys)."""


class GlassnetRuntimeError(GlassnetError, RuntimeError):
    """An operation cannot run in the current state (a second backward through a freed graph,
    tensors on different devices, a capture already running)."""


class MissingDependencyError(GlassnetError, ImportError):
    """An optional package a feature needs is not installed; the message names the pip extra."""
