"""The fuzz targets: each reader of untrusted files, its seeds, input strategies and oracle.

A target bundles

* ``readers``: the functions under test, each ``fn(case_dir)``; a reader
  returns the loaded value, raises the reader's own exception, or raises
  :class:`~tests.fuzz.runner.ContractViolation` when the value it got back is
  wrong (the oracle below each reader);
* ``build_seeds(seed_dir)``: valid files written by the real writers (parent
  process) and ``setup(seed_dir)`` reading them back (fuzzed child);
* ``strategy()``: a hypothesis strategy of cases (``{relative path: bytes}``)
  mixing mutated seeds and structure-aware generation;
* ``from_bytes(data)`` / ``to_bytes(case)``: a case as one flat byte string,
  for atheris/libFuzzer (``tests/fuzz/atheris_targets.py``).

The contract every reader is held to: for any bytes, a correct load or an
exception deriving from :class:`glassnet.errors.GlassnetError`; never another
exception, a crash, more memory than the cap, or a hang (see ``runner.py``).
"""
from __future__ import annotations

import copy
import functools
import gzip
import json
import math
import random
import struct
import tempfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from tests.fuzz import mutate as M
from tests.fuzz import seeds as S
from tests.fuzz.runner import ContractViolation, Reader, read_case

TARGETS: dict = {}
pick = M.pick
_BOOL = st.booleans()
_TEXT6 = st.text(max_size=6)
_STR_DICT = st.dictionaries(st.text(max_size=5), st.text(max_size=5))
_SHAPES = st.lists(st.integers(0, 6), max_size=4)


def register(cls):
    TARGETS[cls.name] = cls()
    return cls


def get(name: str):
    try:
        return TARGETS[name]
    except KeyError:
        raise SystemExit(f"unknown fuzz target {name!r}; known: {', '.join(TARGETS)}") from None


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise ContractViolation(what)


def _rand_bytes(draw, n: int) -> bytes:
    """``n`` pseudo-random bytes from one drawn seed (keeps hypothesis' choice sequence short)."""
    return random.Random(draw(st.integers(0, 2 ** 32 - 1))).randbytes(n) if n > 0 else b""


class Target:
    name = ""
    description = ""
    ci_examples = 150
    #: the single file of single-file targets (atheris puts the raw bytes there)
    main_file = ""
    #: a folder the target may write scratch files into (set by the harness; else a temporary one)
    scratch = None

    def __init__(self):
        self.readers = [Reader(n, getattr(self, "read_" + n)) for n in self.reader_names]
        self._seed_cases = []

    reader_names: tuple = ()

    def build_seeds(self, seed_dir: Path) -> None:
        raise NotImplementedError

    def setup(self, seed_dir: Path) -> None:
        self._seed_cases = [read_case(d) for d in sorted(Path(seed_dir).iterdir()) if d.is_dir()]
        if not self._seed_cases:
            raise RuntimeError(f"{self.name}: no seeds in {seed_dir}")

    def seed_cases(self) -> list:
        return list(self._seed_cases)

    def scratch_dir(self) -> Path:
        if self.scratch is None:
            import atexit
            import shutil
            from tests.fuzz.runner import fast_tmp_dir
            self.scratch = Path(tempfile.mkdtemp(prefix=f"glassnet-fuzz-{self.name}-", dir=fast_tmp_dir()))
            atexit.register(shutil.rmtree, self.scratch, True)
        Path(self.scratch).mkdir(parents=True, exist_ok=True)
        return Path(self.scratch)

    def seed_files(self, name=None) -> list:
        name = name or self.main_file
        return [c[name] for c in self._seed_cases if name in c]

    def strategy(self):
        raise NotImplementedError

    # atheris: the default is one file holding all the bytes
    def from_bytes(self, data: bytes) -> dict:
        return {self.main_file: data}

    def to_bytes(self, case: dict) -> bytes:
        return case[self.main_file]


def _split2(data: bytes):
    """Two byte strings from one: a 2-byte little-endian length of the first, then both."""
    n = int.from_bytes(data[:2].ljust(2, b"\0"), "little")
    return data[2:2 + n], data[2 + n:]


def _join2(a: bytes, b: bytes) -> bytes:
    return len(a).to_bytes(2, "little") + a + b


# ============================================================ state dicts
def check_state_dict(sd, what: str, native: bool = True) -> None:
    """The promises of load_state_dict_file: a dict of str -> C-contiguous, writeable, numeric NumPy
    arrays (in native byte order where the reader converts: .safetensors and .pth, not .npz)."""
    _check(isinstance(sd, dict), f"{what} returned a {type(sd).__name__}, not a dict")
    for k, v in sd.items():
        _check(isinstance(k, str), f"{what} returned a non-string key {k!r}")
        _check(isinstance(v, np.ndarray), f"{what} returned a {type(v).__name__} for {k!r}, not an ndarray")
        _check(v.flags.c_contiguous, f"{what} returned a non-C-contiguous array for {k!r}")
        _check(v.dtype.isnative or not native, f"{what} returned a non-native byte order {v.dtype} for {k!r}")
        _check(v.dtype.kind in "biufc", f"{what} returned dtype {v.dtype} for {k!r}")
        _check(v.flags.writeable, f"{what} returned a read-only array for {k!r}")


ST_TAGS = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"]
ST_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
               "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
ST_TOKENS = [b'"dtype"', b'"shape"', b'"data_offsets"', b'"__metadata__"', b'"BF16"', b'"F8_E5M2"', b"[",
             b"]", b"{", b"}", b"null", b",", b'"', b"\\u0000", b"NaN", b"[0,0]", b"[]", b"\xff"]


