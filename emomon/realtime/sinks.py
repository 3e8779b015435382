"""Where the live loop's output goes: :class:`Sink`, and :class:`QueuedSink`.

:class:`QueuedSink` runs the sinks that may block.

:func:`~emomon.realtime.stream.run_stream` hands every sink each chunk as the
source delivered it (before any processing), each prediction (the typed
:class:`~emomon.realtime.messages.PredictionMessage` with the pipeline's
:class:`~emomon.realtime.pipeline.Prediction` of the window) and each status
message (heartbeats, state changes, the final ``stopped``). The ZeroMQ
:class:`~emomon.realtime.publish.Publisher`, the
:class:`~emomon.realtime.lsloutlet.LSLPredictionOutlet`, the
:class:`~emomon.realtime.record.SessionRecorder` and :class:`StatusLine` are
sinks; a new output (a file logger, a metrics exporter) is one new class.

A sink never slows the loop. A sink whose methods return at once whatever its
consumers do declares ``nonblocking = True`` and bounds its own queue (the
publisher: ZeroMQ's high-water mark per subscriber; the LSL outlet: liblsl's
buffer). Every other sink is run by ``run_stream`` in a thread of its own behind
a :class:`QueuedSink`: a bounded queue (``queue_size`` items) that drops what
does not fit, newest first, and counts it. A slow sink then shows up as counted
drops (:attr:`Sink.dropped`, the stream's summary), never as latency.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from emomon.realtime._closing import Closing

if TYPE_CHECKING:
    from emomon.realtime.messages import (
        MetaMessage,
        PredictionMessage,
        StatusMessage,
    )
    from emomon.realtime.pipeline import Prediction
    from emomon.realtime.sources.base import Chunk

__all__ = ["QueuedSink", "Sink", "StatusLine"]

log = logging.getLogger(__name__)


class Sink(Closing):
    """An output of the live loop; every method has a do-nothing default.

    Attributes
    ----------
    nonblocking : bool
        Class attribute: True when every method returns at once (the sink
        bounds its own queue); False (default) has ``run_stream`` run the sink
        behind a :class:`QueuedSink`.
    queue_size : int
        Class attribute: items the :class:`QueuedSink` of this sink holds.
    """

    nonblocking: ClassVar[bool] = False
    queue_size: ClassVar[int] = 1000

    @property
    def name(self) -> str:
        """Name in summaries (the class name)."""
        return type(self).__name__

    @property
    def dropped(self) -> int:
        """Messages this sink dropped by its queue policy (0 if it drops none)."""
        return 0

    def on_chunk(self, chunk: Chunk) -> None:
        """Receive a chunk as the source delivered it (µV, LSL timestamps)."""

    def on_prediction(self, message: PredictionMessage, window: Prediction) -> None:
        """Receive one window's prediction message and the pipeline's window.

        The window carries the features, probabilities and compute time.
        """

    def on_status(self, message: StatusMessage) -> None:
        """Receive a status message (heartbeat, state change, final stop)."""

    def on_meta(self, message: MetaMessage) -> None:
        """Receive the stream's description, once, before its first status."""

    def poll(self) -> None:
        """Serve the sink's consumers.

        Called every loop iteration; must not block.
        """

    def close(self) -> None:
        """Release what the sink holds (idempotent)."""


