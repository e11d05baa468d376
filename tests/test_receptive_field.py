"""summary()'s receptive fields against fields measured by back-propagation.

The measurement knows nothing of the recurrence: it takes a copy of the zoo
model in which every output depends monotonically on every input pixel it
can see (all conv weights 1/fan_in > 0, batch norm the identity, max-pools
replaced by average pools of the same geometry, a positive input so that no
ReLU is off), runs it in float64 up to a stage's output, and back-propagates
from two vertically neighbouring positions ``(u, u)`` and ``(u + 1, u)``, all
channels (after a ``cat`` the channels of different branches see different
fields; a position's field is their union). The input gradient is then nonzero exactly on the union of their
fields: its width is the receptive field ``rf``, its height ``rf + jump``,
and the centre of its columns is ``start + u·jump``. Winograd is turned off
for the measurement, so that zeros stay exact zeros.
"""
import numpy as np
import pytest

import glassnet.nn as nn
import glassnet.nn.functional as F
from glassnet import Tensor, cat
from glassnet.analysis.summary import summary
from glassnet.kernels import conv as conv_kernels
from glassnet.models import get_model

# (model, input side for the measurement, stages measured on one forward pass)
CASES = [
    ("resnet18", 480, ["layer1", "layer2", "layer4"]),
    ("resnet50", 320, ["layer1", "layer3"]),
    ("googlenet", 320, ["inception3b", "maxpool3", "inception4e"]),
]


class _Stop(Exception):
    pass


def _positive_copy(name):
    """The zoo model with positive weights, identity batch norm and average pools instead of max-pools."""
    model = get_model(name)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                assert child.dilation in (1, (1, 1))
                setattr(parent, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                         ceil_mode=child.ceil_mode))
    for module in model.modules():
        for pname, p in module._parameters.items():
            if p is None:
                continue
            if isinstance(module, nn.Conv2d) and pname == "weight":
                p.data[...] = 1.0 / np.prod(p.data.shape[1:])
            elif isinstance(module, nn.BatchNorm2d) and pname == "weight":
                p.data[...] = 1.0
            else:
                p.data[...] = 0.0
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean[...] = 0.0
            module.running_var[...] = 1.0
    return model.double().eval()


def _extent(mask):
    idx = np.flatnonzero(mask)
    return int(idx[0]), int(idx[-1])


def measure(model, side, stages, channels=3):
    """``{stage: (rf, jump, start)}`` of a positive model's stage outputs (see the module docstring)."""
    outputs = {}
    modules = dict(model.named_modules())

    def keep(stage):
        def hook(module, inputs, output):
            outputs[stage] = output
            if len(outputs) == len(stages):
                raise _Stop
        return hook

    handles = [modules[s].register_forward_hook(keep(s)) for s in stages]
    rng = np.random.default_rng(0)
    x = Tensor(0.5 + rng.random((1, channels, side, side)), requires_grad=True)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    found = {}
    for stage in stages:
        out = outputs[stage]
        ho, wo = out.shape[2:]
        u = (min(ho, wo) - 1) // 2  # the pair (u, u + 1) sits in the middle
        g = np.zeros(out.shape)
        g[0, :, u, u] = g[0, :, u + 1, u] = 1.0  # every channel: cat's branches differ
        x.grad = None
        out.backward(g, retain_graph=True)
        seen = np.abs(x.grad).sum(axis=(0, 1)) > 0
        top, bottom = _extent(seen.any(axis=1))
        left, right = _extent(seen.any(axis=0))
        assert top > 0 and left > 0 and bottom < side - 1 and right < side - 1, \
            f"{stage}: the field reaches the border of the {side}x{side} input; measure on a larger one"
        rf = right - left + 1
        jump = (bottom - top + 1) - rf
        start = (left + right + 1) / 2 - u * jump
        assert (top + rf / 2) - u * jump == start  # the rows tell the same story
        found[stage] = (rf, jump, start)
    return found