@st.composite
def safetensors_file(draw):
    """A structurally generated .safetensors file: a header of entries (mostly well-formed, with
    boundary shapes and offsets, sometimes arbitrary JSON), a data section, a length prefix."""
    header = {}
    offset = 0
    for _ in range(draw(st.integers(0, 4))):
        name = pick(draw, ["w", "b", "0.weight", "__metadata__", "", "a" * 300]) if draw(_BOOL) else draw(_TEXT6)
        if not draw(st.integers(0, 6)):
            header[name] = draw(M.json_values())
            continue
        tag = pick(draw, ST_TAGS if draw(st.integers(0, 4)) else ["F8_E4M3", "C64", "f32", "", None, 5])
        rank = pick(draw, [0, 1, 1, 2, 3, 8, 64, 65])
        shape = [M.int_or(draw, 0, 4, M.BOUNDARY_INTS) for _ in range(rank)]
        if rank >= 8 and draw(st.booleans()):
            shape = [pick(draw, [1, 1, 2, 2 ** 31, 2 ** 62, 2 ** 64 - 1])] * rank
        itemsize = ST_ITEMSIZE.get(tag, 4) if isinstance(tag, str) else 4
        need = math.prod(shape) * itemsize if all(s >= 0 for s in shape) else -1
        if 0 <= need <= 4096 and draw(st.integers(0, 3)):
            begin, end = offset, offset + need
            offset = end
        else:
            begin = offset if draw(_BOOL) else pick(draw, M.BOUNDARY_INTS)
            end = begin + max(need, 0) if draw(_BOOL) else pick(draw, M.BOUNDARY_INTS)
        info = {"dtype": tag, "shape": shape, "data_offsets": [begin, end]}
        edit = draw(st.integers(0, 9))
        if edit == 0:
            info[pick(draw, ["dtype", "shape", "data_offsets"])] = draw(M.json_values())
        elif edit == 1:
            del info[pick(draw, ["dtype", "shape", "data_offsets"])]
        elif edit == 2:
            info["extra"] = draw(M.json_values())
        header[name] = info
    if draw(st.booleans()):
        header["__metadata__"] = draw(_STR_DICT) if draw(_BOOL) else draw(M.json_values())
    form = draw(st.integers(0, 9))
    if form == 0:
        text = M.deep_json_text(draw).encode()
    elif form == 1:
        text = draw(st.binary(max_size=40))
    else:
        text = M.dump_json(draw, header)
    text += b" " * pick(draw, [0, 0, -len(text) % 8, 3])
    data = _rand_bytes(draw, max(0, min(offset + pick(draw, [0, 0, 0, 1, -1, 7, 100]), 8192)))
    n = len(text) if draw(st.integers(0, 5)) else pick(draw, M.BOUNDARY_INTS) % (1 << 64)
    return struct.pack("<Q", n) + text + data


@st.composite
def safetensors_parts_mutated(draw, seeds, tokens, fixup=None):
    """A .safetensors seed with its JSON header and/or data section mutated *separately*, and the
    8-byte header length written anew (an insert into the header then still parses as a header);
    ``fixup`` (e.g. :func:`rehash`) runs on the result three times in four."""
    data = pick(draw, seeds)
    (n,) = struct.unpack("<Q", data[:8])
    header, body = data[8:8 + n], data[8 + n:]
    which = draw(st.integers(0, 3))
    if which in (0, 1, 3):
        header = M.mutate_bytes(draw, header, [header], tokens, 3)
    if which in (2, 3) and body:
        body = M.mutate_bytes(draw, body, [body], (), 2)
    out = struct.pack("<Q", len(header)) + header + body
    if fixup is not None and draw(st.integers(0, 3)):
        out = fixup(out)
    return out


@register
class SafetensorsTarget(Target):
    name = "safetensors"
    description = ("glassnet.io.load_state_dict_file on .safetensors (differential check against the "
                   "safetensors package)")
    main_file = "w.safetensors"
    reader_names = ("load_state_dict_file",)

    def build_seeds(self, seed_dir):
        S.build_safetensors(seed_dir)

    def strategy(self):
        seeds = self.seed_files()
        return st.one_of(M.mutated(seeds, ST_TOKENS), safetensors_parts_mutated(seeds, ST_TOKENS),
                         safetensors_file()).map(lambda b: {self.main_file: b})

    def read_load_state_dict_file(self, case_dir):
        from glassnet.io import load_state_dict_file
        path = case_dir / self.main_file
        sd = load_state_dict_file(path)
        check_state_dict(sd, "load_state_dict_file")
        try:  # differential: where the reference reader also loads the file, both must agree
            from safetensors.numpy import load as st_load
            ref = st_load(path.read_bytes())
        except Exception:  # noqa: BLE001 - the reference may refuse (BF16, stricter rules): no opinion then
            return sd
        _check(set(ref) == set(sd), f"keys differ from the safetensors package: {sorted(sd)} vs {sorted(ref)}")
        for k, v in ref.items():
            _check(sd[k].shape == v.shape and (sd[k].dtype == v.dtype) and np.array_equal(sd[k], v, equal_nan=True),
                   f"tensor {k!r} differs from the safetensors package")
        return sd


# ------------------------------------------------------------------ .npz
NPY_TOKENS = [b"\x93NUMPY", b"'descr'", b"'shape'", b"'fortran_order'", b"True", b"'<f4'", b"'O'", b"'|V8'",
              b"(", b")", b",", b"{", b"}", b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"\xff\xff\xff\xff",
              b"'<U9999999'", b"'>f8'"]
NPY_DESCRS = ["'<f4'", "'>f8'", "'|u1'", "'|b1'", "'<i8'", "'<c8'", "'<f2'", "'O'", "'<U3'", "'|S5'", "'|V8'",
              "'<M8[s]'", "'<m8[D]'", "[('a', '<f4'), ('b', '|u1')]", "('<f4', (2, 3))", "'<U999999999'",
              "'|V0'", "'<f16'", "'x'", "5", "None"]


@st.composite
def npy_member(draw):
    """The bytes of one .npy member: magic, version, header dict text, payload."""
    descr = pick(draw, NPY_DESCRS)
    rank = pick(draw, [0, 1, 1, 2, 3, 33, 65])
    shape = tuple(M.int_or(draw, 0, 5, M.BOUNDARY_INTS) for _ in range(rank))
    fortran = pick(draw, ["False", "True", "0", "'x'"])
    shape_text = repr(shape) if draw(st.integers(0, 9)) else pick(draw, ["[1]", "(1.5,)", "'x'", "((1,),)"])
    text = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    if not draw(st.integers(0, 9)):
        text = pick(draw, ["{", "(" * 200 + ")" * 200, "{'descr': '<f4'}", "x" * 70000, ""])
    version = pick(draw, [(1, 0), (1, 0), (2, 0), (3, 0), (0, 9), (9, 9)])
    raw = text.encode("utf-8")
    hlen_size = 2 if version[0] == 1 else 4
    pad = -(6 + 2 + hlen_size + len(raw) + 1) % 64
    raw = raw + b" " * pad + b"\n"
    n = len(raw) if draw(st.integers(0, 7)) else pick(draw, M.BOUNDARY_INTS) % (1 << (8 * hlen_size))
    head = b"\x93NUMPY" + bytes(version) + (n % (1 << (8 * hlen_size))).to_bytes(hlen_size, "little") + raw
    try:
        itemsize = np.dtype(eval(descr) if descr not in ("'x'", "5", "None") else "f4").itemsize  # noqa: S307
    except Exception:  # noqa: BLE001
        itemsize = 4
    need = math.prod(shape) * itemsize
    size = need if 0 <= need <= 4096 and draw(st.integers(0, 3)) else draw(st.integers(0, 64))
    return head + _rand_bytes(draw, size)


@st.composite
def npz_archive(draw):
    members = []
    for _ in range(draw(st.integers(0, 4))):
        name = pick(draw, ["w.npy", "b.npy", "w.npy", "x", "a/b.npy", ".npy", "x\x00.npy"]) if draw(_BOOL) \
            else draw(_TEXT6) + ".npy"
        method = pick(draw, M.COMPRESSIONS[:2] * 3 + M.COMPRESSIONS)
        members.append((name, draw(npy_member()), method, 0))
    return M.build_zip(members)


