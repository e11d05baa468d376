"""The data side of a training run: input size, pipeline, splits and loaders, from the run's options.

    spec = resolve_data(cfg["data"], cfg["data_root"])       # glassnet.data.data_spec
    plan = plan_input(cfg, spec)                             # channels, size, pipeline
    data = build_training_data(cfg, spec, plan, exact_val_size=False)
    train_loader, val_loader, test_loader = make_loaders(cfg, data)

``cfg`` is the run's config dict as ``glassnet train`` resolves it (``data``, ``data_root``,
``download``, ``input``, ``model``, ``model_kwargs``, ``augment``, ``recipe``, ``seed``,
``val_size``, ``limit_train``, ``limit_test``, ``batch_size``, ``workers``, ``dtype``); a
resumed run's config also holds the plan (``in_channels``, ``image_size``, ``pipeline``,
``eval_resize``, ``normalize``), which is reused as saved.

The input (:func:`plan_input`): ``--input CxHxW`` when given. Otherwise the channels are the
data's, and the size is

* for the models built for small images (a builder with ``image_size``: mlp, lenet5,
  small_cnn): the data's own size when all its images share one square size of at most
  :data:`SMALL_NATIVE_MAX` px (Fashion-MNIST 28, CIFAR 32), else the model's (28: photos resized);
* for the other models: the data's own size when its images share one square size smaller
  than the model's design input (Fashion-MNIST's 28 px for AlexNet: the model does not fit, and
  says so, rather than training on 8x upscaled images), else the design input --
  ``alexnet_lecture`` 227, the ImageNet models 224.

Used at their own size, images take the ``"native"`` pipeline, else the ``"photo"`` one
(:mod:`glassnet.data.pipelines`). Fashion-MNIST and MNIST at 28 px keep the loader they always
had (the dataset's vectorised ``get_batch``, the same batches bit for bit); everything else is
read sample by sample under the per-sample RNG contract, so ``--workers N`` gives the same
batches as ``--workers 0`` and a resumed run replays its augmentation. ``--limit-train`` /
``--limit-test`` keep the first N images of a named set and N evenly spaced images of a
folder (whose images are sorted by class: every class keeps its share).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError

__all__ = ["InputPlan", "TrainingData", "plan_input", "build_training_data", "make_loaders", "eval_batch_size",
           "SMALL_NATIVE_MAX", "check_named_root"]

#: the largest own image size the small-image models are built for without resizing
SMALL_NATIVE_MAX = 64
#: bytes of one evaluation batch of float32 inputs (sets the batch size for large images)
EVAL_BATCH_BYTES = 32 << 20


@dataclass
class InputPlan:
    """What the model is fed: ``in_channels``, ``image_size`` (H, W), ``pipeline`` ("native" or
    "photo"), ``eval_resize`` (the shorter side before the centre crop); ``source`` says where
    the size came from (for messages)."""

    in_channels: int
    image_size: tuple
    pipeline: str
    eval_resize: int
    source: str = ""

    def shape(self) -> tuple:
        """``(in_channels, H, W)``."""
        return (self.in_channels, *self.image_size)

    def text(self) -> str:
        """The shape as ``--input`` writes it, e.g. ``3x224x224``."""
        return "x".join(map(str, self.shape()))


@dataclass
class TrainingData:
    """The run's datasets, their normalisation and the batch augmentation (native pipeline only)."""

    train: object
    val: object
    test: object
    classes: list
    plan: InputPlan
    normalize: dict
    augment: object = None
    config: dict = field(default_factory=dict)


def _side(value) -> tuple:
    return (int(value), int(value)) if isinstance(value, (int, np.integer)) else (int(value[0]), int(value[1]))


def plan_input(cfg: dict, spec) -> InputPlan:
    """The :class:`InputPlan` of the run (see the module docstring); a resumed run's saved one."""
    from ..analysis.input_fit import design_side
    from ..data.pipelines import eval_resize_for
    from ..models.registry import builder_accepts

    if cfg.get("image_size") and cfg.get("pipeline") and cfg.get("in_channels"):  # resuming: as saved
        size = _side(cfg["image_size"])
        return InputPlan(int(cfg["in_channels"]), size, cfg["pipeline"],
                         int(cfg.get("eval_resize") or eval_resize_for(size, cfg["pipeline"])), "the run's config")
    native = spec.native_size
    if cfg.get("input"):
        c, h, w = (int(v) for v in cfg["input"])
        if c != spec.channels and spec.dataset != "folder":  # folders and caches convert as read
            what = spec.dataset
            raise UsageError(f"--input {c}x{h}x{w}: {what} holds {spec.channels}-channel images; "
                             f"use --input {spec.channels}x{h}x{w}")
        pipeline = "native" if native == (h, w) else "photo"
        source = f"--input {c}x{h}x{w}"
        return InputPlan(c, (h, w), pipeline, eval_resize_for((h, w), pipeline), source)
    channels = spec.channels
    design = _side(design_side(cfg["model"], cfg.get("model_kwargs")))
    if builder_accepts(cfg["model"], "image_size"):
        use_native = native is not None and max(native) <= SMALL_NATIVE_MAX
    else:
        use_native = native is not None and max(native) < max(design)
    size = native if use_native else design
    pipeline = "native" if use_native else "photo"
    what = f"{spec.dataset if spec.dataset != 'folder' else spec.data}'s own size" if use_native \
        else f"{cfg['model']}'s input size"
    return InputPlan(channels, size, pipeline, eval_resize_for(size, pipeline), what)


