"""The ops layer: pure forward/backward pairs on raw arrays (NumPy or CuPy).

One package or file per family. Each forward returns ``(out, cache)`` and each
backward takes ``(dout, cache)``; nothing here knows about ``Tensor`` or holds
module-level state. Per family: the lecture's ``reference`` implementation
(plain loops, importable, the oracle of the fast paths), one file per fast
algorithm, the algorithm selection with its measured tuning data, one frozen
argument object that normalises and validates, and a typed cache per
algorithm. See ``docs/architecture.md``.
"""
