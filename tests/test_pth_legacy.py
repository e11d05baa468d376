"""Legacy (pre-1.6, non-zip) torch.save files: written by real torch with
_use_new_zipfile_serialization=False, read by glassnet.io.load_pth / load_state_dict_file without
running anything from them -- the same arrays as the zip format, views sharing one storage at
offsets, a zoo model's weights giving torch's logits; truncated, corrupt and hostile files refused
with an error naming the file."""
import collections
import io
import pickle
import pickletools

import numpy as np
import pytest

from tests.torch_oracle import require_torch

from glassnet.io import StateDictFileError, UnsafePickleError, load_pth, load_state_dict_file
from glassnet.io.pth import StateDictLimitError
from glassnet.io.pth_legacy import MAGIC_NUMBER, PROTOCOL_VERSION


def save_legacy(torch, obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    assert not path.read_bytes().startswith(b"PK")                    # really the legacy format
    return path


def as_numpy(torch, v):
    return v.float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy()


def test_dtypes_views_and_offsets_match_torch_and_the_zip_format(tmp_path):
    torch = require_torch()
    torch.manual_seed(0)
    base = torch.arange(40, dtype=torch.float64) * 0.5
    obj = collections.OrderedDict([
        ("f32", torch.randn(3, 4)), ("f64", torch.randn(2, 2, dtype=torch.float64)),
        ("i64", torch.tensor([-(2 ** 62), 0, 7, 2 ** 40])), ("i32", torch.arange(6, dtype=torch.int32)),
        ("view_a", base[3:9].view(2, 3)), ("view_b", base[10:]), ("view_c", base[1::4]),
        ("base", base), ("t", torch.randn(4, 5).t()), ("scalar", torch.tensor(2.5)),
        ("empty", torch.zeros(0, 3)), ("half", torch.randn(5).half()), ("bf16", torch.randn(5).bfloat16()),
        ("bool", torch.tensor([True, False, True])), ("u8", torch.tensor([0, 200, 255], dtype=torch.uint8)),
        ("param", torch.nn.Parameter(torch.randn(2, 3))),
    ])
    legacy = load_pth(save_legacy(torch, obj, tmp_path / "legacy.pth"))
    torch.save(obj, tmp_path / "zip.pth")
    zipped = load_pth(tmp_path / "zip.pth")
    assert list(legacy) == list(obj) and isinstance(legacy, collections.OrderedDict)
    for k, v in obj.items():
        ref = as_numpy(torch, v)
        assert legacy[k].dtype == ref.dtype == zipped[k].dtype and legacy[k].shape == ref.shape, k
        np.testing.assert_array_equal(legacy[k], ref, err_msg=k)
        np.testing.assert_array_equal(legacy[k], zipped[k], err_msg=k)
        assert legacy[k].flags.c_contiguous and legacy[k].flags.writeable
        assert legacy[k].flags.owndata or legacy[k].base.flags.owndata          # bf16: a view of its widening
    legacy["view_a"][0, 0] = -1.0                                       # the views became independent arrays
    assert legacy["base"][3] == 1.5 and legacy["view_b"][0] == 5.0


def test_checkpoints_and_plain_values(tmp_path):
    torch = require_torch()
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ckpt = {"epoch": 7, "lr": 0.01, "name": "run", "hist": [1.5, (2, "x")], "model": model.state_dict(),
            "flags": {"a": None, "b": True}}
    got = load_pth(save_legacy(torch, ckpt, tmp_path / "ckpt.pt"))
    assert (got["epoch"], got["lr"], got["name"], got["hist"], got["flags"]) == \
        (7, 0.01, "run", [1.5, (2, "x")], {"a": None, "b": True})
    flat = load_state_dict_file(tmp_path / "ckpt.pt")                 # unwrapped to the "model" entry
    assert list(flat) == list(model.state_dict())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(flat[k], v.numpy())
    assert flat["1.num_batches_tracked"].dtype == np.int64


def test_a_zoo_models_legacy_weights_give_torchs_logits(tmp_path):
    torch = require_torch()
    import glassnet as gn
    from glassnet.models import get_model
    from tests import torch_reference_models as ref

    torch.manual_seed(0)
    theirs = ref.MODELS["resnet18"]()
    theirs.train()
    with torch.no_grad():                                              # BatchNorm statistics off their defaults
        theirs(torch.randn(4, 3, 48, 48))
    theirs.eval()
    path = save_legacy(torch, theirs.state_dict(), tmp_path / "resnet18_legacy.pth")
    state = load_state_dict_file(path)
    for k, v in theirs.state_dict().items():
        assert state[k].dtype == v.numpy().dtype
        np.testing.assert_array_equal(state[k], v.numpy(), err_msg=k)
    x = np.random.default_rng(0).standard_normal((2, 3, 48, 48)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    ours = get_model("resnet18")
    ours.load_state_dict(state)
    ours.eval()
    with gn.no_grad():
        got = ours(gn.tensor(x)).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_truncated_and_corrupt_files_name_the_file(tmp_path):
    torch = require_torch()
    raw = save_legacy(torch, {"w": torch.randn(16, 8), "b": torch.arange(8)}, tmp_path / "good.pth").read_bytes()
    cuts = sorted(set(np.linspace(1, len(raw) - 1, 40).astype(int).tolist()) | {len(raw) - 1, len(raw) - 64})
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.pth"
        bad.write_bytes(raw[:cut])
        with pytest.raises(StateDictFileError, match=rf"cut{cut}\.pth"):
            load_pth(bad)
    tail = tmp_path / "tail.pth"
    tail.write_bytes(raw[:-3])
    with pytest.raises(StateDictFileError, match=r"tail\.pth: storage .* needs \d+ bytes .* \(truncated\?\)"):
        load_state_dict_file(tail)
    at = section_start(raw)                      # the element count in front of the first storage
    assert int.from_bytes(raw[at:at + 8], "little") in (8, 128)
    count = bytearray(raw)
    count[at:at + 8] = (999).to_bytes(8, "little")
    (tmp_path / "count.pth").write_bytes(bytes(count))
    with pytest.raises(StateDictFileError, match=r"count\.pth: storage .* holds 999 elements .* the pickle says"):
        load_pth(tmp_path / "count.pth")
    magic = bytearray(raw)
    magic[5] ^= 0xFF
    (tmp_path / "magic.pth").write_bytes(bytes(magic))
    with pytest.raises(StateDictFileError, match=r"magic\.pth"):
        load_pth(tmp_path / "magic.pth")
    with pytest.raises(StateDictLimitError, match=r"good\.pth.*max_bytes=100"):
        load_pth(tmp_path / "good.pth", max_bytes=100)


def section_start(raw):
    """Where a legacy file's storage section starts: after its five pickles (walked with pickletools)."""
    stream = io.BytesIO(raw)
    for _ in range(5):
        for _ in pickletools.genops(stream):
            pass
    return stream.tell()


def legacy_bytes(obj_pickle, keys_pickle=None, storages=(), version=PROTOCOL_VERSION, sys_info=None):
    """A legacy file assembled by hand: the header pickles, ``obj_pickle`` as is, the key list
    (``keys_pickle`` as is, else an empty list) and ``storages`` (``(count, bytes)``)."""
    out = io.BytesIO()
    for value in (MAGIC_NUMBER, version,
                  sys_info or {"protocol_version": 1001, "little_endian": True,
                               "type_sizes": {"short": 2, "int": 4, "long": 8}}):
        out.write(value if isinstance(value, bytes) else pickle.dumps(value, protocol=2))
    out.write(obj_pickle)
    out.write(keys_pickle or pickle.dumps([], protocol=2))
    for count, data in storages:
        out.write(count.to_bytes(8, "little") + data)
    return out.getvalue()


def test_hostile_legacy_files_are_refused_without_running_anything(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("os.system", lambda cmd: calls.append(cmd))
    cases = {
        "system.pth": (legacy_bytes(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00idq\x00\x85R."), UnsafePickleError,
                       r"system\.pth: refusing to load global 'os\.system'"),
        "header.pth": (legacy_bytes(b"\x80\x02}.", version=b"\x80\x02cos\nsystem\n."), StateDictFileError,
                       r"header\.pth"),
        "keys.pth": (legacy_bytes(b"\x80\x02}.", keys_pickle=b"\x80\x02cbuiltins\neval\n."), UnsafePickleError,
                     r"keys\.pth: refusing to load global 'builtins\.eval' from the storage key list"),
        "version.pth": (legacy_bytes(b"\x80\x02}.", version=1000), StateDictFileError, r"version\.pth.*1000"),
        "bigendian.pth": (legacy_bytes(b"\x80\x02}.", sys_info={"little_endian": False}), StateDictFileError,
                          r"bigendian\.pth.*big-endian"),
    }
    for name, (data, error, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(error, match=message):
            load_pth(tmp_path / name)
    assert calls == []
    (tmp_path / "empty.pth").write_bytes(legacy_bytes(b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s."))
    assert load_pth(tmp_path / "empty.pth") == {"a": 1}               # a well-formed file without tensors


def test_storage_pickle_and_section_must_agree(tmp_path):
    torch = require_torch()
    raw = save_legacy(torch, {"w": torch.ones(3), "v": torch.zeros(2)}, tmp_path / "two.pth").read_bytes()
    start = section_start(raw)
    stream = io.BytesIO(raw)
    for _ in range(4):                                                 # up to the key list
        for _ in pickletools.genops(stream):
            pass
    keys_at = stream.tell()
    keys = pickle.loads(raw[keys_at:start])
    assert len(keys) == 2 and all(isinstance(k, str) for k in keys)
    for name, listed in (("fewer", keys[:1]), ("more", keys + ["999"]), ("twice", [keys[0], keys[0]])):
        (tmp_path / f"{name}.pth").write_bytes(raw[:keys_at] + pickle.dumps(listed, protocol=2) + raw[start:])
        with pytest.raises(StateDictFileError, match=rf"{name}\.pth: the storage key list"):
            load_pth(tmp_path / f"{name}.pth")
    (tmp_path / "extra.pth").write_bytes(raw + b"trailing bytes are ignored, as by torch.load")
    np.testing.assert_array_equal(load_pth(tmp_path / "extra.pth")["w"], np.ones(3, np.float32))


class _StorageRef:
    def __init__(self, pid):
        self.pid = pid


class _TensorRef:
    def __init__(self, torch, storage, offset, size, stride):
        self.args = (torch._utils._rebuild_tensor_v2, (storage, offset, size, stride, False, collections.OrderedDict()))

    def __reduce__(self):
        return self.args


def test_storage_views_of_old_files(tmp_path):
    """PyTorch < 1.0 saved storage views: ("storage", type, root_key, location, root_numel,
    (view_key, offset, view_numel)); a tensor's offset then counts from the view's start."""
    torch = require_torch()
    root = np.arange(10, dtype="<f4")

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return obj.pid if isinstance(obj, _StorageRef) else None

    def build(view):
        whole = _StorageRef(("storage", torch.FloatStorage, "7", "cpu", 10, None))
        part = _StorageRef(("storage", torch.FloatStorage, "7", "cpu", 10, view))
        out = io.BytesIO()
        Pickler(out, protocol=2).dump({"all": _TensorRef(torch, whole, 0, (10,), (1,)),
                                       "part": _TensorRef(torch, part, 1, (2, 2), (2, 1))})
        return legacy_bytes(out.getvalue(), pickle.dumps(["7"], protocol=2), [(10, root.tobytes())])

    (tmp_path / "views.pth").write_bytes(build(("8", 3, 5)))
    got = load_pth(tmp_path / "views.pth")
    np.testing.assert_array_equal(got["all"], root)
    np.testing.assert_array_equal(got["part"], root[4:8].reshape(2, 2))          # view at 3, tensor offset 1
    (tmp_path / "outside.pth").write_bytes(build(("8", 8, 5)))
    with pytest.raises(StateDictFileError, match=r"outside\.pth: storage '7': the view '8' of 5 elements at offset 8"):
        load_pth(tmp_path / "outside.pth")
