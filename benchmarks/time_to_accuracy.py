"""Benchmark: wall time for the small CNN to reach 91% Fashion-MNIST test accuracy, glassnet vs PyTorch CPU.

The recipe (the same for both frameworks)
-----------------------------------------
* model: zoo ``small_cnn`` (conv 3x3 32 - ReLU - pool - conv 3x3 64 - ReLU -
  pool - FC 128 - ReLU - dropout 0.25 - FC 10), float32; PyTorch gets the
  same architecture with the same module names and **glassnet's initial
  weights** (``state_dict`` loaded strictly);
* data: ``glassnet.data.FashionMNIST`` (60,000 training / 10,000 test images,
  found under ``/usr/share/datasets/fashion-mnist`` or glassnet's usual search
  path, or ``--data-root``), ``ToFloat`` + ``Normalize(FASHION_MNIST_MEAN,
  FASHION_MNIST_STD)`` as ``glassnet train`` does; no validation hold-out,
  no augmentation;
* one ``glassnet.data.DataLoader(batch_size=128, shuffle=True, seed=SEED)``
  shared by both frameworks, so both see **the same batches in the same
  order** every epoch (``loader.set_epoch(e)``); PyTorch gets them through
  ``torch.from_numpy`` (no copy);
* SGD lr 0.05, momentum 0.9, cross-entropy, cosine annealing over
  ``--max-epochs`` epochs (stepped once per epoch; stopping early leaves the
  schedule unfinished, identically for both);
* after every epoch: test accuracy over the full test set (eval mode, no
  grad, batches of 1000); stop as soon as it is >= ``--target`` (0.91).

Dropout masks are drawn by each framework's own generator, so the two runs
are not bit-identical and may need a different number of epochs.

Reported per framework: epochs needed (or "not reached"), training time
(the epochs' training loops only, data loading included -- it is the same
loader for both), total wall time (model build + training + evaluations),
test accuracy per epoch, and the ratios glassnet/torch. Frameworks run one
after the other (glassnet first), not interleaved: on a shared machine the
load can change between them; the header prints the load average and the
end of the run prints it again.

How to run (from the repository root)::

    # the full benchmark: minutes per epoch on 2 cores, up to 10 epochs per framework
    .venv/bin/python benchmarks/time_to_accuracy.py --framework both --max-epochs 10 --json out/tta.json
    # smoke test (seconds): a subset, one epoch
    .venv/bin/python benchmarks/time_to_accuracy.py --limit-train 2000 --limit-test 1000 --max-epochs 1
"""
from __future__ import annotations

import _blas_env  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads)

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))

from _timing import (add_runtime_options, apply_runtime_options, dump_json, environment,  # noqa: E402
                     print_header, print_table, ratio)

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"


def fashion_mnist(root, train: bool):
    """Fashion-MNIST's training or test set under ``root`` with ``glassnet train``'s transforms
    (``ToFloat`` + ``Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)``)."""
    from glassnet import data
    from glassnet.data import transforms as T

    transform = T.Compose([T.ToFloat("float32"), T.Normalize(data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD)])
    return data.FashionMNIST(root=root, train=train, transform=transform)


def load_data(root, limit_train, limit_test):
    from glassnet import data

    train, test = fashion_mnist(root, True), fashion_mnist(root, False)
    if limit_train is not None:
        train = data.Subset(train, np.arange(min(limit_train, len(train))))
    if limit_test is not None:
        test = data.Subset(test, np.arange(min(limit_test, len(test))))
    return train, test


class Runner:
    """One framework's model, optimizer, scheduler, train epoch and evaluation."""

    def __init__(self, framework, init_state, lr, momentum, epochs):
        self.framework = framework
        if framework == "glassnet":
            import glassnet as gn
            import glassnet.nn as gnn
            from glassnet.models import get_model
            from glassnet.optim import SGD
            from glassnet.optim.lr_scheduler import CosineAnnealingLR

            self.gn = gn
            self.model = get_model("small_cnn", num_classes=10, in_channels=1)
            self.model.load_state_dict({k: np.array(v, copy=True) for k, v in init_state.items()})
            self.loss_fn = gnn.CrossEntropyLoss()
            self.opt = SGD(self.model.parameters(), lr=lr, momentum=momentum)
            self.sched = CosineAnnealingLR(self.opt, T_max=epochs)
        else:
            import torch

            import bench_models as bm

            self.torch = torch
            self.model = bm.build_torch("small_cnn", init_state)
            self.loss_fn = torch.nn.CrossEntropyLoss()
            self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum)
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=epochs)

    def lr(self):
        return self.opt.param_groups[0]["lr"]

    def train_epoch(self, loader):
        """One epoch; returns (mean loss, seconds)."""
        self.model.train()
        total, n = 0.0, 0
        t0 = time.perf_counter()
        if self.framework == "glassnet":
            gn = self.gn
            for x, y in loader:
                loss = self.loss_fn(self.model(gn.from_numpy(x)), gn.from_numpy(y))
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                total += float(loss.data) * len(y)
                n += len(y)
        else:
            torch = self.torch
            for x, y in loader:
                loss = self.loss_fn(self.model(torch.from_numpy(x)), torch.from_numpy(y))
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                total += loss.item() * len(y)
                n += len(y)
        dt = time.perf_counter() - t0
        self.sched.step()
        return total / max(n, 1), dt

    def accuracy(self, loader):
        self.model.eval()
        correct, n = 0, 0
        if self.framework == "glassnet":
            with self.gn.no_grad():
                for x, y in loader:
                    pred = np.asarray(self.model(self.gn.from_numpy(x)).data).argmax(axis=1)
                    correct += int((pred == y).sum())
                    n += len(y)
        else:
            torch = self.torch
            with torch.no_grad():
                for x, y in loader:
                    pred = self.model(torch.from_numpy(x)).numpy().argmax(axis=1)
                    correct += int((pred == y).sum())
                    n += len(y)
        return correct / max(n, 1)


