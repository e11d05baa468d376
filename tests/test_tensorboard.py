"""--tensorboard: per-epoch scalars in a TensorBoard event file (read back record by record)."""
import os
import struct

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn as nn
from glassnet.data import ArrayDataset, DataLoader
from glassnet.optim import SGD
from glassnet.train import fit
from tests.torch_oracle import require_module


def _require_tensorboardx():
    return require_module("tensorboardX", "tensorboard")


def _scalars(folder):
    """{tag: [(step, value), ...]} from the TFRecord event files in ``folder``."""
    from tensorboardX.proto import event_pb2

    out = {}
    for name in sorted(os.listdir(folder)):
        data = open(os.path.join(folder, name), "rb").read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            record = data[pos + 12:pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_fit_writes_epoch_scalars(tmp_path):
    _require_tensorboardx()
    from glassnet.tensorboard import TensorBoardLogger

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 2))
    logger = TensorBoardLogger(tmp_path / "tb")
    history = fit(model, DataLoader(ArrayDataset(x, y), batch_size=50, seed=0), SGD(model.parameters(), lr=0.1),
                  epochs=3, val_loader=DataLoader(ArrayDataset(x, y), batch_size=100), progress=False, log=None,
                  on_epoch_end=logger)
    logger.close()
    scalars = _scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["loss/train"]] == [1, 2, 3]
    np.testing.assert_allclose([v for _, v in scalars["loss/train"]], history.column("train_loss"), rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["accuracy/val"]], history.column("val_accuracy"), rtol=1e-6)
    assert {"lr", "loss/val", "accuracy/train", "speed/images_per_s"} <= set(scalars)


def test_cli_flag(tmp_path):
    _require_tensorboardx()
    from glassnet.cli import main
    from tests.data_required import require_fashion_mnist

    require_fashion_mnist()
    out = tmp_path / "run"
    assert main(["train", "--model", "mlp", "--epochs", "1", "--limit-train", "1000", "--limit-test", "500",
                 "--val-size", "200", "--out", str(out), "--no-progress", "--tensorboard"]) == 0
    scalars = _scalars(out / "tensorboard")
    assert [s for s, _ in scalars["accuracy/val"]] == [1]
