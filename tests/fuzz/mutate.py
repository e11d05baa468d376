"""Hypothesis strategies the fuzz targets are built from.

* :func:`mutated` -- a seed file with a few byte-level edits: bit flips, byte
  sets, inserts, deletes, truncation, splicing with another seed, range
  duplication, integer fields overwritten with boundary values (1/2/4/8
  bytes, either byte order), ASCII numbers replaced (``"shape":[3]`` ->
  ``[18446744073709551615]``) and dictionary tokens inserted.
* :func:`json_values` -- arbitrary JSON, biased to the values that break
  readers: huge and negative integers, 5000-digit numbers, NaN/Infinity,
  deep nesting, odd strings.
* :func:`zip_archive` / :func:`zip_member_mutated` -- zip files built with
  :mod:`zipfile` (so the CRCs and sizes are right and the member *contents*
  get fuzzed) with odd members: duplicate, NUL-containing, very long or
  path-like names, bzip2/LZMA members, encrypted flags, lying sizes.
* :func:`pickle_opcodes` -- pickles built from random sequences of
  :mod:`pickletools` opcodes with well-formed arguments, chosen mostly among
  those whose stack needs are met (a simulated stack and mark list), so they
  get past the first opcode.
* :func:`torch_pickle` -- ``torch.save``-shaped pickles (protocol 2: a value
  tree of dicts, lists, tuples, scalars and tensors rebuilt through
  ``torch._utils._rebuild_tensor_v2``/``v3``/``_rebuild_parameter`` from
  persistent-id storages) with arbitrary offsets, sizes, strides, element
  counts, dtypes and storage keys, plus the storages' bytes.
"""
from __future__ import annotations

import functools
import io
import json
import pickletools
import re
import struct
import warnings
import zipfile
import zlib

from hypothesis import strategies as st

#: integers at the edges of every field width
BOUNDARY_INTS = [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 63, 64, 65, 100, 127, 128, 255, 256, 1000, 1023, 1024,
                 4095, 4096, 32767, 32768, 65535, 65536, 1 << 20, 10 ** 6, (1 << 24) - 1, 1 << 28, (1 << 31) - 1,
                 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 40, 1 << 53, 1 << 62, (1 << 63) - 1, 1 << 63,
                 (1 << 64) - 1, 1 << 64, -1, -2, -128, -32768, -(1 << 31), -(1 << 63)]
#: what an ASCII number in a text header is replaced with
ASCII_NUMBERS = [b"0", b"1", b"-1", b"2", b"-0", b"00", b"1.0", b"1e400", b"-1e400", b"NaN", b"Infinity",
                 b"-Infinity", b"1e308", b"2.5", b"true", b"null", b"4294967295", b"4294967296",
                 b"9223372036854775807", b"9223372036854775808", b"18446744073709551615",
                 b"18446744073709551616", b"-9223372036854775809", b"1" * 40, b"9" * 5000,
                 b"123456789012", b"0x10", b"1_000"]


_U32 = st.integers(0, 2 ** 32 - 1)
_OP = st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice", "duplicate", "int",
                       "number", "token", "token", "number"])
_BIT = st.integers(0, 7)
_BYTE = st.one_of(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x22, 0x5B]), st.integers(0, 255))
_SMALL_CHUNK = st.binary(min_size=1, max_size=16)
_REPEAT = st.sampled_from([2, 17, 255, 256, 4096, 65537])
_LEN16 = st.integers(1, 16)
_WIDTH = st.sampled_from([1, 2, 4, 8])
_ORDER = st.sampled_from(["little", "big"])
_INT_VALUE = st.one_of(st.sampled_from(BOUNDARY_INTS), st.integers(-(1 << 63), (1 << 64) - 1))
_NUMBER = st.one_of(st.sampled_from(ASCII_NUMBERS), st.integers().map(lambda v: str(v).encode()))
_BOOL = st.booleans()
_BYTE_ANY = st.integers(0, 255)
_NAME_TEXT = st.text(max_size=20)
_KEY_TEXT = st.text(max_size=6)


def pick(draw, seq):
    """One element of ``seq`` (like ``draw(st.sampled_from(seq))``, without building a strategy per call)."""
    if not isinstance(seq, (list, tuple)):
        seq = list(seq)
    return seq[draw(_U32) % len(seq)]


