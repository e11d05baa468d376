"""The ``glassnet`` command's subcommands, one module each.

Each module has ``add_parser(subparsers)`` (which sets ``handler=run``) and
``run(args) -> int``. :data:`COMMANDS` lists them in help order.
"""
from . import models, summary, train

COMMANDS = [train, models, summary]
from . import evaluate, plot, predict  # noqa: E402
COMMANDS += [evaluate, plot, predict]
from . import export; COMMANDS.append(export)  # noqa: E402,E702
