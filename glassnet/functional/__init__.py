"""Differentiable functions on Tensors (the autograd layer's thin wrappers).

Each function checks its arguments through its family's frozen argument
object, runs the family's forward/backward pair from :mod:`glassnet.ops`
through :func:`glassnet.tensor.apply_kernel`, and records an
:class:`~glassnet.op_record.OpRecord` on the tape. ``glassnet.nn.functional``
re-exports these under PyTorch's names.
"""