@register
class NpzTarget(Target):
    name = "npz"
    description = "glassnet.io.load_state_dict_file on .npz archives"
    main_file = "w.npz"
    reader_names = ("load_state_dict_file",)

    def build_seeds(self, seed_dir):
        S.build_npz(seed_dir)

    def strategy(self):
        seeds = self.seed_files()
        members = [M.read_zip_members(s) for s in seeds]
        extra = [("x.npy", s[:0]) for s in seeds[:1]] + [("evil.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr':'O'}")]
        return st.one_of(M.mutated(seeds, NPY_TOKENS), M.zip_member_mutated(members, NPY_TOKENS, extra),
                         npz_archive()).map(lambda b: {self.main_file: b})

    def read_load_state_dict_file(self, case_dir):
        from glassnet.io import load_state_dict_file
        sd = load_state_dict_file(case_dir / self.main_file)
        check_state_dict(sd, "load_state_dict_file", native=False)
        return sd


# ------------------------------------------------------------------ .pth
PICKLE_TOKENS = [b"\x80\x02", b"\x80\x05", b"c__builtin__\neval\n", b"cos\nsystem\n",
                 b"ctorch._utils\n_rebuild_tensor_v2\n",
                 b"(", b"t", b"R", b"Q", b"}", b"u", b"q\x00", b"h\x00", b"r\xff\xff\xff\x7f", b"j\xff\xff\xff\x7f",
                 b"B\xff\xff\xff\xff", b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7f", b".", b"X\x07\x00\x00\x00storage",
                 b"ctorch\nFloatStorage\n", b"\x95\xff\xff\xff\xff\x00\x00\x00\x00", b"K\xff", b"J\xff\xff\xff\xff",
                 b"(" * 64, b"\x85" * 64, b"PK\x03\x04"]


@st.composite
def torch_archive(draw):
    """A torch.save zip around a generated pickle: torch-shaped (tensors from storages) or random opcodes."""
    if draw(st.integers(0, 2)):
        pkl, storages, byteorder = draw(M.torch_pickle())
    else:
        pkl = draw(M.pickle_opcodes())
        storages = {str(i): _rand_bytes(draw, pick(draw, [0, 4, 8, 12])) for i in range(2)}
        byteorder = b"little"
    prefix = pick(draw, ["archive/", "archive/", "archive/", "m/", "", "a/b/"])
    method = pick(draw, [M.zipfile.ZIP_STORED] * 4 + [M.zipfile.ZIP_DEFLATED, M.zipfile.ZIP_BZIP2])
    members = [(prefix + "data.pkl", pkl, method, 0)]
    if byteorder is not None:
        members.append((prefix + "byteorder", byteorder, method, 0))
    members += [(prefix + f"data/{k}", v, method, 0) for k, v in storages.items() if "\x00" not in k]
    members.append((prefix + "version", b"3\n", method, 0))
    if not draw(st.integers(0, 9)):
        members.append((prefix + pick(draw, ["code/x.py", "constants.pkl", "data.pkl", "x/data.pkl"]),
                        b"x", method, 0))
    return M.build_zip(members)


@register
class PthTarget(Target):
    name = "pth"
    description = "glassnet.io.pth.load_pth and load_state_dict_file on torch.save zip archives"
    main_file = "w.pth"
    reader_names = ("load_pth", "load_state_dict_file")

    def build_seeds(self, seed_dir):
        S.build_pth(seed_dir)

    def strategy(self):
        seeds = self.seed_files()
        zips = [s for s in seeds if s.startswith(b"PK")]
        members = [M.read_zip_members(s) for s in zips]
        extra = [("archive/data/99", b"\x00" * 8), ("archive/code/a.py", b"x"), ("archive/constants.pkl", b"."),
                 ("archive/byteorder", b"big"), ("archive/data.pkl", b"\x80\x02}q\x00."),
                 ("archive/data/0", b"")]
        return st.one_of(M.mutated(seeds, PICKLE_TOKENS), M.zip_member_mutated(members, PICKLE_TOKENS, extra),
                         torch_archive()).map(lambda b: {self.main_file: b})

    def read_load_pth(self, case_dir):
        from glassnet.io.pth import load_pth
        obj = load_pth(case_dir / self.main_file)
        _check_tree(obj, "load_pth")
        return obj

    def read_load_state_dict_file(self, case_dir):
        from glassnet.io import load_state_dict_file
        sd = load_state_dict_file(case_dir / self.main_file)
        check_state_dict(sd, "load_state_dict_file")
        return sd


def _check_tree(obj, what, depth=0):
    """Every array in what load_pth returned is a native, C-contiguous, writeable ndarray."""
    if depth > 200:
        raise ContractViolation(f"{what} returned a value nested more than 200 levels deep")
    if isinstance(obj, np.ndarray):
        _check(obj.flags.c_contiguous and obj.dtype.isnative and obj.flags.writeable,
               f"{what} returned an array that is not C-contiguous, native and writeable")
    elif isinstance(obj, dict):
        for v in list(obj.values())[:10000]:
            _check_tree(v, what, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in list(obj)[:10000]:
            _check_tree(v, what, depth + 1)


# ============================================================ checkpoints
HASH_KEY = b'"glassnet_checkpoint_sha256":"'
CK_TOKENS = [b'"epoch"', b'"step"', b'"global_step"', b'"optimizer"', b'"scheduler"', b'"param_groups"',
             b'"__float__"', b'"__tuple__"', b'"__counter__"', b'"__items__"', b'\\"nan\\"', b"-1", b"null",
             b"1e999", b"[", b"{", b'"format_version":"1"', b'"glassnet-checkpoint"', b"\\\\u0000"]


def rehash(data: bytes) -> bytes:
    """``data`` with its header's ``glassnet_checkpoint_sha256`` made valid again (where it is still
    there), so that byte-level edits reach the validation behind the hash."""
    import hashlib
    if len(data) < 8:
        return data
    (n,) = struct.unpack("<Q", data[:8])
    head = data[8:8 + n]
    at = head.find(HASH_KEY)
    if at < 0 or n > len(data):
        return data
    start = 8 + at + len(HASH_KEY)
    digest = data[start:start + 64]
    if len(digest) < 64:
        return data
    zeroed = data[:start] + b"0" * 64 + data[start + 64:]
    # the reader zeroes the first occurrence of the digest text in the header: keep that the field's own
    if head.find(digest) != at + len(HASH_KEY):
        return data
    return zeroed[:start] + hashlib.sha256(zeroed).hexdigest().encode() + zeroed[start + 64:]


def _snapshot(model, opt, sched):
    return ({k: np.array(v.data if hasattr(v, "data") and not isinstance(v, np.ndarray) else v, copy=True)
             for k, v in model.state_dict().items()},
            copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict()))


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def load_checkpoint_all_or_nothing(path, combo: str):
    """load_checkpoint into fresh objects of ``combo``: a glassnet error must leave them as they
    were; a load must give the file's model arrays and a state a training step runs from."""
    from glassnet.errors import GlassnetError
    from glassnet.io import load_checkpoint, load_state_dict_file

    model, opt, sched = S.make_training_objects(combo, seed=7)
    S.train_step(model, opt, sched, seed=3)  # non-trivial state to be kept on failure
    before = _snapshot(model, opt, sched)
    try:
        meta = load_checkpoint(path, model, opt, sched)
    except GlassnetError:
        after = _snapshot(model, opt, sched)
        for part, a, b in zip(("model", "optimizer", "scheduler"), before, after):
            if not _same(a, b):
                raise ContractViolation(f"not all-or-nothing: load_checkpoint raised but changed the {part}") from None
        raise
    _check(isinstance(meta, dict), "load_checkpoint returned no metadata dict")
    arrays = load_state_dict_file(path)
    for k, v in model.state_dict().items():
        v = np.asarray(v.data if hasattr(v, "data") and not isinstance(v, np.ndarray) else v)
        _check(np.array_equal(v, arrays["model." + k], equal_nan=True),
               f"loaded model: {k!r} differs from the checkpoint's array")
    try:
        S.train_step(model, opt, sched, seed=4)
    except Exception as exc:  # noqa: BLE001
        raise ContractViolation(f"loaded state breaks training: a step after load_checkpoint raised "
                                f"{type(exc).__name__}: {exc}") from exc
    return meta


