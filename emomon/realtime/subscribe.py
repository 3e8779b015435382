"""Receive emomon predictions: a small client class for apps and ``emomon listen``.

An app needs ten lines (see :class:`Subscriber`); ``emomon listen``
(:mod:`emomon.cli.listen`) prints the stream live, or as JSON lines for scripts.
Any ZeroMQ SUB socket works too: the wire format is two frames,
``[topic, UTF-8 JSON]`` (:mod:`emomon.realtime.messages`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import zmq

from emomon.errors import EmomonError
from emomon.realtime._closing import Closing
from emomon.realtime.messages import (
    DEFAULT_ADDRESS,
    META_TOPIC,
    PREDICTION_FIELDS,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    TOPICS,
    Message,
    MessageError,
    MetaMessage,
    parse,
)
from emomon.realtime.security import apply_client_keys

__all__ = [
    "DEFAULT_ADDRESS",
    "Subscriber",
    "format_meta",
    "format_prediction",
    "format_status",
]


class Subscriber(Closing):
    """Receive and check emomon messages, counting what was missed.

    Messages are parsed strictly; malformed ones are skipped and counted in
    :attr:`invalid`. Each topic of each stream is numbered by ``seq``, so a jump
    adds the number of lost messages to :attr:`missed`; a status message that
    the publisher re-sent for a newcomer arrives again with the same ``seq`` and
    is dropped (counted in :attr:`duplicates`); a smaller ``seq`` means the
    publisher restarted (:attr:`restarts`).

    Each stream's description (``emomon.meta.v1``: channel names in model
    order, rates, tasks, scalp positions) is kept in :attr:`meta`, whatever
    ``topics`` says: the subscriber always subscribes to it too (after the
    requested topics), and the publisher sends it to every new subscriber.
    It is handed over as a message only when ``topics`` names it, once per
    distinct description (re-sends for other newcomers are dropped).

    Parameters
    ----------
    address : str
        Publisher endpoint; default ``tcp://127.0.0.1:5556``.
    topics : sequence of str
        Topics to hand over, among
        :data:`~emomon.realtime.messages.PREDICTION_TOPIC`,
        :data:`~emomon.realtime.messages.STATUS_TOPIC` (default these two) and
        :data:`~emomon.realtime.messages.META_TOPIC`.
    rcvhwm : int
        Messages queued locally before ZeroMQ drops more (default 1000).
    context : zmq.Context, optional
        Default: the process-wide instance.
    curve_secret_key : str or Path, optional
        This client's secret key file (``client-NAME.key_secret``) for a
        CurveZMQ publisher; needs ``curve_server_key``.
    curve_server_key : str or Path, optional
        The publisher's (or broker's) public key file (``server.key``).
    latest : bool, default False
        For a consumer slower than the publisher: hand over only the newest
        message of each topic and stream. Each :meth:`recv` first drains the
        socket (reads without waiting until nothing is left, at most
        ``max(1000, 2 * rcvhwm)`` messages) and keeps the newest message per
        (topic, stream), then returns those one per call, in the order they
        arrived; the ones passed over are counted in :attr:`skipped`, not in
        :attr:`missed`. Without
        it, a consumer slower than the publisher reads an ever older queue.
        (ZeroMQ's ``CONFLATE`` option cannot do this: it does not support
        multipart messages, and emomon's are two frames.)

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
        latest: bool = False,
    ) -> None:
        if (curve_secret_key is None) != (curve_server_key is None):
            raise EmomonError(
                "Curve needs both {curve_secret_key} (this client's .key_secret) "
                "and {curve_server_key} (the publisher's public .key)",
                params=("curve_secret_key", "curve_server_key"),
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
            if META_TOPIC not in self.topics:  # for .meta; after the others
                sock.setsockopt(zmq.SUBSCRIBE, META_TOPIC.encode("ascii"))
            sock.connect(address)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise EmomonError(
                f"cannot connect to {address!r}: {exc.strerror}; expected an "
                f"endpoint such as {DEFAULT_ADDRESS}"
            ) from None
        self._sock: zmq.Socket | None = sock
        self.latest = bool(latest)
        self._max_drain = max(1000, 2 * rcvhwm)
        # with ``latest``: the newest message per (topic, stream) not yet handed over
        self._newest: dict[tuple[str, str], Message] = {}
        self._last_seq: dict[tuple[str, str], int] = {}
        #: Messages delivered, per topic.
        self.received: dict[str, int] = dict.fromkeys(self.topics, 0)
        #: Messages lost (``seq`` gaps), per topic.
        self.missed: dict[str, int] = dict.fromkeys(self.topics, 0)
        #: Repeated messages dropped (status re-sent to a newcomer), per topic.
        self.duplicates: dict[str, int] = dict.fromkeys(self.topics, 0)
        #: Messages passed over for a newer one (``latest``), per topic.
        self.skipped: dict[str, int] = dict.fromkeys(self.topics, 0)
        #: Malformed messages skipped.
        self.invalid = 0
        #: Times a stream's ``seq`` went back (publisher restarted).
        self.restarts = 0
        #: Reason the last malformed message was rejected.
        self.last_error: str | None = None
        #: Stream name -> its latest description (``emomon.meta.v1``).
        self.meta: dict[str, MetaMessage] = {}

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
        """Wait for the next valid message (with ``latest``: the next newest one).

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
            if self.latest:
                self._drain(sock)
                if self._newest:
                    return self._newest.pop(next(iter(self._newest)))
            if deadline is None:
                wait_ms: int | None = None
            else:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000 + 0.999))
            if not sock.poll(wait_ms, zmq.POLLIN):
                return None
            if not self.latest:
                msg = self._read(sock)
                if msg is not None:
                    return msg
                if deadline is not None and time.monotonic() >= deadline:
                    return None

    def _read(self, sock: zmq.Socket) -> Message | None:
        """Read one message without waiting; None if none, malformed or repeated."""
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None
        try:
            msg = parse(frames)
        except MessageError as exc:
            self.invalid += 1
            self.last_error = str(exc)
            return None
        if msg.topic == META_TOPIC:
            return self._describe(msg)
        return msg if self._track(msg) else None

    def _describe(self, msg: Message) -> Message | None:
        """Keep a stream description; the message if new and asked for."""
        meta = msg.meta
        assert meta is not None
        known = self.meta.get(meta.stream)
        # By content, not seq: every run's description has seq 0.
        if known is not None and known.same_description(meta):
            if META_TOPIC in self.topics:
                self.duplicates[META_TOPIC] += 1
            return None
        self.meta[meta.stream] = meta
        if META_TOPIC not in self.topics:
            return None
        self.received[META_TOPIC] += 1
        return msg

    def _drain(self, sock: zmq.Socket) -> None:
        """Read what ``sock`` holds (bounded); keep the newest per topic and stream.

        ``_newest`` stays in the order the kept messages arrived; a message
        replaced by a newer one is counted in :attr:`skipped`.
        """
        for _ in range(self._max_drain):
            if not sock.poll(0, zmq.POLLIN):
                return
            msg = self._read(sock)
            if msg is None:
                continue
            key = (msg.topic, msg.stream)
            older = self._newest.pop(key, None)
            if older is not None:
                self.skipped[older.topic] += 1
            self._newest[key] = msg

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


def format_meta(payload: dict[str, Any]) -> str:
    """One human line for a meta payload (a stream's description)."""
    names = payload["ch_names"]
    placed = sum(p is not None for p in payload["pos_2d"])
    return (
        f"meta    {payload['stream']}  {len(names)} channels "
        f"({' '.join(names)}), {placed} with positions  "
        f"{payload['sfreq']:g} Hz (model {payload['model_sfreq']:g} Hz)  "
        f"tasks {', '.join(payload['tasks'])}  model {payload['model']}"
    )


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