def int_or(draw, lo: int, hi: int, extras):
    """An integer in ``[lo, hi]``, or (half the time) one of ``extras``."""
    return pick(draw, extras) if draw(_BOOL) else draw(st.integers(lo, hi))


def _pos(draw, data, end=False):
    """A position in ``data`` (``end``: up to and including ``len(data)``)."""
    n = len(data) + (1 if end else 0)
    return draw(_U32) % n if n > 0 else 0


def _int_field(draw) -> bytes:
    width = draw(_WIDTH)
    value = draw(_INT_VALUE)
    return (value % (1 << (8 * width))).to_bytes(width, draw(_ORDER))


_DIGITS = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _mutate_once(draw, data: bytearray, seeds, tokens) -> bytearray:
    op = draw(_OP)
    if not data and op not in ("insert", "splice", "token"):
        op = "insert"
    if op == "flip":
        i = _pos(draw, data)
        data[i] ^= 1 << draw(_BIT)
    elif op == "set":
        data[_pos(draw, data)] = draw(_BYTE)
    elif op == "insert":
        i = _pos(draw, data, end=True)
        chunk = draw(_SMALL_CHUNK) if draw(_BOOL) else bytes([draw(_BYTE_ANY)]) * draw(_REPEAT)
        data[i:i] = chunk
    elif op == "delete":
        i = _pos(draw, data)
        n = draw(_LEN16) if draw(_BOOL) else 1 + draw(_U32) % max(len(data) - i, 1)
        del data[i:i + n]
    elif op == "truncate":
        del data[_pos(draw, data):]
    elif op == "splice":
        other = seeds[draw(_U32) % len(seeds)] if seeds else b""
        if other:
            a = _pos(draw, other)
            b = a + draw(_U32) % (len(other) - a + 1)
            i = _pos(draw, data, end=True)
            if draw(_BOOL):
                data[i:i + (b - a)] = other[a:b]
            else:
                data[i:i] = other[a:b]
    elif op == "duplicate":
        a = _pos(draw, data)
        b = a + draw(_U32) % (min(len(data) - a, 4096) + 1)
        i = _pos(draw, data, end=True)
        data[i:i] = data[a:b]
    elif op == "int":
        field = _int_field(draw)
        i = _pos(draw, data)
        data[i:i + len(field)] = field
    elif op == "number":
        spans = [m.span() for m in _DIGITS.finditer(bytes(data[:1 << 16]))]
        if spans:
            a, b = spans[draw(_U32) % len(spans)]
            data[a:b] = draw(_NUMBER)
        else:
            del data[_pos(draw, data):]
    elif op == "token" and tokens:
        tok = tokens[draw(_U32) % len(tokens)]
        i = _pos(draw, data, end=True)
        if draw(_BOOL):
            data[i:i + len(tok)] = tok
        else:
            data[i:i] = tok
    return data


_N_OPS = {n: st.integers(0, n) for n in range(1, 9)}
_N_OPS1 = {n: st.integers(1, n) for n in range(1, 9)}


def mutated(seeds, tokens=(), max_ops: int = 4, fixup=None):
    """A seed (from ``seeds``, a list of bytes) with 0..``max_ops`` byte-level edits;
    ``fixup(bytes) -> bytes`` runs last with probability 1/2 (e.g. recompute a checksum)."""
    seeds = [bytes(s) for s in seeds]
    tokens = [bytes(t) for t in tokens]

    pick = st.sampled_from(seeds)

    @st.composite
    def strat(draw):
        data = bytearray(draw(pick))
        for _ in range(draw(_N_OPS[max_ops])):
            data = _mutate_once(draw, data, seeds, tokens)
        data = bytes(data)
        if fixup is not None and draw(_BOOL):
            data = fixup(data)
        return data

    return strat()


def mutate_bytes(draw, data: bytes, seeds=(), tokens=(), max_ops: int = 3) -> bytes:
    """``data`` with 1..``max_ops`` edits, inside another composite strategy."""
    buf = bytearray(data)
    for _ in range(draw(_N_OPS1[max_ops])):
        buf = _mutate_once(draw, buf, list(seeds) or [bytes(data)], list(tokens))
    return bytes(buf)


