"""Write Fashion-MNIST (or MNIST) out as a folder of PNGs, and check that glassnet decodes it back exactly.

    .venv/bin/python scripts/fashion_mnist_to_png.py /tmp/fmnist-png            # write, then check
    .venv/bin/python scripts/fashion_mnist_to_png.py /tmp/fmnist-png --check    # check only
    glassnet train --data /tmp/fmnist-png --model small_cnn --epochs 10 --seed 0

Layout: ``OUT/train/<k>-<name>/<index>.png`` and ``OUT/test/<k>-<name>/<index>.png`` (8-bit
grayscale; ``<index>`` is the image's position in the IDX file, zero-padded, and the class
folders are prefixed with their label so that sorting them keeps the label order; "/" in a
class name becomes "-"). ``glassnet train --data OUT`` then trains on train/ (its
``--val-size`` images split off for validation, as for the IDX files) and tests on test/.

The check decodes every PNG through :class:`glassnet.data.ImageFolder` (mode "L") and
compares it, pixel for pixel and label for label, with the IDX arrays. Exit status 1 on any
difference.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def class_folders(classes) -> list[str]:
    return [f"{k}-{name.replace('/', '-').replace(' ', '_')}" for k, name in enumerate(classes)]


def write(out: Path, cls, root=None) -> None:
    from PIL import Image

    for split, train in (("train", True), ("test", False)):
        ds = cls(root=root, train=train)
        folders = class_folders(cls.classes)
        for name in folders:
            (out / split / name).mkdir(parents=True, exist_ok=True)
        width = len(str(len(ds) - 1))
        t0 = time.perf_counter()
        for i, (img, label) in enumerate(zip(ds.data, ds.targets)):
            Image.fromarray(np.asarray(img, np.uint8), mode="L").save(
                out / split / folders[int(label)] / f"{i:0{width}d}.png")
        print(f"{split}: {len(ds)} PNGs in {time.perf_counter() - t0:.1f} s -> {out / split}")


def check(out: Path, cls, root=None) -> int:
    from glassnet.data import ImageFolder

    bad = 0
    for split, train in (("train", True), ("test", False)):
        ds = cls(root=root, train=train)
        folder = ImageFolder(out / split, mode="L")
        if len(folder) != len(ds):
            print(f"{split}: {len(folder)} PNGs, the IDX file has {len(ds)} images")
            return 1
        seen = np.zeros(len(ds), bool)
        t0 = time.perf_counter()
        for k, (path, label) in enumerate(folder.samples):
            i = int(Path(path).stem)
            x, _ = folder.get_item(k, None)
            same = x.shape == (1, 28, 28) and np.array_equal(x[0], ds.data[i]) and label == int(ds.targets[i])
            bad += not same
            seen[i] = True
        print(f"{split}: {len(folder)} PNGs decoded in {time.perf_counter() - t0:.1f} s: "
              f"{'all pixels and labels identical to the IDX file' if bad == 0 and seen.all() else f'{bad} differ'}")
        if not seen.all():
            bad += int((~seen).sum())
    return 1 if bad else 0


def main(argv=None) -> int:
    from glassnet import data

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--dataset", choices=["fashion-mnist", "mnist"], default="fashion-mnist")
    p.add_argument("--data-root", help="folder with the IDX files (default: glassnet's search)")
    p.add_argument("--check", action="store_true", help="only check an existing folder")
    args = p.parse_args(argv)
    cls = data.FashionMNIST if args.dataset == "fashion-mnist" else data.MNIST
    if not args.check:
        write(args.out, cls, args.data_root)
    return check(args.out, cls, args.data_root)


if __name__ == "__main__":
    sys.exit(main())