class QueuedSink(Sink):
    """Runs a sink that may block in a thread of its own, behind a bounded queue.

    Parameters
    ----------
    sink : Sink
        The sink to run; its methods are called in the worker thread, in order.
    maxsize : int, optional
        Queue bound in items; default ``sink.queue_size``.

    Notes
    -----
    Drop policy: when the queue is full, the item being added is dropped and
    counted in :attr:`dropped`. If the sink raises, the error is kept in
    :attr:`error` (``run_stream`` raises it in the loop, which stops the
    stream as a synchronous error would), and the items after it are dropped.
    :meth:`close` delivers what is queued, stops the thread and leaves the
    inner sink open: whoever made it closes it.
    """

    nonblocking = True

    def __init__(self, sink: Sink, *, maxsize: int | None = None) -> None:
        self.sink = sink
        self._q: queue.Queue[tuple[Callable[..., None], tuple] | None] = queue.Queue(
            maxsize or sink.queue_size
        )
        self._dropped = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"sink-{sink.name}", daemon=True
        )
        self._thread.start()

    @property
    def name(self) -> str:
        """The inner sink's name."""
        return self.sink.name

    @property
    def dropped(self) -> int:
        """Items the queue dropped plus those the inner sink dropped."""
        return self._dropped + self.sink.dropped

    def _put(self, method: Callable[..., None], *args: object) -> None:
        if self.error is not None or self._thread is None:
            self._dropped += 1
            return
        try:
            self._q.put_nowait((method, args))
        except queue.Full:
            self._dropped += 1

    def on_chunk(self, chunk: Chunk) -> None:
        """Queue ``chunk`` for the inner sink (dropped and counted if full)."""
        self._put(self.sink.on_chunk, chunk)

    def on_prediction(self, message: PredictionMessage, window: Prediction) -> None:
        """Queue the prediction for the inner sink (dropped and counted if full)."""
        self._put(self.sink.on_prediction, message, window)

    def on_status(self, message: StatusMessage) -> None:
        """Queue ``message`` for the inner sink (dropped and counted if full)."""
        self._put(self.sink.on_status, message)

    def on_meta(self, message: MetaMessage) -> None:
        """Queue ``message`` for the inner sink (dropped and counted if full)."""
        self._put(self.sink.on_meta, message)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self.error is not None:
                self._dropped += 1
                continue
            method, args = item
            try:
                method(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop
                self.error = exc

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (waiting at most ``timeout_s``) and stop.

        The inner sink stays open. Idempotent.
        """
        th = self._thread
        if th is None:
            return
        self._thread = None
        try:
            self._q.put(None, timeout=timeout_s)
        except queue.Full:  # a stuck sink: the daemon thread is left behind
            log.warning("sink %s did not drain its queue in time", self.name)
            return
        th.join(timeout_s)
        if th.is_alive():
            log.warning("sink %s did not finish in %.0f s", self.name, timeout_s)


class StatusLine(Sink):
    """A compact status line about once a second (``emomon stream``'s console).

    And one line of its own when the source loses its input and when the input
    is back: a sender that stops is reported once, however long the source
    then waits for it.

    Parameters
    ----------
    write : callable or None
        Receives each status line (no newline), on every status message; None
        writes none (only the ``announce`` lines).
    announce : callable, optional
        Receives one line (no newline) when the source's state becomes
        ``"reconnecting"`` (the source's ``last_error``, which says what was
        lost and why) and one when it is ``"connected"`` again.
    """

    def __init__(
        self,
        write: Callable[[str], None] | None,
        *,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self._write = write
        self._announce = announce
        self._state: str | None = None
        self._latency_ms: deque[float] = deque(maxlen=50)
        self.flagged = 0

    def on_prediction(self, message: PredictionMessage, window: Prediction) -> None:
        """Note the prediction's latency and whether its quality was flagged."""
        if message.latency_ms is not None:
            self._latency_ms.append(message.latency_ms)
        self.flagged += not message.quality.ok

    def on_status(self, message: StatusMessage) -> None:
        """Announce a lost or returned input; write the line.

        The line holds the state, samples, drops, predictions and median latency.
        """
        before, self._state = self._state, message.state
        if self._announce is not None and before is not None:
            if message.state == "reconnecting" and before != "reconnecting":
                self._announce(
                    message.last_error or f"{message.stream}: input lost; reconnecting"
                )
            elif message.state == "connected" and before == "reconnecting":
                self._announce(f"{message.stream}: connected again")
        if self._write is None:
            return
        lat = f"{np.median(self._latency_ms):5.1f}" if self._latency_ms else "  -  "
        self._write(
            f"{message.stream} {message.state:<12} in {message.samples:>9} samples"
            f"  dropped {message.dropped:>5}  out {message.predictions:>6} "
            f"(flagged {self.flagged})  latency {lat} ms"
        )