# --------------------------------------------------------------------- JSON
@functools.lru_cache(maxsize=None)
def _odd_text():
    return st.one_of(st.text(max_size=12), st.sampled_from(["", "\x00", "\ud800x", "a" * 300, "\u2028", "__proto__",
                                                             "model.", "optimizer.", "__metadata__", "\\", "\""]))


@functools.lru_cache(maxsize=None)
def json_scalars():
    return st.one_of(st.none(), st.booleans(), st.sampled_from(BOUNDARY_INTS), st.integers(),
                     st.floats(allow_nan=True, allow_infinity=True), _odd_text(),
                     st.sampled_from([10 ** 400, -(10 ** 400), 0.5, 1e-320, -0.0]))


@functools.lru_cache(maxsize=None)
def json_values(max_leaves: int = 12):
    """Arbitrary JSON-able values (Python objects for :func:`json.dumps`)."""
    return st.recursive(json_scalars(),
                        lambda kids: st.one_of(st.lists(kids, max_size=5),
                                               st.dictionaries(_odd_text(), kids, max_size=5)),
                        max_leaves=max_leaves)


def deep_json_text(draw) -> str:
    """JSON nested ``depth`` levels (around :data:`glassnet.limits.MAX_DEPTH` and far past it)."""
    depth = pick(draw, [2, 50, 99, 100, 101, 1000, 20000, 200000])
    kind = pick(draw, ["list", "dict", "mixed", "unclosed", "in-string"])
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "dict":
        return '{"a":' * depth + "1" + "}" * depth
    if kind == "mixed":
        return '[{"a":' * (depth // 2) + "0" + "}]" * (depth // 2)
    if kind == "unclosed":
        return "[" * depth
    return '["' + "[" * depth + '"]'


def dump_json(draw, value) -> bytes:
    """``value`` as JSON bytes, in one of several spellings (compact, indented, with NaN literals, ASCII)."""
    style = pick(draw, ["compact", "indent", "ascii", "raw"])
    kw = {"compact": {"separators": (",", ":")}, "indent": {"indent": 1}, "ascii": {"ensure_ascii": True},
          "raw": {"ensure_ascii": False}}[style]
    try:
        text = json.dumps(value, **kw)
    except (TypeError, ValueError, RecursionError):
        text = "null"
    return text.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------- zip
ODD_NAMES = ["", "/", "a/", "../evil", "/abs", "x\x00y", "\u00e9t\u00e9", "a" * 300, "archive/data.pkl",
             "archive/data/0", "archive/version", "archive/byteorder", "archive/code/__torch__.py",
             "archive/constants.pkl", "data.pkl", "x.npy", "model.weight.npy", "archive/data/../data.pkl",
             "archive/.data/serialization_id", "nested/archive/data.pkl"]
COMPRESSIONS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]


def build_zip(members, *, comment: bytes = b"", zip64: bool = False) -> bytes:
    """A zip of ``members``: a list of ``(name, data, compress_type, flag_bits)``."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
            for name, data, method, flags in members:
                info = zipfile.ZipInfo(name.replace("\x00", "_") if method is None else name,
                                       date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED if method is None else method
                try:
                    zf.writestr(info, data)
                except (ValueError, OSError, zipfile.LargeZipFile, NotImplementedError, RuntimeError):
                    info.compress_type = zipfile.ZIP_STORED
                    zf.writestr(zipfile.ZipInfo(f"fallback{len(zf.filelist)}"), data)
                if flags:
                    zf.filelist[-1].flag_bits |= flags
            zf.comment = comment[:65535]
    out = buf.getvalue()
    if any(m[3] for m in members):
        out = _patch_flags(out, members)
    return out


def _patch_flags(data: bytes, members) -> bytes:
    """Write the members' extra flag bits into the local headers too (zipfile only sets the central ones)."""
    buf = bytearray(data)
    pos = 0
    for _, _, _, flags in members:
        at = buf.find(b"PK\x03\x04", pos)
        if at < 0:
            break
        if flags:
            (old,) = struct.unpack_from("<H", buf, at + 6)
            struct.pack_into("<H", buf, at + 6, old | flags)
        pos = at + 4
    return bytes(buf)


