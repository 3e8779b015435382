"""``emomon stream``: a live source, the pipeline and the ZeroMQ publisher in a loop.

The loop reads whatever the source has, feeds the pipeline, publishes each
prediction without blocking, sends a status heartbeat every second and prints
one compact status line. It does not wake for every sample: between windows it
sleeps until shortly before the sample that completes the next window is due
(:class:`_Pacer`), then waits on the source so that sample is processed as soon
as it arrives. It survives bad
chunks (NaN bursts are flagged, not fatal), a vanished stream (status
``reconnecting``; the pipeline restarts its warm-up when data returns) and slow
subscribers (the publisher never blocks).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emomon.contract import ModelContract
from emomon.errors import EmomonError
from emomon.realtime.messages import prediction_message, status_message
from emomon.realtime.pipeline import (
    Pipeline,
    PipelineSettings,
    Prediction,
)
from emomon.realtime.sources.base import CLOCK_RESTART_S, Source


@dataclass
class StreamStats:
    """Counters of a stream run (printed, published in status, returned)."""

    samples: int = 0
    dropped: int = 0
    predictions: int = 0
    flagged: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    compute_ms: list[float] = field(default_factory=list)
    reconnects: int = 0
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        comp = np.asarray(self.compute_ms) if self.compute_ms else np.array([np.nan])
        return {
            "samples": self.samples,
            "dropped": self.dropped,
            "predictions": self.predictions,
            "flagged": self.flagged,
            "reconnects": self.reconnects,
            "latency_ms_p50": float(np.nanpercentile(lat, 50)),
            "latency_ms_p99": float(np.nanpercentile(lat, 99)),
            "compute_ms_p50": float(np.nanpercentile(comp, 50)),
            "compute_ms_p99": float(np.nanpercentile(comp, 99)),
            "uptime_s": time.monotonic() - self.started,
        }


class _Pacer:
    """How long the live loop may sleep before the next window can complete.

    Sleeping until ``need - 1`` sample periods minus a margin have passed, then
    blocking on the source, wakes a few times per hop instead of once per sample
    (LSL senders often push one sample at a time), without delaying the sample
    that completes the window. The rate used is the faster of the nominal one and
    the one observed in the timestamps, so a source faster than it declares (a
    replay whose speed the stream was not told) costs wake-ups, not latency.

    Parameters
    ----------
    rate_hz : float
        Nominal arrival rate (source rate times replay speed), samples/s.
    margin_s : float
        Wake this much before the completing sample is due.
    max_sleep_s : float
        Longest sleep: heartbeats (1 s) and new subscribers are served at most
        this late (a stop ends the sleep at once). One default hop: a hop
        costs about two wake-ups instead of five at 0.1 s, a quarter less CPU
        in the loop's thread with 1-sample LSL chunks.
    """

    def __init__(
        self, rate_hz: float, *, margin_s: float = 0.002, max_sleep_s: float = 0.25
    ) -> None:
        self.nominal = float(rate_hz)
        self.rate = self.nominal
        self.margin_s = margin_s
        self.max_sleep_s = max_sleep_s
        self._t0: float | None = None
        self._n = 0

    def observe(self, timestamps: np.ndarray) -> None:
        """Update the observed rate from a chunk's timestamps (every ~2 s)."""
        if self._t0 is None:
            self._t0, self._n = float(timestamps[0]), 0
        self._n += timestamps.shape[0]
        span = float(timestamps[-1]) - self._t0
        if span >= 2.0:
            self.rate = max(self.nominal, (self._n - 1) / span)
            self._t0, self._n = float(timestamps[-1]), 1

    def reset(self) -> None:
        """Forget the observed rate (the stream restarted)."""
        self.rate = self.nominal
        self._t0 = None

    def sleep_s(self, need: int) -> float:
        """Seconds to sleep while ``need`` more samples are missing."""
        wait = (need - 1) / self.rate - self.margin_s
        return min(self.max_sleep_s, wait) if wait > 0 else 0.0


def _task_payload(contract: ModelContract, probs: dict[str, np.ndarray] | None):
    tasks = {}
    for task, classes in contract.tasks.items():
        if probs is None:
            tasks[task] = (None, None) if len(classes) == 2 else ({}, None)
            continue
        p = probs[task]
        label = classes[int(np.argmax(p))]
        if len(classes) == 2:
            tasks[task] = (float(p[1]), label)
        else:
            tasks[task] = (
                {c: float(v) for c, v in zip(classes, p, strict=True)},
                label,
            )
    return tasks


