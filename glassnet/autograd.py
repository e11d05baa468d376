"""The tape: gradient mode and the backward graph walk.

Every differentiable op produces a :class:`~glassnet.tensor.Tensor` that
remembers its parents and a ``backward_fn(dout) -> grads`` closure (one
gradient per parent, ``None`` where a parent needs none). ``run_backward``
walks the graph from the output in reverse topological order:

* the walk is iterative (an explicit stack), so a 5,000-op chain does not hit
  Python's recursion limit;
* a tensor used by several ops receives the *sum* of their contributions
  before its own backward runs (the multivariate chain rule);
* leaves with ``requires_grad=True`` *accumulate* into ``.grad`` across
  ``backward()`` calls until zeroed (``optimizer.zero_grad()`` or
  ``module.zero_grad()``), exactly as in PyTorch;
* non-leaf tensors keep no ``.grad`` unless ``retain_grad()`` was called;
* the graph is freed by ``backward()`` (each op's backward closure, which
  holds the arrays it saved — im2col columns, activations, masks — is
  dropped), as in PyTorch: a second ``backward()`` through it raises.
  ``backward(retain_graph=True)`` keeps it, and calling it again then adds
  the gradients again. Without freeing, a training loop that still holds
  last step's ``loss`` while it runs the next forward keeps two steps' worth
  of saved arrays alive (ResNet-18, batch 8: 580 -> 720 ms a step, measured);
* a leaf's gradient is accumulated into ``.grad`` as soon as it is final —
  when the last op of the graph that consumes the leaf has run its backward
  (a count of consumers per leaf, as PyTorch's engine keeps) — not when the
  walk reaches the leaf's own place in the topological order, which for the
  last layer's weights is the very end. Then the leaf's
  ``register_post_accumulate_grad_hook`` hooks run (PyTorch's name), so a
  data-parallel wrapper can start reducing a bucket of gradients while the
  rest of the backward is still running (:mod:`glassnet.distributed`);
* :func:`queue_callback` (called from such a hook) runs a function once the
  whole walk has finished (PyTorch's ``Variable._execution_engine.queue_callback``).
"""
from __future__ import annotations

import contextlib
import threading

from . import threads
from .backend import get_array_module
from .errors import GlassnetRuntimeError

_state = threading.local()

# Graph capture for export (glassnet.io.tracing). ``None`` (the default) costs one
# attribute read per op. When set, every op result is reported, in any grad mode, as
# ``tracer(out, parents, op, backward_fn, args, kwargs)``: ``Tensor._make`` reports
# (args, kwargs) = ((), {}); ``apply_kernel`` reports again with the kernel's args.
tracer = None


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``."""
    return getattr(_state, "enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    """Base for context managers / decorators that set the grad mode."""

    mode = True

    def __enter__(self):
        self.prev = is_grad_enabled()
        set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self.prev)
        return False


class no_grad(_GradMode):
    """Context manager / decorator: ops inside record no graph (inference, updates)."""

    mode = False


class enable_grad(_GradMode):
    """Context manager / decorator: turn graph recording back on inside ``no_grad``."""

    mode = True


def _topological_order(root):
    """Tensors reachable from ``root`` that need gradients, parents before children
    in the returned list (iterative post-order DFS)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


def _is_private(pg, g, others) -> bool:
    """Whether ``pg`` shares memory with neither the upstream gradient nor the
    other gradients the same backward handed out (then a leaf may keep it)."""
    xp = get_array_module(pg)
    may_share = getattr(xp, "may_share_memory", None)
    if may_share is None:
        return False
    return not may_share(pg, g) and not any(may_share(pg, o) for o in others)


def _graph_freed(g):
    raise GlassnetRuntimeError(
        "backward(): trying to backward through the graph a second time (or directly access "
        "saved arrays after they have already been freed). The first backward() freed them; "
        "call backward(retain_graph=True) the first time if you need to backward through it again."
    )


