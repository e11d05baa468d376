"""``Module``: the base class of every layer and model.

A module owns parameters (:class:`Parameter`), buffers (non-learnable arrays
such as BatchNorm's running statistics) and sub-modules, found by attribute
assignment as in PyTorch. ``state_dict()`` maps dotted names to arrays with
PyTorch's names, so weights move between the two one to one.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..backend import get_array_module, to_device
from ..errors import StateDictError
from ..tensor import Tensor
from .parameter import Parameter


class HookHandle:
    """Returned by :meth:`Module.register_forward_hook`; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = HookHandle._next_id
        HookHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module:
    """Base class for layers and models.

    Subclasses set parameters and sub-modules as attributes in ``__init__``
    and implement ``forward``. Calling the module runs ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() was called "
                f"(call super().__init__() first in {type(self).__name__}.__init__)"
            )
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        """Register ``param`` (a Parameter or None, e.g. an absent bias)."""
        if param is None:
            self.__dict__.pop(name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, array) -> None:
        """Register a non-learnable array saved in ``state_dict`` (e.g. running mean)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def add_module(self, name: str, module) -> None:
        self._modules[name] = module

    # --------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        hooks = self.__dict__.get("_forward_hooks")
        if hooks:
            for hook in list(hooks.values()):
                result = hook(self, args, out)
                if result is not None:
                    out = result
        return out

    def register_forward_hook(self, hook) -> "HookHandle":
        """Call ``hook(module, inputs, output)`` after every forward of this module.

        A hook that returns something replaces the output. Returns a handle
        whose ``remove()`` unregisters the hook (as in PyTorch).
        """
        hooks = self.__dict__.setdefault("_forward_hooks", OrderedDict())
        handle = HookHandle(hooks)
        hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------ traversal
    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = ""):
        """Every module in the tree, this one first, with dotted names (iterative)."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """``(dotted_name, Parameter)`` pairs; shared parameters appear once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, module in modules:
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = ""):
        for mod_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    # ----------------------------------------------------------------- modes
    def train(self, mode: bool = True):
        """Set training mode (dropout active, batch norm uses batch statistics)."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Set evaluation mode; same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all parameters."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def requires_grad_(self, flag: bool = True):
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module (children first) and self."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    def to(self, device: str = None, dtype=None):
        """Move parameters and buffers to ``device`` and/or cast floats to ``dtype`` (in place)."""
        for m in self.modules():
            for name, p in m._parameters.items():
                if p is None:
                    continue
                data = to_device(p.data, device) if device else p.data
                if dtype is not None and data.dtype.kind == "f":
                    data = data.astype(dtype)
                p.data = data
                p.grad = None
            for name, b in m._buffers.items():
                if b is None:
                    continue
                data = to_device(b, device) if device else b
                if dtype is not None and data.dtype.kind == "f":
                    data = data.astype(dtype)
                m._buffers[name] = data
        return self

    def double(self):
        return self.to(dtype="float64")

    def float(self):
        return self.to(dtype="float32")

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(int(p.data.size) for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> "OrderedDict[str, object]":
        """Dotted name -> array (parameters then buffers per module, PyTorch's order).
        The arrays are the live ones (no copy), as in PyTorch."""
        out = OrderedDict()
        for mod_name, module in self.named_modules():
            prefix = f"{mod_name}." if mod_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    out[prefix + name] = p.data
            for name, b in module._buffers.items():
                if b is not None:
                    out[prefix + name] = b
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        Everything is validated before anything is written
        (:meth:`prepare_load_state_dict`): with ``strict`` a missing or
        unexpected key is an error; a shape mismatch, a value that is not a
        numeric array (strings, objects, nested lists of another shape), a
        complex value for a real parameter, or a non-integral / non-finite
        value for an integer buffer is always an error; on error nothing is
        modified. Arrays are converted to each parameter's dtype and device.
        Returns ``(missing, unexpected)``.
        """
        apply, missing, unexpected = self.prepare_load_state_dict(state_dict, strict)
        apply()
        return missing, unexpected

    def prepare_load_state_dict(self, state_dict, strict: bool = True):
        """Validate and convert ``state_dict`` for this module without writing anything.

        Returns ``(apply, missing, unexpected)``: calling ``apply()`` installs
        the converted arrays and cannot fail, so a caller loading several
        objects (model, optimizer, scheduler) can validate them all first.
        Raises :class:`~glassnet.errors.StateDictError` listing every problem.
        """
        own = {}
        for mod_name, module in self.named_modules():
            prefix = f"{mod_name}." if mod_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    own[prefix + name] = p.data
            for name, b in module._buffers.items():
                if b is not None:
                    own[prefix + name] = (module, name)
        if not hasattr(state_dict, "items"):
            raise StateDictError(f"load_state_dict into {type(self).__name__}: expected a dict of "
                                 f"name -> array, got {type(state_dict).__name__}")
        incoming = {k: (v.data if isinstance(v, Tensor) else v) for k, v in state_dict.items()}
        missing = [k for k in own if k not in incoming]
        unexpected = [k for k in incoming if k not in own]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(map(str, unexpected)))
        writes = []
        for key, slot in own.items():
            if key not in incoming:
                continue
            current = slot if not isinstance(slot, tuple) else slot[0]._buffers[slot[1]]
            value, problem = _converted_like(incoming[key], current)
            if problem:
                problems.append(f"{key}: {problem}")
            else:
                writes.append((current, value))
        if problems:
            raise StateDictError(
                f"load_state_dict into {type(self).__name__} failed (nothing was loaded):\n  "
                + "\n  ".join(problems)
            )

        def apply():
            for target, value in writes:
                target[...] = value

        return apply, missing, unexpected

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """One-line description of this module's settings, shown in ``repr``."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self.named_children():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"


def _converted_like(value, current):
    """``(value as an array of current's dtype and device, None)`` or ``(None, problem)``."""
    xp = get_array_module(current)
    if get_array_module(value) is not xp and get_array_module(value) is not np:
        value = to_device(value, "cpu")
    try:
        arr = np.asarray(value) if get_array_module(value) is np else value
    except (ValueError, TypeError) as exc:
        return None, f"cannot be read as an array ({exc})"
    shape = tuple(getattr(arr, "shape", ()))
    if shape != tuple(current.shape):
        return None, f"checkpoint has shape {shape}, model expects {tuple(current.shape)}"
    kind, target = arr.dtype.kind, np.dtype(current.dtype)
    if kind not in "biufc":
        return None, f"has dtype {arr.dtype}, which is not numeric"
    if kind == "c" and target.kind != "c":
        return None, f"has complex dtype {arr.dtype}, the model's is real ({target})"
    if target.kind in "biu" and kind in "fc":
        host = to_device(arr, "cpu") if get_array_module(arr) is not np else arr
        if not (np.isfinite(host).all() and (host == np.round(host)).all()):
            return None, f"has non-integral or non-finite values for an {target} buffer"
    if target.kind in "iu":
        info = np.iinfo(target)
        host = to_device(arr, "cpu") if get_array_module(arr) is not np else arr
        if host.size and (host.min() < info.min or host.max() > info.max):
            return None, f"has values outside the range of {target}"
    if get_array_module(arr) is not xp:
        arr = to_device(arr, "cuda" if xp.__name__ == "cupy" else "cpu")
    return xp.array(arr, dtype=target, copy=True), None
