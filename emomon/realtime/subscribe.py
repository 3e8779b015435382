"""Receive emomon predictions: a small client class for apps and the ``listen`` verb.

An app needs ten lines (see :class:`Subscriber`); ``emomon listen`` prints the
stream live, or as JSON lines for scripts. Any ZeroMQ SUB socket works too: the
wire format is two frames, ``[topic, UTF-8 JSON]``
(:mod:`emomon.realtime.messages`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import zmq

from emomon.argtypes import endpoint as _endpoint
from emomon.argtypes import positive_float as _positive_float
from emomon.argtypes import positive_int as _positive_int
from emomon.errors import EmomonError
from emomon.realtime._closing import Closing
from emomon.realtime.messages import (
    DEFAULT_ADDRESS,
    PREDICTION_FIELDS,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    TOPICS,
    Message,
    MessageError,
    encode,
    parse,
)
from emomon.realtime.security import apply_client_keys

__all__ = [
    "DEFAULT_ADDRESS",
    "Subscriber",
    "add_listen_parser",
    "cmd_listen",
    "format_prediction",
    "format_status",
    "main",
]

_TOPIC_ALIASES = {"prediction": PREDICTION_TOPIC, "status": STATUS_TOPIC}


class Subscriber(Closing):
    """Receive and check emomon messages, counting what was missed.

    Messages are parsed strictly; malformed ones are skipped and counted in
    :attr:`invalid`. Each topic of each stream is numbered by ``seq``, so a jump
    adds the number of lost messages to :attr:`missed`; a status message that
    the publisher re-sent for a newcomer arrives again with the same ``seq`` and
    is dropped (counted in :attr:`duplicates`); a smaller ``seq`` means the
    publisher restarted (:attr:`restarts`).

    Parameters
    ----------
    address : str
        Publisher endpoint; default ``tcp://127.0.0.1:5556``.
    topics : sequence of str
        Topics to receive, among :data:`~emomon.realtime.messages.PREDICTION_TOPIC`
        and :data:`~emomon.realtime.messages.STATUS_TOPIC` (default both).
    rcvhwm : int
        Messages queued locally before ZeroMQ drops more (default 1000).
    context : zmq.Context, optional
        Default: the process-wide instance.
    curve_secret_key : str or Path, optional
        This client's secret key file (``client-NAME.key_secret``) for a
        CurveZMQ publisher; needs ``curve_server_key``.
    curve_server_key : str or Path, optional
        The publisher's (or broker's) public key file (``server.key``).

    Raises
    ------
    EmomonError
        If a topic is unknown, the address is malformed, only one Curve key file
        is given, or a key file is missing or corrupt.

    Examples
    --------
    A complete app::

        from emomon.realtime.subscribe import Subscriber

        with Subscriber("tcp://127.0.0.1:5556") as sub:
            for msg in sub.messages(duration_s=60):
                if msg.kind == "prediction":
                    v = msg.payload["valence"]
                    print(msg.seq, v["p_high"], v["label"], msg.payload["quality"])
                else:
                    print("source is", msg.payload["state"])
            print("missed", sub.missed)

    Notes
    -----
    ZeroMQ reconnects by itself: the subscriber may be started before the
    publisher and survives publisher restarts. Not thread-safe.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        topics: Sequence[str] = (PREDICTION_TOPIC, STATUS_TOPIC),
        rcvhwm: int = 1000,
        context: zmq.Context | None = None,
        curve_secret_key: str | Path | None = None,
        curve_server_key: str | Path | None = None,
    ) -> None:
        if (curve_secret_key is None) != (curve_server_key is None):
            raise EmomonError(
                "Curve needs both --curve-secret (this client's .key_secret) and "
                "--curve-server (the publisher's public .key)"
            )
        if isinstance(topics, str):
            topics = (topics,)
        unknown = [t for t in topics if t not in TOPICS]
        if unknown or not topics:
            raise EmomonError(
                f"unknown topic(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"choose among {', '.join(TOPICS)}"
            )
        self.address = address
        self.topics: tuple[str, ...] = tuple(dict.fromkeys(topics))
        ctx = context if context is not None else zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        try:
            if curve_secret_key is not None and curve_server_key is not None:
                apply_client_keys(sock, curve_secret_key, curve_server_key)
        except BaseException:
            sock.close(linger=0)
            raise
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, rcvhwm)
            if address.startswith("tcp://["):
                sock.setsockopt(zmq.IPV6, 1)
            for topic in self.topics:
                sock.setsockopt(zmq.SUBSCRIBE, topic.encode("ascii"))
            sock.connect(address)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise EmomonError(
                f"cannot connect to {address!r}: {exc.strerror}; expected an "
                f"endpoint such as {DEFAULT_ADDRESS}"
            ) from None
        self._sock: zmq.Socket | None = sock
        self._last_seq: dict[tuple[str, str], int] = {}
        #: Messages delivered, per topic.
        self.received: dict[str, int] = dict.fromkeys(self.topics, 0)
        #: Messages lost (``seq`` gaps), per topic.
        self.missed: dict[str, int] = dict.fromkeys(self.topics, 0)
        #: Repeated messages dropped (status re-sent to a newcomer), per topic.
        self.duplicates: dict[str, int] = dict.fromkeys(self.topics, 0)
        #: Malformed messages skipped.
        self.invalid = 0
        #: Times a stream's ``seq`` went back (publisher restarted).
        self.restarts = 0
        #: Reason the last malformed message was rejected.
        self.last_error: str | None = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._sock is None

    def _track(self, msg: Message) -> bool:
        """Update the counters; False for a duplicate (not delivered)."""
        key = (msg.topic, msg.stream)
        seq = msg.seq
        last = self._last_seq.get(key)
        if last is not None:
            if seq == last:
                self.duplicates[msg.topic] += 1
                return False
            if seq > last + 1:
                self.missed[msg.topic] += seq - last - 1
            elif seq < last:
                self.restarts += 1
        self._last_seq[key] = seq
        self.received[msg.topic] += 1
        return True

    def recv(self, timeout_s: float | None = None) -> Message | None:
        """Wait for the next valid message.

        Parameters
        ----------
        timeout_s : float or None
            Longest wait in seconds; None waits indefinitely, 0 only checks.

        Returns
        -------
        Message or None
            The message, or None if none arrived in time.
        """
        if self._sock is None:
            raise RuntimeError("the subscriber is closed")
        sock = self._sock
        deadline = None if timeout_s is None else time.monotonic() + max(0.0, timeout_s)
        while True:
            if deadline is None:
                wait_ms: int | None = None
            else:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000 + 0.999))
            if not sock.poll(wait_ms, zmq.POLLIN):
                return None
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:  # pragma: no cover - poll said readable
                continue
            try:
                msg = parse(frames)
            except MessageError as exc:
                self.invalid += 1
                self.last_error = str(exc)
                continue
            if self._track(msg):
                return msg
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def messages(
        self,
        *,
        count: int | None = None,
        duration_s: float | None = None,
        idle_s: float | None = None,
    ) -> Iterator[Message]:
        """Iterate over messages until a limit is reached.

        Parameters
        ----------
        count : int, optional
            Stop after this many messages.
        duration_s : float, optional
            Stop this many seconds after the iteration starts.
        idle_s : float, optional
            Stop when no message arrives for this long.

        Yields
        ------
        Message
            Each valid, non-duplicate message in arrival order.
        """
        deadline = None if duration_s is None else time.monotonic() + duration_s
        n = 0
        while count is None or n < count:
            wait = idle_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = left if wait is None else min(wait, left)
            msg = self.recv(wait)
            if msg is None:
                if idle_s is not None and (wait == idle_s):
                    return
                continue
            n += 1
            yield msg

    def __iter__(self) -> Iterator[Message]:
        return self.messages()

    def close(self) -> None:
        """Close the socket (``linger=0``). Idempotent."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def __repr__(self) -> str:
        return (
            f"Subscriber({self.address!r}, received={self.received}, "
            f"missed={self.missed})"
        )


# -- formatting ------------------------------------------------------------------
def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_prediction(payload: dict[str, Any], *, with_stream: bool = False) -> str:
    """One human line for a prediction payload.

    ``seq  t_lsl  valence 0.71 high  arousal 0.35 low  ok  1.3 ms``; a
    multi-class task shows its label and that label's probability; a bad window
    shows ``BAD`` with its bad channels and dropped samples.
    """
    parts = [f"{payload['seq']:>6}", _num(payload.get("t_lsl"), ".3f")]
    for task, obj in payload.items():
        if task in PREDICTION_FIELDS or not isinstance(obj, dict):
            continue
        label = obj.get("label") or "-"
        if "probs" in obj:
            p = obj["probs"].get(label) if isinstance(obj["probs"], dict) else None
        else:
            p = obj.get("p_high")
        parts.append(f"{task} {_num(p, '.2f')} {label}")
    q = payload.get("quality", {})
    if q.get("ok"):
        parts.append("ok")
    else:
        bad = ",".join(q.get("bad_channels", [])) or "-"
        parts.append(f"BAD channels {bad} dropped {q.get('dropped', 0)}")
    parts.append(f"{_num(payload.get('latency_ms'), '.1f')} ms")
    if with_stream:
        parts.insert(0, str(payload["stream"]))
    return "  ".join(parts)


def format_status(payload: dict[str, Any]) -> str:
    """One human line for a status payload."""
    line = (
        f"status  {payload['stream']}  {payload['state']}  "
        f"samples {payload['samples']}  dropped {payload['dropped']}  "
        f"lag {_num(payload.get('buffer_lag_s'), '.3f')} s  "
        f"up {_num(payload.get('uptime_s'), '.1f')} s  "
        f"predictions {payload['predictions']}"
    )
    if payload.get("last_error"):
        line += f"  error: {payload['last_error']}"
    return line


# -- the listen verb ---------------------------------------------------------------
def _topic(text: str) -> str:
    topic = _TOPIC_ALIASES.get(text, text)
    if topic not in TOPICS:
        raise argparse.ArgumentTypeError(
            f"unknown topic {text!r}; use prediction, status, or one of "
            f"{', '.join(TOPICS)}"
        )
    return topic


def _add_listen_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        type=_endpoint,
        default=DEFAULT_ADDRESS,
        help=f"publisher endpoint (default {DEFAULT_ADDRESS})",
    )
    p.add_argument(
        "--topic",
        dest="topics",
        action="append",
        type=_topic,
        metavar="TOPIC",
        help="prediction or status (or the full topic name); repeatable; default both",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print each message's JSON payload on one line (for scripts)",
    )
    p.add_argument(
        "--count",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after N messages",
    )
    p.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        metavar="S",
        help="stop after S seconds",
    )
    g = p.add_argument_group("security (a Curve publisher or broker)")
    g.add_argument(
        "--curve-secret",
        type=Path,
        help="this client's secret key file (client-NAME.key_secret)",
    )
    g.add_argument(
        "--curve-server",
        type=Path,
        help="the publisher's or broker's public key file (server.key)",
    )
    p.set_defaults(func=cmd_listen)


def add_listen_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``listen`` verb on an ``argparse`` subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``listen`` parser (its ``func`` default is :func:`cmd_listen`).
    """
    p = subparsers.add_parser(
        "listen",
        help="print live predictions and status from `emomon stream`",
        description="Subscribe to an emomon publisher and print one line per "
        "prediction and a line when the source state changes (or, with --json, "
        "every message as a JSON line). Runs until Ctrl-C, --count or --duration.",
    )
    _add_listen_arguments(p)
    return p


