"""The Trainer's named steps: its loop is the lecture's loop, and every file it writes goes through one method."""
import numpy as np

import glassnet as gn
import glassnet.nn as nn
from glassnet.data import ArrayDataset, DataLoader
from glassnet.optim import SGD
from glassnet.tensor import Tensor
from glassnet.train import Trainer


def _blobs(n=200, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, d)) * 3
    y = rng.integers(0, classes, n)
    return ArrayDataset((centers[y] + rng.standard_normal((n, d))).astype(np.float32), y.astype(np.int64))


def _build():
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3))
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt, DataLoader(_blobs(), batch_size=16, shuffle=True, seed=1)


def test_the_trainer_runs_the_lecture_loop_bit_for_bit():
    """forward -> loss -> zero_grad -> backward -> step, written out by hand, ends with the same weights."""
    model, opt, loader = _build()
    start = {k: v.copy() for k, v in model.state_dict().items()}
    Trainer(model, loader, opt, 2, progress=False, log=None).fit()

    ref, ref_opt, ref_loader = _build()
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(2):
        for x, y in ref_loader:
            loss = loss_fn(ref(Tensor(x)), Tensor(y))
            ref_opt.zero_grad()
            loss.backward()
            ref_opt.step()
    got, want = model.state_dict(), ref.state_dict()
    assert not all(np.array_equal(got[k], start[k]) for k in got)  # it trained
    for k in want:
        assert np.array_equal(got[k], want[k]), k


class _Silent(Trainer):
    """A trainer whose writing steps do nothing (what a non-zero rank of a data-parallel run does)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def _save(self, which, glassnet_state=None):
        self.calls.append(("save", which, self.global_step))
        return None

    def write_history(self):
        self.calls.append(("history", self.epoch, self.global_step))

    def report(self, text):
        self.calls.append(("report", text.split("  ")[0]))


def test_every_file_and_line_goes_through_one_named_step(tmp_path):
    model, opt, loader = _build()  # 13 batches per epoch
    trainer = _Silent(model, loader, opt, 2, val_loader=DataLoader(_blobs(60, seed=1), batch_size=30),
                      out_dir=tmp_path / "run", checkpoint_every=5, progress=False)
    history = trainer.fit()
    assert not (tmp_path / "run").exists()  # nothing written behind the steps' backs
    assert len(history) == 2 and trainer.global_step == 26
    saves = [c for c in trainer.calls if c[0] == "save"]
    assert [c for c in saves if c[1] == "last"] == [("save", "last", s) for s in (5, 10, 13, 15, 20, 25, 26)]
    assert ("save", "best", 13) in saves  # the first epoch with validation is the best so far
    assert [c for c in trainer.calls if c[0] == "history"] == [("history", 1, 13), ("history", 2, 26)]
    assert [c for c in trainer.calls if c[0] == "report"] == [("report", "epoch 1/2"), ("report", "epoch 2/2")]
