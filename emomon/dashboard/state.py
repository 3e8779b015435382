"""What the dashboard knows about each stream: a bounded backlog, state, counters.

Pure Python (no web server, no sockets), so it is tested on its own. The
server's ZeroMQ side hands every received message to
:meth:`DashboardState.ingest`; what comes back (:class:`Update` objects) goes to
every open page. A page that opens later gets :meth:`DashboardState.snapshot`:
each stream's description, last status and its recent predictions, at once.

Per stream the server keeps at most ``max_points`` predictions, and none older
than ``history_s`` (by the time they arrived here), so its memory is bounded
however long it runs. A stream that stops keeps its trace (the page shows it
as stopped); when it comes back (a new run: ``seq`` starts again), its new
predictions follow the old ones and the page breaks the line between them.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from emomon.realtime.messages import (
    META_TOPIC,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    Message,
    MetaMessage,
    PredictionMessage,
    StatusMessage,
)

__all__ = [
    "DISPLAY_STATES",
    "DashboardState",
    "DisplayState",
    "Point",
    "StreamView",
    "Update",
]

#: What the page's badge says about a stream. ``connecting`` covers the
#: publisher's ``starting`` and ``connecting``; ``silent``: nothing arrived for
#: a while although the stream never said it stopped (a killed publisher, a
#: broken network).
DisplayState = Literal["connecting", "connected", "reconnecting", "stopped", "silent"]
DISPLAY_STATES: tuple[DisplayState, ...] = (
    "connecting",
    "connected",
    "reconnecting",
    "stopped",
    "silent",
)
_FROM_STATUS: dict[str, DisplayState] = {
    "starting": "connecting",
    "connecting": "connecting",
    "connected": "connected",
    "reconnecting": "reconnecting",
    "stopped": "stopped",
}

#: A task's probabilities in a point: ``p_high`` (binary) or class -> p.
TaskProbs = float | None | Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class Point:
    """One prediction as the page plots it.

    Attributes
    ----------
    seq : int
        The prediction's ``seq``.
    t : float
        Its publication time (Unix seconds, the publisher's clock): the x axis.
    t_recv : float
        When the dashboard received it (Unix seconds, this machine's clock):
        what the backlog's age limit reads.
    ok : bool
        Whether the window was predicted on; False: probabilities are None
        (a gap on the page, never a zero).
    probs : mapping of str to float or mapping or None
        Task -> ``p_high`` (binary task) or class -> probability (multi-class).
    reasons : mapping of str to str
        Channel -> quality reason (``quality.reasons``); empty when clean.
    dropped : int
        Samples lost inside the window.
    latency_ms, sample_age_ms : float or None
        Time inside emomon, and age of the window's last sample at publication.
    """

    seq: int
    t: float
    t_recv: float
    ok: bool
    probs: Mapping[str, TaskProbs]
    reasons: Mapping[str, str]
    dropped: int
    latency_ms: float | None
    sample_age_ms: float | None

    @classmethod
    def from_message(cls, msg: PredictionMessage, t_recv: float) -> Point:
        """Build the point of a received prediction."""
        probs: dict[str, TaskProbs] = {}
        for name, task in msg.tasks.items():
            probs[name] = task.p_high if task.binary else dict(task.probs or {})
        return cls(
            seq=msg.seq,
            t=msg.t_pub,
            t_recv=t_recv,
            ok=msg.quality.ok,
            probs=probs,
            reasons=dict(msg.quality.reasons),
            dropped=msg.quality.dropped,
            latency_ms=msg.latency_ms,
            sample_age_ms=msg.quality.sample_age_ms,
        )

    def to_wire(self) -> dict[str, Any]:
        """Return the page's JSON object (short keys; ``null`` when flagged)."""
        out: dict[str, Any] = {
            "seq": self.seq,
            "t": self.t,
            "ok": self.ok,
            "p": {
                k: (dict(v) if isinstance(v, Mapping) else v)
                for k, v in self.probs.items()
            },
        }
        if self.reasons:
            out["q"] = dict(self.reasons)
        if self.dropped:
            out["drop"] = self.dropped
        if self.latency_ms is not None:
            out["lat"] = self.latency_ms
        if self.sample_age_ms is not None:
            out["age"] = self.sample_age_ms
        return out


@dataclass(frozen=True)
class Update:
    """One message to the pages, JSON made once however many pages get it.

    Attributes
    ----------
    kind : str
        ``"meta"``, ``"status"``, ``"points"``, ``"stats"`` or ``"hello"``.
    body : mapping
        The message's fields (wire-shaped: built from the typed objects when
        the update is made).
    """

    kind: str
    body: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def text(self) -> str:
        """The JSON text sent on the WebSocket (``{"type": kind, ...body}``)."""
        return _dumps({"type": self.kind, **self.body})


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dumps(obj: Mapping[str, Any]) -> str:
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN slipped in: JSON null instead
        return json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False)


class StreamView:
    """One stream as the dashboard sees it: description, state, backlog, counters.

    Parameters
    ----------
    name : str
        The stream's name (the ``stream`` field of its messages).
    max_points : int
        Most predictions kept.
    """

    def __init__(self, name: str, *, max_points: int) -> None:
        self.name = name
        self.meta: MetaMessage | None = None
        self.status: StatusMessage | None = None
        self.points: deque[Point] = deque(maxlen=max_points)
        self.state: DisplayState = "connecting"
        #: When the last message of any topic of this stream arrived (Unix s).
        self.last_recv: float | None = None
        #: Predictions received, lost (``seq`` gaps) and flagged; new runs seen.
        self.received = 0
        self.missed = 0
        self.flagged = 0
        self.restarts = 0
        self._last_seq: int | None = None

    def add(self, point: Point) -> None:
        """Keep ``point`` and count it (a smaller ``seq`` starts a new run)."""
        last = self._last_seq
        if last is not None:
            if point.seq > last + 1:
                self.missed += point.seq - last - 1
            elif point.seq <= last:
                self.restarts += 1
        self._last_seq = point.seq
        self.received += 1
        self.flagged += not point.ok
        self.points.append(point)

    def trim(self, oldest: float) -> None:
        """Forget predictions received before ``oldest`` (Unix s)."""
        points = self.points
        for _ in range(len(points)):
            if points[0].t_recv >= oldest:
                return
            points.popleft()

    def stats(self, now: float) -> dict[str, Any]:
        """Return the counters the page shows (the last message's age at ``now``)."""
        return {
            "state": self.state,
            "age_s": None if self.last_recv is None else max(0.0, now - self.last_recv),
            "received": self.received,
            "missed": self.missed,
            "flagged": self.flagged,
            "restarts": self.restarts,
            "kept": len(self.points),
            "last_seq": self._last_seq,
        }

    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything a page opened now needs about this stream."""
        return {
            "stream": self.name,
            "meta": None if self.meta is None else self.meta.to_dict(),
            "status": None if self.status is None else self.status.to_dict(),
            "stats": self.stats(now),
            "points": [p.to_wire() for p in self.points],
        }


class DashboardState:
    """Every stream the dashboard has heard of, and what to tell the pages.

    Not thread-safe: the web server calls it from its event loop only.

    Parameters
    ----------
    history_s : float
        Seconds of predictions kept per stream (by arrival time).
    max_points : int
        Most predictions kept per stream.
    silent_after_s : float
        A stream quiet for this long (and not stopped) becomes ``silent``.
    """

    def __init__(
        self,
        *,
        history_s: float = 300.0,
        max_points: int = 2400,
        silent_after_s: float = 5.0,
    ) -> None:
        self.history_s = float(history_s)
        self.max_points = int(max_points)
        self.silent_after_s = float(silent_after_s)
        self.streams: dict[str, StreamView] = {}

    def _view(self, name: str) -> StreamView:
        view = self.streams.get(name)
        if view is None:
            view = self.streams[name] = StreamView(name, max_points=self.max_points)
        return view

    def ingest(self, msg: Message, t_recv: float) -> list[Update]:
        """Take one received message; the updates every open page should get.

        Parameters
        ----------
        msg : Message
            A valid message (as :class:`~emomon.realtime.subscribe.Subscriber`
            hands it over).
        t_recv : float
            When it arrived (Unix seconds).

        Returns
        -------
        list of Update
            Usually one: the new description, status or prediction.
        """
        view = self._view(msg.stream)
        view.last_recv = t_recv
        if msg.topic == META_TOPIC:
            meta = msg.meta
            assert meta is not None
            view.meta = meta
            return [Update("meta", {"stream": view.name, "meta": meta.to_dict()})]
        if msg.topic == STATUS_TOPIC:
            status = msg.status
            assert status is not None
            view.status = status
            view.state = _FROM_STATUS.get(status.state, "connecting")
            return [
                Update(
                    "status",
                    {
                        "stream": view.name,
                        "status": status.to_dict(),
                        "stats": view.stats(t_recv),
                    },
                )
            ]
        if msg.topic == PREDICTION_TOPIC:
            pred = msg.prediction
            assert pred is not None
            point = Point.from_message(pred, t_recv)
            view.add(point)
            if view.state in ("stopped", "silent", "connecting"):
                view.state = "connected"  # predictions flow: it is back
            view.trim(t_recv - self.history_s)
            return [
                Update("points", {"stream": view.name, "points": [point.to_wire()]})
            ]
        return []  # pragma: no cover - the subscriber knows no other topic

    def tick(self, now: float) -> list[str]:
        """Age the streams at ``now``: trim old predictions, mark quiet ones silent.

        Returns
        -------
        list of str
            The streams that just became ``silent``.
        """
        oldest = now - self.history_s
        went_silent = []
        for view in self.streams.values():
            view.trim(oldest)
            quiet = view.last_recv is None or now - view.last_recv > self.silent_after_s
            if quiet and view.state not in ("stopped", "silent"):
                view.state = "silent"
                went_silent.append(view.name)
        return went_silent

    def stats(self, now: float) -> dict[str, dict[str, Any]]:
        """Stream -> its counters (see :meth:`StreamView.stats`)."""
        return {name: view.stats(now) for name, view in self.streams.items()}

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """Every stream's snapshot, in the order they were first heard of."""
        return [view.snapshot(now) for view in self.streams.values()]

    def counts(self) -> dict[str, int]:
        """Streams, predictions kept, received and missed (for ``/healthz``)."""
        views = self.streams.values()
        return {
            "streams": len(self.streams),
            "points": sum(len(v.points) for v in views),
            "predictions": sum(v.received for v in views),
            "missed": sum(v.missed for v in views),
        }
