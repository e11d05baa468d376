"""glassnet.io: reading torch.save files without torch, safetensors/npz I/O.

PyTorch writes the .pth files (the oracle); glassnet reads them with a
restricted unpickler. safetensors' own reader checks glassnet's writer.
"""
import os
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from glassnet.errors import DataFormatError, StateDictError
from glassnet.io import (StateDictFileError, UnsafePickleError, load_pth, load_state_dict_file,
                         save_state_dict_file)
from glassnet.io import state_dict_file as sdf_mod
from tests.torch_oracle import require_torch

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- helpers
def _torch_model(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 5 * 5, 6),
    )
    model.train()
    with torch.no_grad():
        for _ in range(3):  # moves running stats and num_batches_tracked
            model(torch.randn(2, 3, 5, 5))
    return model


def _torch_state_dict(torch):
    """A state dict exercising every storage/view situation."""
    sd = _torch_model(torch).state_dict()
    g = torch.Generator().manual_seed(1)
    base = torch.randn(24, generator=g)
    sd["extra.float64"] = torch.randn(3, 4, dtype=torch.float64, generator=g)
    sd["extra.transposed"] = torch.randn(3, 5, generator=g).t()  # non-contiguous
    sd["extra.base"] = base
    sd["extra.view_slice"] = base[5:17].view(3, 4)  # shares base's storage, offset 5
    sd["extra.view_strided"] = base[1::3]  # shares storage, stride 3
    sd["extra.bf16"] = torch.randn(2, 3, generator=g).to(torch.bfloat16)
    sd["extra.half"] = torch.randn(4, generator=g).to(torch.float16)
    sd["extra.int32"] = torch.arange(-3, 3, dtype=torch.int32)
    sd["extra.int16"] = torch.arange(-3, 3, dtype=torch.int16)
    sd["extra.int8"] = torch.arange(-3, 3, dtype=torch.int8)
    sd["extra.uint8"] = torch.arange(250, 256, dtype=torch.uint8)
    sd["extra.bool"] = torch.tensor([True, False, True])
    sd["extra.uint16"] = torch.arange(65530, 65536, dtype=torch.int32).to(torch.uint16)
    sd["extra.complex64"] = torch.randn(3, dtype=torch.complex64, generator=g)
    sd["extra.scalar"] = torch.tensor(2.5)
    sd["extra.empty"] = torch.zeros(0, 3)
    sd["extra.expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)  # stride 0
    return sd


def _torch_to_numpy(t):
    import torch
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.detach().contiguous().numpy()


def _assert_matches(loaded, torch_sd):
    assert list(loaded) == list(torch_sd)
    for k, t in torch_sd.items():
        want = _torch_to_numpy(t)
        got = loaded[k]
        assert isinstance(got, np.ndarray), k
        assert got.dtype == want.dtype, (k, got.dtype, want.dtype)
        assert got.shape == want.shape, k
        assert got.flags.c_contiguous, k
        np.testing.assert_array_equal(got, want, err_msg=k)


def _rezip(src, dst, replace=None, drop=()):
    """Copy zip ``src`` to ``dst``; ``replace`` maps a name suffix to new bytes."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if any(name.endswith(d) for d in drop):
                continue
            data = zin.read(name)
            for suffix, new in replace.items():
                if name.endswith(suffix):
                    data = new(data) if callable(new) else new
            zout.writestr(name, data)


def _pth_from_pickle(path, payload: bytes, extra=None):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
        for k, v in (extra or {}).items():
            z.writestr(f"archive/data/{k}", v)


# ------------------------------------------------------- .pth with torch
def test_load_pth_matches_torch_exactly(tmp_path):
    torch = require_torch()
    sd = _torch_state_dict(torch)
    p = tmp_path / "model.pth"
    torch.save(sd, p)
    loaded = load_pth(p)
    assert isinstance(loaded, OrderedDict)
    _assert_matches(loaded, sd)
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    assert int(loaded["1.num_batches_tracked"]) == 3
    assert loaded["extra.bf16"].dtype == np.float32
    # Views were materialised: independent, contiguous arrays.
    for k in ("extra.transposed", "extra.view_slice", "extra.view_strided", "extra.expanded"):
        assert loaded[k].flags.c_contiguous and loaded[k].flags.writeable
    loaded["extra.view_slice"][...] = 0
    np.testing.assert_array_equal(loaded["extra.base"], sd["extra.base"].numpy())
    flat = load_state_dict_file(p)
    _assert_matches(flat, sd)


def test_load_parameters_and_nested_checkpoint(tmp_path):
    torch = require_torch()
    model = _torch_model(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()
    ckpt = {"epoch": 7, "lr": 0.1, "name": "run", "tags": {"a", "b"},
            "state_dict": model.state_dict(),
            "optimizer": opt.state_dict(),
            "params": list(model.parameters()),  # nn.Parameter objects
            "blob": b"\x00\xffraw"}
    p = tmp_path / "ckpt.pt"
    torch.save(ckpt, p)
    obj = load_pth(p)
    assert obj["epoch"] == 7 and obj["lr"] == 0.1 and obj["name"] == "run"
    assert obj["tags"] == {"a", "b"} and obj["blob"] == b"\x00\xffraw"
    for got, want in zip(obj["params"], model.parameters()):
        np.testing.assert_array_equal(got, want.detach().numpy())
    mom = opt.state_dict()["state"][0]["momentum_buffer"]
    np.testing.assert_array_equal(obj["optimizer"]["state"][0]["momentum_buffer"], mom.numpy())
    flat = load_state_dict_file(p)
    _assert_matches(flat, model.state_dict())


def test_wrappers_and_module_prefix(tmp_path):
    torch = require_torch()
    model = _torch_model(torch)
    sd = model.state_dict()
    dp = torch.nn.DataParallel(model)
    assert all(k.startswith("module.") for k in dp.state_dict())
    for i, obj in enumerate([{"state_dict": dp.state_dict(), "epoch": 2},
                             {"model": sd, "optimizer_name": "sgd"},
                             {"model_state_dict": sd},
                             dp.state_dict()]):
        p = tmp_path / f"w{i}.pth"
        torch.save(obj, p)
        _assert_matches(load_state_dict_file(p), sd)
    # unwrap=False leaves the keys alone.
    p = tmp_path / "dp.pth"
    torch.save(dp.state_dict(), p)
    assert list(load_state_dict_file(p, unwrap=False)) == list(dp.state_dict())

    torch.save({"state_dict": sd, "model": sd}, tmp_path / "two.pth")
    with pytest.raises(StateDictError, match=r"two\.pth.*several"):
        load_state_dict_file(tmp_path / "two.pth")
    torch.save({"weights": sd, "epoch": 1}, tmp_path / "odd.pth")
    with pytest.raises(StateDictError, match=r"odd\.pth.*'weights'.*not a tensor"):
        load_state_dict_file(tmp_path / "odd.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(StateDictError, match=r"list\.pth.*list, not a state dict"):
        load_state_dict_file(tmp_path / "list.pth")


def test_loads_into_glassnet_module(tmp_path):
    torch = require_torch()
    import glassnet as gn
    import glassnet.nn as gnn
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    p = tmp_path / "mlp.bin"
    torch.save(tmodel.state_dict(), p)
    gmodel = gnn.Sequential(gnn.Linear(5, 4), gnn.ReLU(), gnn.Linear(4, 3))
    gmodel.load_state_dict(load_state_dict_file(p))
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    want = tmodel(torch.from_numpy(x)).detach().numpy()
    got = gmodel(gn.tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_big_endian_archive(tmp_path):
    torch = require_torch()
    sd = {"w": torch.randn(3, 4).t(), "n": torch.tensor(5), "b": torch.randn(3).to(torch.bfloat16)}
    p = tmp_path / "le.pth"
    torch.save(sd, p)
    # Rewrite as a big-endian archive: swap every storage's bytes.
    # storage keys are numbered in order of first appearance: w (f4), n (i8), b (bf16)
    widths = {f"data/{key}": width for key, width in zip("012", (4, 8, 2))}

    def swap(width):
        return lambda data: np.frombuffer(data, f"<u{width}").byteswap().tobytes()

    replace = {k: swap(w) for k, w in widths.items()}
    replace["byteorder"] = b"big"
    _rezip(p, tmp_path / "be.pth", replace=replace)
    _assert_matches(load_pth(tmp_path / "be.pth"), sd)


# ------------------------------------------------- loads without torch
def test_loads_in_a_process_where_torch_cannot_import(tmp_path):
    torch = require_torch()
    sd = _torch_state_dict(torch)
    p = tmp_path / "model.pth"
    torch.save(sd, p)
    expected = {k: _torch_to_numpy(v) for k, v in sd.items()}
    np.savez(tmp_path / "expected.npz", **{k.replace(".", "__"): v for k, v in expected.items()})
    script = f"""
import sys
sys.modules['torch'] = None  # any 'import torch' now raises ImportError
import numpy as np
from glassnet.io import load_pth, load_state_dict_file
got = load_state_dict_file({str(p)!r})
want = np.load({str(tmp_path / 'expected.npz')!r})
assert sorted(k.replace('.', '__') for k in got) == sorted(want.files), (list(got), want.files)
for k, v in got.items():
    w = want[k.replace('.', '__')]
    assert v.dtype == w.dtype and v.shape == w.shape, k
    np.testing.assert_array_equal(v, w, err_msg=k)
assert sys.modules['torch'] is None
assert not any(m.startswith('torch.') for m in sys.modules)
print('OK', len(got))
"""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, cwd=str(tmp_path), timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"OK {len(sd)}"


# -------------------------------------------------- malicious pickles
class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    system = f"{os.system.__module__}.system"  # posix.system / nt.system
    cases = {
        system: pickle.dumps({"w": _Evil(os.system, f"touch {marker}")}, protocol=2),
        "builtins.eval": pickle.dumps(
            OrderedDict(w=_Evil(eval, f"open({str(marker)!r}, 'w')")), protocol=2),
        "builtins.exec": pickle.dumps(_Evil(exec, f"open({str(marker)!r}, 'w')"), protocol=4),
        "subprocess.Popen": pickle.dumps(_Evil(subprocess.Popen, ["touch", str(marker)])),
    }
    for name, payload in cases.items():
        assert name.split(".")[1].encode() in payload
        p = tmp_path / f"evil_{name}.pth"
        _pth_from_pickle(p, payload)
        for loader in (load_pth, load_state_dict_file):
            with pytest.raises(UnsafePickleError) as info:
                loader(p)
            msg = str(info.value)
            assert f"'{name}'" in msg and str(p) in msg and "state dicts of tensors" in msg
            assert isinstance(info.value, StateDictError)
        assert not marker.exists(), name


def test_torch_globals_outside_the_allow_list_are_refused(tmp_path):
    # A REDUCE of a harmless-looking torch function is refused just the same.
    payload = (b"\x80\x02ctorch\nload\nq\x00X\x05\x00\x00\x00x.pthq\x01\x85q\x02Rq\x03.")
    p = tmp_path / "torchload.pth"
    _pth_from_pickle(p, payload)
    with pytest.raises(UnsafePickleError, match=r"'torch\.load'"):
        load_pth(p)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated
def test_legacy_and_torchscript_files(tmp_path):
    torch = require_torch()
    p = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(2)}, p, _use_new_zipfile_serialization=False)
    # legacy files are read (tests/test_pth_legacy.py); they used to be refused
    np.testing.assert_array_equal(load_state_dict_file(p)["w"], np.ones(2, np.float32))
    np.testing.assert_array_equal(load_pth(p)["w"], np.ones(2, np.float32))
    js = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), js)
    with pytest.raises(StateDictError, match=r"scripted\.pt.*TorchScript"):
        load_state_dict_file(js)


# --------------------------------------------------- corrupt .pth files
def test_corrupt_pth_files(tmp_path):
    torch = require_torch()
    p = tmp_path / "good.pth"
    torch.save({"w": torch.randn(4, 5), "b": torch.randn(5)}, p)
    raw = p.read_bytes()

    trunc = tmp_path / "trunc.pth"
    trunc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StateDictFileError, match=r"trunc\.pth"):
        load_state_dict_file(trunc)
    with pytest.raises(StateDictFileError, match=r"trunc\.pth"):
        load_pth(trunc)

    missing = tmp_path / "missing.pth"
    _rezip(p, missing, drop=("data/1",))
    with pytest.raises(StateDictFileError, match=r"missing\.pth.*data/1.*missing"):
        load_state_dict_file(missing)

    short = tmp_path / "short.pth"
    _rezip(p, short, replace={"data/0": lambda d: d[:-4]})
    with pytest.raises(StateDictFileError, match=r"short\.pth.*76 bytes.*80.*truncated"):
        load_state_dict_file(short)

    badpkl = tmp_path / "badpkl.pth"
    _rezip(p, badpkl, replace={"data.pkl": lambda d: d[: len(d) // 2]})
    with pytest.raises(StateDictFileError, match=r"badpkl\.pth"):
        load_state_dict_file(badpkl)

    # Flip a byte inside a stored storage: the zip CRC check catches it.
    crc = tmp_path / "crc.pth"
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("good/data/0")
    data = bytearray(raw)
    h = info.header_offset  # local header: name/extra lengths at bytes 26..29
    start = h + 30 + int.from_bytes(raw[h + 26:h + 28], "little") + \
        int.from_bytes(raw[h + 28:h + 30], "little")
    data[start + 3] ^= 0xFF
    crc.write_bytes(bytes(data))
    with pytest.raises(StateDictFileError, match=r"crc\.pth.*corrupt"):
        load_state_dict_file(crc)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"hello, not a checkpoint")
    with pytest.raises(StateDictFileError, match=r"garbage\.pth"):
        load_state_dict_file(garbage)
    with pytest.raises(StateDictFileError, match=r"nope\.pth.*cannot read"):
        load_state_dict_file(tmp_path / "nope.pth")


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    # Hand-built pickle: a (10,) float tensor on a 4-element storage.
    payload = (
        b"\x80\x02ccollections\nOrderedDict\n)R"
        b"X\x01\x00\x00\x00w"
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
        b"K\x00K\n\x85K\x01\x85\x89)tR"
        b"s."
    )
    p = tmp_path / "overrun.pth"
    _pth_from_pickle(p, payload, extra={"0": np.arange(4, dtype="<f4").tobytes()})
    with pytest.raises(StateDictFileError, match=r"overrun\.pth.*4 elements.*reaches element 9"):
        load_pth(p)
    # The same pickle with a fitting size loads.
    ok = payload.replace(b"K\x00K\n\x85", b"K\x01K\x03\x85")
    _pth_from_pickle(tmp_path / "ok.pth", ok, extra={"0": np.arange(4, dtype="<f4").tobytes()})
    np.testing.assert_array_equal(load_pth(tmp_path / "ok.pth")["w"], [1, 2, 3])


# ------------------------------------------------------- safetensors
def _sample_arrays():
    rng = np.random.default_rng(0)
    return OrderedDict([
        ("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        ("fc.weight_t", rng.standard_normal((5, 7)).astype(np.float32).T),  # non-contiguous
        ("fc.slice", rng.standard_normal((6, 6))[::2, 1::2]),  # float64, strided
        ("bn.num_batches_tracked", np.array(12, dtype=np.int64)),
        ("half", rng.standard_normal(5).astype(np.float16)),
        ("mask", np.array([True, False, True])),
        ("u8", np.arange(250, 256, dtype=np.uint8)),
        ("i32", np.arange(-3, 3, dtype=np.int32)),
        ("empty", np.zeros((0, 4), dtype=np.float32)),
        ("big_endian", np.arange(4, dtype=">f4")),
    ])


def test_safetensors_round_trip_against_reference_reader(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    arrays = _sample_arrays()
    assert not arrays["fc.weight_t"].flags.c_contiguous
    p = tmp_path / "m.safetensors"
    save_state_dict_file(arrays, p, metadata={"format": "np", "epoch": "3"})
    ref = st_numpy.load_file(str(p))
    mine = load_state_dict_file(p)
    assert list(mine) == list(arrays)  # order preserved
    for k, v in arrays.items():
        np.testing.assert_array_equal(ref[k], v, err_msg=k)
        np.testing.assert_array_equal(mine[k], v, err_msg=k)
        assert mine[k].dtype == v.dtype.newbyteorder("=") and mine[k].shape == v.shape
    from safetensors import safe_open
    with safe_open(str(p), framework="np") as f:
        assert f.metadata() == {"format": "np", "epoch": "3"}


def test_reads_files_written_by_safetensors(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    arrays = {k: np.ascontiguousarray(v, dtype=v.dtype.newbyteorder("="))
              for k, v in _sample_arrays().items()}
    p = tmp_path / "ref.safetensors"
    st_numpy.save_file(arrays, str(p))
    got = load_state_dict_file(p)
    assert set(got) == set(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
        assert got[k].dtype == v.dtype


def test_reads_bfloat16_safetensors(tmp_path):
    torch = require_torch()
    st_torch = pytest.importorskip("safetensors.torch")
    t = torch.randn(3, 4).to(torch.bfloat16)
    p = tmp_path / "bf16.safetensors"
    st_torch.save_file({"w": t}, str(p))
    got = load_state_dict_file(p)["w"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, t.float().numpy())


def _write_raw_safetensors(path, header: bytes, data: bytes, length=None):
    n = len(header) if length is None else length
    path.write_bytes(n.to_bytes(8, "little") + header + data)


def test_corrupt_safetensors(tmp_path):
    good = b'{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
    p = tmp_path / "ok.safetensors"
    _write_raw_safetensors(p, good, bytes(16))
    np.testing.assert_array_equal(load_state_dict_file(p)["w"], np.zeros((2, 2), np.float32))

    cases = {
        "past_end": (b'{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}', bytes(8),
                     r"run past the end"),
        "size_lie": (b'{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}', bytes(16),
                     r"needs 24 bytes"),
        "reversed": (b'{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', bytes(16),
                     r"out of order"),
        "overlap": (b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                    b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', bytes(16),
                    r"overlap"),
        "bad_json": (b'{"w":{"dtype":"F32",', bytes(16), r"not valid JSON"),
        "not_object": (b'[1, 2]', b"", r"not an object"),
        "dtype": (b'{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}', bytes(2),
                  r"unsupported dtype"),
        "shape": (b'{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', bytes(4),
                  r"invalid shape"),
    }
    for name, (header, data, msg) in cases.items():
        p = tmp_path / f"{name}.safetensors"
        _write_raw_safetensors(p, header, data)
        with pytest.raises(StateDictFileError, match=rf"{name}\.safetensors.*{msg}"):
            load_state_dict_file(p)

    p = tmp_path / "hdrlen.safetensors"
    _write_raw_safetensors(p, good, bytes(16), length=10 ** 6)
    with pytest.raises(StateDictFileError, match=r"hdrlen\.safetensors.*header length"):
        load_state_dict_file(p)
    p = tmp_path / "tiny.safetensors"
    p.write_bytes(b"\x01\x02")
    with pytest.raises(StateDictFileError, match=r"tiny\.safetensors.*too short"):
        load_state_dict_file(p)
    # A header length whose low bytes read "PK" is still a safetensors file, not a zip.
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    header += b" " * (0x4B50 - len(header))
    p = tmp_path / "pk.safetensors"
    _write_raw_safetensors(p, header, np.array([1.5, -2], "<f4").tobytes())
    assert p.read_bytes()[:2] == b"PK"
    np.testing.assert_array_equal(load_state_dict_file(p)["w"], [1.5, -2])
    # Both families of error are catchable.
    with pytest.raises(DataFormatError):
        load_state_dict_file(tmp_path / "tiny.safetensors")


# -------------------------------------------------------------- npz
def test_npz_round_trip(tmp_path):
    arrays = _sample_arrays()
    arrays["file"] = np.ones(2, np.float32)  # would clash with np.savez's parameter name
    p = tmp_path / "m.npz"
    save_state_dict_file(arrays, p)
    got = load_state_dict_file(p)
    assert list(got) == list(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    with np.load(p, allow_pickle=False) as ref:
        np.testing.assert_array_equal(ref["fc.weight_t"], arrays["fc.weight_t"])
    raw = p.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StateDictFileError, match=r"trunc\.npz.*corrupt"):
        load_state_dict_file(tmp_path / "trunc.npz")
    # a .npz written by NumPy itself
    np.savez(tmp_path / "np.npz", a=np.arange(3), b=np.eye(2))
    got = load_state_dict_file(tmp_path / "np.npz")
    np.testing.assert_array_equal(got["b"], np.eye(2))
    # object arrays need pickle: refused
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(StateDictFileError, match=r"obj\.npz.*pickle"):
        load_state_dict_file(tmp_path / "obj.npz")


def test_saves_glassnet_module_state_dict(tmp_path):
    import glassnet as gn
    import glassnet.nn as gnn
    gn.manual_seed(0)
    model = gnn.Sequential(gnn.Linear(4, 3), gnn.BatchNorm1d(3))
    sd = model.state_dict()
    sd["extra_tensor"] = gn.tensor(np.arange(3, dtype=np.float32))  # a Tensor value
    for ext in ("safetensors", "npz"):
        p = tmp_path / f"g.{ext}"
        save_state_dict_file(sd, p)
        got = load_state_dict_file(p)
        assert list(got) == list(sd)
        np.testing.assert_array_equal(got["extra_tensor"], [0, 1, 2])
        got.pop("extra_tensor")
        other = gnn.Sequential(gnn.Linear(4, 3), gnn.BatchNorm1d(3))
        other.load_state_dict(got)
        for k, v in other.state_dict().items():
            np.testing.assert_array_equal(v, sd[k], err_msg=k)


# ------------------------------------------------------- atomic writes
def _dir_listing(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("ext", ["safetensors", "npz"])
def test_failed_replace_leaves_old_file_and_no_temp(tmp_path, monkeypatch, ext):
    p = tmp_path / f"ckpt.{ext}"
    save_state_dict_file({"w": np.zeros(3, np.float32)}, p)
    before = p.read_bytes()

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(sdf_mod.os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        save_state_dict_file({"w": np.ones(3, np.float32)}, p)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert _dir_listing(tmp_path) == [f"ckpt.{ext}"]


@pytest.mark.parametrize("ext", ["safetensors", "npz"])
def test_failure_midway_through_writing(tmp_path, monkeypatch, ext):
    p = tmp_path / f"ckpt.{ext}"
    save_state_dict_file({"a": np.zeros(3, np.float32)}, p)
    before = p.read_bytes()
    calls = {"n": 0}
    if ext == "npz":
        real = np.lib.format.write_array

        def flaky(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("serialisation failed midway")
            return real(*args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", flaky)
    else:
        def flaky(fd):
            raise RuntimeError("serialisation failed midway")

        monkeypatch.setattr(sdf_mod.os, "fsync", flaky)
    with pytest.raises(RuntimeError, match="midway"):
        save_state_dict_file({"a": np.ones(3, np.float32), "b": np.ones(2, np.float32)}, p)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert _dir_listing(tmp_path) == [f"ckpt.{ext}"]


def test_bad_values_rejected_before_touching_the_file(tmp_path):
    p = tmp_path / "c.safetensors"
    save_state_dict_file({"w": np.zeros(2, np.float32)}, p)
    before = p.read_bytes()
    with pytest.raises(StateDictFileError, match=r"c\.safetensors.*'bad'.*complex128"):
        save_state_dict_file({"w": np.ones(2, np.float32), "bad": np.ones(2, complex)}, p)
    with pytest.raises(StateDictFileError, match=r"not a non-empty string"):
        save_state_dict_file({3: np.ones(2)}, p)
    with pytest.raises(StateDictFileError, match=r"\.npz.*object"):
        save_state_dict_file({"o": np.array([None], dtype=object)}, tmp_path / "o.npz")
    with pytest.raises(StateDictFileError, match=r"\.pth"):
        save_state_dict_file({"w": np.ones(2)}, tmp_path / "x.pth")
    assert p.read_bytes() == before
    assert _dir_listing(tmp_path) == ["c.safetensors"]


def test_new_file_permissions_follow_umask(tmp_path):
    p = tmp_path / "perm.safetensors"
    save_state_dict_file({"w": np.zeros(2, np.float32)}, p)
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask)
