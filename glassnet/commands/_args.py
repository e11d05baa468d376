"""Argument parsing shared by the subcommands."""
from __future__ import annotations


def parse_input_size(text: str, command: str, example: str = "1x28x28") -> tuple:
    """``"3x224x224"`` -> ``(3, 224, 224)``; anything else exits with a message naming ``command``."""
    try:
        dims = tuple(int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise SystemExit(f"glassnet {command}: --input must look like {example} (C x H x W), got {text!r}")
    return dims
