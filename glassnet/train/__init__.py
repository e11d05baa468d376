"""Training: the lecture's loop (:func:`fit` / :class:`Trainer`), its history, evaluation, recipes.

    from glassnet.train import fit, evaluate
    history = fit(model, train_loader, optimizer, epochs=10,
                  val_loader=val_loader, out_dir="runs/mlp")
    print(evaluate(model, test_loader)["accuracy"])

One module per job:

* :mod:`~glassnet.train.trainer` -- :func:`fit` and :class:`Trainer`: the loop, in named steps
  (forward, loss, backward, optimizer step; then validation, schedule, history, checkpoint);
* :mod:`~glassnet.train.checkpoints` -- the trainer's checkpoints and exact resume;
  :mod:`~glassnet.train.interrupts` -- its Ctrl-C handling;
  :mod:`~glassnet.train.batches` -- the batches of an epoch from a given batch on;
* :mod:`~glassnet.train.history` -- :class:`History`, the per-epoch metrics and their files;
* :mod:`~glassnet.train.metrics` -- accuracy, top-k, softmax, confusion matrix on arrays;
* :mod:`~glassnet.train.evaluation` -- :func:`evaluate` and :func:`predict_logits` over a loader;
* :mod:`~glassnet.train.augment` -- :class:`BatchAugment`, the seeded batch augmentation;
* :mod:`~glassnet.train.recipes` -- :class:`Recipe` and :func:`alexnet_recipe`;
* :mod:`~glassnet.train.data` -- a ``glassnet train`` run's input plan, datasets and loaders;
* :mod:`~glassnet.train.setup` -- a run's model, weights, optimizer and schedule.
"""
from ..io.checkpoint import CheckpointError
from .augment import BatchAugment
from .checkpoints import TrainingDivergedError
from .data import (SMALL_NATIVE_MAX, InputPlan, TrainingData, build_training_data, check_named_root,
                   eval_batch_size, make_loaders, plan_input)
from .evaluation import evaluate, predict_logits
from .history import History
from .metrics import confusion_matrix, metrics, softmax, topk_accuracy
from .recipes import RECIPES, Recipe, alexnet_recipe
from .setup import DEFAULT_LR, build_model, fit_error, load_weights, make_optimizer, make_scheduler
from .trainer import Trainer, fit

__all__ = ["fit", "evaluate", "predict_logits", "History", "TrainingDivergedError",
           "Trainer", "BatchAugment", "Recipe", "alexnet_recipe", "RECIPES", "CheckpointError",
           "softmax", "confusion_matrix", "topk_accuracy", "metrics",
           "InputPlan", "TrainingData", "plan_input", "build_training_data", "make_loaders", "eval_batch_size",
           "SMALL_NATIVE_MAX", "check_named_root",
           "build_model", "fit_error", "load_weights", "make_optimizer", "make_scheduler", "DEFAULT_LR"]
