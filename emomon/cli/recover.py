"""``emomon recover``: finish a recording a killed ``stream --record`` left."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

#: Library parameter -> flag (:meth:`SessionRecorder.recover`).
FLAGS: dict[str, str] = {"path": "PATH"}


def run(args: argparse.Namespace) -> int:
    """Write the recording's files from its spool; returns 0."""
    from emomon.realtime.record import SessionRecorder

    files = SessionRecorder.recover(args.path)
    print(files.describe(), file=sys.stderr, flush=True)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``recover`` on ``sub`` (argparse subparsers); returns its parser."""
    p = sub.add_parser(
        "recover",
        help="finish a recording left unfinished by a crashed `stream --record`",
        description="Write session.fif, session.timestamps.npy and "
        "session.predictions.jsonl from the spool directory session.fif.partial "
        "that `emomon stream --record session.fif` leaves when it is killed. "
        "Existing output files of that name are replaced.",
    )
    p.add_argument(
        "path", type=Path, help="the recording (session.fif) or its .partial spool"
    )
    p.set_defaults(func=run, flags=FLAGS)
    return p