@pytest.fixture(scope="module")
def measured():
    saved = conv_kernels._winograd
    conv_kernels.set_winograd(False)
    try:
        return {name: measure(_positive_copy(name), side, stages) for name, side, stages in CASES}
    finally:
        conv_kernels.set_winograd(saved)


@pytest.mark.parametrize("name,side,stages", CASES, ids=[c[0] for c in CASES])
def test_summary_fields_are_the_measured_ones(measured, name, side, stages):
    s = summary(get_model(name), (3, 224, 224))
    for stage in stages:
        rf, jump, start = measured[name][stage]
        field = s.module_fields[stage]
        assert field.kind == "window"
        assert (field.rf, field.jump, field.start) == ((rf, rf), (jump, jump), (start, start)), stage
        last = [r for r in s.rows if r.name == stage or r.name.startswith(stage + ".")][-1]
        assert (last.receptive_field, last.jump, last.start) == (field.rf, field.jump, field.start)
    if name == "resnet18":
        assert measured[name]["layer4"][:2] == (435, 32)
        assert s["fc"].field == "global" and s["fc"].receptive_field is None


def test_tables_are_the_same_on_every_call():
    model = get_model("resnet18")
    first = summary(model, (3, 224, 224))
    again = summary(model, (3, 224, 224))
    summary(get_model("googlenet"), (3, 224, 224), view="lecture")
    summary(get_model("small_cnn"), (1, 28, 28))
    third = summary(model, (3, 224, 224))
    assert str(first) == str(again) == str(third)
    assert first.to_dict() == again.to_dict() == third.to_dict()


class _Branches(nn.Module):
    """relu(conv3x3(x) + conv3x3(pad(x, left 2, top 2))) and a cat of a 5x5 and a 1x1 branch:
    the two sides of the add are centred apart, so the union is wider than either."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b = nn.Conv2d(1, 2, 3)
        self.c = nn.Conv2d(2, 2, 5, padding=2)
        self.d = nn.Conv2d(2, 2, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        y = F.relu(self.a(x) + self.b(F.pad(x, (2, 0, 2, 0))))
        return self.pool(cat([self.c(y), self.d(y)], 1))


def test_union_of_offset_branches_is_measured():
    s = summary(_Branches(), (1, 32, 32), view="lecture")
    field = s.module_fields[""]
    # add: [-1, 2) and [-2, 1) -> [-2, 2): rf 4, start 0; cat: the 5x5 branch (rf 8); pool 2/2: start 0.5
    assert (field.rf, field.jump, field.start) == ((9, 9), (2, 2), (0.5, 0.5))
    model = _Branches()
    for p in model.parameters():
        p.data[...] = 0.1 if p.data.ndim == 4 else 0.0
    model.pool = nn.AvgPool2d(2)
    saved = conv_kernels._winograd
    conv_kernels.set_winograd(False)
    try:
        rf, jump, start = measure(model.double().eval(), 32, [""], channels=1)[""]
    finally:
        conv_kernels.set_winograd(saved)
    assert (field.rf, field.jump, field.start) == ((rf, rf), (jump, jump), (start, start))
    assert s["pool"].receptive_field == field.rf and s["pool"].algorithm is None
    assert s["c"].receptive_field == (8, 8) and s["d"].receptive_field == (4, 4)


def test_flatten_and_linear_are_global_and_unbatched_conv_keeps_its_field():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.Flatten(), nn.Linear(2 * 7 * 7, 3))
    s = summary(model, (1, 16, 16))
    assert s["0"].field == "window" and s["0"].receptive_field == (3, 3)
    assert [s[n].field for n in ("1", "2")] == ["global", "global"]
    assert s["1"].receptive_field is None and "global" in str(s)
    from glassnet.analysis.receptive_field import receptive_fields
    from glassnet.io.tracing import trace
    conv = nn.Conv2d(1, 1, 3, stride=2)
    tr = trace(conv, Tensor(np.zeros((1, 9, 9), dtype=np.float32)), is_leaf=lambda m: False)
    f = receptive_fields(tr)[id(tr.output)]
    assert (f.rf, f.jump, f.start) == ((3, 3), (2, 2), (1.5, 1.5))