def read_zip_members(data: bytes):
    """``[(name, bytes, compress_type, 0)]`` of a zip made by us or torch/NumPy."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i), i.compress_type, 0) for i in zf.infolist()]


@st.composite
def zip_member_mutated(draw, seed_members, tokens=(), extra_members=()):
    """A zip rebuilt from one of ``seed_members`` (lists of members) after member-level edits:
    a member's bytes mutated, renamed (odd names), dropped, duplicated, added, recompressed,
    flagged encrypted; then maybe a final byte-level edit of the archive."""
    members = list(pick(draw, seed_members))
    for _ in range(draw(st.integers(1, 3))):
        if not members:
            members.append(("x", b"", zipfile.ZIP_STORED, 0))
        op = pick(draw, ["mutate", "mutate", "mutate", "rename", "drop", "dup", "add", "method",
                                   "flags", "swap"])
        i = draw(st.integers(0, len(members) - 1))
        name, data, method, flags = members[i]
        if op == "mutate":
            data = mutate_bytes(draw, data, [m[1] for m in members], tokens)
            members[i] = (name, data, method, flags)
        elif op == "rename":
            new = pick(draw, ODD_NAMES + [m[0] for m in members]) if draw(_BOOL) else draw(_NAME_TEXT)
            members[i] = (new, data, method, flags)
        elif op == "drop":
            del members[i]
        elif op == "dup":
            members.insert(draw(st.integers(0, len(members))), members[i])
        elif op == "add":
            new = pick(draw, list(extra_members) or [(n, b"") for n in ODD_NAMES])
            if isinstance(new, tuple):
                members.append((new[0], new[1], zipfile.ZIP_STORED, 0))
        elif op == "method":
            members[i] = (name, data, pick(draw, COMPRESSIONS), flags)
        elif op == "flags":
            members[i] = (name, data, method, pick(draw, [0x1, 0x40, 0x8, 0x800]))
        elif op == "swap" and len(members) > 1:
            j = draw(st.integers(0, len(members) - 1))
            members[i], members[j] = members[j], members[i]
    try:
        out = build_zip(members, comment=pick(draw, [b"", b"PK\x05\x06", b"c" * 100]))
    except Exception:  # noqa: BLE001 - an unbuildable archive: fall back to the seed
        out = build_zip(list(seed_members[0]))
    if draw(st.integers(0, 3)) == 0:
        out = mutate_bytes(draw, out, [out], [b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"\xff\xff\xff\xff"], 1)
    return out


# ------------------------------------------------------------------ pickles
ALLOWED_GLOBALS = [("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
                   ("torch._utils", "_rebuild_tensor_v3"), ("torch._utils", "_rebuild_parameter"),
                   ("torch._utils", "_rebuild_parameter_with_state"), ("torch", "FloatStorage"),
                   ("torch", "HalfStorage"), ("torch", "BFloat16Storage"), ("torch", "LongStorage"),
                   ("torch", "BoolStorage"), ("torch", "UntypedStorage"), ("torch", "float32"),
                   ("torch", "bfloat16"), ("torch", "Size"), ("_codecs", "encode"), ("builtins", "set"),
                   ("__builtin__", "set"), ("builtins", "frozenset"), ("torch", "DoubleStorage"),
                   ("torch", "ComplexFloatStorage"), ("torch", "uint64")]
REFUSED_GLOBALS = [("os", "system"), ("builtins", "eval"), ("builtins", "getattr"), ("__builtin__", "eval"),
                   ("torch", "load"), ("torch._utils", "_rebuild_qtensor"), ("numpy.core.multiarray", "_reconstruct"),
                   ("builtins", "bytearray"), ("subprocess", "Popen"), ("x" * 300, "y")]


def _enc_arg(draw, arg, op_name: str) -> bytes:
    """Bytes of an opcode argument described by a :class:`pickletools.ArgumentDescriptor`."""
    name = arg.name
    if name == "uint1":
        return bytes([draw(st.integers(0, 255))])
    if name == "uint2":
        return struct.pack("<H", int_or(draw, 0, 65535, [0, 1, 255, 65535]))
    if name == "int4":
        return struct.pack("<i", int_or(draw, -(2 ** 31), 2 ** 31 - 1, [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)]))
    if name == "uint4":
        small = st.integers(0, 8) if "GET" in op_name or "PUT" in op_name else st.integers(0, 2 ** 32 - 1)
        return struct.pack("<I", draw(small) if draw(_BOOL) else pick(draw, [2 ** 31, 2 ** 32 - 1, 1 << 28]))
    if name == "uint8":
        return struct.pack("<Q", int_or(draw, 0, 64, [1 << 32, 1 << 62, 2 ** 64 - 1]))
    if name in ("stringnl", "stringnl_noescape"):
        if op_name in ("PERSID",):
            return pick(draw, [b"0", b"storage", b"x" * 40]) + b"\n"
        if name == "stringnl":
            return b"'" + draw(st.binary(max_size=8)).replace(b"\n", b"") + b"'\n"
        return draw(st.text("abc_.", max_size=10)).encode() + b"\n"
    if name == "stringnl_noescape_pair":
        mod, nm = pick(draw, ALLOWED_GLOBALS + REFUSED_GLOBALS)
        return f"{mod}\n{nm}\n".encode()
    if name == "decimalnl_short":
        return pick(draw, [b"0", b"1", b"00", b"01", b"-5", b"99999999999999999999", b"x"]) + b"\n"
    if name == "decimalnl_long":
        return pick(draw, [b"0L", b"1L", b"-7L", b"9" * 50 + b"L", b"L"]) + b"\n"
    if name == "floatnl":
        return pick(draw, [b"1.5", b"nan", b"inf", b"-0.0", b"1e400", b"x"]) + b"\n"
    if name == "float8":
        return struct.pack(">d", draw(st.floats(allow_nan=True)))
    if name in ("long1", "long4"):
        body = draw(st.binary(max_size=9))
        return (bytes([len(body)]) if name == "long1" else struct.pack("<i", len(body))) + body
    if name in ("string1", "bytes1", "unicodestring1"):
        body = draw(st.binary(max_size=12))
        n = len(body) if draw(_BOOL) else draw(st.integers(0, 255))
        return bytes([n]) + body
    if name in ("string4", "bytes4", "unicodestring4"):
        body = draw(st.binary(max_size=12))
        n = len(body) if draw(_BOOL) else pick(draw, [2 ** 31 - 1, 2 ** 32 - 1, 1 << 30])
        fmt = "<i" if name == "string4" else "<I"
        n = n if fmt == "<I" else min(n, 2 ** 31 - 1)
        return struct.pack(fmt, n) + body
    if name in ("bytes8", "bytearray8", "unicodestring8"):
        body = draw(st.binary(max_size=12))
        n = len(body) if draw(_BOOL) else pick(draw, [1 << 32, 1 << 40, 2 ** 63 - 1, 2 ** 64 - 1])
        return struct.pack("<Q", n) + body
    if name == "unicodestringnl":
        return draw(st.text(max_size=8)).replace("\n", "").encode("raw-unicode-escape") + b"\n"
    raise AssertionError(f"unknown pickletools argument {name}")  # pragma: no cover


_OPS = [op for op in pickletools.opcodes]


def _needs(op):
    """(fixed objects needed below the mark or on top, needs a mark?)"""
    before = op.stack_before
    if pickletools.markobject in before or pickletools.stackslice in before:
        fixed = [b for b in before if b not in (pickletools.markobject, pickletools.stackslice)]
        return len(fixed), True
    return len(before), False


@st.composite
def pickle_opcodes(draw, max_ops: int = 40):
    """A pickle: random opcodes with valid arguments, mostly stack-consistent, mostly ending in STOP."""
    proto = pick(draw, [2, 2, 3, 4, 5, 0])
    out = bytearray(b"\x80" + bytes([proto]) if proto else b"")
    depth, marks = 0, []  # simulated stack depth and mark positions
    for _ in range(draw(st.integers(0, max_ops))):
        usable = []
        for op in _OPS:
            if op.name in ("STOP", "PROTO"):
                continue
            fixed, needs_mark = _needs(op)
            if needs_mark:
                if marks and marks[-1] >= fixed:
                    usable.append(op)
            elif depth - (marks[-1] if marks else 0) >= fixed:
                usable.append(op)
        op = pick(draw, usable) if usable and draw(st.integers(0, 9)) else pick(draw, _OPS)
        out += op.code.encode("latin-1")
        if op.arg is not None:
            out += _enc_arg(draw, op.arg, op.name)
        fixed, needs_mark = _needs(op)
        if needs_mark and marks:
            depth = marks.pop() - fixed
        else:
            depth = max(0, depth - fixed)
        for after in op.stack_after:
            if after is pickletools.markobject:
                marks.append(depth)
            else:
                depth += 1
    if draw(st.integers(0, 9)):
        out += b"."
    return bytes(out)


# torch storage class -> element size (None: refused names)
STORAGE_ITEMSIZE = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
                    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
                    "BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16, "UntypedStorage": 1,
                    "QInt8Storage": 1, "Storage": 1}
TORCH_DTYPE_NAMES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool",
                     "complex64", "uint64", "uint16", "qint8", "float8_e4m3fn"]


class _Emitter:
    """A protocol-2 pickle written opcode by opcode (what ``torch.save`` writes)."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.memo = 0

    def op(self, code: bytes):
        self.out += code

    def global_(self, module, name):
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def put(self):
        self.out += b"q" + bytes([self.memo % 256]) if self.memo < 256 else b"r" + struct.pack("<I", self.memo)
        self.memo += 1
        return self.memo - 1

    def get(self, i):
        self.out += b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)

    def str_(self, s: str):
        b = s.encode("utf-8", "surrogatepass")
        self.out += b"X" + struct.pack("<I", len(b)) + b

    def int_(self, v: int):
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif -(2 ** 31) <= v < 2 ** 31:
            self.out += b"J" + struct.pack("<i", v)
        else:
            body = pickle_long(v)
            self.out += b"\x8a" + bytes([len(body)]) + body

    def float_(self, v: float):
        self.out += b"G" + struct.pack(">d", v)

    def tuple_(self, items, emit):
        self.op(b"(")
        for it in items:
            emit(it)
        self.op(b"t")


