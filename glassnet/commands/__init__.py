"""The ``glassnet`` command's subcommands, one module each.

Each module has ``add_parser(subparsers)`` (which sets ``handler=run``) and
``run(args) -> int``. :data:`COMMANDS` lists them in help order.

A ``run`` raises :mod:`glassnet.errors` exceptions for bad input (a
:class:`~glassnet.errors.UsageError` for a wrong option) and lets them reach
:func:`glassnet.cli.main`, which prints each as one line on stderr and picks
the exit status; commands do not catch them themselves.
"""
from . import models, summary, train

COMMANDS = [train, models, summary]
from . import evaluate, plot, predict  # noqa: E402
COMMANDS += [evaluate, plot, predict]
from . import export; COMMANDS.append(export)  # noqa: E402,E702
from . import prepare; COMMANDS.append(prepare)  # noqa: E402,E702
