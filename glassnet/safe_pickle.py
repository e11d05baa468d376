"""Check a pickle's opcodes before any unpickler sees them.

The C unpickler trusts its input in ways a restricted ``find_class`` cannot
fix: a 9-byte pickle with ``LONG_BINPUT 2**31`` makes it allocate a memo
table of gigabytes; a ``BINBYTES`` that claims 4 GiB is allocated before the
bytes are read; a dict key nested a million tuples deep overflows the C
stack when it is hashed (SIGSEGV), and a small DAG of tuples that each hold
the previous one twice takes ``2**depth`` steps to hash. :func:`scan_pickle`
walks the opcodes with :func:`pickletools.genops` (which only parses, never
builds or calls anything) and simulates the unpickler's stack and memo, so it
can refuse such a pickle before unpickling starts:

* every opcode must parse and every counted string must be all there;
* a memo index may not exceed the number of opcodes read so far (a pickler
  numbers its memo entries in order), and ``GET`` may only fetch what was put;
* no value may nest deeper than ``max_depth`` (each value's depth is one more
  than the deepest value it was built from; a container filled or a state set
  after it went into another value raises the depth of every value holding
  it, so a cycle is refused too) or expand into more than ``max_values``
  values when its shared parts are counted each time they appear;
* the strings, and about :data:`OBJECT_BYTES` per opcode for the Python
  objects the unpickler will build, are charged to the reader's budget;
* out-of-band buffers (protocol 5) are refused; stack underflows and
  missing ``MARK``\\ s are refused as the C unpickler would.
"""
from __future__ import annotations

import pickletools
import struct

from .errors import DataFormatError, LimitExceededError
from .limits import MAX_DEPTH

__all__ = ["scan_pickle", "OBJECT_BYTES"]

#: bytes charged per opcode for the Python object the unpickler builds from it
OBJECT_BYTES = 64

_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
               "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
_SCALAR_OPS = _STRING_OPS | {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "NONE",
                             "NEWTRUE", "NEWFALSE", "FLOAT", "BINFLOAT"}
_EMPTY_OPS = {"EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET", "GLOBAL", "PERSID",
              "EXT1", "EXT2", "EXT4"}
_FROM_MARK_OPS = {"LIST", "TUPLE", "DICT", "FROZENSET", "INST", "OBJ"}
_INTO_FROM_MARK_OPS = {"APPENDS", "SETITEMS", "ADDITEMS"}
_FIXED_OPS = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3,
              "STACK_GLOBAL": 2, "BINPERSID": 1}
_INTO_FIXED_OPS = {"APPEND": 1, "SETITEM": 2, "BUILD": 1}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_NOOP_OPS = {"PROTO", "FRAME"}


class _Node:
    """One simulated value: its nesting depth, expanded size and the values holding it."""

    __slots__ = ("depth", "weight", "parents")

    def __init__(self, depth=1, weight=1):
        self.depth = depth
        self.weight = weight
        self.parents = None  # a list once the value goes into another


_SCALAR = _Node(0, 1)  # ints, floats, strings, None: shared, immutable, never a container


def _link(children, parent):
    """Depth and weight of ``parent`` built from ``children``; records ``parent`` as holding each."""
    depth, weight = 0, 1
    for c in children:
        if c.depth > depth:
            depth = c.depth
        weight += c.weight
        if c is not _SCALAR:
            if c.parents is None:
                c.parents = [parent]
            else:
                c.parents.append(parent)
    return depth + 1, weight - 1


