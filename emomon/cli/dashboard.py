"""``emomon dashboard``: the live predictions in a browser page."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from emomon.cli._options import add_curve_client_arguments
from emomon.cli.argtypes import endpoint, positive_float, tcp_port
from emomon.realtime.names import DEFAULT_ADDRESS

#: One line for ``emomon --help``.
HELP = "serve a live page of `emomon stream`'s predictions (browser dashboard)"
DESCRIPTION = (
    "Subscribe to an emomon publisher (or broker) like `emomon listen` and serve "
    "one page, updated live: each task's probabilities over time, the "
    "valence-arousal plane, the stream's state and each channel's signal "
    "quality on a scalp map. Loopback only unless --insecure. Runs until Ctrl-C. "
    "Needs the dashboard extra: pip install 'emomon[dashboard]'."
)

#: Library parameter -> flag (:class:`~emomon.dashboard.settings.DashboardSettings`).
FLAGS: dict[str, str] = {
    "address": "--address",
    "host": "--host",
    "port": "--port",
    "insecure": "--insecure",
    "allowed_hosts": "--allow-host",
    "history_s": "--history",
    "curve_secret_key": "--curve-secret",
    "curve_server_key": "--curve-server",
}

#: What to do when the extra is missing (one line, exit 2).
INSTALL_HINT = (
    "emomon: error: the dashboard needs aiohttp, which is not installed: "
    "pip install 'emomon[dashboard]'"
)


def aiohttp_missing() -> bool:
    """Whether the dashboard's web server library (aiohttp) cannot be imported."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return True
    return False


def settings_from(args: argparse.Namespace) -> Any:
    """Build the :class:`~emomon.dashboard.settings.DashboardSettings` of the flags."""
    from emomon.dashboard.settings import DashboardSettings

    return DashboardSettings(
        address=args.address,
        host=args.host,
        port=args.port,
        insecure=args.insecure,
        allowed_hosts=tuple(args.allow_host),
        history_s=args.history,
        curve_secret_key=args.curve_secret,
        curve_server_key=args.curve_server,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``emomon dashboard`` until Ctrl-C (or SIGTERM); returns 0 (2: no aiohttp)."""
    settings = settings_from(args)  # a bad --host fails first, extra or not
    if aiohttp_missing():
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    from emomon.dashboard.server import serve
    from emomon.realtime._signals import StopOnSignals

    def announce(dash: Any) -> None:
        print(
            f"emomon dashboard: {dash.url} <- {settings.address}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )

    stop = threading.Event()
    with StopOnSignals(stop):
        health = serve(settings, stop_event=stop, announce=announce)
    print(
        f"emomon dashboard: stopped ({health['tabs_opened']} page(s) served, "
        f"{health['received']} message(s) received)",
        file=sys.stderr,
    )
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``dashboard`` to ``p``."""
    p.add_argument(
        "--address",
        type=endpoint,
        default=DEFAULT_ADDRESS,
        help=f"publisher or broker backend endpoint (default {DEFAULT_ADDRESS})",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the web server binds (default %(default)s: this machine only)",
    )
    p.add_argument(
        "--port",
        type=tcp_port,
        default=8765,
        help="web server port (default %(default)s; 0: any free port)",
    )
    p.add_argument(
        "--history",
        type=positive_float,
        default=300.0,
        metavar="S",
        help="seconds of predictions kept per stream and shown (default %(default)g)",
    )
    g = p.add_argument_group("security (a non-loopback --host needs --insecure)")
    g.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host (plain HTTP: anyone who can reach the "
        "port sees the health data)",
    )
    g.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name the browser may use for this server (checked in the "
        "Host and Origin headers), e.g. labpc.local; repeatable",
    )
    add_curve_client_arguments(g)