def run_framework(framework, init_state, train, test, args):
    from glassnet.data import DataLoader

    t_start = time.perf_counter()
    runner = Runner(framework, init_state, args.lr, args.momentum, args.max_epochs)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = DataLoader(test, batch_size=1000)
    history = []
    train_s = 0.0
    reached = None
    for epoch in range(args.max_epochs):
        loader.set_epoch(epoch)
        lr = runner.lr()
        loss, dt = runner.train_epoch(loader)
        train_s += dt
        t_eval = time.perf_counter()
        acc = runner.accuracy(test_loader)
        eval_s = time.perf_counter() - t_eval
        history.append({"epoch": epoch + 1, "lr": lr, "train_loss": loss, "test_accuracy": acc,
                        "train_s": dt, "eval_s": eval_s})
        print(f"  {framework:8s} epoch {epoch + 1:2d}  lr {lr:.4f}  loss {loss:.4f}  test acc {acc:.4f}"
              f"  train {dt:.1f} s  eval {eval_s:.1f} s  load {os.getloadavg()[0]:.2f}", flush=True)
        if acc >= args.target:
            reached = epoch + 1
            break
    total_s = time.perf_counter() - t_start
    return {"framework": framework, "reached_epoch": reached, "final_accuracy": history[-1]["test_accuracy"],
            "best_accuracy": max(h["test_accuracy"] for h in history), "epochs_run": len(history),
            "train_s": train_s, "total_s": total_s, "history": history}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--framework", choices=["glassnet", "torch", "both"], default="both")
    ap.add_argument("--max-epochs", type=int, default=10, help="epochs at most; also the cosine period (default 10)")
    ap.add_argument("--target", type=float, default=0.91, help="test accuracy to reach (default 0.91)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0, help="initial weights and data order (default 0)")
    ap.add_argument("--data-root", default=None,
                    help=f"folder with the Fashion-MNIST IDX files (default {DEFAULT_ROOT} if it exists, "
                         "else glassnet's search path)")
    ap.add_argument("--limit-train", type=int, default=None, help="first N training images only (smoke runs)")
    ap.add_argument("--limit-test", type=int, default=None, help="first N test images only (smoke runs)")
    ap.add_argument("--json", metavar="PATH", default=None, help="also write all results to PATH as JSON")
    add_runtime_options(ap)
    args = ap.parse_args(argv)
    apply_runtime_options(args)
    root = args.data_root or (DEFAULT_ROOT if os.path.isdir(DEFAULT_ROOT) else None)

    import glassnet as gn
    from glassnet.models import get_model

    frameworks = ["glassnet", "torch"] if args.framework == "both" else [args.framework]
    settings = {"model": "small_cnn", "frameworks": ",".join(frameworks), "target": args.target,
                "max_epochs": args.max_epochs, "batch": args.batch_size,
                "optimizer": f"SGD lr={args.lr} momentum={args.momentum}",
                "schedule": f"cosine T_max={args.max_epochs} (per epoch)", "seed": args.seed,
                "limit_train": args.limit_train, "limit_test": args.limit_test, "data_root": root}
    env = environment()
    print_header("time_to_accuracy: small CNN to target Fashion-MNIST test accuracy", env, settings)

    t0 = time.perf_counter()
    train, test = load_data(root, args.limit_train, args.limit_test)
    print(f"data      {len(train)} training / {len(test)} test images loaded in "
          f"{time.perf_counter() - t0:.1f} s (not counted)", flush=True)
    gn.manual_seed(args.seed)
    init_state = {k: np.array(v, copy=True) for k, v in get_model("small_cnn", num_classes=10,
                                                                   in_channels=1).state_dict().items()}
    results = {}
    for fw in frameworks:
        print(f"\n{fw}:", flush=True)
        results[fw] = run_framework(fw, init_state, train, test, args)

    rows = []
    for fw, r in results.items():
        rows.append([fw, r["reached_epoch"] or f"not in {r['epochs_run']}", f"{r['final_accuracy']:.4f}",
                     f"{r['best_accuracy']:.4f}", f"{r['train_s']:.1f}", f"{r['total_s']:.1f}",
                     f"{r['train_s'] / r['epochs_run']:.1f}"])
    print_table(["framework", "epochs to target", "final acc", "best acc", "train s", "total s", "train s/epoch"],
                rows, title=f"Time to {args.target:.0%} test accuracy (load avg now "
                            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    if len(results) == 2:
        g, t = results["glassnet"], results["torch"]
        print(f"glassnet/torch: train time {ratio(g['train_s'], t['train_s']):.2f}x, total "
              f"{ratio(g['total_s'], t['total_s']):.2f}x, per training epoch "
              f"{ratio(g['train_s'] / g['epochs_run'], t['train_s'] / t['epochs_run']):.2f}x")
    if args.json:
        dump_json(args.json, env, settings, results)


if __name__ == "__main__":
    main()