class _Scan:
    """The simulated stack, marks and memo of one :func:`scan_pickle` call."""

    def __init__(self, source, what, max_depth, max_values, max_steps):
        self.source, self.what = source, what
        self.max_depth, self.max_values, self.max_steps = max_depth, max_values, max_steps
        self.stack, self.marks, self.memo = [], [], {}
        self.steps = 0
        self.pos = 0
        self.handlers = {}
        for names, handler in ((_SCALAR_OPS, self.scalar), (_EMPTY_OPS, self.empty), (_GET_OPS, self.get),
                               (_PUT_OPS, self.put), (("MEMOIZE",), self.put), (("MARK",), self.mark),
                               (_FROM_MARK_OPS, self.from_mark), (_INTO_FROM_MARK_OPS, self.into_from_mark),
                               (_FIXED_OPS, self.fixed), (_INTO_FIXED_OPS, self.into_fixed),
                               (("POP",), self.pop_op), (("POP_MARK",), self.pop_mark_op),
                               (("DUP",), self.dup), (_NOOP_OPS, self.noop),
                               (("NEXT_BUFFER", "READONLY_BUFFER"), self.buffer)):
            for name in names:
                self.handlers[name] = handler

    def bad(self, msg):
        return DataFormatError(f"{self.source}: {self.what} is not a valid pickle: {msg} "
                               f"(opcode at byte {self.pos})")

    # ------------------------------------------------------------ the stack
    def fence(self):
        return self.marks[-1] if self.marks else 0

    def pop(self, n):
        stack = self.stack
        at = len(stack) - n
        if at < (self.marks[-1] if self.marks else 0):
            raise self.bad("unpickling stack underflow")
        items = stack[at:]
        del stack[at:]
        return items

    def pop_mark(self):
        if not self.marks:
            raise self.bad("an opcode needs a MARK but none is open")
        at = self.marks.pop()
        items = self.stack[at:]
        del self.stack[at:]
        return items

    def top(self):
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise self.bad("unpickling stack underflow")
        return self.stack[-1]

    def new(self, children):
        node = _Node()
        if children:
            node.depth, node.weight = _link(children, node)
            node.weight += 1
            if node.depth > self.max_depth or node.weight > self.max_values:
                self.check(node)
        self.stack.append(node)

    def grow(self, target, children):
        """``children`` go into ``target`` after it was built: raise its depth and
        size, and those of every value already holding it."""
        if target is _SCALAR:
            raise self.bad("an opcode fills or sets the state of a plain int/str/float value")
        depth, dweight = _link(children, target)
        work = [(target, depth, dweight)]
        while work:
            node, depth, dweight = work.pop()
            deeper = depth > node.depth
            if deeper:
                node.depth = depth
            node.weight += dweight
            if node.depth > self.max_depth or node.weight > self.max_values:
                self.check(node)
            if (deeper or dweight) and node.parents:
                self.steps += len(node.parents)
                if self.steps > self.max_steps:
                    raise LimitExceededError(
                        f"{self.source}: {self.what} refills values after nesting them more than "
                        f"{self.max_steps} times; refused as too costly to check",
                        limit_name="max_steps", needed=self.steps, limit=self.max_steps)
                work.extend((p, node.depth + 1, dweight) for p in node.parents)

    def check(self, node):
        if node.depth > self.max_depth:
            raise LimitExceededError(
                f"{self.source}: {self.what} nests values more than {self.max_depth} levels deep "
                "(or holds a value inside itself); refused before unpickling",
                limit_name="max_depth", needed=node.depth, limit=self.max_depth)
        if node.weight > self.max_values:
            raise LimitExceededError(
                f"{self.source}: {self.what} builds a value that expands to more than "
                f"{self.max_values} values when its shared parts are counted (a hash or repr of it "
                "would not finish); refused before unpickling",
                limit_name="max_values", needed=node.weight, limit=self.max_values)

    # ------------------------------------------------- one handler per kind of opcode
    def scalar(self, name, arg, n_ops):
        self.stack.append(_SCALAR)

    def empty(self, name, arg, n_ops):
        self.stack.append(_Node())

    def get(self, name, arg, n_ops):
        node = self.memo.get(arg)
        if node is None:
            raise self.bad(f"memo index {arg} is fetched but was never stored")
        self.stack.append(node)

    def put(self, name, arg, n_ops):
        index = len(self.memo) if name == "MEMOIZE" else arg
        if not isinstance(index, int) or index < 0 or index > n_ops:
            raise self.bad(f"memo index {index} is larger than the {n_ops} opcodes read so far "
                           "(a pickler numbers its memo entries in order)")
        self.memo[index] = self.top()

    def mark(self, name, arg, n_ops):
        self.marks.append(len(self.stack))

    def from_mark(self, name, arg, n_ops):
        items = self.pop_mark()
        if name == "DICT" and len(items) % 2:
            raise self.bad("odd number of items for DICT")
        if name == "OBJ" and not items:
            raise self.bad("OBJ without a class")
        self.new(items)

    def into_from_mark(self, name, arg, n_ops):
        items = self.pop_mark()
        if name == "SETITEMS" and len(items) % 2:
            raise self.bad("odd number of items for SETITEMS")
        target = self.top()
        if items:
            self.grow(target, items)

    def fixed(self, name, arg, n_ops):
        self.new(self.pop(_FIXED_OPS[name]))

    def into_fixed(self, name, arg, n_ops):
        items = self.pop(_INTO_FIXED_OPS[name])
        self.grow(self.top(), items)

    def pop_op(self, name, arg, n_ops):
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()  # the C unpickler pops an empty MARK here
        else:
            self.pop(1)

    def pop_mark_op(self, name, arg, n_ops):
        self.pop_mark()

    def dup(self, name, arg, n_ops):
        self.stack.append(self.top())

    def noop(self, name, arg, n_ops):
        pass

    def buffer(self, name, arg, n_ops):
        raise self.bad("out-of-band buffers (pickle protocol 5) are not supported")


def scan_pickle(data, source, budget, *, what: str = "data.pkl", max_depth: int = MAX_DEPTH) -> int:
    """Check the pickle ``data`` (bytes) before it is unpickled; return its opcode count.

    ``source`` names the file in errors, ``what`` the pickle inside it, and
    ``budget`` (a :class:`~glassnet.limits.ReadBudget`) is charged for the
    strings and objects the unpickler would build. Raises
    :class:`DataFormatError` for a pickle that does not parse, refers to memo
    entries out of order or underflows its stack, and
    :class:`LimitExceededError` for one nested deeper than ``max_depth``,
    expanding to too many values, or needing more than ``budget`` allows.
    See the module docstring for the rules. Nothing in ``data`` is executed.
    """
    scan = _Scan(source, what, max_depth, max_values=(1 << 20) + 16 * len(data),
                 max_steps=(1 << 20) + 4 * len(data))
    handlers = scan.handlers
    strings = _STRING_OPS | {"PERSID"}
    n_ops = string_bytes = 0
    stopped = False
    try:
        for opcode, arg, pos in pickletools.genops(data):
            scan.pos = pos
            name = opcode.name
            if name == "STOP":
                scan.pop(1)
                stopped = True
                break
            if name in strings:
                string_bytes += len(arg)
            handler = handlers.get(name)
            if handler is None:
                raise scan.bad(f"opcode {name} is not supported")
            handler(name, arg, n_ops)
            n_ops += 1
    except DataFormatError:  # the scan's own verdicts (LimitExceededError included)
        raise
    except (ValueError, TypeError, OverflowError, struct.error, EOFError) as exc:  # from genops
        raise DataFormatError(f"{source}: {what} is not a valid pickle: {exc}") from None
    if not stopped:
        raise DataFormatError(f"{source}: {what} is not a valid pickle: it ends without a STOP opcode "
                              "(truncated?)")
    budget.take(string_bytes, f"the strings in {what}")
    budget.take(n_ops * OBJECT_BYTES, f"the {n_ops} Python values {what} builds")
    return n_ops
