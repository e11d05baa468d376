"""The ``glassnet`` command: ``glassnet <subcommand> ...``.

    glassnet train --model mlp --dataset fashion-mnist --epochs 10 --out runs/mlp
    glassnet summary vgg16 --input 3x224x224
    glassnet models

Each subcommand lives in its own module under :mod:`glassnet.commands`.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from .commands import COMMANDS

    parser = argparse.ArgumentParser(prog="glassnet", description="Train, inspect and use glassnet models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
