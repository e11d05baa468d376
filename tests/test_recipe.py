"""The AlexNet recipe: optimizer, plateau schedule, dropout, seeded augmentation, CLI options."""
import numpy as np
import pytest

import glassnet.nn as nn
from glassnet.commands.train import parse_model_args, resolve_config
from glassnet.data import transforms as T
from glassnet.optim import SGD
from glassnet.optim.lr_scheduler import ReduceLROnPlateau
from glassnet.train import BatchAugment, Recipe, Trainer, alexnet_recipe


def _params():
    return nn.Linear(3, 2).parameters()


def test_alexnet_recipe_builds_sgd_and_plateau_on_val_accuracy():
    r = alexnet_recipe()
    assert isinstance(r, Recipe)
    assert (r.batch_size, r.dropout, r.augment, r.crop_padding) == (128, 0.5, True, 2)
    opt = r.make_optimizer(_params())
    assert isinstance(opt, SGD)
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["weight_decay"], g["nesterov"]) == (1e-2, 0.9, 5e-4, False)
    sched = r.make_scheduler(opt)
    assert isinstance(sched, ReduceLROnPlateau)
    assert (sched.mode, sched.factor, sched.patience) == ("max", 0.1, 2)
    assert alexnet_recipe(lr=0.05, patience=4).make_scheduler(alexnet_recipe(lr=0.05).make_optimizer(_params())).patience == 4


def test_plateau_divides_lr_by_10_after_patience_epochs_without_improvement():
    r = alexnet_recipe(patience=2)
    opt = r.make_optimizer(_params())
    sched = r.make_scheduler(opt)
    lrs = []
    for acc in [0.50, 0.60, 0.60, 0.59, 0.60, 0.61, 0.61, 0.61, 0.61]:
        sched.step(acc)
        lrs.append(opt.param_groups[0]["lr"])
    # 0.60 at epoch 2 is the best; epochs 3, 4, 5 do not beat it: the 3rd bad epoch (> patience) cuts
    assert lrs[:4] == [1e-2] * 4
    assert lrs[4] == pytest.approx(1e-3)
    assert lrs[5] == pytest.approx(1e-3)       # 0.61 improves: counter reset
    assert lrs[8] == pytest.approx(1e-4)       # three more flat epochs: cut again


def test_trainer_feeds_val_accuracy_to_a_max_mode_plateau():
    opt = SGD(_params(), lr=0.1)
    t = Trainer(nn.Linear(3, 2), [(np.zeros((1, 3), np.float32), np.zeros(1, np.int64))], opt, 1,
                scheduler=ReduceLROnPlateau(opt, mode="max"), progress=False, log=None)
    assert t._plateau_key({"val_accuracy": 0.5, "val_loss": 1.0, "train_accuracy": 0.4}) == "val_accuracy"
    assert t._plateau_key({"train_accuracy": 0.4, "train_loss": 1.0}) == "train_accuracy"
    t2 = Trainer(nn.Linear(3, 2), [], opt, 1, scheduler=ReduceLROnPlateau(opt, mode="min"), progress=False)
    assert t2._plateau_key({"val_accuracy": 0.5, "val_loss": 1.0}) == "val_loss"


def test_augmentation_is_seeded_reproducible_and_order_free():
    x = np.random.default_rng(0).standard_normal((16, 1, 28, 28)).astype(np.float32)
    aug = alexnet_recipe().make_augment(mean=0.286, std=0.353, seed=7)
    parts = aug.transform.transforms
    assert [type(t) for t in parts] == [T.RandomCrop, T.RandomHorizontalFlip, T.RandomTranslate]
    assert parts[0].padding == (2, 2) and parts[0].fill == pytest.approx(-0.286 / 0.353)
    a = aug(x, epoch=1, step=3)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert not np.array_equal(a, x)
    aug(x, 0, 0), aug(x, 5, 9)  # other batches in between change nothing
    np.testing.assert_array_equal(aug(x, 1, 3), a)
    fresh = alexnet_recipe().make_augment(mean=0.286, std=0.353, seed=7)
    np.testing.assert_array_equal(fresh(x, 1, 3), a)  # a new process (resume) draws the same
    assert not np.array_equal(aug(x, 1, 4), a)
    assert not np.array_equal(alexnet_recipe().make_augment(seed=8)(x, 1, 3),
                              alexnet_recipe().make_augment(seed=7)(x, 1, 3))
    with pytest.raises(ValueError, match="seed"):
        BatchAugment(T.RandomHorizontalFlip(), seed=-1)


def test_cli_recipe_defaults_and_overrides():
    cfg = resolve_config({"recipe": "alexnet", "model": "small_cnn"})
    assert (cfg["optimizer"], cfg["lr"], cfg["momentum"], cfg["weight_decay"]) == ("sgd", 1e-2, 0.9, 5e-4)
    assert (cfg["scheduler"], cfg["plateau_metric"], cfg["batch_size"], cfg["augment"]) == \
        ("plateau", "val_accuracy", 128, True)
    assert cfg["model_kwargs"] == {"dropout": 0.5}
    # explicit options win over the recipe; --model-arg wins over the recipe's dropout
    cfg = resolve_config({"recipe": "alexnet", "model": "mlp", "lr": 0.03, "model_arg": ["dropout=0.2"]})
    assert cfg["lr"] == 0.03 and cfg["model_kwargs"] == {"dropout": 0.2}
    # dropout only goes to models that take it
    assert resolve_config({"recipe": "alexnet", "model": "lenet5"})["model_kwargs"] == {}
    # without a recipe: the old defaults
    cfg = resolve_config({})
    assert (cfg["scheduler"], cfg["lr"], cfg["augment"], cfg["model_kwargs"]) == ("cosine", 0.05, False, {})


def test_parse_model_args():
    assert parse_model_args(["dropout=0.5", "hidden=(256, 128)", "activation=tanh", "width=16"]) == \
        {"dropout": 0.5, "hidden": (256, 128), "activation": "tanh", "width": 16}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_model_args(["dropout"])