class _CheckpointBase(Target):
    ck_file = "ck.safetensors"

    def build_seeds(self, seed_dir):
        S.build_checkpoints(seed_dir)

    def _combo(self, case_dir) -> str:
        try:
            combo = (case_dir / "combo").read_text()
        except (OSError, UnicodeDecodeError):
            combo = S.COMBOS[0]
        return combo if combo in S.COMBOS else S.COMBOS[0]

    def read_load_checkpoint(self, case_dir):
        return load_checkpoint_all_or_nothing(case_dir / self.ck_file, self._combo(case_dir))

    def read_read_checkpoint_info(self, case_dir):
        from glassnet.io.checkpoint import read_checkpoint_info
        meta = read_checkpoint_info(case_dir / self.ck_file)
        _check(isinstance(meta, dict), "read_checkpoint_info returned a non-dict")
        return meta

    def read_read_checkpoint_info_nohash(self, case_dir):
        from glassnet.io.checkpoint import read_checkpoint_info
        meta = read_checkpoint_info(case_dir / self.ck_file, verify_hash=False)
        _check(isinstance(meta, dict), "read_checkpoint_info returned a non-dict")
        return meta

    def from_bytes(self, data):
        combo = S.COMBOS[data[0] % len(S.COMBOS)] if data else S.COMBOS[0]
        return {self.ck_file: data[1:], "combo": combo.encode()}

    def to_bytes(self, case):
        return bytes([S.COMBOS.index(case["combo"].decode())]) + case[self.ck_file]


@register
class CheckpointTarget(_CheckpointBase):
    name = "checkpoint"
    description = ("read_checkpoint_info (hash checked / not) and load_checkpoint (all-or-nothing) on "
                   "byte-mutated checkpoint files (whole file, or header/data apart with the header length "
                   "rewritten), most of them with the SHA-256 made valid again")
    reader_names = ("read_checkpoint_info", "read_checkpoint_info_nohash", "load_checkpoint")
    ci_examples = 120

    def strategy(self):
        cases = self.seed_cases()

        @st.composite
        def strat(draw):
            case = pick(draw, cases)
            if draw(_BOOL):
                data = draw(M.mutated([case[self.ck_file]] + [c[self.ck_file] for c in cases], CK_TOKENS,
                                      fixup=rehash))
            else:
                data = draw(safetensors_parts_mutated([case[self.ck_file]], CK_TOKENS + [b"9" * 5000],
                                                      fixup=rehash))
            return {self.ck_file: data, "combo": case["combo"]}
        return strat()


def _json_paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _json_paths(v, path + (i,))


TAGGED = [{"__float__": "nan"}, {"__float__": "inf"}, {"__float__": "-inf"}, {"__float__": "1e999"},
          {"__float__": "x"}, {"__float__": 5}, {"__tuple__": [1, 2]}, {"__tuple__": "x"}, {"__counter__": [[1, 2]]},
          {"__counter__": [[[1], 2]]}, {"__counter__": [1]}, {"__items__": [[1, "a"]]}, {"__items__": [[[1, 2], 3]]},
          {"__items__": [[{"a": 1}, 3]]}, {"__tuple__": [{"__float__": "nan"}]}]
JSON_NUMBERS = [0, 1, -1, 2, 3, 10 ** 30, -(10 ** 30), 2 ** 63, 2 ** 64, 0.5, -0.5, 1e308, -1e308, 1e-308, True,
                False, None, "1", "", 7.0]


@st.composite
def mutated_checkpoint_parts(draw, arrays, meta):
    """(arrays, metadata JSON text) of a checkpoint after edits to its metadata tree and arrays."""
    arrays = OrderedDict((k, v.copy()) for k, v in arrays.items())
    meta = copy.deepcopy(meta)
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 2)):  # a metadata edit
            paths = list(_json_paths(meta))[1:]
            if not paths:
                continue
            path = pick(draw, paths)
            parent = meta
            for p in path[:-1]:
                parent = parent[p]
            key = path[-1]
            op = pick(draw, ["number", "number", "tagged", "json", "delete", "wrap", "stringify",
                                       "negate", "dup-key"])
            old = parent[key]
            if op == "number":
                parent[key] = pick(draw, JSON_NUMBERS)
            elif op == "tagged":
                parent[key] = copy.deepcopy(pick(draw, TAGGED))
            elif op == "json":
                parent[key] = draw(M.json_values(max_leaves=6))
            elif op == "delete":
                del parent[key]
            elif op == "wrap":
                parent[key] = [old] if draw(st.booleans()) else {"__tuple__": [old]}
            elif op == "stringify":
                parent[key] = json.dumps(old)
            elif op == "negate" and isinstance(old, (int, float)) and not isinstance(old, bool):
                parent[key] = -old - 1
            elif op == "dup-key" and isinstance(parent, dict):
                parent[str(key) + "_"] = old
        else:  # an array edit
            if not arrays:
                arrays["model.x"] = np.zeros(1, np.float32)
            name = pick(draw, list(arrays))
            a = arrays[name]
            op = pick(draw, ["dtype", "shape", "fill", "drop", "add", "rename", "scalar"])
            if op == "dtype":
                arrays[name] = a.astype(pick(draw, ["f2", "f8", "i4", "i8", "u1", "?", "u8", "i2"]))
            elif op == "shape":
                shape = tuple(draw(_SHAPES))
                arrays[name] = np.resize(a, shape) if a.size else np.zeros(shape, a.dtype)
            elif op == "fill" and a.size:
                b = a.astype(np.float64) if a.dtype.kind != "f" else a
                b = b.copy()
                b.flat[draw(st.integers(0, b.size - 1))] = pick(draw, [np.nan, np.inf, -np.inf, 1e300,
                                                                                 -1.0, 2.5, 1e10])
                arrays[name] = b.astype(a.dtype) if a.dtype.kind == "f" else b
            elif op == "drop":
                del arrays[name]
            elif op == "add":
                arrays[pick(draw, ["model.extra", "optimizer.state.0.momentum_buffer",
                                             "optimizer.state.99.exp_avg", "optimizer.state.0.x", "model.",
                                             "optimizer.state.1.exp_avg_sq", "model.1.running_mean"])] = \
                    np.ones(draw(st.integers(0, 5)), pick(draw, ["f4", "f8", "i8"]))
            elif op == "rename":
                arrays[name + pick(draw, ["_", ".0", ""])] = arrays.pop(name)
            elif op == "scalar":
                arrays[name] = np.array(a.flat[0] if a.size else 0, a.dtype)
    text = json.dumps(meta, separators=(",", ":"))
    if not draw(st.integers(0, 7)):
        text = M.mutate_bytes(draw, text.encode(), [], CK_TOKENS, 2).decode("utf-8", "replace")
    return arrays, text


