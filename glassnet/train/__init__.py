"""Training: the lecture's loop (:func:`fit` / :class:`Trainer`), its history, evaluation, recipes.

    from glassnet.train import fit, evaluate
    history = fit(model, train_loader, optimizer, epochs=10,
                  val_loader=val_loader, out_dir="runs/mlp")
    print(evaluate(model, test_loader)["accuracy"])

One module per job:

* :mod:`~glassnet.train.trainer` -- :func:`fit` and :class:`Trainer`, the loop itself;
* :mod:`~glassnet.train.data` -- the run's input plan, datasets and loaders (``glassnet train``);
* :mod:`~glassnet.train.setup` -- the run's model, weights, optimizer and schedule;
* :mod:`~glassnet.train.recipes` -- :class:`Recipe`, :func:`alexnet_recipe`, :class:`BatchAugment`.
"""
from ..io.checkpoint import CheckpointError
from .data import (SMALL_NATIVE_MAX, InputPlan, TrainingData, build_training_data, check_named_root,
                   eval_batch_size, make_loaders, plan_input)
from .recipes import RECIPES, BatchAugment, Recipe, alexnet_recipe
from .setup import DEFAULT_LR, build_model, fit_error, load_weights, make_optimizer, make_scheduler
from .trainer import History, Trainer, TrainingDivergedError, _atomic_write, evaluate, fit, predict_logits  # noqa: F401

__all__ = ["fit", "evaluate", "predict_logits", "History", "TrainingDivergedError",
           "Trainer", "BatchAugment", "Recipe", "alexnet_recipe", "RECIPES", "CheckpointError",
           "InputPlan", "TrainingData", "plan_input", "build_training_data", "make_loaders", "eval_batch_size",
           "SMALL_NATIVE_MAX", "check_named_root",
           "build_model", "fit_error", "load_weights", "make_optimizer", "make_scheduler", "DEFAULT_LR"]
