"""``emomon recover``: finish a recording a killed ``stream --record`` left."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: One line for ``emomon --help``.
HELP = "finish a recording left unfinished by a crashed `stream --record`"
DESCRIPTION = (
    "Write session.fif, session.timestamps.npy and "
    "session.predictions.jsonl from the spool directory session.fif.partial "
    "that `emomon stream --record session.fif` leaves when it is killed. "
    "Existing output files of that name are replaced."
)

#: Library parameter -> flag (:meth:`SessionRecorder.recover`).
FLAGS: dict[str, str] = {"path": "PATH"}


def run(args: argparse.Namespace) -> int:
    """Write the recording's files from its spool; returns 0."""
    from emomon.realtime.record import SessionRecorder

    files = SessionRecorder.recover(args.path)
    print(files.describe(), file=sys.stderr, flush=True)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``recover`` to ``p``."""
    p.add_argument(
        "path", type=Path, help="the recording (session.fif) or its .partial spool"
    )