@register
class CheckpointRewriteTarget(_CheckpointBase):
    name = "checkpoint_rewrite"
    description = ("load_checkpoint (all-or-nothing into model + optimizer + scheduler) and read_checkpoint_info "
                   "on checkpoints whose arrays/metadata were edited and re-written by write_checkpoint_file "
                   "(valid hash: the structural validation is fuzzed)")
    reader_names = ("load_checkpoint", "read_checkpoint_info")
    ci_examples = 120

    def setup(self, seed_dir):
        super().setup(seed_dir)
        from glassnet.io import load_state_dict_file
        self._parts = {}
        self._scratch = self.scratch_dir()
        for case in self._seed_cases:
            p = self._scratch / "seed.safetensors"
            p.write_bytes(case[self.ck_file])
            arrays = load_state_dict_file(p)
            (n,) = struct.unpack("<Q", case[self.ck_file][:8])
            header = json.loads(case[self.ck_file][8:8 + n])
            meta = json.loads(header["__metadata__"]["glassnet_checkpoint"])
            self._parts[case["combo"].decode()] = (arrays, meta)

    def strategy(self):
        from glassnet.io.checkpoint_file import write_checkpoint_file

        @st.composite
        def strat(draw):
            combo = pick(draw, sorted(self._parts))
            arrays, text = draw(mutated_checkpoint_parts(*self._parts[combo]))
            p = self._scratch / "gen.safetensors"
            write_checkpoint_file(p, arrays, text)
            return {self.ck_file: p.read_bytes(), "combo": combo.encode()}
        return strat()


# ================================================================ run dirs
CONFIG_KEYS = ["model", "model_kwargs", "num_classes", "in_channels", "dataset", "dtype", "image_size",
               "classes", "data_root", "epochs", "lr"]
RUN_TOKENS = [b'"model"', b'"epoch"', b'"num_classes"', b'"image_size"', b"null", b"[", b"{", b"NaN", b"-1",
              b"true", b'"', b"\xff\xfe", b"\xef\xbb\xbf", b"1e999", b"9" * 5000]


_CONFIG_KEY_LISTS = st.lists(st.sampled_from(CONFIG_KEYS), max_size=6, unique=True)
_HISTORY_ROWS = st.lists(st.dictionaries(st.sampled_from(["epoch", "train_loss", "val_accuracy", "lr", ""]),
                                         st.one_of(st.sampled_from(M.BOUNDARY_INTS), M.json_scalars()), max_size=4),
                         max_size=4)


@st.composite
def config_json(draw):
    cfg = {}
    for key in draw(_CONFIG_KEY_LISTS):
        kind = draw(st.integers(0, 2))
        cfg[key] = (draw(M.json_values(max_leaves=6)) if kind == 0 else pick(draw, M.BOUNDARY_INTS) if kind == 1
                    else copy.deepcopy(pick(draw, ["mlp", "small_cnn", "fashion-mnist", "mnist", "float64", "float16",
                                                   [28, 28], [0, 1], [True, 2]])))
    if draw(st.integers(0, 3)):
        cfg.setdefault("model", "mlp")
    return M.dump_json(draw, cfg)


@st.composite
def history_json(draw):
    rows = draw(_HISTORY_ROWS)
    value = rows if draw(st.integers(0, 5)) else draw(M.json_values())
    return M.dump_json(draw, value)


def _json_file(draw, seeds, generated):
    kind = draw(st.integers(0, 9))
    if kind < 4:
        return draw(M.mutated(seeds, RUN_TOKENS))
    if kind == 4:
        return M.deep_json_text(draw).encode()
    if kind == 5:
        return draw(st.binary(max_size=30))
    return draw(generated)


@register
class RunFilesTarget(Target):
    name = "run_files"
    description = "glassnet.io.run_dir.read_config and read_history on fuzzed config.json / history.json"
    reader_names = ("read_config", "read_history")
    ci_examples = 300

    def build_seeds(self, seed_dir):
        S.build_run_files(seed_dir)

    def strategy(self):
        configs, histories = self.seed_files("config.json"), self.seed_files("history.json")

        @st.composite
        def strat(draw):
            return {"config.json": _json_file(draw, configs, config_json()),
                    "history.json": _json_file(draw, histories, history_json())}
        return strat()

    def read_read_config(self, case_dir):
        from glassnet.io.run_dir import read_config
        cfg = read_config(case_dir)
        _check(isinstance(cfg, dict) and isinstance(cfg.get("model"), str), "read_config: no string 'model'")
        return cfg

    def read_read_history(self, case_dir):
        from glassnet.io.run_dir import read_history
        rows = read_history(case_dir)
        _check(isinstance(rows, list) and all(isinstance(r, dict) for r in rows), "read_history: not a list of dicts")
        return rows

    def from_bytes(self, data):
        a, b = _split2(data)
        return {"config.json": a, "history.json": b}

    def to_bytes(self, case):
        return _join2(case["config.json"], case["history.json"])


WEIGHT_FILES = ("checkpoints/best.safetensors", "checkpoints/last.safetensors", "model.npz")
#: sizes a fuzzed config may ask for (kept to what builds in well under a second)
CONFIG_SIZES = [0, 1, 2, 3, 10, 27, 28, 29, 64, -1, True, 2.5, "28", None, [28], [1, 1], [0, 5], [3, 3, 3]]


@st.composite
def run_config_variant(draw, base: dict):
    cfg = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        key = pick(draw, CONFIG_KEYS + ["model_kwargs.hidden", "model_kwargs.width", "model_kwargs.x",
                                                  "model_kwargs.image_size", "model_kwargs.dropout"])
        value = copy.deepcopy(pick(draw, CONFIG_SIZES if draw(_BOOL) else [
            "mlp", "small_cnn", "lenet5", "nope", "", "float64", "float16", "mnist", "cifar",
            [str(i) for i in range(3)], {}, []]))
        if key.startswith("model_kwargs."):
            if not isinstance(cfg.get("model_kwargs"), dict):
                cfg["model_kwargs"] = {}
            cfg["model_kwargs"][key.split(".", 1)[1]] = value
        elif draw(st.integers(0, 4)):
            cfg[key] = value
        else:
            cfg.pop(key, None)
    return json.dumps(cfg).encode()


