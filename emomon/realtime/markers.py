"""Read an LSL marker stream beside the EEG: the ground truth of a recorded session.

``emomon stream --record`` keeps the markers of the replay it reads (``emomon
replay`` serves them as ``<name>-markers``; the EEG stream names that outlet in
``desc/replay/markers_stream``) or of the stream ``--markers NAME`` names, so
that ``emomon score`` can later score the session's predictions against them.

:class:`MarkerTap` resolves the stream by name (any type, any channel format),
subscribes, and pulls in a daemon thread, handing every marker with its
timestamp on this machine's LSL clock to a callback
(:meth:`~emomon.realtime.record.SessionRecorder.write_marker`).

Clock
    As :class:`~emomon.realtime.sources.LSLSource`: no post-processing; the
    sender's stamp plus the inlet's :meth:`pylsl.StreamInlet.time_correction`
    estimate, awaited once when connecting and refreshed every
    ``clock_update_s`` without blocking. Markers and samples are then on one
    clock; an emomon replay stamps each marker with the timestamp of the sample
    it belongs to, so a marker lands on its sample.

Subscription
    liblsl delivers to an inlet only what is pushed after it subscribed, so the
    tap is opened right after the EEG source and before the stream starts; an
    ``emomon replay`` waiting for its consumers (``--wait``) starts only once
    both outlets have one. Markers that arrive between :meth:`MarkerTap.open`
    and :meth:`MarkerTap.start` wait in liblsl's buffer. The inlet recovers a
    lost stream by itself (``recover=True``): a marker stream carries no layout
    that could change, and a gap in markers is visible in their timestamps.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pylsl

from emomon.errors import EmomonError
from emomon.realtime.sources._lslinfo import build_predicate, poll_resolver

__all__ = [
    "MarkerError",
    "MarkerTap",
    "open_marker_tap",
    "own_markers",
    "replay_markers_stream",
]

#: Key of the LSL source's metadata under which an emomon replay names its
#: marker outlet (``desc/replay/markers_stream``).
REPLAY_MARKERS_KEY = "replay/markers_stream"
_PULL_S = 0.1  # longest blocking pull of the reader thread
_MAX_CHUNK = 1024
_DRAIN_PULLS = 64  # non-blocking pulls when closing (bounded)

try:  # pylsl >= 1.17 moved the exception classes out of the package namespace
    from pylsl.util import TimeoutError as _LSLTimeoutError
except ImportError:  # pragma: no cover - pylsl 1.16
    from pylsl.pylsl import TimeoutError as _LSLTimeoutError  # type: ignore[no-redef]


class MarkerError(EmomonError):
    """A marker stream cannot be found or read (one line naming the stream)."""


def replay_markers_stream(metadata: Mapping[str, str]) -> str:
    """Name of the marker outlet an emomon replay announces ("" when none).

    Parameters
    ----------
    metadata : mapping of str to str
        The LSL source's flattened ``desc``
        (:attr:`~emomon.realtime.sources.Source.metadata`).
    """
    return str(metadata.get(REPLAY_MARKERS_KEY, "") or "")


def _text(sample: list) -> str:
    """Return a marker sample as one string (numbers joined by commas)."""
    if len(sample) == 1:
        value = sample[0]
        return value if isinstance(value, str) else repr(value)
    return ",".join(v if isinstance(v, str) else repr(v) for v in sample)


class MarkerTap:
    """Pull an LSL marker stream in a daemon thread.

    Parameters
    ----------
    name : str
        The stream's name (matched exactly; any type and channel format).
    clock_update_s : float
        How often the time-correction estimate is refreshed (s).

    Notes
    -----
    State: construct, :meth:`open` (resolve, subscribe, first clock estimate),
    :meth:`start` (the thread calls ``on_marker(marker, t_lsl)`` for each
    marker, in order), :meth:`close` (stops the thread, then hands over the
    markers already delivered to the inlet; idempotent). An exception raised by
    ``on_marker`` stops the thread and is kept in :attr:`error`.
    """

    def __init__(self, name: str, *, clock_update_s: float = 5.0) -> None:
        self.name = str(name)
        self.clock_update_s = float(clock_update_s)
        self.n_received = 0
        self.error: BaseException | None = None
        self.source_id = ""
        self._inlet: pylsl.StreamInlet | None = None
        self._offset = 0.0
        self._next_clock = math.inf
        self._on_marker: Callable[[str, float], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one puller at a time (thread or close)

    def open(self, timeout_s: float) -> None:
        """Resolve the stream and subscribe, waiting at most ``timeout_s`` in all.

        Raises
        ------
        MarkerError
            If no stream of that name answers, or it does not subscribe in time.
        """
        if self._inlet is not None:
            return
        deadline = time.monotonic() + float(timeout_s)
        infos, _ = poll_resolver(build_predicate(name=self.name), deadline)
        if not infos:
            raise MarkerError(
                f"marker stream '{self.name}' not found on LSL within "
                f"{timeout_s:g} s; start what sends it first (emomon replay serves "
                "'<name>-markers'), check the name, or record without {markers}",
                params=("markers",),
            )
        infos.sort(key=lambda i: i.created_at(), reverse=True)
        inlet = pylsl.StreamInlet(infos[0], max_chunklen=0, recover=True)
        try:
            left = max(deadline - time.monotonic(), 0.5)
            inlet.open_stream(timeout=left)
            self._offset = float(inlet.time_correction(timeout=left))
        except _LSLTimeoutError:
            raise MarkerError(
                f"marker stream '{self.name}' was found but did not answer within "
                f"{timeout_s:g} s (subscription or clock synchronisation)"
            ) from None
        self.source_id = infos[0].source_id()
        self._inlet = inlet
        self._next_clock = time.monotonic() + self.clock_update_s

    def start(self, on_marker: Callable[[str, float], None]) -> None:
        """Start handing markers to ``on_marker(marker, t_lsl)`` from a thread."""
        if self._inlet is None:
            raise MarkerError(f"marker stream '{self.name}': open() the tap first")
        if self._thread is not None:
            return
        self._on_marker = on_marker
        self._thread = threading.Thread(
            target=self._run, name="emomon-markers", daemon=True
        )
        self._thread.start()

    def _pull(self, timeout_s: float) -> int:
        """Pull once and deliver; returns the number of markers delivered."""
        inlet = self._inlet
        if inlet is None or self._on_marker is None:
            return 0
        with self._lock:
            now = time.monotonic()
            if now >= self._next_clock:
                try:  # liblsl keeps the estimate fresh; never block here
                    self._offset = float(inlet.time_correction(timeout=0.0))
                except _LSLTimeoutError:
                    pass
                self._next_clock = now + self.clock_update_s
            samples, stamps = inlet.pull_chunk(
                timeout=timeout_s, max_samples=_MAX_CHUNK
            )
            for sample, ts in zip(samples, stamps, strict=True):
                self._on_marker(_text(sample), float(ts) + self._offset)
                self.n_received += 1
            return len(stamps)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._pull(_PULL_S)
        except BaseException as exc:  # kept for whoever closes the tap
            self.error = exc

    def close(self) -> None:
        """Stop the thread, deliver what already arrived, unsubscribe."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is None and self._thread is not None:
            try:
                for _ in range(_DRAIN_PULLS):
                    if self._pull(0.0) == 0:
                        break
            except BaseException as exc:
                self.error = exc
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            inlet.close_stream()
        self._thread = None

    def __enter__(self) -> MarkerTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_marker_tap(
    named: str | None,
    source_metadata: Mapping[str, str],
    *,
    timeout_s: float,
) -> tuple[MarkerTap | None, str | None]:
    """Open the marker stream a recording keeps: the one named, else the replay's.

    Parameters
    ----------
    named : str or None
        The stream the user named (``--markers``); None: the marker outlet the
        EEG stream announces (an emomon replay's), if any.
    source_metadata : mapping of str to str
        The EEG source's flattened ``desc``.
    timeout_s : float
        How long to wait for the stream.

    Returns
    -------
    tap : MarkerTap or None
        Opened (not started); None when there is nothing to record.
    warning : str or None
        Why an announced replay marker stream is not recorded (it did not
        answer): the session is recorded without ground truth.

    Raises
    ------
    MarkerError
        If the stream the user named does not answer: a recording asked to keep
        the ground truth must not run for an hour without it.
    """
    name = named or replay_markers_stream(source_metadata)
    if not name:
        return None, None
    tap = MarkerTap(name)
    try:
        tap.open(timeout_s)
    except MarkerError:
        if named:
            raise
        return None, (
            f"the replay's marker stream '{name}' did not answer within "
            f"{timeout_s:g} s; recording without markers (`emomon score` needs them)"
        )
    return tap, None


def own_markers(source: Any) -> tuple[str, list[tuple[str, float]]]:
    """Return the markers of a source that knows its own: a replay read in process.

    Parameters
    ----------
    source : Source
        An opened source.

    Returns
    -------
    name : str
        ``"<stream name>-markers"``, as ``emomon replay`` names its outlet; ""
        for any other source.
    markers : list of (str, float)
        :meth:`ReplaySource.markers <emomon.realtime.sources.ReplaySource>`:
        the strings ``emomon replay`` would send, stamped as their samples.
    """
    from emomon.realtime.sources.replay import ReplaySource

    if isinstance(source, ReplaySource):
        return f"{source.name}-markers", source.markers()
    return "", []
