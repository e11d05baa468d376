"""``apply_kernel``: run a kernel pair (forward, backward) as one
differentiable op — the path every functional layer (conv, pool, norm,
activations, losses, joining) takes onto the tape.

It builds its result through its first input's tensor type (``_make`` /
``_wrap``), so it does not import :mod:`glassnet.tensor`, which uses it.
"""
from __future__ import annotations

import dataclasses

from . import autograd
from .errors import InvalidArgumentError
from .op_record import as_record


def apply_kernel(op, forward, backward, inputs, *args, **kwargs):
    """Run a kernel pair as one differentiable op.

    ``op`` is the op's :class:`~glassnet.op_record.OpRecord` (or a bare name);
    when the kernel's cache has an ``algorithm`` field, the record that lands
    on the tape names it.

    ``inputs`` are Tensors (or ``None`` for absent optional inputs such as a
    bias); their arrays go to ``forward(*arrays, *args, **kwargs) -> (out,
    cache)``. On backward, ``backward(dout, cache)`` must return one gradient
    per input (a single array when there is one input).

    Shape: as the kernel's; the result is a new Tensor of ``forward``'s output shape.
    """
    present = [t for t in inputs if t is not None]
    if not present:
        raise InvalidArgumentError(f"apply_kernel: op {str(as_record(op))!r} got no tensor input")
    first = present[0]
    arrays = [None if t is None else t.data for t in inputs]
    out, cache = forward(*arrays, *args, **kwargs)
    op = as_record(op)
    algorithm = getattr(cache, "algorithm", None)
    if isinstance(algorithm, str) and algorithm != op.algorithm:
        op = dataclasses.replace(op, algorithm=algorithm)
    if not (autograd.is_grad_enabled() and any(t.requires_grad for t in present)):
        result = first._wrap(out)
    else:
        positions = [i for i, t in enumerate(inputs) if t is not None]

        def backward_fn(g):
            grads = backward(g, cache)
            if not isinstance(grads, tuple):
                grads = (grads,)
            return tuple(grads[i] for i in positions)

        # Kernel backwards compute new arrays for their inputs' gradients, so
        # run_backward may hand them to leaves without a defensive copy
        # (it still checks they share no memory with dout or each other).
        backward_fn.fresh_grads = True
        result = first._make(out, present, backward_fn, op)
    if autograd.tracer is not None:
        autograd.tracer(result, present, op, None, args, kwargs)
    return result