@register
class RunLoadTarget(Target):
    name = "run_load"
    description = ("glassnet.io.load_run on run folders: config.json varied field by field, weights "
                   "(checkpoints/best|last.safetensors, model.npz) byte-mutated (checkpoint hashes made valid)")
    reader_names = ("load_run_best", "load_run_last")
    ci_examples = 100

    def build_seeds(self, seed_dir):
        S.build_run_dirs(seed_dir)

    def strategy(self):
        cases = self.seed_cases()

        @st.composite
        def strat(draw):
            case = dict(pick(draw, cases))
            if draw(st.integers(0, 2)) == 0:
                case["config.json"] = draw(run_config_variant(json.loads(case["config.json"])))
            wname = next(k for k in case if k != "config.json")
            if draw(st.integers(0, 3)):
                same_kind = [c[wname] for c in cases if wname in c]
                case[wname] = draw(M.mutated(same_kind, CK_TOKENS + NPY_TOKENS,
                                             fixup=rehash if wname.endswith(".safetensors") else None))
            return case
        return strat()

    def _load(self, case_dir, which):
        from glassnet.io.run_dir import load_run
        model, config = load_run(case_dir, which=which, log=None)
        _check(isinstance(config, dict) and "weights_file" in config, "load_run: config without weights_file")
        return model

    def read_load_run_best(self, case_dir):
        return self._load(case_dir, "best")

    def read_load_run_last(self, case_dir):
        return self._load(case_dir, "last")

    def from_bytes(self, data):
        where = WEIGHT_FILES[data[0] % 3] if data else WEIGHT_FILES[0]
        a, b = _split2(data[1:])
        return {"config.json": a, where: b}

    def to_bytes(self, case):
        where = next(k for k in case if k != "config.json")
        return bytes([WEIGHT_FILES.index(where)]) + _join2(case["config.json"], case[where])


# ===================================================================== IDX
IDX_CODES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_TOKENS = [b"\x00\x00\x08\x03", b"\x00\x00\x08\x01", b"\x00\x00\x0d\x40", b"\x00\x00\x0e\x41", b"\xff\xff\xff\xff",
              b"\x00\x00\x00\x00", b"\x1f\x8b\x08\x00", b"\x7f\xff\xff\xff"]


_IDX_CODE = st.one_of(st.sampled_from(sorted(IDX_CODES)), st.integers(0, 255))
_IDX_NDIM = st.one_of(st.sampled_from((1, 1, 2, 3, 4, 64, 65, 0, 255)), st.integers(0, 255))
_IDX_DIM = st.one_of(st.integers(0, 5), st.sampled_from((28, 0xFFFFFFFF, 1 << 31, 1 << 16, 60000)))
_IDX_FILL = st.sampled_from((1, 1, 0, 2))
_IDX_SLACK = st.sampled_from((0, 0, 0, 0, 1, -1, 4, 100))


@st.composite
def idx_file(draw, dims_hint=None):
    """An IDX file: magic (valid or not), dims (boundary values), a payload of the promised length or not."""
    code = draw(_IDX_CODE)
    if dims_hint is not None and draw(st.integers(0, 3)):
        dims = list(dims_hint)
    else:
        ndim = draw(_IDX_NDIM)
        k = min(ndim, 6)
        fill = draw(_IDX_FILL) if draw(_BOOL) else draw(_IDX_DIM)  # many huge dims: sizes past 2**1024
        dims = [draw(_IDX_DIM) for _ in range(k)] + [fill] * (ndim - k)
    magic = bytes([0, 0, code, len(dims) % 256])
    if not draw(st.integers(0, 15)):
        magic = draw(st.binary(min_size=4, max_size=4))
    header = magic + b"".join(struct.pack(">I", d % (1 << 32)) for d in dims)
    itemsize = np.dtype(IDX_CODES.get(code, "u1")).itemsize
    need = math.prod(dims) * itemsize
    if 0 <= need <= 1 << 16 and draw(st.integers(0, 3)):
        size = need + draw(_IDX_SLACK)
    else:
        size = draw(st.integers(0, 64))
    if dims_hint is not None and size == need and code == 0x08 and draw(st.booleans()):
        payload = random.Random(draw(st.integers(0, 255))).choices(range(13), k=max(size, 0))
        payload = bytes(payload)  # labels mostly in 0..12
    else:
        payload = _rand_bytes(draw, max(size, 0))
    if draw(st.integers(0, 9)) == 0:
        header = header[:draw(st.integers(0, len(header)))]
    return header + payload


