"""The live loop: a source, the pipeline and sinks (``emomon stream``).

:func:`run_stream` reads whatever the source has, hands each chunk to the sinks,
feeds the pipeline, hands each prediction (built once, typed) to the sinks and
sends a status message on every state change and every heartbeat. It does not
wake for every sample: between windows it sleeps until shortly before the
sample that completes the next window is due (:class:`_Pacer`), then waits on
the source so that sample is processed as soon as it arrives. It survives bad
chunks (NaN bursts are flagged, not fatal), a vanished stream (status
``reconnecting``; the pipeline restarts its warm-up when data returns) and slow
sinks (each runs behind a bounded queue or bounds its own; see
:mod:`emomon.realtime.sinks`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pylsl

from emomon.argtypes import endpoint, positive_float
from emomon.errors import ConfigError, EmomonError
from emomon.realtime._signals import StopOnSignals
from emomon.realtime._timer import StatusTimer
from emomon.realtime.messages import (
    PredictionMessage,
    StatusMessage,
    TaskOutput,
)
from emomon.realtime.model import LoadedModel
from emomon.realtime.pipeline import Pipeline, PipelineSettings, map_channels
from emomon.realtime.replay import add_recording_arguments
from emomon.realtime.security import add_curve_server_arguments
from emomon.realtime.sinks import QueuedSink, Sink
from emomon.realtime.sources.base import CLOCK_RESTART_S, Source

__all__ = ["StreamSettings", "StreamStats", "run_stream"]

#: Predictions whose latency and compute time :class:`StreamStats` keeps (the
#: percentiles of its summary are over these, the most recent ones).
STATS_WINDOW = 20_000


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
        Sleep between windows instead of waking for every sample (same
        predictions, a fraction of the CPU; see :class:`_Pacer`).
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

    ``latencies_ms`` (publication minus arrival of each window's last sample)
    and ``compute_ms`` (the pipeline's work per window) keep the last
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
    compute_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    reconnects: int = 0
    sink_drops: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, Any]:
        """Counts and latency/compute percentiles (NaN before a prediction)."""
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
            "sink_drops": dict(self.sink_drops),
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
        self.seq = 0
        self.status_seq = 0
        self.last_ts: float | None = None
        contract = pipe.contract
        self._tasks = [(t, tuple(c)) for t, c in contract.tasks.items()]
        self._window_s = contract.spec.window_s

    def status(self, state: str | None = None) -> StatusMessage:
        """A status message of now (``state`` overrides the source's)."""
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
            latency_ms = (pylsl.local_clock() - p.arrival) * 1e3
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
                quality=p.quality,
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
        for s in self.sinks:
            error = getattr(s, "error", None)
            if error is not None:  # a queued sink failed: stop as if it raised
                raise error

    def finish(self) -> BaseException | None:
        """Deliver what queued sinks hold, stop their threads; the first error
        a queued sink raised, if any."""
        error = None
        for s in self.sinks:
            if isinstance(s, QueuedSink):
                s.close()
                error = error or s.error
            self.stats.sink_drops[s.name] = s.dropped
        return error


def run_stream(
    source: Source,
    model: LoadedModel | Pipeline,
    *,
    sinks: Sequence[Sink] = (),
    settings: StreamSettings | None = None,
    stop_event: threading.Event | None = None,
) -> StreamStats:
    """Run the live loop until ``duration_s``, ``max_predictions``, a stop, or
    the source stops (a recording that ended).

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
        If the source lacks a channel of the model.
    EmomonError
        What a sink raised (a queued sink's error is raised in the loop).
    """
    settings = settings or StreamSettings()
    if isinstance(model, Pipeline):
        pipe = model
    else:
        pipe = Pipeline(
            model,
            source_ch_names=source.ch_names,
            source_sfreq=source.sfreq,
            settings=dataclasses.replace(
                settings.pipeline,
                time_scale=settings.time_scale or source.time_scale,
            ),
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
    pacer = _Pacer(source.sfreq * pipe.settings.time_scale) if paced else None
    beat = StatusTimer(st.heartbeat_s)
    loop.send_status()
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
        if st.max_predictions is not None and stats.predictions >= st.max_predictions:
            break
        try:
            chunk = source.read(timeout_s=st.read_timeout_s)
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
                loop.send_status()
        if chunk is not None and chunk.n_times:
            arrival = pylsl.local_clock()
            if (
                loop.last_ts is not None
                and chunk.timestamps[0] < loop.last_ts - CLOCK_RESTART_S
            ):
                pipe.reset()  # the stream restarted its clock
                if pacer is not None:
                    pacer.reset()
            if pacer is not None:
                pacer.observe(chunk.timestamps)
            loop.last_ts = float(chunk.timestamps[-1])
            loop.chunk(chunk, arrival)
        if beat.due():
            loop.send_status()
        loop.poll()
        if state == "stopped":  # a recording that ended, or closed elsewhere
            break
    loop.send_status("stopped")


# -- CLI --------------------------------------------------------------------------
def _open_source(args: argparse.Namespace) -> Source:
    if args.source == "lsl":
        from emomon.realtime.sources.lsl import LSLSource

        src = LSLSource(
            args.name, type=args.type, source_id=args.source_id, timeout_s=args.timeout
        )
    elif args.source == "replay":
        from emomon.realtime.replay import trials_from_args
        from emomon.realtime.sources.replay import ReplaySource

        src = ReplaySource(
            trials_from_args(args),
            name=args.name or "emomon-replay",
            speed=args.speed,
            loop=args.loop,
        )
    else:
        from emomon.realtime.sources.brainflow import BrainFlowSource, board_id_from

        src = BrainFlowSource(
            board_id_from(args.board_id),
            serial_port=args.serial_port,
            file=args.file,
            master_board=(
                board_id_from(args.master_board) if args.master_board else None
            ),
        )
    src.open(timeout_s=args.timeout)
    return src


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _open_recorder(
    args: argparse.Namespace,
    source: Source,
    model: LoadedModel,
    settings: PipelineSettings,
) -> Any:
    """The :class:`~emomon.realtime.record.SessionRecorder` of ``--record``."""
    from emomon.realtime.record import RecorderSettings, SessionRecorder

    return SessionRecorder(
        args.record,
        ch_names=source.ch_names,
        sfreq=source.sfreq,
        stream_name=source.name,
        source_id=source.source_id,
        model=model.digest,
        metadata={
            "source": args.source,
            "model_name": model.contract.model,
            "model_file": str(args.model),
            "hop_s": settings.hop_s,
            "smoothing": settings.smoothing,
            "time_scale": source.time_scale,
            "source_desc": dict(source.metadata),
        },
        settings=RecorderSettings(overwrite=bool(args.overwrite)),
    )


def _finish_recording(recorder: Any, *, failing: bool) -> None:
    """Close ``recorder`` and print what was written; while another error is
    on its way out, a recording error is printed instead of replacing it."""
    if recorder is None:
        return
    try:
        files = recorder.close()
    except EmomonError as exc:
        if not failing:
            raise
        print(f"emomon: error: {exc}", file=sys.stderr, flush=True)
        return
    print(files.describe(), file=sys.stderr, flush=True)


def cmd_stream(args: argparse.Namespace) -> int:
    from emomon.realtime.model import load_model

    model = load_model(args.model)  # validate before connecting
    settings = PipelineSettings(hop_s=args.hop, smoothing=args.smoothing)
    record = getattr(args, "record", None)
    if record is not None:  # a bad --record path fails before connecting
        from emomon.realtime.record import check_record_path

        check_record_path(record, overwrite=bool(args.overwrite))
    source = _open_source(args)
    stop = threading.Event()
    # The handlers stay until the recording is finished: a second Ctrl-C or
    # SIGTERM cannot interrupt writing the FIF.
    with StopOnSignals(stop):
        _serve(args, source, model, settings, stop)
    return 0


def _serve(
    args: argparse.Namespace,
    source: Source,
    model: LoadedModel,
    settings: PipelineSettings,
    stop: threading.Event,
) -> None:
    """Publish ``source``'s predictions until ``stop``; always closes ``source``."""
    from emomon.realtime.publish import (
        LSLPredictionOutlet,
        Publisher,
        PublisherSettings,
    )
    from emomon.realtime.sinks import StatusLine

    contract = model.contract
    recorder = None
    failing = True
    try:
        # Refuse a stream without the model's channels before binding the port
        # or announcing the stream: the error is then the only output.
        map_channels(contract.ch_names, source.ch_names)
        pub_settings = PublisherSettings(
            address=args.address,
            curve_secret_key=_str_or_none(getattr(args, "curve_secret", None)),
            curve_allowed_dir=_str_or_none(getattr(args, "curve_allowed", None)),
            curve_server_key=_str_or_none(getattr(args, "curve_server", None)),
            insecure=bool(getattr(args, "insecure", False)),
            connect=bool(getattr(args, "connect", False)),
        )
        with Publisher(pub_settings) as pub:
            print(
                f"emomon stream: {source.name} ({source.n_channels} ch @ "
                f"{source.sfreq:g} Hz) -> {contract.model} -> {pub.endpoint} "
                f"(hop {args.hop:g} s)",
                file=sys.stderr,
                flush=True,
            )
            sinks: list[Sink] = [pub]
            if not args.quiet:
                sinks.append(
                    StatusLine(
                        lambda text: print(
                            "\r" + text, end="", file=sys.stderr, flush=True
                        )
                    )
                )
            if args.lsl_outlet:
                sinks.append(
                    LSLPredictionOutlet(
                        source.name or "eeg", contract.tasks, model=model.digest
                    )
                )
            if args.record is not None:
                recorder = _open_recorder(args, source, model, settings)
                print(
                    f"recording to {recorder.path} (spool {recorder.paths.spool})",
                    file=sys.stderr,
                    flush=True,
                )
                sinks.append(recorder)
            try:
                stats = run_stream(
                    source,
                    model,
                    sinks=sinks,
                    settings=StreamSettings(
                        pipeline=settings, duration_s=args.duration
                    ),
                    stop_event=stop,
                )
            finally:
                for sink in sinks[1:]:
                    if sink is not recorder:
                        sink.close()
        s = stats.summary()
        print(
            f"\nstopped: {s['samples']} samples, {s['dropped']} dropped, "
            f"{s['predictions']} predictions ({s['flagged']} flagged), latency p50 "
            f"{s['latency_ms_p50']:.1f} ms p99 {s['latency_ms_p99']:.1f} ms",
            file=sys.stderr,
        )
        failing = False
    finally:
        try:
            _finish_recording(recorder, failing=failing)
        finally:
            source.close()


def add_stream_parser(sub: Any) -> None:
    """Register the ``stream`` verb."""
    p = sub.add_parser(
        "stream",
        help="live EEG (LSL/BrainFlow) -> features -> ONNX -> ZeroMQ predictions",
        description="Read live EEG, compute the model's features causally every hop, "
        "run the ONNX model and publish valence/arousal on ZeroMQ. Example: "
        "emomon stream --source lsl --model runs/deap-lovo-logreg/model.onnx",
    )
    p.add_argument(
        "--source",
        choices=["lsl", "brainflow", "replay"],
        default="lsl",
        help="lsl (default), brainflow, or replay: a recording read in process",
    )
    p.add_argument("--model", type=Path, required=True, help="emomon model.onnx")
    g = p.add_argument_group("LSL source")
    g.add_argument("--name", help="stream name to resolve")
    g.add_argument("--type", default="EEG", help="stream type (default EEG)")
    g.add_argument("--source-id", help="stream source_id to resolve")
    g = p.add_argument_group("BrainFlow source")
    g.add_argument("--board-id", default="synthetic", help="id or name (synthetic)")
    g.add_argument("--serial-port", help="e.g. /dev/ttyUSB0 for a Cyton")
    g.add_argument(
        "--file",
        help="PLAYBACK_FILE_BOARD: a file written by BrainFlow; with --source "
        "replay: a recording (OpenBCI .txt, EDF/BDF/FIF, ...)",
    )
    g.add_argument("--master-board", help="board that recorded --file")
    g = p.add_argument_group("replay source (no LSL: --dataset or --file)")
    add_recording_arguments(g, file=False)  # --file is shared with BrainFlow
    g.add_argument(
        "--speed",
        type=positive_float,
        default=None,
        help="pace like a headset at this speed (default: unpaced, as fast as the "
        "pipeline runs; ends with the recording)",
    )
    g.add_argument("--loop", action="store_true", help="restart at the end")
    p.add_argument(
        "--timeout", type=positive_float, default=10.0, help="connect timeout (s)"
    )
    p.add_argument(
        "--address",
        type=endpoint,
        default="tcp://127.0.0.1:5556",
        help="ZeroMQ PUB address",
    )
    p.add_argument("--hop", type=float, default=0.25, help="seconds between outputs")
    p.add_argument("--smoothing", type=float, default=0.0, help="EMA weight in [0,1)")
    p.add_argument("--lsl-outlet", action="store_true", help="also publish on LSL")
    p.add_argument(
        "--duration", type=positive_float, help="stop after this many seconds"
    )
    p.add_argument("--quiet", action="store_true", help="no status line")
    p.add_argument(
        "--record",
        type=Path,
        metavar="PATH.fif",
        help="save the raw EEG received and the predictions: PATH.fif (MNE FIF, "
        "replay it with `emomon replay --file PATH.fif`), "
        "PATH.predictions.jsonl, PATH.timestamps.npy",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="with --record: replace the files"
    )
    p.add_argument(
        "--connect",
        action="store_true",
        help="connect to --address (an `emomon broker` frontend) instead of binding",
    )
    g = add_curve_server_arguments(p)
    g.add_argument(
        "--curve-server",
        type=Path,
        help="with --connect: the broker's public key file (server.key)",
    )
    p.set_defaults(func=cmd_stream)
