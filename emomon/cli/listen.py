"""``emomon listen``: print live predictions and status from ``emomon stream``."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import TextIO

from emomon.cli._options import add_curve_client_arguments
from emomon.cli.argtypes import endpoint, positive_float, positive_int
from emomon.realtime.names import (
    DEFAULT_ADDRESS,
    META_TOPIC,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    TOPICS,
)

#: One line for ``emomon --help``.
HELP = "print live predictions and status from `emomon stream`"
DESCRIPTION = (
    "Subscribe to an emomon publisher and print one line per "
    "prediction, a line when the source state changes and a line with each "
    "stream's description (channels, rates, tasks) (or, with --json, "
    "every message of the topics as a JSON line). Runs until Ctrl-C, --count or "
    "--duration."
)

#: Library parameter -> flag (:class:`~emomon.realtime.subscribe.Subscriber`).
FLAGS: dict[str, str] = {
    "address": "--address",
    "topics": "--topic",
    "curve_secret_key": "--curve-secret",
    "curve_server_key": "--curve-server",
    "latest": "--latest",
}

_TOPIC_ALIASES = {
    "prediction": PREDICTION_TOPIC,
    "status": STATUS_TOPIC,
    "meta": META_TOPIC,
}
#: Topics printed without --topic (and counted by --count).
_DEFAULT_TOPICS = (PREDICTION_TOPIC, STATUS_TOPIC)


def topic(text: str) -> str:
    """Parse a topic: ``prediction``, ``status`` or a full topic name."""
    name = _TOPIC_ALIASES.get(text, text)
    if name not in TOPICS:
        raise argparse.ArgumentTypeError(
            f"unknown topic {text!r}; use prediction, status, meta, or one of "
            f"{', '.join(TOPICS)}"
        )
    return name


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run ``emomon listen`` until Ctrl-C (or SIGTERM), ``--count`` or ``--duration``.

    Returns 0. Lines go to ``out`` (default stdout).
    """
    from emomon.realtime._signals import StopOnSignals
    from emomon.realtime.messages import encode
    from emomon.realtime.subscribe import (
        Subscriber,
        format_meta,
        format_prediction,
        format_status,
    )

    out = sys.stdout if out is None else out
    topics = tuple(dict.fromkeys(args.topics or _DEFAULT_TOPICS))
    # The human view also prints each stream's description (not counted).
    shown = topics if args.json or META_TOPIC in topics else (*topics, META_TOPIC)
    count: int | None = args.count
    deadline = None if args.duration is None else time.monotonic() + args.duration
    n = 0
    streams: set[str] = set()
    states: dict[str, str] = {}
    stop = threading.Event()
    with (
        StopOnSignals(stop),
        Subscriber(
            args.address,
            topics=shown,
            curve_secret_key=args.curve_secret,
            curve_server_key=args.curve_server,
            latest=args.latest,
        ) as sub,
    ):
        # After the socket exists: a bad address or key is the only output.
        print(
            f"emomon listen: {args.address} ({', '.join(topics)}); Ctrl-C to stop",
            file=sys.stderr,
        )
        while not stop.is_set() and (count is None or n < count):
            wait = 0.2
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(wait, left)
            msg = sub.recv(wait)
            if msg is None:
                continue
            if msg.topic not in topics:  # a description for the human view
                print(format_meta(msg.payload), file=out, flush=True)
                continue
            n += 1
            line = None
            if args.json:
                line = encode(msg.topic, msg.payload)[1].decode("utf-8")
            elif msg.topic == PREDICTION_TOPIC:
                streams.add(msg.stream)
                line = format_prediction(msg.payload, with_stream=len(streams) > 1)
            elif msg.topic == META_TOPIC:
                line = format_meta(msg.payload)
            elif states.get(msg.stream) != msg.payload["state"]:
                states[msg.stream] = msg.payload["state"]
                line = format_status(msg.payload)
            if line is not None:
                print(line, file=out, flush=True)
        missed = sum(sub.missed.values())
        summary = f"emomon listen: {n} message(s), {missed} missed"
        if args.latest:
            summary += f", {sum(sub.skipped.values())} passed over for newer ones"
        if sub.invalid:
            summary += f", {sub.invalid} malformed (last: {sub.last_error})"
        print(summary, file=sys.stderr)
        if n == 0:
            print(
                f"emomon listen: nothing received from {args.address}; is "
                "`emomon stream` running and publishing there?",
                file=sys.stderr,
            )
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``listen`` to ``p``."""
    p.add_argument(
        "--address",
        type=endpoint,
        default=DEFAULT_ADDRESS,
        help=f"publisher endpoint (default {DEFAULT_ADDRESS})",
    )
    p.add_argument(
        "--topic",
        dest="topics",
        action="append",
        type=topic,
        metavar="TOPIC",
        help="prediction, status or meta (or the full topic name); repeatable; "
        "default prediction and status (the human view also prints each stream's "
        "description, meta, without counting it)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print each message's JSON payload on one line (for scripts)",
    )
    p.add_argument(
        "--count",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop after N messages",
    )
    p.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        metavar="S",
        help="stop after S seconds",
    )
    p.add_argument(
        "--latest",
        action="store_true",
        help="for a slow reader: before each line, read everything waiting and "
        "keep only the newest message of each topic and stream (the others are "
        "passed over and counted), so what is printed is never stale",
    )
    g = p.add_argument_group("security (a Curve publisher or broker)")
    add_curve_client_arguments(g)
