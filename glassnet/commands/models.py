"""``glassnet models``: list the zoo."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the zoo's models")
    p.set_defaults(handler=run)


def run(args) -> int:
    """``glassnet models``: print the zoo's model names, one a line."""
    from ..models import list_models

    for name in list_models():
        print(name)
    return 0
