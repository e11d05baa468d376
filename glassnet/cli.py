"""The ``glassnet`` command: ``glassnet <subcommand> ...``.

    glassnet train --model mlp --dataset fashion-mnist --epochs 10 --out runs/mlp
    glassnet summary vgg16 --input 3x224x224
    glassnet models

Each subcommand lives in its own module under :mod:`glassnet.commands`.

Errors. Bad input never shows a traceback: :func:`main` turns every
:class:`~glassnet.errors.GlassnetError` and every ``OSError`` (a missing or
unreadable file, a full disk...) raised by a subcommand into exactly one line
on stderr, ``glassnet <subcommand>: error: <message>``, and an exit status:

* 2 for a wrong command-line option: argparse's own errors (also one line,
  ending with a pointer to ``--help`` instead of the full usage) and
  :class:`~glassnet.errors.UsageError`;
* 1 for everything else (a corrupt file, a missing run folder, a diverged run);
* 130 after Ctrl-C (``glassnet <subcommand>: interrupted``);
* 141, silently, when stdout is a pipe closed early (``glassnet models | head -1``).

A message of several lines is folded onto one (its lines joined with ``; ``)
and cut after :data:`MAX_MESSAGE` characters, saying how much was left out.
Set ``GLASSNET_TRACEBACK=1`` (:data:`TRACEBACK_ENV`) to also print the full
traceback and message of such an error, for debugging. Any other exception is
a bug in glassnet and always shows its traceback.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import traceback

__all__ = ["main", "build_parser", "format_error", "TRACEBACK_ENV", "MAX_MESSAGE"]

#: environment variable that makes :func:`main` print tracebacks of glassnet errors too
TRACEBACK_ENV = "GLASSNET_TRACEBACK"
#: the longest error line :func:`main` prints (longer messages are cut, saying so)
MAX_MESSAGE = 2000

_EPILOG = (f"Errors are printed as one line on stderr (exit status 2 for a wrong option, 1 otherwise, "
           f"130 after Ctrl-C); set {TRACEBACK_ENV}=1 to see their tracebacks.")


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``PROG: error: MESSAGE (see PROG --help)``), exit 2."""

    def error(self, message):  # noqa: D401 - argparse's hook
        self.exit(2, f"{self.prog}: error: {fold_message(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``glassnet`` argument parser with one subparser per module in :data:`glassnet.commands.COMMANDS`."""
    from .commands import COMMANDS

    parser = _Parser(prog="glassnet", description="Train, inspect and use glassnet models.", epilog=_EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def fold_message(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line: its non-empty lines stripped and joined with ``"; "`` (just a space
    after a line ending in ``:``), cut after ``limit`` characters with a note of how much was cut."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    out = ""
    for line in lines:
        if out:
            out += " " if out.endswith((":", ";", ",")) else "; "
        out += line
    if len(out) > limit:
        cut = len(out) - limit
        out = out[:limit].rstrip() + f" ... [{cut} more characters; {TRACEBACK_ENV}=1 shows the whole message]"
    return out


def format_error(exc: BaseException) -> str:
    """One line describing ``exc``: a glassnet error's message, or for an ``OSError`` the file(s)
    and the system's reason (``runs/x/test.json: Permission denied``)."""
    from .errors import GlassnetError

    if isinstance(exc, OSError) and not isinstance(exc, GlassnetError) and exc.strerror:
        where = ""
        if exc.filename is not None:
            where = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes)) else str(exc.filename)
            if exc.filename2 is not None:
                where += f" -> {os.fsdecode(exc.filename2)}"
            where += ": "
        text = f"{where}{exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return fold_message(text)


def _show_traceback() -> bool:
    return os.environ.get(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def main(argv=None) -> int:
    """Run ``glassnet`` with ``argv`` (default ``sys.argv[1:]``) and return its exit status: :func:`_main`,
    or under MPI / with ``train --nproc N`` through :func:`glassnet.distributed.launch.route`."""
    from .distributed.launch import route

    return route(_main, sys.argv[1:] if argv is None else argv)


def _main(argv=None) -> int:
    """Run ``glassnet`` with ``argv`` (default ``sys.argv[1:]``) and return its exit status.

    Argparse's usage errors raise ``SystemExit(2)`` as usual (after one line
    on stderr). Errors raised by the subcommand are printed as one line on
    stderr and returned as a status (see the module docstring):
    :class:`~glassnet.errors.UsageError` -> 2, any other
    :class:`~glassnet.errors.GlassnetError` or ``OSError`` -> 1, Ctrl-C -> 130.
    A ``SystemExit`` with a message (``raise SystemExit("glassnet x: ...")``)
    is printed the same way, with status 1.
    """
    from .errors import GlassnetError

    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # reported by the subcommand's parser, so the line starts with "glassnet <subcommand>:"
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extras)}")
    prog = f"glassnet {args.command}"
    try:
        status = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except KeyboardInterrupt:
        _flush_stdout()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if not _flush_stdout():  # stdout went away (`glassnet ... | head`): stop quietly, like other tools
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the final flush cannot fail
            except (OSError, ValueError):  # stdout is not a real file (captured)
                pass
            return 141
        return _report(prog, exc)
    except SystemExit as exc:
        if not isinstance(exc.code, str):
            raise
        if _show_traceback():
            traceback.print_exc()
        message = re.sub(rf"^{re.escape(prog)}\S*:\s*(error:\s*)?", "", exc.code.strip())
        print(f"{prog}: error: {fold_message(message)}", file=sys.stderr)
        return 1
    except (GlassnetError, OSError) as exc:
        return _report(prog, exc)


def _flush_stdout() -> bool:
    """Flush stdout; ``False`` when it is a pipe whose reader has gone (``| head``)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return False
    except (OSError, ValueError):
        return True
    try:  # a failed flush may have dropped its buffer: ask the pipe itself
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return not any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows) or no real file (captured)
        return True


def _report(prog: str, exc: BaseException) -> int:
    """Print ``exc`` as the one error line (after its traceback with ``GLASSNET_TRACEBACK=1``);
    return the exit status: 2 for a :class:`~glassnet.errors.UsageError`, else 1."""
    from .errors import UsageError

    if _show_traceback():
        traceback.print_exception(exc)
    _flush_stdout()
    print(f"{prog}: error: {format_error(exc)}", file=sys.stderr)
    return 2 if isinstance(exc, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())
