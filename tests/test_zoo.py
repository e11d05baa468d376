"""The model zoo: every registered model builds, runs forward and backward and
gives (N, num_classes); the torchvision architectures match PyTorch
references (tests/torch_reference_models.py, torchvision's module names) key
for key, shape for shape and logit for logit; parameter counts match
torchvision's published ones; the lecture's AlexNet has the lecture's shapes.
"""
import numpy as np
import pytest

import glassnet as gn
from glassnet import nn
from glassnet.errors import ShapeError
from glassnet.models import get_model, list_models
from tests.torch_oracle import require_torch

# torchvision's published parameter counts (1000 classes; googlenet without aux heads).
TORCHVISION_PARAMS = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
    "googlenet": 6_624_904,
}

# Parity models: built once with the defaults (3 channels, 1000 classes), checked for
# forward/backward, parameter count, state_dict keys and logits against PyTorch.
# Every zoo model with a torchvision twin: image side for the logits comparison.
PARITY = {"alexnet": 64, "googlenet": 64,
          **{f"vgg{d}{bn}": 32 for d in (11, 13, 16, 19) for bn in ("", "_bn")},
          **{f"resnet{d}": 64 for d in (18, 34, 50, 101, 152)}}
# Models with their own test below (which also runs forward and backward).
SPECIAL = {"alexnet_lecture", "zfnet"}
# Image side for the generic test (default 32: the smallest VGG accepts; ResNet and
# GoogLeNet reach a 1×1 map there, fine for batch-norm statistics at batch 2).
SIZES = {"lenet5": 28, "mlp": 28, "small_cnn": 28, "convnet_pattern": 28}
GENERIC = [n for n in list_models() if n not in PARITY and n not in SPECIAL]


def _forward_backward(model, x, num_classes, seed=0):
    """Train-mode forward and backward of a random projection of the logits;
    every parameter must get a finite gradient of its own shape."""
    model.train()
    model.zero_grad()
    y = model(x)
    assert y.shape == (x.shape[0], num_classes)
    r = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    (y * gn.tensor(r)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    for n, p in model.named_parameters():
        assert p.grad.shape == p.shape, n
        assert np.isfinite(p.grad).all(), n
    return y


def test_every_model_is_covered():
    assert set(GENERIC) | set(PARITY) | SPECIAL == set(list_models())
    assert set(PARITY) | SPECIAL <= set(list_models())


def _expected_count(name, model, in_channels, num_classes):
    """torchvision's published count (3 channels, 1000 classes) adjusted for this build:
    the first conv loses (3 − in_channels)·C_out·kH·kW weights, the last Linear
    (1000 − num_classes)·(in_features + 1) weights and biases."""
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    kh, kw = first.kernel_size
    return (TORCHVISION_PARAMS[name] - (3 - in_channels) * first.out_channels * kh * kw
            - (1000 - num_classes) * (last.in_features + 1))


@pytest.mark.parametrize("name", GENERIC)
def test_builds_forward_backward(name):
    in_channels, num_classes = 2, 5
    gn.manual_seed(0)
    # VGG's re-initialisation of its 100M FC weights costs seconds per model; the recipe
    # itself is checked once, on vgg11_bn, in the parity test.
    extra = {"init_weights": False} if name.startswith("vgg") else {}
    model = get_model(name, num_classes=num_classes, in_channels=in_channels, **extra)
    if name in TORCHVISION_PARAMS:
        assert model.num_parameters() == _expected_count(name, model, in_channels, num_classes)
    side = SIZES.get(name, 32)
    x = gn.tensor(np.random.default_rng(1).standard_normal((2, in_channels, side, side)).astype(np.float32))
    _forward_backward(model, x, num_classes)
    model.eval()
    with gn.no_grad():
        assert model(x).shape == (2, num_classes)


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_reference_parameter_counts(name):
    """The PyTorch references have torchvision's published parameter counts
    (built on the meta device: no memory, no time)."""
    torch = require_torch()
    from tests import torch_reference_models as ref
    with torch.device("meta"):
        theirs = sum(p.numel() for p in ref.MODELS[name]().parameters())
    assert theirs == TORCHVISION_PARAMS[name]


def _check_vgg_init(m):
    """torchvision's VGG init: conv kaiming-normal (fan_out, ReLU), biases 0, BN 1/0, FC N(0, 0.01²)."""
    conv, bn = m.features[0], m.features[1]
    assert np.all(conv.bias.data == 0) and np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)
    std = np.sqrt(2.0 / (64 * 9))
    assert abs(conv.weight.data.std() - std) / std < 0.1
    fc = m.classifier[0]
    assert abs(fc.weight.data.std() - 0.01) < 1e-4 and np.all(fc.bias.data == 0)


@pytest.mark.parametrize("name", sorted(PARITY))
def test_parity_with_pytorch(name):
    torch = require_torch()
    from tests import torch_reference_models as ref
    side = PARITY[name]
    gn.manual_seed(0)
    model = get_model(name)
    assert model.num_parameters() == TORCHVISION_PARAMS[name]
    if name == "vgg11_bn":
        _check_vgg_init(model)
    x = np.random.default_rng(2).standard_normal((2, 3, side, side)).astype(np.float32)
    # train-mode step first: exercises backward and moves BatchNorm's running statistics
    _forward_backward(model, gn.tensor(x), 1000)

    theirs = ref.MODELS[name]()
    ours_sd = model.state_dict()
    theirs_sd = theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for k, v in ours_sd.items():
        assert tuple(v.shape) == tuple(theirs_sd[k].shape), k
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours_sd.items()}, strict=True)
    assert sum(p.numel() for p in theirs.parameters()) == TORCHVISION_PARAMS[name]

    model.eval()
    theirs.eval()
    with gn.no_grad():
        a = model(gn.tensor(x)).numpy()
    with torch.no_grad():
        b = theirs(torch.from_numpy(x)).numpy()
    rel = np.abs(a - b).max() / np.abs(b).max()
    print(f"{name}: rel err {rel:.2e}")
    assert rel <= 1e-4, f"{name}: logits differ from PyTorch, rel err {rel:.3e}"


