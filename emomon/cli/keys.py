"""``emomon keys``: a CurveZMQ key pair for a publisher, broker or subscriber."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: One line for ``emomon --help``.
HELP = "generate a CurveZMQ key pair for remote subscribers"
DESCRIPTION = (
    "Write NAME.key (public) and NAME.key_secret (private) to DIR. "
    "Use --name server for a publisher or broker, client-NAME for a subscriber."
)

#: Library parameter -> flag (:func:`~emomon.realtime.security.generate_keypair`).
FLAGS: dict[str, str] = {"directory": "--out", "name": "--name"}


def run(args: argparse.Namespace) -> int:
    """Write NAME.key and NAME.key_secret to ``--out``; returns 0."""
    from emomon.realtime.security import generate_keypair

    public, secret = generate_keypair(directory=args.out, name=args.name)
    print(f"public key (share): {public}")
    print(f"secret key (keep private): {secret}")
    print(
        "servers need their .key_secret and a directory of allowed clients' .key "
        "files; clients need their .key_secret and the server's .key",
        file=sys.stderr,
    )
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``keys`` to ``p``."""
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--name", default="server", help="server or client-NAME (server)")