def check_named_root(spec, option: str = "--data-root") -> None:
    """An explicit root of a named set must hold it (IDX: its files; CIFAR: the extracted batches)."""
    from ..io.run_dir import check_data_root

    if spec.root is None or spec.download:
        return
    if spec.dataset in ("fashion-mnist", "mnist"):
        check_data_root(spec.dataset, spec.root, option=option)
        return
    from .. import data as D

    cls = D.CIFAR10 if spec.dataset == "cifar10" else D.CIFAR100
    folder = Path(spec.root).expanduser() / cls.base_folder
    files = cls.train_list + cls.test_list + [cls.meta_file]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise D.DatasetNotFoundError(f"{option} {spec.root!r} does not hold {cls.base_folder}/ with "
                                     f"{', '.join(missing)} (extract {cls.filename} there, or pass --download)")


def _val_size(cfg, n: int, exact: bool, what: str) -> int:
    if exact:
        if cfg["val_size"] >= n:
            limited = f" (--limit-train {cfg['limit_train']})" if cfg.get("limit_train") is not None else ""
            raise UsageError(f"--val-size must be smaller than the training set, {n}{' ' + what if what else ''} "
                             f"images{limited}, so that some are left to train on; got {cfg['val_size']}")
        return cfg["val_size"]
    return min(cfg["val_size"], n // 5)


def _normalize(cfg, spec, plan, raw_train) -> dict:
    from ..data.pipelines import default_stats, pixel_stats

    if cfg.get("normalize"):
        return {"mean": list(cfg["normalize"]["mean"]), "std": list(cfg["normalize"]["std"])}
    stats = default_stats(spec.dataset, plan.in_channels)
    if stats is None:
        stats = pixel_stats(raw_train)
    return {"mean": stats[0], "std": stats[1]}


def _batch_augment(cfg, plan, norm):
    """The native pipeline's ``--augment``: the recipe's seeded batch augmentation."""
    from .recipes import RECIPES, alexnet_recipe

    recipe = RECIPES[cfg["recipe"]]() if cfg.get("recipe") else alexnet_recipe()
    mean, std = np.asarray(norm["mean"], np.float64), np.asarray(norm["std"], np.float64)
    fill_mean, fill_std = (float(mean[0]), float(std[0])) if mean.size == 1 else (0.0, 1.0)
    if mean.size > 1:  # one fill for all channels: the average normalised black pixel
        fill_mean, fill_std = float(np.mean(mean / std)), 1.0
    h, w = plan.image_size
    return recipe.make_augment(mean=fill_mean, std=fill_std, image_size=h if h == w else (h, w), seed=cfg["seed"])


def _idx_native(cfg, spec, plan, exact_val_size):
    """Fashion-MNIST / MNIST at 28 px: the datasets with their batch transform, split as always."""
    from .. import data
    from ..data.pipelines import eval_transform

    norm = _normalize(cfg, spec, plan, None)
    transform = eval_transform(plan.image_size, plan.eval_resize, norm["mean"], norm["std"], cfg["dtype"])
    cls = getattr(data, {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}[spec.dataset])
    train = cls(root=spec.root, train=True, download=spec.download, transform=transform)
    test = cls(root=spec.root, train=False, download=spec.download, transform=transform)
    if cfg.get("limit_train") is not None:
        train = data.Subset(train, np.arange(min(cfg["limit_train"], len(train))))
    if cfg.get("limit_test") is not None:
        test = data.Subset(test, np.arange(min(cfg["limit_test"], len(test))))
    val_size = _val_size(cfg, len(train), exact_val_size, spec.dataset)
    val = None
    if val_size > 0:
        train, val = data.random_split(train, [len(train) - val_size, val_size], seed=cfg["seed"])
    return train, val, test, norm


def build_training_data(cfg: dict, spec, plan: InputPlan, exact_val_size: bool,
                        val_size_given: bool = False) -> TrainingData:
    """The run's train / val / test datasets (see the module docstring).

    ``exact_val_size``: ``cfg["val_size"]`` was asked for (on the command line or by the run
    being resumed) and must be smaller than the training set; otherwise the default is capped
    at a fifth of it. ``val_size_given``: ``--val-size`` is on the command line. Raises
    :class:`~glassnet.errors.UsageError` for a ``--val-size`` that leaves nothing to train on
    or that a layout with its own ``val/`` tree does not use.
    """
    from .. import data
    from ..data.data_spec import TEST_FRACTION, TEST_SEED, PipelineDataset, limit_indices, open_splits
    from ..data.pipelines import eval_transform, train_transform

    classes = list(spec.classes)
    augment = None
    extra = {}
    if spec.dataset in ("fashion-mnist", "mnist") and plan.pipeline == "native" and plan.in_channels == 1 \
            and plan.image_size == (28, 28):
        train, val, test, norm = _idx_native(cfg, spec, plan, exact_val_size)
    else:
        pool, fixed_val, raw_test = open_splits(spec, plan.in_channels)
        classes = list(getattr(pool, "classes", None) or classes)
        spread = spec.dataset == "folder"  # a folder's samples are sorted by class
        base = limit_indices(len(pool), cfg.get("limit_train"), spread)
        n_pool = len(base)
        if fixed_val is not None:
            if val_size_given:
                raise UsageError(f"--val-size: {spec.data} has its own val/ tree (beside train/ and test/), "
                                 "which is the validation set; leave --val-size out")
            train_idx, val_idx = base, None
        else:
            val_size = _val_size(cfg, n_pool, exact_val_size, spec.dataset if spec.dataset != "folder" else "")
            train_idx, val_idx = base, None
            if val_size > 0:
                a, b = data.random_split(_Len(n_pool), [n_pool - val_size, val_size], seed=cfg["seed"])
                train_idx, val_idx = base[a.indices], base[b.indices]
        norm = _normalize(cfg, spec, plan, PipelineDataset(pool, train_idx))
        mean, std = norm["mean"], norm["std"]
        evaluation = eval_transform(plan.image_size, plan.eval_resize, mean, std, cfg["dtype"])
        training = train_transform(plan.pipeline, plan.image_size, plan.eval_resize, mean, std,
                                   augment=bool(cfg.get("augment")), channels=plan.in_channels,
                                   recipe=cfg.get("recipe"), dtype=cfg["dtype"])
        train = PipelineDataset(pool, train_idx, training)
        if fixed_val is not None:
            val = PipelineDataset(fixed_val, None, evaluation)
        else:
            val = PipelineDataset(pool, val_idx, evaluation) if val_idx is not None else None
        test = PipelineDataset(raw_test, limit_indices(len(raw_test), cfg.get("limit_test"), spread), evaluation)
        if spec.layout == "single":
            extra["test_split"] = {"fraction": TEST_FRACTION, "seed": TEST_SEED, "of": len(raw_test.source)}
    if plan.pipeline == "native" and cfg.get("augment"):
        augment = _batch_augment(cfg, plan, norm)
    config = {"dataset": spec.dataset, "data": spec.data, "in_channels": plan.in_channels,
              "image_size": list(plan.image_size), "pipeline": plan.pipeline, "eval_resize": plan.eval_resize,
              "normalize": norm, "classes": classes, **extra}
    return TrainingData(train, val, test, classes, plan, norm, augment, config)


class _Len:
    """A stand-in of ``n`` samples for :func:`glassnet.data.random_split` (only ``len`` is used)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def eval_batch_size(plan: InputPlan, cap: int = 512) -> int:
    """Batch size for validation and test: ``cap`` for small images, fewer for large ones so
    that one float32 batch stays near 32 MiB (55 images at 3x224x224)."""
    per_image = 4 * plan.in_channels * plan.image_size[0] * plan.image_size[1]
    return int(max(1, min(cap, EVAL_BATCH_BYTES // per_image)))


def make_loaders(cfg: dict, data: TrainingData):
    """``(train_loader, val_loader or None, test_loader)``: ``cfg["workers"]`` worker processes each
    (persistent for train and val, which are iterated every epoch; close them with ``.close()``)."""
    from ..data import DataLoader

    workers = int(cfg.get("workers") or 0)
    persistent = workers > 0
    eval_bs = eval_batch_size(data.plan)
    train = DataLoader(data.train, batch_size=cfg["batch_size"], shuffle=True, seed=cfg["seed"],
                       num_workers=workers, persistent_workers=persistent)
    val = DataLoader(data.val, batch_size=eval_bs, num_workers=workers, persistent_workers=persistent) \
        if data.val is not None else None
    test = DataLoader(data.test, batch_size=eval_bs, num_workers=workers)
    return train, val, test
