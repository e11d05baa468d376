"""One-process tests of glassnet.distributed.training (TrainingRole) and .launch (--nproc)."""
import sys

import numpy as np
import pytest

import glassnet.distributed as dist
from glassnet.data import ArrayDataset, DataLoader
from glassnet.distributed.launch import mpiexec_command, nproc_of, strip_nproc
from glassnet.distributed.training import TrainingRole
from glassnet.errors import UsageError
from glassnet.optim import SGD
from glassnet.train.distributed_run import DistributedTrainer
from tests.distributed_scripts.fakes import TwinComm, mlp


class RankOneTwin(TwinComm):
    """Rank 1 of 2, the other rank identical to this one."""

    rank = 1

    def broadcast_object(self, obj, root=0):
        return obj


def _loader(n=12, batch=3):
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.standard_normal((n, 6)), rng.integers(0, 3, n))
    return DataLoader(data, batch_size=batch, shuffle=True, seed=1)


def test_one_process_role_is_the_single_process_behaviour():
    role = TrainingRole()
    assert role.world_size == 1 and role.writes_files and not role.distributed
    model, loader = mlp(), _loader()
    assert role.prepare(model, loader, lengths={"train": 12}, batch_size=3) == (model, loader)
    assert role.step_sums(1.5, 2, 3) == (1.5, 2, 3) and role.agree_stop(True) and not role.agree_stop(False)
    assert role.batch_text(64) == "batch 64"
    assert role.on_main(lambda a: a + 1, 1) == 2


def test_rank_one_writes_nothing_and_sums_over_ranks(tmp_path):
    """A Trainer on rank 1 of 2 (the other rank a twin): no file in the run folder, the global sums."""
    role = TrainingRole(RankOneTwin())
    assert not role.writes_files and role.batch_text(64) == "batch 64 per rank x 2 ranks = global batch 128"
    assert role.step_sums(1.5, 2, 3) == (3.0, 4, 6) and role.agree_stop(True) and not role.agree_stop(False)
    model = mlp()
    trainer = DistributedTrainer(model, _loader(), SGD(model.parameters(), lr=0.1), 2, out_dir=tmp_path / "run",
                      checkpoint_every=1, progress=False, log=None, role=role)
    history = trainer.fit()
    assert not (tmp_path / "run").exists()
    assert len(history) == 2 and history[0]["train_loss"] > 0


def test_resume_rule_for_another_world_size():
    meta = {"epoch": 0, "step": 3, "rng_states": {"loader": {"world_size": 2, "batch_size": 4,
                                                             "batches_per_epoch": 5}}}
    same = TrainingRole(TwinComm())
    assert same.resume_meta(meta, 5) is meta  # the same world size: exact, unchanged
    one = TrainingRole()
    moved = one.resume_meta(meta, 10)  # 3 steps x 4 x 2 ranks = 24 samples = 6 steps of 4 on one rank
    assert moved["step"] == 6 and moved["rng_states"]["loader"]["batches_per_epoch"] == 10
    assert meta["step"] == 3  # not modified
    no_layout = {"epoch": 0, "step": 3, "rng_states": {"loader": {"batches_per_epoch": 5}}}
    assert one.resume_meta(no_layout, 5) is no_layout  # a one-process checkpoint


def test_nproc_parsing_and_the_mpiexec_command():
    assert nproc_of(["train", "--nproc", "3", "--model", "mlp"]) == 3 and nproc_of(["train", "--nproc=2"]) == 2
    assert nproc_of(["train", "--model", "mlp"]) is None
    for bad in (["train", "--nproc", "0"], ["train", "--nproc", "x"], ["train", "--nproc"]):
        with pytest.raises(UsageError, match="--nproc"):
            nproc_of(bad)
    assert strip_nproc(["train", "--nproc", "2", "--epochs", "1", "--nproc=4"]) == ["train", "--epochs", "1"]
    command = mpiexec_command(2, ["train", "--nproc", "2", "--epochs", "1"], mpiexec="/x/mpiexec")
    assert command[:4] == ["/x/mpiexec", "-n", "2", sys.executable]
    assert command[-3:] == ["train", "--epochs", "1"] and "--nproc" not in command


def test_nproc_under_mpiexec_is_refused(monkeypatch, capsys):
    from glassnet.cli import main

    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "1")
    assert main(["train", "--nproc", "2"]) == 2
    assert "give either --nproc N or mpiexec -n N" in capsys.readouterr().err
    assert dist.launched_by_mpi()


def test_nproc_without_mpi4py_names_the_extra(monkeypatch, capsys):
    import importlib.util

    from glassnet.cli import main
    from glassnet.distributed import launch

    real = importlib.util.find_spec
    monkeypatch.delenv(launch.MPIEXEC_ENV, raising=False)
    monkeypatch.setattr(launch.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real(name, *a))
    assert main(["train", "--nproc", "2", "--model", "mlp"]) == 1
    assert "pip install 'glassnet[mpi]'" in capsys.readouterr().err


class SigintDuringAgreement(TrainingRole):
    """A role whose stop agreement is where Ctrl-C lands: the SIGINT handler runs inside the
    collective (after the flag's value was sent), as it does when mpiexec forwards the signal while
    the rank waits in ``allreduce``; the ranks' answer is the value sent."""

    def __init__(self, trainer_box, at_call):
        super().__init__()
        self.trainer_box, self.at_call, self.calls = trainer_box, at_call, 0

    def agree_stop(self, requested: bool) -> bool:
        self.calls += 1
        if self.calls == self.at_call:
            self.trainer_box[0]._interrupted = True  # what InterruptSteps' handler does
        return bool(requested)


def test_ctrl_c_during_the_stop_agreement_is_not_lost(tmp_path):
    """The interrupt that arrives while the ranks agree (before step 2) neither stops this rank alone
    there nor is lost: every rank stops at the next check (before step 3)."""
    box = []
    role = SigintDuringAgreement(box, at_call=3)
    model = mlp()
    trainer = DistributedTrainer(model, _loader(), SGD(model.parameters(), lr=0.1), 5, out_dir=tmp_path / "run",
                                 checkpoint_every=0, progress=False, log=None, role=role)
    box.append(trainer)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert role.calls == 4 and trainer.epoch == 0 and trainer.global_step == 3, (role.calls, trainer.global_step)