class _Stop:
    """SIGINT/SIGTERM turn into a flag the receive loop checks."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def cmd_listen(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run ``emomon listen``; returns the exit code (0, also on SIGINT/SIGTERM)."""
    out = sys.stdout if out is None else out
    topics = tuple(dict.fromkeys(args.topics or TOPICS))
    count: int | None = args.count
    deadline = None if args.duration is None else time.monotonic() + args.duration
    n = 0
    streams: set[str] = set()
    states: dict[str, str] = {}
    with (
        _Stop() as stop,
        Subscriber(
            args.address,
            topics=topics,
            curve_secret_key=getattr(args, "curve_secret", None),
            curve_server_key=getattr(args, "curve_server", None),
        ) as sub,
    ):
        # After the socket exists: a bad address or key is the only output.
        print(
            f"emomon listen: {args.address} ({', '.join(topics)}); Ctrl-C to stop",
            file=sys.stderr,
        )
        while not stop.requested and (count is None or n < count):
            wait = 0.2
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(wait, left)
            msg = sub.recv(wait)
            if msg is None:
                continue
            n += 1
            line = None
            if args.json:
                line = encode(msg.topic, msg.payload)[1].decode("utf-8")
            elif msg.topic == PREDICTION_TOPIC:
                streams.add(msg.stream)
                line = format_prediction(msg.payload, with_stream=len(streams) > 1)
            elif states.get(msg.stream) != msg.payload["state"]:
                states[msg.stream] = msg.payload["state"]
                line = format_status(msg.payload)
            if line is not None:
                print(line, file=out, flush=True)
        missed = sum(sub.missed.values())
        summary = f"emomon listen: {n} message(s), {missed} missed"
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m emomon.realtime.subscribe [listen options]``."""
    p = argparse.ArgumentParser(
        prog="python -m emomon.realtime.subscribe",
        description="Print emomon predictions (same as `emomon listen`).",
    )
    _add_listen_arguments(p)
    args = p.parse_args(argv)
    try:
        return cmd_listen(args)
    except EmomonError as exc:
        print(f"emomon: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