@st.composite
def maybe_gzip(draw, raw):
    """``raw`` as is, or gzip-compressed (sometimes with a broken CRC/size, trailing bytes, two members, cut)."""
    if draw(st.booleans()):
        return raw, False
    data = bytearray(gzip.compress(raw, compresslevel=pick(draw, [0, 1, 6, 9]), mtime=0))
    edit = draw(st.integers(0, 9))
    if edit == 0 and len(data) > 8:
        data[-8] ^= 0xFF  # CRC
    elif edit == 1 and len(data) > 4:
        data[-4:] = pick(draw, [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"])  # ISIZE
    elif edit == 2:
        data += pick(draw, [b"\x00", b"junk", b"\x1f\x8b", b"\x00" * 1024])
    elif edit == 3:
        data += gzip.compress(draw(st.binary(max_size=8)), mtime=0)
    elif edit == 4:
        del data[draw(st.integers(0, len(data))):]
    elif edit == 5:
        z = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate with a lying header
        data = bytearray(b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + b"\xff\xff" + z.compress(raw) + z.flush())
    return bytes(data), True


def check_idx(arr, data: bytes, path) -> None:
    """read_idx's result matches the header and payload of the (decompressed) file."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except Exception:  # noqa: BLE001 - multi-member or trailing junk that read_idx accepted: no opinion
            return
    code, ndim = data[2], data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_CODES[code])
    _check(isinstance(arr, np.ndarray), f"read_idx returned a {type(arr).__name__}")
    _check(arr.shape == dims, f"read_idx: shape {arr.shape} is not the header's {dims}")
    _check(arr.dtype == dtype.newbyteorder("="), f"read_idx: dtype {arr.dtype} is not the header's {dtype}")
    _check(arr.dtype.isnative and arr.flags.writeable, "read_idx: array not native/writeable")
    payload = data[4 + 4 * ndim:]
    _check(arr.astype(dtype).tobytes() == payload, "read_idx: the array's bytes are not the file's payload")


@register
class IdxTarget(Target):
    name = "idx"
    description = "glassnet.data.idx.read_idx on raw and gzip IDX files (default and a 4 KiB max_bytes)"
    reader_names = ("read_idx", "read_idx_small_budget")
    ci_examples = 300

    def build_seeds(self, seed_dir):
        S.build_idx(seed_dir)

    def strategy(self):
        raw = self.seed_files("data")
        gz = self.seed_files("data.gz")

        @st.composite
        def strat(draw):
            kind = draw(st.integers(0, 3))
            if kind == 0:
                return {"data": draw(M.mutated(raw, IDX_TOKENS))}
            if kind == 1:
                return {"data.gz": draw(M.mutated(gz, IDX_TOKENS))}
            data, compressed = draw(maybe_gzip(draw(idx_file())))
            name = pick(draw, ["data.gz", "data"] if compressed else ["data", "data", "data.gz"])
            return {name: data}
        return strat()

    def _path(self, case_dir):
        p = case_dir / "data"
        return p if p.exists() else case_dir / "data.gz"

    def read_read_idx(self, case_dir):
        from glassnet.data.idx import read_idx
        path = self._path(case_dir)
        arr = read_idx(path)
        check_idx(arr, path.read_bytes(), path)
        return arr

    def read_read_idx_small_budget(self, case_dir):
        from glassnet.data.idx import read_idx
        path = self._path(case_dir)
        arr = read_idx(path, max_bytes=4096)
        _check(arr.nbytes <= 4096, f"read_idx(max_bytes=4096) returned {arr.nbytes} bytes")
        check_idx(arr, path.read_bytes(), path)
        return arr

    def from_bytes(self, data):
        return {("data.gz" if data[:1] and data[0] & 1 else "data"): data[1:]}

    def to_bytes(self, case):
        return (b"\x01" + case["data.gz"]) if "data.gz" in case else (b"\x00" + case["data"])


MNIST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@register
class MnistTarget(Target):
    name = "mnist"
    description = ("glassnet.data.MNIST / FashionMNIST(root=..., train=False) on fuzzed IDX files, then ds[0] "
                   "and get_batch")
    reader_names = ("MNIST", "FashionMNIST")
    ci_examples = 150

    def build_seeds(self, seed_dir):
        S.build_mnist(seed_dir)

    def strategy(self):
        cases = self.seed_cases()

        @st.composite
        def strat(draw):
            if draw(st.integers(0, 2)) == 0:
                case = dict(pick(draw, cases))
                name = pick(draw, sorted(case))
                case[name] = draw(M.mutated([c[k] for c in cases for k in c if k.startswith(name[:10])], IDX_TOKENS))
                return case
            n = pick(draw, [0, 1, 2, 3])
            images, gz1 = draw(maybe_gzip(draw(idx_file(dims_hint=(n, 28, 28)))))
            labels, gz2 = draw(maybe_gzip(draw(idx_file(dims_hint=(pick(draw, [n, n, n, n + 1]),)))))
            return {MNIST_FILES[0] + (".gz" if gz1 else ""): images, MNIST_FILES[1] + (".gz" if gz2 else ""): labels}
        return strat()

    def _load(self, cls, case_dir):
        ds = cls(root=case_dir, train=False)
        n = len(ds)
        _check(ds.data.dtype == np.uint8 and ds.data.shape == (n, 28, 28), f"{cls.__name__}: data {ds.data.shape}")
        _check(ds.targets.dtype == np.int64 and ds.targets.shape == (n,), f"{cls.__name__}: targets {ds.targets.shape}")
        _check(bool(np.all((ds.targets >= 0) & (ds.targets < len(cls.classes)))), f"{cls.__name__}: bad label")
        if n:
            x, y = ds[0]
            _check(x.shape == (1, 28, 28) and isinstance(y, int), f"{cls.__name__}[0]: {x.shape} {type(y)}")
            xb, yb = ds.get_batch(np.array([0, n - 1]))
            _check(xb.shape == (2, 1, 28, 28) and yb.shape == (2,), f"{cls.__name__}.get_batch: {xb.shape}")
        return ds

    def read_MNIST(self, case_dir):
        from glassnet.data import MNIST
        return self._load(MNIST, case_dir)

    def read_FashionMNIST(self, case_dir):
        from glassnet.data import FashionMNIST
        return self._load(FashionMNIST, case_dir)

    def from_bytes(self, data):
        flags = data[0] if data else 0
        a, b = _split2(data[1:])
        return {MNIST_FILES[0] + (".gz" if flags & 1 else ""): a, MNIST_FILES[1] + (".gz" if flags & 2 else ""): b}

    def to_bytes(self, case):
        names = sorted(case)
        img = next(n for n in names if n.startswith(MNIST_FILES[0]))
        lab = next(n for n in names if n.startswith(MNIST_FILES[1]))
        return bytes([int(img.endswith(".gz")) | 2 * int(lab.endswith(".gz"))]) + _join2(case[img], case[lab])


# ================================================================== images
IMAGE_TOKENS = [b"\x89PNG\r\n\x1a\n", b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS", b"\xff\xd8\xff", b"\xff\xc0",
                b"\xff\xda", b"BM", b"GIF89a", b"II*\x00", b"\x7f\xff\xff\xff", b"\xff\xff", b"\x00\x00\x00\x00",
                b"NETSCAPE2.0"]
IMAGE_EXT_LIST = ["png", "jpg", "bmp", "gif", "tif", "ppm", "ico", "webp", "tga"]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=32)
def _zero_stream(n: int) -> bytes:
    """zlib stream of ``n`` zero bytes (all-zero scanlines: filter 0, black pixels)."""
    comp = zlib.compressobj(9)
    block = bytes(4 << 20)
    parts = [comp.compress(block[:min(len(block), n - i)]) for i in range(0, n, len(block))]
    return b"".join(parts) + comp.flush()


@st.composite
def png_file(draw):
    """A PNG with valid chunk CRCs: IHDR with boundary sizes/depths/colour types, PLTE/tRNS, IDAT
    of scanlines (real zeros for large sizes: a decompression bomb), IEND."""
    w = M.int_or(draw, 1, 8, [0, 1 << 14, 20000, 65535, 1 << 31, 2 ** 32 - 1])
    h = M.int_or(draw, 1, 8, [0, 1 << 14, 9000, 65535, 1 << 31])
    depth = pick(draw, [1, 2, 4, 8, 16, 8, 8, 3, 0])
    ctype = pick(draw, [0, 2, 3, 4, 6, 6, 1, 7])
    interlace = pick(draw, [0, 0, 1, 2])
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", w % (1 << 32), h % (1 << 32), depth, ctype, 0, 0, interlace))]
    if ctype == 3 or draw(st.integers(0, 5)) == 0:
        chunks.append(_png_chunk(b"PLTE", _rand_bytes(draw, 3 * pick(draw, [0, 1, 2, 16, 256, 300]))))
    if draw(st.integers(0, 3)) == 0:
        chunks.append(_png_chunk(b"tRNS", _rand_bytes(draw, pick(draw, [1, 2, 6, 300]))))
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype, 1)
    row = 1 + (w * channels * max(depth, 1) + 7) // 8
    total = row * h
    if total <= 4096:
        raw = _rand_bytes(draw, total) if draw(st.booleans()) else bytes(total)
    elif total <= 200_000_000 and draw(st.booleans()):
        chunks.append(_png_chunk(b"IDAT", _zero_stream(total)))  # a decompression bomb (~1000:1)
        raw = None
    else:
        raw = _rand_bytes(draw, 64)
    if raw is not None:
        body = zlib.compress(raw)
        if draw(st.integers(0, 5)) == 0:
            body = body[:draw(st.integers(0, len(body)))]
        chunks.append(_png_chunk(b"IDAT", body))
    if draw(st.integers(0, 5)):
        chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


@st.composite
def bmp_file(draw):
    """A BMP whose header fields (sizes, bit depth, compression, palette size, offset) take boundary values."""
    w = M.int_or(draw, -4, 8, [1 << 15, 1 << 30, -(1 << 31), 30000])
    h = M.int_or(draw, -4, 8, [1 << 15, 1 << 30, -(1 << 31), 30000])
    bpp = pick(draw, [1, 4, 8, 16, 24, 32, 0, 64, 2])
    compression = pick(draw, [0, 0, 1, 2, 3, 4, 5, 6, 11])
    colors = pick(draw, [0, 0, 2, 16, 256, 1 << 30])
    header_size = pick(draw, [40, 40, 12, 52, 56, 64, 108, 124, 1000])
    payload = _rand_bytes(draw, pick(draw, [0, 16, 64, 256]))
    offset = pick(draw, [14 + header_size, 14 + header_size + 4 * min(colors, 256), 0, 1 << 31])
    dib = struct.pack("<IiiHHIIiiII", header_size, w, h, 1, bpp, compression, len(payload), 2835, 2835,
                      colors, 0)
    dib = dib[:header_size].ljust(header_size, b"\x00") if header_size >= 12 else dib
    if header_size == 12:
        dib = struct.pack("<IHHHH", 12, w % 65536, h % 65536, 1, bpp)
    palette = _rand_bytes(draw, 4 * min(colors, 256))
    body = dib + palette + payload
    return b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, offset % (1 << 32)) + body


@st.composite
def gif_file(draw):
    """A GIF: logical screen and frame sizes at boundary values, palette sizes, LZW minimum code sizes."""
    w, h = (M.int_or(draw, 0, 8, [65535, 30000]) for _ in range(2))
    flags = pick(draw, [0xF7, 0x80, 0x00, 0x87])
    out = b"GIF89a" + struct.pack("<HHBBB", w, h, flags, 0, 0)
    if flags & 0x80:
        out += _rand_bytes(draw, 3 * (2 << (flags & 7)))
    for _ in range(draw(st.integers(0, 2))):
        fw, fh = (M.int_or(draw, 0, 8, [65535, 30000]) for _ in range(2))
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, fw, fh, pick(draw, [0, 0x80, 0x40, 0x87]))
        out += bytes([pick(draw, [2, 8, 0, 12, 255])])
        data = _rand_bytes(draw, pick(draw, [0, 5, 40]))
        out += bytes([len(data)]) + data + b"\x00"
    if draw(st.booleans()):
        out += b";"
    return out


@register
class ImageTarget(Target):
    name = "image"
    description = ("glassnet.inference.images.load_image (what `glassnet predict` opens images with) on "
                   "fuzzed PNG/JPEG/BMP/GIF/TIFF/... files")
    reader_names = ("load_image_gray", "load_image_rgb")
    ci_examples = 150

    def build_seeds(self, seed_dir):
        S.build_images(seed_dir)

    def strategy(self):
        cases = self.seed_cases()
        all_bytes = [v for c in cases for v in c.values()]

        @st.composite
        def strat(draw):
            kind = draw(st.integers(0, 5))
            if kind <= 2:
                case = pick(draw, cases)
                (name, data), = case.items()
                return {name: draw(M.mutated([data] + all_bytes, IMAGE_TOKENS, fixup=M.crc_png))}
            if kind == 3:
                return {"image.png": draw(png_file())}
            if kind == 4:
                return {"image.bmp": draw(bmp_file())}
            return {"image.gif": draw(gif_file())}
        return strat()

    def _file(self, case_dir):
        return next(p for p in sorted(case_dir.iterdir()) if p.name.startswith("image."))

    def read_load_image_gray(self, case_dir):
        from glassnet.inference.images import load_image
        a = load_image(self._file(case_dir), 1, (28, 28))
        _check(isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.shape == (1, 28, 28),
               f"load_image returned {getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}")
        return a

    def read_load_image_rgb(self, case_dir):
        from glassnet.inference.images import load_image
        a = load_image(self._file(case_dir), 3, (32, 24), invert=True)
        _check(isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.shape == (3, 32, 24),
               f"load_image returned {getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}")
        return a

    def from_bytes(self, data):
        ext = IMAGE_EXT_LIST[data[0] % len(IMAGE_EXT_LIST)] if data else "png"
        return {f"image.{ext}": data[1:]}

    def to_bytes(self, case):
        (name, data), = case.items()
        return bytes([IMAGE_EXT_LIST.index(name.split(".", 1)[1])]) + data


# ============================================================ self-check
@register
class CanaryTarget(Target):
    """Not a reader: a target that misbehaves on purpose, one way per input byte, to check that the
    harness sees each way (tests/fuzz/test_runner_selfcheck.py). ``$GLASSNET_FUZZ_CANARY`` lists
    the kinds its strategy draws from (default: all in-process ones)."""

    name = "_canary"
    description = "harness self-check (not a reader)"
    main_file = "in"
    reader_names = ("canary",)
    KINDS = ("load", "error", "other", "memory", "memory-wrapped", "timeout", "violation", "segfault", "c-hang")

    def build_seeds(self, seed_dir):
        (Path(seed_dir) / "load").mkdir()
        (Path(seed_dir) / "load" / "in").write_bytes(b"\x00")

    def strategy(self):
        import os
        names = os.environ.get("GLASSNET_FUZZ_CANARY", "load,error,other,memory,memory-wrapped,timeout,violation")
        codes = [self.KINDS.index(n) for n in names.split(",")]
        return st.sampled_from(codes).map(lambda c: {"in": bytes([c])})

    def read_canary(self, case_dir):
        import ctypes
        import signal
        import time
        from glassnet.errors import DataFormatError
        kind = self.KINDS[(case_dir / "in").read_bytes()[0]]
        if kind == "error":
            raise DataFormatError("canary: a glassnet error")
        if kind == "other":
            raise ValueError("canary: not a glassnet error")
        if kind == "memory":
            return np.ones(1 << 38, np.uint8)  # 256 GiB: over any cap
        if kind == "memory-wrapped":
            try:
                np.ones(1 << 38, np.uint8)
            except MemoryError as exc:
                raise DataFormatError("canary: out of memory, reported as a format error") from exc
        if kind == "timeout":
            while True:
                time.sleep(0.01)
        if kind == "violation":
            raise ContractViolation("canary: a wrong load")
        if kind == "segfault":
            ctypes.string_at(0)
        if kind == "c-hang":  # SIGALRM blocked: only the parent's watchdog can end this
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(3600)
        return kind
