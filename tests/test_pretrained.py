"""Published weights (get_model(weights=...), weights_file), load_pretrained and nn.freeze.

Everything is local: weights files are written into temporary cache folders, the
download path is served by http.server on 127.0.0.1, and GLASSNET_WEIGHTS /
TORCH_HOME point into tmp_path, so nothing is ever fetched from the internet.
"""
import hashlib
import json
import os
import subprocess

import numpy as np
import pytest

import glassnet as gn
from glassnet import nn, optim
from glassnet.errors import InvalidArgumentError, StateDictError, UnknownNameError
from glassnet.io import save_state_dict_file
from glassnet.models import WeightsNotFoundError, get_model, get_weights, list_models, list_weights, load_pretrained
from glassnet.models.weights import WEIGHTS, Weights, WeightsChecksumError, weights_file
from tests.test_download import served  # noqa: F401  (http.server over tmp_path/www on 127.0.0.1)
from tests.torch_oracle import in_ci

TV_PYTHON = os.environ.get("GLASSNET_TORCHVISION_PYTHON", "/work/tvenv/bin/python")
WITH_WEIGHTS = ["alexnet", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11",
                "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


@pytest.fixture(autouse=True)
def caches(tmp_path, monkeypatch):
    """Weights caches inside tmp_path; no mirror, downloads allowed unless a test says otherwise."""
    monkeypatch.setenv("GLASSNET_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("GLASSNET_OFFLINE", "GLASSNET_WEIGHTS_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "weights"


def write_pth(state, path):
    """A torch.save file of ``state`` (safetensors bytes under the .pth name where torch is missing:
    glassnet recognises the format from the content)."""
    try:
        import torch
    except ImportError:
        tmp = path.with_suffix(".safetensors")
        save_state_dict_file(state, tmp)
        tmp.rename(path)
        return
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, path)


def state_of(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


def entry_for(path, model, base="https://download.pytorch.org/models"):
    """A Weights entry for the file ``path`` whose name carries its true SHA-256 prefix."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    named = path.with_name(f"{model}-{digest[:10]}.pth")
    path.rename(named)
    return Weights(model, "TEST", f"{base}/{named.name}", 0, 0.0, 0.0, 256, named.stat().st_size / 2 ** 20), named


def small(num_classes=10, seed=0, **kw):
    gn.manual_seed(seed)
    return get_model("small_cnn", num_classes=num_classes, in_channels=3, image_size=16, width=4, hidden=8, **kw)


# ------------------------------------------------------------------ the table
def test_table_covers_the_zoo_models_with_torchvision_weights():
    assert sorted(WEIGHTS) == sorted(WITH_WEIGHTS) and set(WEIGHTS) <= set(list_models())
    for model, entries in WEIGHTS.items():
        assert "DEFAULT" == list_weights(model)[0]
        for entry in entries.values():
            assert entry.url == f"https://download.pytorch.org/models/{entry.file_name}"
            assert len(entry.hash_prefix) >= 8 and entry.file_name.endswith(f"-{entry.hash_prefix}.pth")
    assert get_weights("resnet18", "DEFAULT").url.endswith("resnet18-f37072fd.pth")
    assert get_weights("resnet50").name == "IMAGENET1K_V2"  # torchvision's default
    assert get_weights("ResNet50", "ResNet50_Weights.IMAGENET1K_V1").hash_prefix == "0676ba61"
    assert get_weights("alexnet").hash_prefix == "7be5be79"  # alexnet-owt-7be5be79.pth
    with pytest.raises(UnknownNameError, match="IMAGENET1K_V1"):
        get_weights("resnet18", "IMAGENET1K_V9")
    with pytest.raises(UnknownNameError, match="no published weights.*resnet18"):
        get_model("small_cnn", weights="DEFAULT")


TV_TABLE = r'''
import json, torchvision.models as m
rows = []
for name in json.loads(__import__("sys").argv[1]):
    enum = m.get_model_weights(name)
    for w in enum:
        if w.meta["_metrics"]["ImageNet-1K"]["acc@1"] == w.meta["_metrics"]["ImageNet-1K"]["acc@1"]:
            rows.append([name, w.name, w.url, w == enum.DEFAULT, w.meta["num_params"], w.transforms().resize_size[0]])
print(json.dumps(rows))
'''


def test_table_matches_torchvision():
    if not os.path.exists(TV_PYTHON):
        if in_ci() and "GLASSNET_TORCHVISION_PYTHON" in os.environ:
            pytest.fail(f"no torchvision interpreter at {TV_PYTHON}")
        pytest.skip(f"no torchvision interpreter at {TV_PYTHON}")
    proc = subprocess.run([TV_PYTHON, "-c", TV_TABLE, json.dumps(WITH_WEIGHTS)], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode and "No module named" in proc.stderr and not in_ci():
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = sorted(map(tuple, json.loads(proc.stdout)))
    ours = sorted((m, e.name, e.url, get_weights(m).name == e.name, e.num_params, e.resize_size)
                  for m, entries in WEIGHTS.items() for e in entries.values())
    assert ours == theirs


# ------------------------------------------------------------------ weights_file
def test_cached_file_is_found_and_its_hash_checked(caches, tmp_path):
    model = small()
    caches.mkdir(parents=True)
    write_pth(state_of(model), caches / "m.pth")
    entry, path = entry_for(caches / "m.pth", "small_cnn")
    assert weights_file("small_cnn", entry, download=False) == path
    built = get_model("small_cnn", weights=entry, download=False, in_channels=3, image_size=16, width=4, hidden=8)
    for k, v in state_of(model).items():
        np.testing.assert_array_equal(np.asarray(built.state_dict()[k]), v)
    # a real entry whose cached file is another file: refused by its hash prefix
    wrong = caches / get_weights("resnet18").file_name
    wrong.write_bytes(b"not the weights")
    with pytest.raises(WeightsChecksumError, match="f37072fd.*delete it"):
        weights_file("resnet18", download=False)
    assert weights_file("resnet18", download=False, check_hash=False) == wrong


def test_torch_hub_cache_is_searched(tmp_path):
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    write_pth(state_of(small()), hub / "m.pth")
    entry, path = entry_for(hub / "m.pth", "small_cnn")
    assert weights_file("small_cnn", entry, download=False) == path


def test_offline_error_gives_the_url_and_the_path(caches, monkeypatch):
    entry = get_weights("vgg16")
    dest = caches / "vgg16-397923af.pth"
    for kwargs in ({"download": False}, {}):
        if not kwargs:
            monkeypatch.setenv("GLASSNET_OFFLINE", "1")
        with pytest.raises(WeightsNotFoundError) as info:
            get_model("vgg16", weights="IMAGENET1K_V1", **kwargs)
        assert entry.url in str(info.value) and str(dest) in str(info.value)
    assert not caches.exists() or not any(caches.iterdir())


def test_download_from_a_local_server(served, caches, tmp_path):
    www, base = served[0], served[1].rstrip("/")
    model = small(seed=3)
    write_pth(state_of(model), www / "m.pth")
    entry, served_file = entry_for(www / "m.pth", "small_cnn", base)
    path = weights_file("small_cnn", entry, progress=False)
    assert path == caches / served_file.name and path.read_bytes() == served_file.read_bytes()
    assert sorted(p.name for p in caches.iterdir()) == [served_file.name]  # no temporary left
    # a mirror replaces download.pytorch.org (the entry's own address is never contacted)
    path.unlink()
    remote = Weights("small_cnn", "TEST", f"https://download.pytorch.org/models/{served_file.name}", 0, 0, 0, 256, 1)
    assert weights_file("small_cnn", remote, progress=False, mirror=base) == path


def test_download_with_a_wrong_hash_or_404_leaves_nothing(served, caches, monkeypatch):
    www, base = served[0], served[1].rstrip("/")
    (www / "small_cnn-0123456789.pth").write_bytes(b"x" * 1000)
    bad = Weights("small_cnn", "TEST", f"{base}/small_cnn-0123456789.pth", 0, 0, 0, 256, 1)
    with pytest.raises(WeightsChecksumError, match="0123456789"):
        weights_file("small_cnn", bad, progress=False)
    missing = Weights("small_cnn", "TEST", f"{base}/small_cnn-abcdef0123.pth", 0, 0, 0, 256, 1)
    with pytest.raises(WeightsNotFoundError, match="404.*save it as .*small_cnn-abcdef0123.pth"):
        weights_file("small_cnn", missing, progress=False)
    monkeypatch.setenv("GLASSNET_WEIGHTS_MIRROR", base)
    with pytest.raises(WeightsNotFoundError, match="resnet18-f37072fd.pth"):
        get_model("resnet18", weights="DEFAULT", progress=False)  # 404 from the local mirror
    assert not any(caches.iterdir())


def test_get_model_googlenet_drops_aux_heads_and_transforms_input(caches):
    gn.manual_seed(1)
    theirs = get_model("googlenet", aux_logits=True, init_weights=False)  # torchvision's file has aux1/aux2
    caches.mkdir(parents=True)
    write_pth(state_of(theirs), caches / "g.pth")
    entry, _ = entry_for(caches / "g.pth", "googlenet")
    model = get_model("googlenet", weights=entry, download=False)
    assert model.aux1 is None and model.aux2 is None and model.transform_input
    assert np.array_equal(np.asarray(model.fc.weight.data), np.asarray(theirs.fc.weight.data))
    five = get_model("googlenet", weights=entry, download=False, num_classes=5)  # a new head, the rest loaded
    assert five.fc.weight.shape == (5, 1024)
    assert np.array_equal(np.asarray(five.conv1.conv.weight.data), np.asarray(theirs.conv1.conv.weight.data))
    with pytest.raises(InvalidArgumentError, match="3 input channels"):
        get_model("googlenet", weights=entry, download=False, in_channels=1)


# ------------------------------------------------------------------ load_pretrained
def test_new_head_keeps_its_initialisation_and_loads_the_rest(tmp_path):
    source = state_of(get_model("resnet18"))  # 1000 classes
    source_path = tmp_path / "r18.safetensors"
    save_state_dict_file(source, source_path)
    model = get_model("resnet18", num_classes=5)
    head = np.array(model.fc.weight.data)
    report = load_pretrained(model, source_path)
    assert sorted(report["skipped_head"]) == ["fc.bias", "fc.weight"]
    assert len(report["loaded"]) == len(source) - 2 and not report["unused"]
    np.testing.assert_array_equal(np.asarray(model.fc.weight.data), head)
    for k in report["loaded"]:
        np.testing.assert_array_equal(np.asarray(model.state_dict()[k]), source[k])
    # the same head size: nothing skipped; new_head=False with another size: an error, nothing written
    assert load_pretrained(get_model("resnet18"), source)["skipped_head"] == []
    fresh = get_model("resnet18", num_classes=5)
    before = state_of(fresh)
    with pytest.raises(StateDictError, match="fc.weight.*new_head=True"):
        load_pretrained(fresh, source, new_head=False)
    for k, v in before.items():
        np.testing.assert_array_equal(np.asarray(fresh.state_dict()[k]), v)


def test_other_mismatches_list_every_key_and_load_nothing():
    source = state_of(small(num_classes=10))
    source["features.0.weight"] = np.zeros((4, 1, 3, 3), np.float32)  # 1 input channel, not 3
    del source["features.3.bias"]
    source["extra.weight"] = np.zeros(2, np.float32)
    model = small(num_classes=7, seed=5)
    before = state_of(model)
    with pytest.raises(StateDictError) as info:
        load_pretrained(model, source)
    text = str(info.value)
    assert "features.0.weight" in text and "missing key features.3.bias" in text and "unexpected key extra.weight" in text
    assert "nothing was loaded" in text and "classifier" not in text  # the head is not a problem
    for k, v in before.items():
        np.testing.assert_array_equal(np.asarray(model.state_dict()[k]), v)
    with pytest.raises(StateDictError, match="input size differs"):  # the head's in_features differ
        load_pretrained(small(), state_of(get_model("small_cnn", in_channels=3, image_size=16, width=4, hidden=16)))


def test_checkpoints_run_folders_and_old_batchnorm_files(tmp_path):
    trained = small(num_classes=10, seed=2)
    tensors = {"model." + k: v for k, v in state_of(trained).items()}
    tensors["optimizer.state.0.momentum_buffer"] = np.zeros(3, np.float32)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    save_state_dict_file(tensors, run / "checkpoints" / "best.safetensors")
    for source in (run / "checkpoints" / "best.safetensors", run):
        model = small(num_classes=3, seed=9)
        report = load_pretrained(model, source)
        assert sorted(report["skipped_head"]) == ["classifier.4.bias", "classifier.4.weight"]
        np.testing.assert_array_equal(np.asarray(model.features[0].weight.data), trained.features[0].weight.data)
    # a file from before PyTorch 0.4 has no num_batches_tracked: it starts at 0, as PyTorch fills it
    old = {k: v for k, v in state_of(get_model("resnet18")).items() if not k.endswith("num_batches_tracked")}
    report = load_pretrained(get_model("resnet18"), old)
    assert "bn1.num_batches_tracked" in report["defaulted"] and len(report["defaulted"]) == 20


# ------------------------------------------------------------------ freeze
def train_steps(model, opt, steps=3):
    rng = np.random.default_rng(0)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        x = gn.tensor(rng.standard_normal((4, 3, 16, 16)).astype(np.float32))
        y = gn.tensor(rng.integers(0, 10, 4))
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("make_opt", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
                                      lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1)])
def test_frozen_parameters_do_not_change_the_others_do(make_opt):
    model = small()
    opt = make_opt(model.parameters())  # the optimizer holds every parameter, frozen ones too
    train_steps(model, opt, 1)
    before = state_of(model)
    frozen = nn.freeze(model, ["features.0", "classifier.1.bias"])
    assert frozen == ["features.0.weight", "features.0.bias", "classifier.1.bias"]
    train_steps(model, opt)
    after = state_of(model)
    for name, p in model.named_parameters():
        if name in frozen:
            assert p.grad is None and not p.requires_grad
            assert after[name].tobytes() == before[name].tobytes(), name
        else:
            assert not np.array_equal(after[name], before[name]), name
    assert nn.unfreeze(model, "features") == ["features.0.weight", "features.0.bias", "features.3.weight",
                                              "features.3.bias"]
    assert model.features[0].weight.requires_grad


def test_freeze_prefixes_match_whole_names_and_unknown_ones_are_errors():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    assert nn.freeze(model, "1") == ["1.weight", "1.bias"]  # not 10.*, 11.*
    resnet = get_model("resnet18")
    with pytest.raises(InvalidArgumentError, match=r"inside 'layer1'.*layer1\.0, layer1\.1"):
        nn.freeze(resnet, ["conv1", "layer1.9"])
    assert all(p.requires_grad for p in resnet.parameters())  # nothing changed on error
    with pytest.raises(InvalidArgumentError, match="conv1, bn1, relu, maxpool, layer1"):
        nn.freeze(resnet, "features")


def test_frozen_batchnorm_keeps_updating_running_stats_in_train_mode():
    bn = nn.BatchNorm2d(3)
    nn.freeze(bn, ["weight", "bias"])
    bn.train()
    bn(gn.tensor(np.full((2, 3, 4, 4), 5.0, np.float32)))
    assert np.allclose(bn.running_mean, 0.5) and np.array_equal(np.asarray(bn.weight.data), np.ones(3))
    bn.eval()
    bn(gn.tensor(np.zeros((2, 3, 4, 4), np.float32)))
    assert np.allclose(bn.running_mean, 0.5)
