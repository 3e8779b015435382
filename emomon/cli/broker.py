"""``emomon broker``: forward many publishers to many subscribers (XSUB/XPUB)."""

from __future__ import annotations

import argparse
import sys
import threading

from emomon.cli._options import CURVE_SERVER_FLAGS, add_curve_server_arguments
from emomon.cli.argtypes import endpoint
from emomon.errors import EmomonError
from emomon.realtime.names import DEFAULT_BACKEND, DEFAULT_FRONTEND

#: One line for ``emomon --help``.
HELP = "forward many publishers to many subscribers (XSUB/XPUB proxy)"
DESCRIPTION = (
    "Publishers connect to --frontend, subscribers to --backend. "
    "Non-loopback addresses need --curve-secret and --curve-allowed, or "
    "--insecure."
)

#: Library parameter -> flag (:class:`~emomon.realtime.broker.Broker`).
FLAGS: dict[str, str] = {
    **CURVE_SERVER_FLAGS,
    "frontend": "--frontend",
    "backend": "--backend",
}


def run(args: argparse.Namespace) -> int:
    """Run ``emomon broker`` until SIGINT/SIGTERM; returns 0."""
    from emomon.realtime._signals import StopOnSignals
    from emomon.realtime.broker import Broker

    stop = threading.Event()
    broker = Broker(
        frontend=args.frontend,
        backend=args.backend,
        curve_secret_key=args.curve_secret,
        curve_allowed_dir=args.curve_allowed,
        insecure=args.insecure,
    )
    with StopOnSignals(stop):
        try:
            broker.start()
            print(
                f"emomon broker: publishers -> {broker.frontend_endpoint}, "
                f"subscribers -> {broker.backend_endpoint}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            while not stop.wait(0.2):
                if not broker.running:
                    raise EmomonError("the broker's forwarding thread stopped")
        finally:
            broker.stop()
    print("emomon broker: stopped", file=sys.stderr)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``broker`` to ``p``."""
    p.add_argument(
        "--frontend",
        type=endpoint,
        default=DEFAULT_FRONTEND,
        help=f"address publishers connect to (default {DEFAULT_FRONTEND})",
    )
    p.add_argument(
        "--backend",
        type=endpoint,
        default=DEFAULT_BACKEND,
        help=f"address subscribers connect to (default {DEFAULT_BACKEND})",
    )
    add_curve_server_arguments(p)
