"""``emomon demo`` (``make demo``): the whole chain on synthetic data, end to end."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from emomon.cli._options import add_synthetic_size_arguments
from emomon.cli.argtypes import positive_float, positive_int, tcp_port

#: One line for ``emomon --help``.
HELP = "the whole chain on synthetic data: train, replay, stream, score"
DESCRIPTION = (
    "Write the synthetic dataset as DEAP files, train a logreg "
    "leak-free on all subjects but one and export model.onnx, replay the "
    "held-out subject over LSL, stream it through the model to ZeroMQ and "
    "score the predictions live against the replay's markers."
)

#: Library parameter -> flag (:func:`~emomon.demo.run_demo`).
FLAGS: dict[str, str] = {
    "out_dir": "--out",
    "n_subjects": "--subjects",
    "n_videos": "--videos",
    "trial_s": "--trial-s",
    "replay_trials": "--replay-trials",
    "speed": "--speed",
    "port": "--dashboard-port",
}


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 (with ``--dashboard``: after Ctrl-C)."""
    from emomon.demo import free_loopback_endpoint, run_demo
    from emomon.realtime.lslconfig import quiet_liblsl

    quiet_liblsl()  # liblsl's own log off the console (before liblsl reads its config)
    address = "tcp://127.0.0.1:*"
    dash = None
    if args.dashboard:
        from emomon.cli.dashboard import INSTALL_HINT, aiohttp_missing

        if aiohttp_missing():
            print(INSTALL_HINT, file=sys.stderr)
            return 2
        address = free_loopback_endpoint()
        dash = _start_dashboard(address, args.dashboard_port)
    try:
        run_demo(
            args.out,
            write=_say,
            n_subjects=args.subjects,
            n_videos=args.videos,
            trial_s=args.trial_s,
            replay_trials=args.replay_trials,
            speed=args.speed,
            address=address,
        )
        if dash is not None:
            _keep_serving(dash)
    finally:
        if dash is not None:
            dash.close()
    return 0


def _start_dashboard(address: str, port: int) -> Any:
    """Start the dashboard of ``--dashboard``, before the demo's first step."""
    from emomon.dashboard import Dashboard, DashboardSettings

    dash = Dashboard(DashboardSettings(address=address, port=port)).start()
    _say(
        f"dashboard: {dash.url} (open it now: it shows the live step when it "
        "starts, and keeps serving after the demo until Ctrl-C)"
    )
    return dash


def _keep_serving(dash: Any) -> None:
    """Serve the page until Ctrl-C (or SIGTERM): the trace stays to look at."""
    from emomon.errors import EmomonError
    from emomon.realtime._signals import StopOnSignals

    _say(f"\ndashboard still serving at {dash.url}; Ctrl-C to stop")
    stop = threading.Event()
    with StopOnSignals(stop):
        while not stop.wait(0.2):
            if not dash.running:
                raise EmomonError("the dashboard's server stopped unexpectedly")
    _say("dashboard stopped")


def _say(text: str) -> None:
    """Print one piece of the demo's narrative at once (progress bars interleave)."""
    print(text, flush=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``demo`` to ``p``."""
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="output (demo_out)"
    )
    add_synthetic_size_arguments(p, trial_s=30.0)
    p.add_argument(
        "--replay-trials",
        type=positive_int,
        default=8,
        help="trials of the held-out subject replayed live (default 8)",
    )
    p.add_argument(
        "--speed", type=positive_float, default=10.0, help="replay speed (10x)"
    )
    p.add_argument(
        "--dashboard",
        action="store_true",
        help="also serve the browser dashboard of the live step (`make demo "
        "DASHBOARD=1`); it keeps serving after the demo until Ctrl-C",
    )
    p.add_argument(
        "--dashboard-port",
        type=tcp_port,
        default=8765,
        help="the dashboard's port (default %(default)s)",
    )
