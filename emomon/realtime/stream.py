"""The live loop: a source, the pipeline and sinks (``emomon stream``).

:func:`run_stream` reads whatever the source has, hands each chunk to the sinks,
feeds the pipeline, hands each prediction (built once, typed) to the sinks and
sends a status message on every state change and every heartbeat. It does not
wake for every sample: it asks the source for the samples still missing before
the next window (``source.read(timeout_s, min_samples=n)``), and the source
returns the moment the sample that completes the window arrives, whatever the
sender's chunking or timing (for LSL, a blocking pull in liblsl), so a chunk
that completes a window is never left waiting in the inlet. Before that read it
may rest, but only until shortly before the earliest moment the sample could
arrive as judged from the last seconds of reads (:mod:`._arrivals`): the
blocking read costs a wake-up per sample of a one-sample sender. It survives bad
chunks (NaN bursts are flagged, not fatal), a vanished stream (status
``reconnecting``; the pipeline restarts its warm-up when data returns) and slow
sinks (each runs behind a bounded queue or bounds its own; see
:mod:`emomon.realtime.sinks`).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pylsl

from emomon.errors import ConfigError, EmomonError
from emomon.realtime._arrivals import ArrivalModel
from emomon.realtime._timer import StatusTimer
from emomon.realtime.messages import (
    PredictionMessage,
    StatusMessage,
    TaskOutput,
)
from emomon.realtime.model import LoadedModel
from emomon.realtime.pipeline import Pipeline, PipelineSettings, check_units
from emomon.realtime.sinks import QueuedSink, Sink
from emomon.realtime.sources.base import CLOCK_RESTART_S, Source

__all__ = ["StreamSettings", "StreamStats", "run_stream"]

#: Predictions whose latency and compute time :class:`StreamStats` keeps (the
#: percentiles of its summary are over these, the most recent ones).
STATS_WINDOW = 20_000

#: Longest wait of one read while the loop waits for a window: heartbeats, new
#: subscribers and a stop are served at most this late. One default hop, so a
#: hop costs one or two wake-ups of the loop.
MAX_WAIT_S = 0.25
#: The rest before the blocking read ends this long before the earliest moment
#: the window's last sample can arrive (see :mod:`emomon.realtime._arrivals`);
#: shorter rests are skipped.
SLACK_S = 0.005
MIN_REST_S = 0.002
#: A read that returns its samples sooner than this found them already there.
PROMPT_S = 0.001


@dataclass(frozen=True, kw_only=True)
class StreamSettings:
    """Frozen settings of :func:`run_stream`.

    Attributes
    ----------
    pipeline : PipelineSettings
        Hop, smoothing and quality thresholds; its ``time_scale`` is replaced
        by :attr:`time_scale`.
    time_scale : float or None
        How much faster than real time the source's samples are stamped (a
        replay's speed); None (default): what the source announces
        (:attr:`Source.time_scale`).
    stream_name : str or None
        ``stream`` field of messages; default the source's name.
    duration_s : float or None
        Stop after this many seconds.
    max_predictions : int or None
        Stop after this many predictions (exact: a chunk that completes several
        windows is cut).
    read_timeout_s : float
        Longest wait for a sample in one read.
    pace : bool
        Wait for the samples that complete the next window in one read instead
        of waking for every sample (same predictions and latency, a fraction of
        the CPU).
    heartbeat_s : float
        Interval of status messages while nothing changes.
    """

    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    time_scale: float | None = None
    stream_name: str | None = None
    duration_s: float | None = None
    max_predictions: int | None = None
    read_timeout_s: float = 0.05
    pace: bool = True
    heartbeat_s: float = 1.0

    def __post_init__(self) -> None:
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(
                f"{{duration_s}} must be > 0 s, got {self.duration_s}",
                params=("duration_s",),
            )
        if self.max_predictions is not None and self.max_predictions < 0:
            raise ConfigError(
                f"{{max_predictions}} must be >= 0, got {self.max_predictions}",
                params=("max_predictions",),
            )
        if self.time_scale is not None and not (
            self.time_scale > 0 and math.isfinite(self.time_scale)
        ):
            raise ConfigError(
                f"{{time_scale}} must be a number > 0, got {self.time_scale}",
                params=("time_scale",),
            )
        for name in ("read_timeout_s", "heartbeat_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(
                    f"{{{name}}} must be > 0 s, got {getattr(self, name)}",
                    params=(name,),
                )


@dataclass
class StreamStats:
    """Counters of a stream run (published in status messages, returned).

    ``latencies_ms`` (publication minus the time emomon read each window's
    last sample), ``sample_ages_ms`` (publication minus that sample's
    timestamp: what the user meets, see :attr:`Quality.sample_age_ms`) and
    ``compute_ms`` (the pipeline's work per window) keep the last
    :data:`STATS_WINDOW` predictions; ``sink_drops`` counts, per sink, the
    messages its queue dropped.
    """

    samples: int = 0
    dropped: int = 0
    predictions: int = 0
    flagged: int = 0
    latencies_ms: deque[float] = field(
        default_factory=lambda: deque(maxlen=STATS_WINDOW)
    )
    sample_ages_ms: deque[float] = field(
        default_factory=lambda: deque(maxlen=STATS_WINDOW)
    )
    compute_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    reconnects: int = 0
    sink_drops: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, Any]:
        """Return counts and latency/age/compute percentiles (NaN when none)."""

        def pct(values: deque[float], q: float) -> float:
            return float(np.percentile(np.asarray(values), q)) if values else math.nan

        return {
            "samples": self.samples,
            "dropped": self.dropped,
            "predictions": self.predictions,
            "flagged": self.flagged,
            "reconnects": self.reconnects,
            "latency_ms_p50": pct(self.latencies_ms, 50),
            "latency_ms_p99": pct(self.latencies_ms, 99),
            "sample_age_ms_p50": pct(self.sample_ages_ms, 50),
            "sample_age_ms_p99": pct(self.sample_ages_ms, 99),
            "compute_ms_p50": pct(self.compute_ms, 50),
            "compute_ms_p99": pct(self.compute_ms, 99),
            "sink_drops": dict(self.sink_drops),
            "uptime_s": time.monotonic() - self.started,
        }


class _Loop:
    """State of one :func:`run_stream` run: counters, sequence numbers, sinks."""

    def __init__(
        self,
        source: Source,
        pipe: Pipeline,
        sinks: Sequence[Sink],
        settings: StreamSettings,
    ) -> None:
        self.source = source
        self.pipe = pipe
        self.settings = settings
        self.name = settings.stream_name or source.name or "eeg"
        self.stats = StreamStats()
        self.sinks = [s if s.nonblocking else QueuedSink(s) for s in sinks]
        self._polled = [s for s in self.sinks if type(s).poll is not Sink.poll]
        self._queued = [s for s in self.sinks if isinstance(s, QueuedSink)]
        self.seq = 0
        self.status_seq = 0
        self.last_ts: float | None = None
        contract = pipe.contract
        self._tasks = [(t, tuple(c)) for t, c in contract.tasks.items()]
        self._window_s = contract.spec.window_s
        # a recording read unpaced has stamps, not ages
        self._ages = source.realtime

    def status(self, state: str | None = None) -> StatusMessage:
        """Build a status message of now (``state`` overrides the source's)."""
        lag = None
        if self.last_ts is not None:
            lag = max(0.0, pylsl.local_clock() - self.last_ts)
        msg = StatusMessage(
            seq=self.status_seq,
            stream=self.name,
            t_pub=time.time(),
            state=state or self.source.state,  # type: ignore[arg-type]
            samples=self.stats.samples,
            dropped=self.stats.dropped,
            buffer_lag_s=lag,
            uptime_s=time.monotonic() - self.stats.started,
            predictions=self.stats.predictions,
            last_error=self.source.last_error,
        )
        self.status_seq += 1
        return msg

    def send_meta(self) -> None:
        """Hand every sink the run's description (``emomon.meta.v1``)."""
        from emomon.realtime.meta import describe

        contract = self.pipe.contract
        msg = describe(
            stream=self.name,
            model=self.pipe.model_id,
            ch_names=contract.ch_names,
            tasks=dict(self._tasks),
            sfreq=self.pipe.source_sfreq,
            model_sfreq=contract.sfreq,
            window_s=self._window_s,
            hop_s=self.pipe.extractor.settings.hop_n / contract.sfreq,
        )
        for s in self.sinks:
            s.on_meta(msg)

    def send_status(self, state: str | None = None) -> None:
        msg = self.status(state)
        for s in self.sinks:
            s.on_status(msg)

    def chunk(self, chunk: Any, arrival: float) -> None:
        """Hand a chunk to the sinks and the pipeline; publish its windows."""
        stats, pipe = self.stats, self.pipe
        for s in self.sinks:
            s.on_chunk(chunk)
        dropped_before = pipe.dropped
        preds = pipe.process(chunk.data, chunk.timestamps, arrival=arrival)
        stats.samples += chunk.n_times
        stats.dropped += pipe.dropped - dropped_before
        limit = self.settings.max_predictions
        if limit is not None:  # one chunk may close several windows
            preds = preds[: max(0, limit - stats.predictions)]
        for p in preds:
            now = pylsl.local_clock()
            latency_ms = (now - p.arrival) * 1e3
            quality = p.quality
            if self._ages:
                age_ms = (now - p.t_lsl) * 1e3
                quality = dataclasses.replace(quality, sample_age_ms=age_ms)
                stats.sample_ages_ms.append(age_ms)
            msg = PredictionMessage(
                seq=self.seq,
                stream=self.name,
                t_lsl=p.t_lsl,
                t_pub=time.time(),
                window_s=self._window_s,
                tasks={
                    t: TaskOutput.from_probs(c, None if p.probs is None else p.probs[t])
                    for t, c in self._tasks
                },
                quality=quality,
                latency_ms=latency_ms,
                model=pipe.model_id,
            )
            for s in self.sinks:
                s.on_prediction(msg, p)
            self.seq += 1
            stats.predictions += 1
            stats.flagged += not p.quality.ok
            stats.latencies_ms.append(latency_ms)
            stats.compute_ms.append(p.compute_s * 1e3)

    def poll(self) -> None:
        for s in self._polled:
            s.poll()
        for s in self._queued:
            if s.error is not None:  # a queued sink failed: stop as if it raised
                raise s.error

    def finish(self) -> BaseException | None:
        """Deliver what queued sinks hold and stop their threads.

        Returns the first error a queued sink raised, if any.
        """
        for s in self._queued:
            s.close()
        self.stats.sink_drops = {s.name: s.dropped for s in self.sinks}
        return next((s.error for s in self._queued if s.error is not None), None)


def run_stream(
    source: Source,
    model: LoadedModel | Pipeline,
    *,
    sinks: Sequence[Sink] = (),
    settings: StreamSettings | None = None,
    stop_event: threading.Event | None = None,
) -> StreamStats:
    """Run the live loop until a limit of ``settings``, a stop, or the source's end.

    The limits are ``duration_s`` and ``max_predictions``; a source ends when it
    stops (a recording that ended).

    Parameters
    ----------
    source : Source
        An opened source (its channel names and rate are read once).
    model : LoadedModel or Pipeline
        The model (a pipeline is built for the source's channels and rate with
        ``settings.pipeline``), or a pipeline built by the caller.
    sinks : sequence of Sink
        Where chunks, predictions and status messages go (the ZeroMQ
        publisher, an LSL outlet, a recorder, a status line, your own). They
        stay open: the caller closes them.
    settings : StreamSettings, optional
    stop_event : threading.Event, optional
        Set it (the CLI does on SIGINT/SIGTERM) to stop cleanly.

    Returns
    -------
    StreamStats

    Raises
    ------
    ChannelError
        If the source lacks a channel of the model, or sends one in a unit that
        is not a voltage (:attr:`Source.unconverted_units`).
    EmomonError
        What a sink raised (a queued sink's error is raised in the loop).
    """
    settings = settings or StreamSettings()
    if isinstance(model, Pipeline):
        pipe = model
        check_units(pipe.contract.ch_names, source.unconverted_units)
    else:
        pipe = Pipeline(
            model,
            source_ch_names=source.ch_names,
            source_sfreq=source.sfreq,
            settings=dataclasses.replace(
                settings.pipeline,
                time_scale=settings.time_scale or source.time_scale,
            ),
            unconverted_units=source.unconverted_units,
        )
    loop = _Loop(source, pipe, sinks, settings)
    try:
        _run(loop, stop_event)
    except BaseException:
        loop.finish()
        raise
    error = loop.finish()
    if error is not None:  # a queued sink failed on what it drained last
        raise error
    return loop.stats


def _run(loop: _Loop, stop_event: threading.Event | None) -> None:
    source, pipe, stats, st = loop.source, loop.pipe, loop.stats, loop.settings
    last_state = source.state
    deadline = None if st.duration_s is None else time.monotonic() + st.duration_s
    paced = st.pace and source.realtime  # a recording read unpaced never waits
    beat = StatusTimer(st.heartbeat_s)
    arrivals = ArrivalModel(source.sfreq * pipe.settings.time_scale)
    loop.send_meta()
    loop.send_status()
    while True:
        if stop_event is not None and stop_event.is_set():
            break
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if st.max_predictions is not None and stats.predictions >= st.max_predictions:
            break
        try:
            if paced and source.state == "connected":
                want = pipe.samples_to_next_window()
                until = now + min(MAX_WAIT_S, beat.left(now))
                if deadline is not None:
                    until = min(until, deadline)
                # rest while the window's last sample cannot be there yet ...
                early = arrivals.earliest(want)
                rested = early is not None and early - SLACK_S - now > MIN_REST_S
                if rested:
                    _rest(min(early - SLACK_S, until) - now, stop_event)
                # ... then one blocking read, which returns as that sample arrives
                t_read = time.monotonic()
                chunk = source.read(
                    timeout_s=max(until - t_read, 0.001), min_samples=want
                )
                t_back = time.monotonic()
                complete = chunk.n_times >= want
                waited = t_back - t_read > PROMPT_S
                if rested and complete and not waited:
                    arrivals.reset()  # it came before the estimate: learn anew
                arrivals.observe(t_back, chunk.n_times, prompt=complete and waited)
            else:
                chunk = source.read(timeout_s=st.read_timeout_s)
        except EmomonError as exc:  # a broken read is reported, not fatal
            source.last_error = str(exc)
            chunk = None
        state = source.state
        if state != last_state:
            arrivals.reset()
            if state == "connected" and last_state == "reconnecting":
                pipe.reset()  # stale filter state: warm up again
                stats.reconnects += 1
            last_state = state
            if state != "stopped":  # that one goes out after the last window
                loop.send_status()
        if chunk is not None and chunk.n_times:
            arrival = pylsl.local_clock()
            if (
                loop.last_ts is not None
                and chunk.timestamps[0] < loop.last_ts - CLOCK_RESTART_S
            ):
                pipe.reset()  # the stream restarted its clock
                arrivals.reset()
            loop.last_ts = float(chunk.timestamps[-1])
            loop.chunk(chunk, arrival)
        if beat.due():
            loop.send_status()
        loop.poll()
        if state == "stopped":  # a recording that ended, or closed elsewhere
            break
    loop.send_status("stopped")


def _rest(seconds: float, stop_event: threading.Event | None) -> None:
    """Sleep ``seconds`` (a stop request ends it at once)."""
    if seconds <= 0:
        return
    if stop_event is not None:
        stop_event.wait(seconds)
    else:
        time.sleep(seconds)