def queue_callback(fn) -> None:
    """Run ``fn()`` once the backward walk now in progress has finished (after
    every leaf's gradient is accumulated and the graph is freed), in the order
    queued. Only callable during a backward, e.g. from a tensor hook."""
    callbacks = getattr(_state, "callbacks", None)
    if callbacks is None:
        raise GlassnetRuntimeError("queue_callback(): no backward() is running; call it from a "
                                   "hook that runs during backward (register_post_accumulate_grad_hook)")
    callbacks.append(fn)


def _leaf_consumers(order) -> dict:
    """id(leaf) -> how many graph edges lead into it from the nodes in ``order``
    (its gradient is final once that many consumer backwards have run)."""
    counts = {}
    for node in order:
        if node._backward_fn is None:
            continue
        for parent in node._parents:
            if parent.requires_grad and parent._backward_fn is None:
                counts[id(parent)] = counts.get(id(parent), 0) + 1
    return counts


def run_backward(root, grad, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (dL/d root) through the graph that produced ``root``;
    then, unless ``retain_graph``, free the graph (see the module docstring);
    then run the callbacks that hooks queued (:func:`queue_callback`)."""
    grads = {id(root): grad}
    owned = set()  # ids of nodes whose pending gradient array nothing else references
    order = _topological_order(root)
    outer = getattr(_state, "callbacks", None)  # a backward run from inside a hook
    callbacks = _state.callbacks = []
    try:
        _walk(reversed(order), grads, owned, _leaf_consumers(order), free=not retain_graph)
        if not retain_graph:
            for node in order:  # also the nodes no gradient reached
                _free(node)
        for fn in callbacks:  # a callback may queue another one: it runs too
            fn()
    finally:
        _state.callbacks = outer


def _free(node) -> None:
    """Drop a non-leaf node's backward closure (and the arrays it saved) and its parents."""
    if node._backward_fn is not None:
        node._backward_fn = _graph_freed
        node._parents = ()


def _finish_leaf(leaf, grads, owned) -> None:
    """Accumulate a leaf's now-final pending gradient into ``.grad`` and run its hooks."""
    key = id(leaf)
    g = grads.pop(key, None)
    if g is None:
        return
    is_owned = key in owned
    owned.discard(key)
    leaf._accumulate_grad(g, owned=is_owned and not leaf._retains_grad)
    hooks = leaf._post_accumulate_grad_hooks
    if hooks:
        for hook in list(hooks.values()):
            hook(leaf)


def _walk(nodes, grads, owned, consumers, free) -> None:
    """The backward pass proper; with ``free``, each node's saved arrays are
    released as soon as its own backward has run (lower peak memory).
    ``consumers`` (id(leaf) -> edges still to come) lets a leaf be finished as
    soon as its last consumer has run; a leaf whose count never reaches zero
    (a consumer got no gradient) is finished at its own place in the order."""
    for node in nodes:
        if node._backward_fn is None:
            _finish_leaf(node, grads, owned)
            continue
        key = id(node)
        g = grads.pop(key, None)
        if g is None:
            continue
        owned.discard(key)
        if node._retains_grad:
            node._accumulate_grad(g, owned=False)
        parent_grads = node._backward_fn(g)
        fresh = getattr(node._backward_fn, "fresh_grads", False)
        handed, final = [], []
        for parent, pg in zip(node._parents, parent_grads):
            if not parent.requires_grad:
                continue
            key = id(parent)
            if key in consumers:
                consumers[key] -= 1
                if consumers[key] == 0:
                    final.append(parent)
            if pg is None:
                continue
            if key in grads:
                # never add in place: a backward may hand the same array to two parents
                grads[key] = threads.add(grads[key], pg)
                owned.add(key)
                continue
            grads[key] = pg
            if fresh and _is_private(pg, g, handed):
                owned.add(key)
            handed.append(pg)
        for leaf in final:
            _finish_leaf(leaf, grads, owned)
        if free:
            _free(node)

