"""Training recipes: :class:`Recipe` and the lecture's :func:`alexnet_recipe` (re-exported by :mod:`glassnet.train`).

    from glassnet.train import alexnet_recipe
    recipe = alexnet_recipe()
    optimizer = recipe.make_optimizer(model.parameters())     # SGD, momentum 0.9, weight decay 5e-4
    scheduler = recipe.make_scheduler(optimizer)              # lr / 10 on a val-accuracy plateau
    augment = recipe.make_augment(mean=0.286, std=0.353, seed=0)   # BatchAugment for 28-px batches

:class:`BatchAugment` draws its randomness from ``(seed, epoch, step)`` only, so a resumed run
augments exactly as an uninterrupted one; photos resized to the model are augmented per
sample instead (:mod:`glassnet.data.pipelines`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import InvalidArgumentError
from .augment import BatchAugment

__all__ = ["Recipe", "alexnet_recipe", "RECIPES"]


@dataclass
class Recipe:
    """A training recipe: optimizer, schedule, batch size, dropout and augmentation settings.

    ``make_optimizer``, ``make_scheduler`` and ``make_augment`` build the
    objects; ``cli_defaults()`` gives the ``glassnet train`` option values.
    """

    name: str
    optimizer: str = "sgd"
    lr: float = 1e-2
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    scheduler: str = "plateau"
    plateau_metric: str = "val_accuracy"
    gamma: float = 0.1
    patience: int = 2
    batch_size: int = 128
    dropout: float = 0.5
    augment: bool = True
    crop_padding: int = 2
    translate: int = 1
    flip_p: float = 0.5

    def make_optimizer(self, params):
        """The recipe's SGD optimizer over ``params``."""
        from .. import optim

        if self.optimizer != "sgd":
            raise InvalidArgumentError(f"Recipe {self.name}: only the sgd optimizer is built here, got {self.optimizer!r}")
        return optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                         weight_decay=self.weight_decay)

    def make_scheduler(self, optimizer):
        """The recipe's ``ReduceLROnPlateau`` (``mode`` from ``plateau_metric``) for ``optimizer``."""
        from ..optim import lr_scheduler as S

        if self.scheduler != "plateau":
            raise InvalidArgumentError(f"Recipe {self.name}: only the plateau schedule is built here")
        mode = "max" if self.plateau_metric.endswith("accuracy") else "min"
        return S.ReduceLROnPlateau(optimizer, mode=mode, factor=self.gamma, patience=self.patience)

    def make_augment(self, mean: float = 0.0, std: float = 1.0, image_size=28, seed: int = 0) -> BatchAugment:
        """The seeded batch augmentation. ``mean``/``std`` are those of the loader's
        ``Normalize`` (the augmentation sees normalized images), so padding is filled
        with the normalized value of a black pixel, ``-mean/std``."""
        from ..data import transforms as T

        fill = (0.0 - mean) / std
        parts = []
        if self.crop_padding:
            parts.append(T.RandomCrop(image_size, padding=self.crop_padding, fill=fill, seed=0))
        if self.flip_p:
            parts.append(T.RandomHorizontalFlip(self.flip_p, seed=0))
        if self.translate:
            parts.append(T.RandomTranslate(self.translate, fill=fill, seed=0))
        return BatchAugment(T.Compose(parts), seed=seed)

    def cli_defaults(self) -> dict:
        """The ``glassnet train`` option values this recipe sets."""
        return {"optimizer": self.optimizer, "lr": self.lr, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay, "scheduler": self.scheduler,
                "plateau_metric": self.plateau_metric, "gamma": self.gamma, "patience": self.patience,
                "batch_size": self.batch_size, "augment": self.augment,
                "model_kwargs": {"dropout": self.dropout}}


def alexnet_recipe(**overrides) -> Recipe:
    """The lecture's AlexNet training recipe (Krizhevsky et al. 2012), scaled to 28×28 images.

    SGD with momentum 0.9 and weight decay 5e-4, lr 1e-2 divided by 10 when
    the validation accuracy plateaus (``ReduceLROnPlateau(mode="max",
    factor=0.1)``), dropout 0.5 (for models with a ``dropout`` argument),
    batch 128, and on-the-fly seeded augmentation: random crop with padding
    2, horizontal flip, translation by up to 1 pixel. For photos resized to
    the model (``glassnet train --data FOLDER --recipe alexnet``) the
    augmentation is the paper's instead, per sample: random 224 (227) crops
    of the images resized to 256, flips and PCA lighting (alphastd 0.1;
    :func:`glassnet.data.pipelines.photo_train_transform`).
    """
    return replace(Recipe("alexnet"), **overrides)


#: the recipes by name (``glassnet train --recipe NAME``)
RECIPES = {"alexnet": alexnet_recipe}