def run_stream(
    source: Source,
    *,
    model_path: str | Path,
    publisher: Any,
    settings: PipelineSettings | None = None,
    stream_name: str | None = None,
    duration_s: float | None = None,
    max_predictions: int | None = None,
    stop_event: threading.Event | None = None,
    lsl_outlet: bool = False,
    status_line: Callable[[str], None] | None = None,
    on_prediction: Callable[[Prediction, dict[str, Any]], None] | None = None,
    on_chunk: Callable[[np.ndarray, np.ndarray], None] | None = None,
    read_timeout_s: float = 0.05,
    pace: bool = True,
) -> StreamStats:
    """Run the live loop until ``duration_s``, ``max_predictions``, a stop, or
    the source stops (a recording that ended).

    Parameters
    ----------
    source : Source
        An opened source (its channel names and rate are read once).
    model_path : path
        The emomon ONNX model.
    publisher : Publisher
        Where predictions and status go (never blocks).
    settings : PipelineSettings, optional
    stream_name : str, optional
        ``stream`` field of messages; default the source name.
    duration_s, max_predictions : optional
        Bounds of the run.
    stop_event : threading.Event, optional
        Set it (or send SIGINT/SIGTERM in the CLI) to stop cleanly.
    lsl_outlet : bool
        Also push predictions to an LSL outlet of type ``Emotion``.
    status_line : callable, optional
        Receives a compact status line about once a second.
    on_prediction : callable, optional
        Called with each :class:`Prediction` and its published payload.
    on_chunk : callable, optional
        Called with each raw chunk (data, timestamps) as read.
    read_timeout_s : float
        Longest wait for a sample in one read.
    pace : bool
        Sleep between windows instead of waking for every sample (same
        predictions, a fraction of the CPU; see :class:`_Pacer`).
    """
    import pylsl

    contract = ModelContract.from_onnx(model_path)
    pipe = Pipeline(
        contract,
        model_path=model_path,
        source_ch_names=source.ch_names,
        source_sfreq=source.sfreq,
        settings=settings,
    )
    name = stream_name or source.name or "eeg"
    stats = StreamStats()
    outlet = None
    if lsl_outlet:
        from emomon.realtime.publish import LSLPredictionOutlet

        outlet = LSLPredictionOutlet(name, contract.tasks, model=pipe.model_id)
    seq = 0
    status_seq = 0
    last_state = source.state
    last_ts: float | None = None
    deadline = None if duration_s is None else time.monotonic() + duration_s

    def build_status() -> dict[str, Any]:
        nonlocal status_seq
        lag = None if last_ts is None else max(0.0, pylsl.local_clock() - last_ts)
        msg = status_message(
            seq=status_seq,
            stream=name,
            state=source.state,
            samples=stats.samples,
            dropped=stats.dropped,
            buffer_lag_s=lag,
            uptime_s=time.monotonic() - stats.started,
            predictions=stats.predictions,
            last_error=source.last_error,
        )
        status_seq += 1
        return msg

    paced = pace and source.realtime  # a recording read unpaced never waits
    pacer = _Pacer(source.sfreq * pipe.settings.time_scale) if paced else None
    next_line = time.monotonic() + 1.0
    publisher.publish_status(build_status())
    try:
        while True:
            if pacer is not None and source.state == "connected":
                wait = pacer.sleep_s(pipe.samples_to_next_window())
                if wait > 0:
                    if stop_event is not None:
                        stop_event.wait(wait)
                    else:
                        time.sleep(wait)
            if stop_event is not None and stop_event.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if max_predictions is not None and stats.predictions >= max_predictions:
                break
            try:
                chunk = source.read(timeout_s=read_timeout_s)
            except EmomonError as exc:  # a broken read is reported, not fatal
                source.last_error = str(exc)
                chunk = None
            state = source.state
            if state != last_state:
                if state == "connected" and last_state == "reconnecting":
                    pipe.reset()  # stale filter state: warm up again
                    if pacer is not None:
                        pacer.reset()
                    stats.reconnects += 1
                last_state = state
                if state != "stopped":  # that one goes out after the last window
                    publisher.publish_status(build_status())
            if chunk is not None and chunk.n_times:
                arrival = pylsl.local_clock()
                if (
                    last_ts is not None
                    and chunk.timestamps[0] < last_ts - CLOCK_RESTART_S
                ):
                    pipe.reset()  # the stream restarted its clock
                    if pacer is not None:
                        pacer.reset()
                if pacer is not None:
                    pacer.observe(chunk.timestamps)
                last_ts = float(chunk.timestamps[-1])
                if on_chunk is not None:
                    on_chunk(chunk.data, chunk.timestamps)
                dropped_before = pipe.dropped
                preds = pipe.process(chunk.data, chunk.timestamps, arrival=arrival)
                stats.samples += chunk.n_times
                stats.dropped += pipe.dropped - dropped_before
                if max_predictions is not None:  # one chunk may close several
                    preds = preds[: max(0, max_predictions - stats.predictions)]
                for p in preds:
                    now = pylsl.local_clock()
                    latency_ms = (now - p.arrival) * 1e3
                    payload = prediction_message(
                        seq=seq,
                        stream=name,
                        t_lsl=p.t_lsl,
                        window_s=contract.spec.window_s,
                        tasks=_task_payload(contract, p.probs),
                        quality={
                            "ok": p.quality["ok"],
                            "bad_channels": p.quality["bad_channels"],
                            "dropped": p.quality["dropped"],
                        },
                        latency_ms=latency_ms,
                        model=pipe.model_id,
                    )
                    publisher.publish_prediction(payload)
                    if outlet is not None:
                        outlet.push(payload)
                    seq += 1
                    stats.predictions += 1
                    stats.flagged += 0 if p.quality["ok"] else 1
                    stats.latencies_ms.append(latency_ms)
                    stats.compute_ms.append(p.compute_s * 1e3)
                    if on_prediction is not None:
                        on_prediction(p, payload)
            publisher.maybe_heartbeat(build_status)
            if status_line is not None and time.monotonic() >= next_line:
                next_line += 1.0
                status_line(_format_status(name, source.state, stats))
            if state == "stopped":  # a recording that ended, or closed elsewhere
                break
    finally:
        if outlet is not None:
            outlet.close()
    publisher.publish_status({**build_status(), "state": "stopped"})
    return stats


def _format_status(name: str, state: str, stats: StreamStats) -> str:
    lat = stats.latencies_ms[-50:]
    p50 = f"{np.median(lat):5.1f}" if lat else "  -  "
    return (
        f"{name} {state:<12} in {stats.samples:>9} samples  dropped {stats.dropped:>5}"
        f"  out {stats.predictions:>6} (flagged {stats.flagged})  latency {p50} ms"
    )
