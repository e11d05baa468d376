"""``glassnet train``: train a zoo model on a dataset and report its test accuracy.

    glassnet train --model mlp --dataset fashion-mnist --epochs 10 --out runs/mlp

The output folder holds ``config.json``, ``history.json``/``history.csv``, the
final weights (``model.npz``, PyTorch parameter names) and ``test.json``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

DATASETS = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train a zoo model on a dataset and report test accuracy")
    t.add_argument("--model", default="mlp", help="zoo model name (see `glassnet models`); default mlp")
    t.add_argument("--dataset", default="fashion-mnist", choices=sorted(DATASETS))
    t.add_argument("--data-root", default=None, help="folder with the dataset's IDX files (default: search)")
    t.add_argument("--download", action="store_true", help="download the dataset if it is not found")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="sgd")
    t.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.05 for sgd, 1e-3 for adam/adamw)")
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--scheduler", choices=["none", "step", "cosine", "plateau"], default="cosine",
                   help="learning-rate schedule over the epochs (default cosine)")
    t.add_argument("--step-size", type=int, default=5, help="StepLR: epochs between decays")
    t.add_argument("--gamma", type=float, default=0.1, help="StepLR/plateau decay factor")
    t.add_argument("--patience", type=int, default=2, help="ReduceLROnPlateau patience (epochs)")
    t.add_argument("--val-size", type=int, default=5000, help="training images held out for validation")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--limit-train", type=int, default=None, help="use only the first N training images (quick runs)")
    t.add_argument("--out", default=None, help="output folder (default runs/<model>-<time>)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(handler=run)


def _load_data(args):
    from .. import data
    from ..data import transforms as T

    cls = getattr(data, DATASETS[args.dataset])
    mean, std = ((data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD) if args.dataset == "fashion-mnist"
                 else (data.MNIST_MEAN, data.MNIST_STD))
    transform = T.Compose([T.ToFloat(args.dtype), T.Normalize(mean, std)])
    train = cls(root=args.data_root, train=True, download=args.download, transform=transform)
    test = cls(root=args.data_root, train=False, download=args.download, transform=transform)
    if args.limit_train is not None:
        train = data.Subset(train, np.arange(min(args.limit_train, len(train))))
    val_size = min(args.val_size, len(train) // 5)
    if val_size > 0:
        train, val = data.random_split(train, [len(train) - val_size, val_size], seed=args.seed)
    else:
        val = None
    return train, val, test, len(cls.classes)


def _make_optimizer(args, params):
    from .. import optim

    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=lr, momentum=args.momentum, nesterov=args.nesterov,
                         weight_decay=args.weight_decay)
    cls = optim.Adam if args.optimizer == "adam" else optim.AdamW
    kwargs = {"weight_decay": args.weight_decay} if args.weight_decay or args.optimizer == "adam" else {}
    return cls(params, lr=lr, **kwargs)


def _make_scheduler(args, optimizer):
    from ..optim import lr_scheduler as S

    if args.scheduler == "step":
        return S.StepLR(optimizer, step_size=args.step_size, gamma=args.gamma)
    if args.scheduler == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=args.epochs)
    if args.scheduler == "plateau":
        return S.ReduceLROnPlateau(optimizer, mode="min", factor=args.gamma, patience=args.patience)
    return None


def run(args) -> int:
    import glassnet as gn

    from ..data import DataLoader
    from ..models import get_model
    from ..train import evaluate, fit

    out = Path(args.out or f"runs/{args.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    gn.manual_seed(args.seed)
    train, val, test, num_classes = _load_data(args)
    model = get_model(args.model, num_classes=num_classes, in_channels=1)
    model.to(dtype=np.dtype(args.dtype))
    optimizer = _make_optimizer(args, model.parameters())
    scheduler = _make_scheduler(args, optimizer)
    config = {k: v for k, v in vars(args).items() if k != "handler"}
    config.update(num_classes=num_classes, train_size=len(train), val_size=len(val) if val else 0,
                  parameters=model.num_parameters())
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"glassnet train: {args.model} ({model.num_parameters():,} parameters) on {args.dataset}: "
          f"{len(train)} train / {len(val) if val else 0} val / {len(test)} test images -> {out}")

    progress = not args.no_progress
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    val_loader = DataLoader(val, batch_size=512) if val else None
    history = fit(model, train_loader, optimizer, args.epochs, val_loader=val_loader, scheduler=scheduler,
                  out_dir=out, progress=progress)
    np.savez(out / "model.npz", **{k: np.asarray(v) for k, v in model.state_dict().items()})
    result = evaluate(model, DataLoader(test, batch_size=512), progress=progress)
    result["mean_epoch_time_s"] = float(np.mean(history.column("epoch_time_s")))
    (out / "test.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"test accuracy: {result['accuracy']:.4f}  (test loss {result['loss']:.4f}, "
          f"{result['mean_epoch_time_s']:.1f} s/epoch)")
    return 0