def test_googlenet_aux_logits():
    torch = require_torch()
    from tests import torch_reference_models as ref
    gn.manual_seed(0)
    model = get_model("googlenet", num_classes=7, aux_logits=True)
    x = gn.tensor(np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32))
    model.train()
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 3 and all(o.shape == (2, 7) for o in out)
    (out[0].sum() + 0.3 * out[1].sum() + 0.3 * out[2].sum()).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with gn.no_grad():
        assert model(x).shape == (2, 7)
    theirs = ref.googlenet(num_classes=7, aux_logits=True)
    assert list(model.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}, strict=True)


def test_googlenet_transform_input():
    gn.manual_seed(0)
    model = get_model("googlenet", num_classes=4, transform_input=True).eval()
    with gn.no_grad():
        assert model(gn.randn(1, 3, 32, 32)).shape == (1, 4)
    with pytest.raises(ValueError, match="transform_input"):
        get_model("googlenet", in_channels=1, transform_input=True)


def _record_shapes(seq):
    shapes = {}
    for name, m in seq.named_children():
        m.register_forward_hook(lambda mod, inp, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
    return shapes


def test_alexnet_lecture_shapes_and_params():
    gn.manual_seed(0)
    model = get_model("alexnet_lecture")
    conv1 = model.features.conv1
    assert conv1.weight.shape == (96, 3, 11, 11) and conv1.weight.data.size == 34_848  # the lecture's "35K"
    assert model.num_parameters() == 62_378_344
    assert [type(m).__name__ for m in model.features][:4] == ["Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm"]
    shapes = _record_shapes(model.features)
    x = gn.tensor(np.random.default_rng(4).standard_normal((1, 3, 227, 227)).astype(np.float32))
    _forward_backward(model, x, 1000)
    expected = {"conv1": (96, 55, 55), "pool1": (96, 27, 27), "norm1": (96, 27, 27),
                "conv2": (256, 27, 27), "pool2": (256, 13, 13), "norm2": (256, 13, 13),
                "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13),
                "pool3": (256, 6, 6)}
    assert {k: shapes[k] for k in expected} == expected
    lrn = model.features.norm1
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    with pytest.raises(ShapeError, match="227"):
        with gn.no_grad():
            model.eval()(gn.randn(1, 3, 224, 224))


def test_zfnet_shapes():
    gn.manual_seed(0)
    model = get_model("zfnet", num_classes=10, in_channels=3)
    assert model.features.conv1.weight.shape == (96, 3, 7, 7)
    assert [model.features[i].out_channels for i in (8, 10, 12)] == [512, 1024, 512]
    assert model.num_parameters() == 107_627_624 - 990 * 4097  # documented count is for 1000 classes
    shapes = _record_shapes(model.features)
    x = gn.tensor(np.random.default_rng(5).standard_normal((1, 3, 224, 224)).astype(np.float32))
    _forward_backward(model, x, 10)
    assert [shapes[k] for k in ("conv1", "pool1", "conv2", "pool2", "conv5", "pool3")] == [
        (96, 110, 110), (96, 55, 55), (256, 26, 26), (256, 13, 13), (512, 13, 13), (512, 6, 6)]
    model.eval()
    with gn.no_grad():
        assert model(gn.randn(1, 3, 227, 227)).shape == (1, 10)
    assert shapes["conv1"] == (96, 112, 112) and shapes["pool3"] == (512, 6, 6)


def test_lenet5_sizes():
    for side in (28, 32):
        model = get_model("lenet5", image_size=side, activation="tanh", pool="avg")
        assert model.num_parameters() == 61_706
        with gn.no_grad():
            assert model(gn.randn(3, 1, side, side)).shape == (3, 10)
    with pytest.raises(ValueError):
        get_model("lenet5", image_size=64)


def test_convnet_pattern():
    model = get_model("convnet_pattern", n_conv=1, n_pool=3, n_fc=2, width=8, num_classes=4, in_channels=3,
                      image_size=32, batch_norm=True, dropout=0.1)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert fcs[0].in_features == 32 * 4 * 4 and len(fcs) == 3
    _forward_backward(model, gn.randn(2, 3, 32, 32), 4)
    default = get_model("convnet_pattern")
    assert sum(isinstance(m, nn.Conv2d) for m in default.modules()) == 4
    assert sum(isinstance(m, nn.MaxPool2d) for m in default.modules()) == 2
    with pytest.raises(ValueError, match="divisible"):
        get_model("convnet_pattern", n_pool=3, image_size=28)


def test_resnet_small_input():
    gn.manual_seed(0)
    model = get_model("resnet18", num_classes=10, in_channels=1, small_input=True)
    assert model.conv1.weight.shape == (64, 1, 3, 3)
    _forward_backward(model, gn.randn(2, 1, 28, 28), 10)