def pickle_long(v: int) -> bytes:
    if v == 0:
        return b""
    n = (v.bit_length() + 8) // 8
    return v.to_bytes(n, "little", signed=True)


@st.composite
def torch_pickle(draw):
    """``(data.pkl bytes, {storage key: bytes}, byteorder member or None)`` of a torch.save-like file."""
    storages: dict[str, bytes] = {}
    e = _Emitter()
    storage_memo: dict[str, int] = {}

    def ints():
        return int_or(draw, 0, 6, BOUNDARY_INTS)

    def emit_storage():
        key = pick(draw, ["0", "1", "2", "3"] if draw(_BOOL) else ["", ".", "..", "a/b", "0" * 300, "-1", "\u00e9"])
        if key in storage_memo and draw(st.booleans()):
            e.get(storage_memo[key])
            return
        cls = pick(draw, list(STORAGE_ITEMSIZE))
        numel = int_or(draw, 0, 12, BOUNDARY_INTS)
        e.op(b"(")
        e.str_("storage")
        e.global_("torch", cls)
        e.str_(key)
        e.str_("cpu")
        if draw(st.integers(0, 9)):
            e.int_(numel)
        else:
            e.str_("12")
        e.op(b"t")
        e.op(b"Q")  # BINPERSID
        storage_memo[key] = e.put()
        if key not in storages and draw(st.integers(0, 9)):
            size = STORAGE_ITEMSIZE[cls] * numel if 0 <= numel <= 64 else draw(st.integers(0, 64))
            if not draw(st.integers(0, 5)):
                size = max(0, size + pick(draw, [-1, 1, -4, 8]))
            storages[key] = draw(st.binary(min_size=size, max_size=size))

    def emit_tensor():
        kind = pick(draw, ["v2", "v2", "v3", "param"])
        if kind == "param":
            e.global_("torch._utils", "_rebuild_parameter")
            e.op(b"(")
        e.global_("torch._utils", "_rebuild_tensor_v3" if kind == "v3" else "_rebuild_tensor_v2")
        rank = pick(draw, [0, 1, 1, 2, 3, 4, 65])
        size = [ints() for _ in range(rank)]
        stride = [ints() for _ in range(rank if draw(st.integers(0, 9)) else max(rank - 1, 0))]
        e.op(b"(")
        emit_storage()
        e.int_(ints())  # storage offset
        e.tuple_(size, e.int_)
        e.tuple_(stride, e.int_)
        e.op(b"\x89")  # requires_grad False
        e.global_("collections", "OrderedDict")
        e.op(b")R")
        if kind == "v3":
            e.global_("torch", pick(draw, TORCH_DTYPE_NAMES))
        e.op(b"t")
        e.op(b"R")
        e.put()
        if kind == "param":
            e.op(b"\x88")
            e.global_("collections", "OrderedDict")
            e.op(b")R")
            e.op(b"tR")

    def emit_value(depth):
        kind = pick(draw, ["tensor", "tensor", "tensor", "int", "float", "str", "none", "bool", "bytes",
                                     "dict", "odict", "list", "tuple", "set", "global"] if depth < 3 else
                                    ["tensor", "int", "str", "none"])
        if kind == "tensor":
            emit_tensor()
        elif kind == "int":
            e.int_(pick(draw, BOUNDARY_INTS))
        elif kind == "float":
            e.float_(draw(st.floats(allow_nan=True)))
        elif kind == "str":
            e.str_(draw(st.text(max_size=8)))
        elif kind == "none":
            e.op(b"N")
        elif kind == "bool":
            e.op(b"\x88")
        elif kind == "bytes":
            e.global_("_codecs", "encode")
            e.op(b"(")
            e.str_(draw(st.text(max_size=6)))
            e.str_(pick(draw, ["latin1", "utf8", "latin-1"]))
            e.op(b"tR")
        elif kind in ("dict", "odict"):
            emit_dict(depth + 1, ordered=kind == "odict")
        elif kind in ("list", "tuple", "set"):
            if kind == "set":
                e.global_("builtins", "set")
            e.op(b"]" if kind != "tuple" else b"(")
            if kind != "tuple":
                e.op(b"(")
            for _ in range(draw(st.integers(0, 3))):
                emit_value(depth + 1)
            e.op(b"e" if kind != "tuple" else b"t")
            if kind == "set":
                e.op(b"\x85R")
        elif kind == "global":
            mod, nm = pick(draw, REFUSED_GLOBALS + ALLOWED_GLOBALS)
            e.global_(mod, nm)

    def emit_dict(depth, ordered):
        if ordered:
            e.global_("collections", "OrderedDict")
            e.op(b")R")
        else:
            e.op(b"}")
        e.put()
        e.op(b"(")
        for _ in range(draw(st.integers(0, 4))):
            key = pick(draw, ["weight", "bias", "0.weight", "state_dict", "model", "module.fc.weight", "epoch",
                              "_orig_mod.w", ""]) if draw(_BOOL) else draw(_KEY_TEXT)
            if draw(st.integers(0, 9)):
                e.str_(key)
            else:
                emit_value(depth)  # a non-string (maybe unhashable) key
            emit_value(depth)
        e.op(b"u")

    top = pick(draw, ["state", "state", "checkpoint", "value"])
    if top == "state":
        emit_dict(0, ordered=draw(st.booleans()))
    elif top == "checkpoint":
        e.op(b"}")
        e.op(b"(")
        e.str_(pick(draw, ["state_dict", "model", "model_state_dict"]))
        emit_dict(1, ordered=True)
        e.str_("epoch")
        e.int_(3)
        e.op(b"u")
    else:
        emit_value(0)
    e.op(b".")
    byteorder = pick(draw, [b"little", b"little", b"big", None, b"middle", b"\xff"])
    return bytes(e.out), storages, byteorder


def crc_png(data: bytes) -> bytes:
    """``data`` with the CRC of every PNG chunk that parses recomputed (so edits reach the decoder)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    buf = bytearray(data)
    pos = 8
    while pos + 12 <= len(buf):
        (n,) = struct.unpack_from(">I", buf, pos)
        end = pos + 8 + n
        if end + 4 > len(buf):
            break
        struct.pack_into(">I", buf, end, zlib.crc32(bytes(buf[pos + 4:end])) & 0xFFFFFFFF)
        pos = end + 4
    return bytes(buf)
