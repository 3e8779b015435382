"""The ``emomon`` command line: one module per verb, the library underneath.

A verb module (:mod:`emomon.cli.stream`, :mod:`emomon.cli.keys`, ...) declares
``HELP`` (and ``DESCRIPTION``), ``add_arguments(parser)`` and ``run(args)``,
and :func:`add_verb` registers it under its module name; a module of several
verbs (:mod:`emomon.cli.datasets`, :mod:`emomon.cli.train`) registers them
itself with ``add_parser(subparsers)``. ``run`` builds the library's settings
objects, calls library functions with keyword arguments and prints. The library
never sees an ``argparse.Namespace``.

Library errors (:class:`~emomon.errors.EmomonError`) name the library's own
parameters (``hop_s``); each verb module declares ``FLAGS``, its map parameter
-> flag (``{"hop_s": "--hop"}``), and :func:`main` prints the error rendered
with the map of the verb that ran (``--hop must be > 0, got 0``). The library
never prints: while a verb runs, :func:`main` prints the warnings it logs (to the
``emomon`` loggers) on stderr as ``emomon: warning: ...``, a
:class:`~emomon.errors.Notice` rendered with the same map.

Exit codes: 0 ok, 2 usage or input error (one line naming the culprit),
1 unexpected failure (a bug), 130 interrupted.

Building the parser imports none of scipy, torch, onnxruntime, pylsl, zmq,
brainflow or mne: verb modules import the library inside ``run``, so
``emomon --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from emomon import __version__
from emomon.errors import EmomonError, Notice

__all__ = ["VERBS", "add_verb", "build_parser", "main"]

#: Verb modules, in the order of ``emomon --help`` (``train`` also registers
#: ``evaluate`` and ``export``).
VERBS: tuple[str, ...] = (
    "datasets",
    "train",
    "info",
    "replay",
    "stream",
    "recover",
    "score",
    "listen",
    "keys",
    "broker",
    "dashboard",
    "demo",
)


def add_verb(sub: Any, module: ModuleType) -> argparse.ArgumentParser:
    """Register the verb of ``module`` on ``sub`` (argparse subparsers).

    Parameters
    ----------
    sub : argparse._SubParsersAction
        From ``parser.add_subparsers()``.
    module : module
        A verb module: ``HELP``, optionally ``DESCRIPTION``, ``FLAGS``,
        ``add_arguments`` and ``run``; the verb is its module's last name.

    Returns
    -------
    argparse.ArgumentParser
        The verb's parser; parsed arguments carry ``func`` (``module.run``)
        and ``flags`` (``module.FLAGS``).
    """
    name = module.__name__.rpartition(".")[2]
    p = sub.add_parser(
        name, help=module.HELP, description=getattr(module, "DESCRIPTION", None)
    )
    module.add_arguments(p)
    p.set_defaults(func=module.run, flags=module.FLAGS)
    return p


def build_parser() -> argparse.ArgumentParser:
    """Build the ``emomon`` parser with every verb.

    Returns
    -------
    argparse.ArgumentParser
        Parsed arguments carry ``func`` (the verb's ``run``) and ``flags`` (its
        parameter -> flag map).
    """
    p = argparse.ArgumentParser(
        prog="emomon",
        description="Streaming real-time EEG emotion monitor with leak-free "
        "offline evaluation.",
    )
    p.add_argument("--version", action="version", version=f"emomon {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in VERBS:
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "add_parser"):  # several verbs
            module.add_parser(sub)
        else:
            add_verb(sub, module)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code; argparse's usage errors exit 2 through ``SystemExit``.
    """
    args = build_parser().parse_args(argv)
    library_log = logging.getLogger("emomon")
    warnings_printer = _WarningPrinter(args.flags)
    library_log.addHandler(warnings_printer)
    try:
        return args.func(args)
    except EmomonError as exc:
        print(f"emomon: error: {exc.render(args.flags)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emomon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # noqa: BLE001 - last resort: report the bug, exit 1
        traceback.print_exc()
        print("emomon: unexpected error (a bug): please report it", file=sys.stderr)
        return 1
    finally:
        library_log.removeHandler(warnings_printer)


class _WarningPrinter(logging.Handler):
    """Print the library's log records of level WARNING and up on stderr.

    As ``emomon: warning: MESSAGE``, the parameters a :class:`~emomon.errors.Notice`
    names rendered with ``flags`` (the verb's parameter -> flag map).
    """

    def __init__(self, flags: dict[str, str]) -> None:
        super().__init__(logging.WARNING)
        self._flags = flags

    def emit(self, record: logging.LogRecord) -> None:
        """Print ``record`` on the current ``sys.stderr``."""
        try:
            if isinstance(record.msg, Notice) and not record.args:
                text = record.msg.render(self._flags)
            else:
                text = record.getMessage()
            print(f"emomon: {record.levelname.lower()}: {text}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)
