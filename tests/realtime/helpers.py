"""Helpers for the realtime tests: LSL outlets and inlets, ZeroMQ messages.

Every loop here is bounded twice: by a deadline and by an iteration count. Waits
happen inside bounded library calls (``Source.read(timeout_s=...)``,
``pull_sample(timeout=...)``, ``Subscriber.recv(timeout_s=...)``), never in
``time.sleep``. The live rig that puts them together (replay -> source ->
``run_stream`` -> publisher -> subscriber) is the ``live_rig`` fixture of
``conftest.py``.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pylsl
import zmq

try:  # pylsl >= 1.17
    from pylsl.util import LostError
except ImportError:  # pragma: no cover - pylsl 1.16
    from pylsl.pylsl import LostError  # type: ignore[no-redef]

from emomon.datasets import Trial
from emomon.realtime.messages import (
    PREDICTION_FIELDS,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    Message,
    StatusMessage,
    prediction_message,
    validate,
)
from emomon.realtime.model import LoadedModel, load_model
from emomon.realtime.pipeline import Pipeline, Prediction
from emomon.realtime.quality import QUALITY_REASONS
from emomon.realtime.sinks import Sink
from emomon.realtime.sources.base import Chunk, Source
from emomon.realtime.stream import StreamSettings, StreamStats, run_stream

MAX_ITERATIONS = 20_000
REPO = Path(__file__).resolve().parents[2]
SF = 128.0
LOOPBACK = "tcp://127.0.0.1:*"
TASKS = ("valence", "arousal")
#: The exact key set of a prediction payload of a valence/arousal model.
PREDICTION_KEYS = set(PREDICTION_FIELDS) | set(TASKS)


def unique(prefix: str = "emomon-test") -> str:
    """A stream name no other test (or test run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_outlet(
    name: str,
    source_id: str,
    labels: Sequence[str],
    *,
    sfreq: float = 100.0,
    unit: str | None = "microvolts",
    units: dict[str, str | None] | None = None,
    stream_type: str = "EEG",
) -> pylsl.StreamOutlet:
    """A float32 EEG outlet with ``desc/channels/channel/{label, unit}``.

    Every channel has ``unit`` (None: no unit element) but those in ``units``
    (label -> unit)."""
    info = pylsl.StreamInfo(name, stream_type, len(labels), sfreq, "float32", source_id)
    chans = info.desc().append_child("channels")
    for label in labels:
        ch = chans.append_child("channel")
        if label:
            ch.append_child_value("label", label)
        ch_unit = (units or {}).get(label, unit)
        if ch_unit is not None:
            ch.append_child_value("unit", ch_unit)
    return pylsl.StreamOutlet(info)


@dataclass
class Collected:
    """Samples gathered from a source, with when each chunk arrived."""

    data: list[np.ndarray] = field(default_factory=list)
    stamps: list[np.ndarray] = field(default_factory=list)
    arrivals: list[tuple[float, float]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return sum(len(t) for t in self.stamps)

    def eeg(self, n_channels: int) -> np.ndarray:
        if not self.data:
            return np.empty((n_channels, 0))
        return np.hstack(self.data)

    def timestamps(self) -> np.ndarray:
        return np.concatenate(self.stamps) if self.stamps else np.empty(0)


def collect(
    source: Source,
    n_samples: int,
    *,
    timeout_s: float,
    into: Collected | None = None,
) -> Collected:
    """Read until ``n_samples`` arrived or ``timeout_s`` passed.

    Records ``(local_clock() at arrival, last timestamp of the chunk)`` per chunk.
    """
    out = into if into is not None else Collected()
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if out.n >= n_samples or time.monotonic() > deadline:
            break
        chunk = source.read(timeout_s=0.02)
        if chunk.n_times:
            out.arrivals.append((pylsl.local_clock(), float(chunk.timestamps[-1])))
            out.data.append(chunk.data)
            out.stamps.append(chunk.timestamps)
    return out


def grid_steps(stamps: np.ndarray, *, sfreq: float) -> np.ndarray:
    """How far each stamp moved past its place on a ``sfreq`` sample grid, in
    periods (a loss of k samples is a step of k; the pipeline calls a step of
    half a period a gap)."""
    return np.diff(stamps - np.arange(stamps.size) / sfreq) * sfreq


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    tick: Callable[[], object],
) -> bool:
    """Call ``tick`` (a bounded wait, e.g. ``source.read(timeout_s=0.02)``) until
    ``condition()`` holds; False on timeout."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        tick()
    return condition()


def open_inlet(predicate: str, *, timeout_s: float = 5.0) -> pylsl.StreamInlet:
    """Resolve one stream and subscribe to it (bounded)."""
    infos = pylsl.resolve_bypred(predicate, 1, timeout_s)
    assert infos, f"no stream matching {predicate} within {timeout_s} s"
    inlet = pylsl.StreamInlet(infos[0], recover=False)
    inlet.open_stream(timeout=timeout_s)
    return inlet


def inlet_lost(inlet: pylsl.StreamInlet, *, timeout_s: float) -> bool:
    """Whether pulling from ``inlet`` (opened with ``recover=False``) reports
    its outlet lost within ``timeout_s``; buffered samples are drained first."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if time.monotonic() > deadline:
            return False
        try:
            inlet.pull_chunk(timeout=0.05)
        except LostError:
            return True
    return False


def pull_markers(
    inlet: pylsl.StreamInlet, n: int, *, timeout_s: float
) -> list[tuple[dict, float]]:
    """Up to ``n`` JSON markers with their (raw) timestamps."""
    out: list[tuple[dict, float]] = []
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if len(out) >= n or time.monotonic() > deadline:
            break
        sample, ts = inlet.pull_sample(timeout=0.05)
        if sample is not None:
            out.append((json.loads(sample[0]), ts))
    return out


# -- ZeroMQ messages -------------------------------------------------------------
def receive_until(
    sub: Any,
    done: Callable[[list[Message]], bool],
    *,
    timeout_s: float,
    into: list[Message] | None = None,
) -> list[Message]:
    """Receive messages until ``done(messages)`` or the deadline (bounded)."""
    out = into if into is not None else []
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if done(out) or time.monotonic() > deadline:
            break
        msg = sub.recv(timeout_s=0.05)
        if msg is not None:
            out.append(msg)
    return out


def predictions(msgs: list[Message]) -> list[dict[str, Any]]:
    """The payloads of the prediction messages, in order."""
    return [m.payload for m in msgs if m.topic == PREDICTION_TOPIC]


def statuses(msgs: list[Message]) -> list[dict[str, Any]]:
    """The payloads of the status messages, in order."""
    return [m.payload for m in msgs if m.topic == STATUS_TOPIC]


def states(msgs: list[Message]) -> list[str]:
    """Source states in the order published, repeats collapsed."""
    out: list[str] = []
    for s in statuses(msgs):
        if not out or out[-1] != s["state"]:
            out.append(s["state"])
    return out


def fake_prediction(seq: int, stream: str = "test", **over: Any) -> dict[str, Any]:
    """A valid prediction payload that no model made (valence 0.71 high, arousal
    0.35 low); keyword arguments replace its fields."""
    kw: dict[str, Any] = {
        "seq": seq,
        "stream": stream,
        "t_lsl": 1000.0 + seq * 0.25,
        "window_s": 2.0,
        "tasks": {"valence": (0.71, "high"), "arousal": (0.35, "low")},
        "quality": {"ok": True, "bad_channels": [], "dropped": 0},
        "latency_ms": 1.3,
        "model": "3f9a2c1d7e4b",
    }
    return prediction_message(**{**kw, **over})


def signal_quality(payload: dict[str, Any]) -> dict[str, Any]:
    """A prediction's ``quality`` without ``sample_age_ms`` (which varies)."""
    return {k: v for k, v in payload["quality"].items() if k != "sample_age_ms"}


def check_prediction_payload(
    payload: dict[str, Any], *, stream: str, stamped_ahead_s: float = 0.0
) -> None:
    """The DESIGN.md section 10 prediction message, field by field.

    ``stamped_ahead_s``: how far ahead of its push the sender stamps samples
    (MNE-LSL's PlayerLSL: one chunk), which the sample age cannot see.
    """
    validate(PREDICTION_TOPIC, payload)
    assert set(payload) == PREDICTION_KEYS, sorted(payload)
    assert payload["v"] == 1
    assert payload["stream"] == stream
    assert payload["window_s"] == 2.0
    quality = payload["quality"]
    assert set(quality) - {"reasons"} == {
        "ok",
        "bad_channels",
        "dropped",
        "sample_age_ms",
    }
    reasons = quality.get("reasons", {})
    assert set(reasons.values()) <= set(QUALITY_REASONS), reasons
    assert set(quality["bad_channels"]) <= set(reasons)
    # the window's last sample was stamped before it was published
    ahead_ms = 1e3 * stamped_ahead_s
    assert payload["quality"]["sample_age_ms"] >= payload["latency_ms"] - 1.0 - ahead_ms
    for task in TASKS:
        assert set(payload[task]) == {"p_high", "label"}
        p, label = payload[task]["p_high"], payload[task]["label"]
        if payload["quality"]["ok"]:
            assert 0.0 <= p <= 1.0
            assert label == ("high" if p > 0.5 else "low")
        else:
            assert p is None
            assert label is None
    assert payload["latency_ms"] >= 0.0
    assert payload["model"].startswith("sha256-")


def read_line(stream: IO[str], prefix: str = "", *, timeout_s: float) -> str:
    """The first line a subprocess writes to ``stream`` (a pipe) that starts
    with ``prefix``; lines before it are read and dropped. "" if none came
    within ``timeout_s`` or the pipe closed. Reads the pipe byte by byte (bounded
    waits in ``select``), so nothing after that line is taken from the pipe:
    ``communicate()`` still gets the rest."""
    fd = stream.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    line = bytearray()
    try:
        deadline = time.monotonic() + timeout_s
        for _ in range(MAX_ITERATIONS):
            left = deadline - time.monotonic()
            if left <= 0:
                return ""
            if not sel.select(timeout=min(left, 0.5)):
                continue
            byte = os.read(fd, 1)
            if not byte:  # end of file: the process ended
                return ""
            line += byte
            if byte == b"\n":
                text = line.decode("utf-8", errors="replace")
                if text.startswith(prefix):
                    return text
                line.clear()
        return ""
    finally:
        sel.close()


#: What liblsl's own log lines hold (its INFO lines at start, its ERR line when
#: a sender stops); emomon's console shows none of them.
LIBLSL_LOG_MARKS = ("Loaded", "Configuration loaded", "git:", "ERR|", "INFO|",
                    "WARN|", "Stream transmission")  # fmt: skip


def lsl_user_config(path: Path, session_id: str) -> Path:
    """Write a lab's liblsl configuration to ``path``: as the test session's
    (loopback only, IPv6 off, short unicast waits) but with its own
    ``SessionID`` and no ``[log]`` section, so liblsl would log at its default
    level (INFO) unless emomon turns it down."""
    path.write_text(
        "; a lab's liblsl configuration\n"
        "[ports]\nIPv6 = disable\n\n"
        "[multicast]\nResolveScope = machine\n\n"
        f"[lab]\nKnownPeers = {{127.0.0.1}}\nSessionID = {session_id}\n\n"
        "[tuning]\nUnicastMinRTT = 0.1\nUnicastMaxRTT = 0.25\n",
        encoding="ascii",
    )
    return path


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a CLI's --address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_can_bind(address: str) -> None:
    """Binding ``address`` with ZeroMQ succeeds: no process holds it any more
    (what a restarted ``emomon stream`` or ``broker`` needs)."""
    sock = zmq.Context.instance().socket(zmq.PUB)
    try:
        sock.bind(address)
    finally:
        sock.close(linger=0)


def synthetic_subject(trial_s: float) -> list[Trial]:
    """Subject s01 of the synthetic set: 2 videos of (3 s baseline + ``trial_s``),
    32 DEAP channels at 128 Hz."""
    from emomon.datasets import get_reader

    reader = get_reader("synthetic", None, n_subjects=1, n_videos=2, trial_s=trial_s)
    return reader.read_subject("s01")


def session_eeg(trials: list[Trial]) -> np.ndarray:
    """A subject's trials back to back (baseline, trial, ...), as a replay serves."""
    return np.hstack([np.hstack([t.baseline, t.eeg]) for t in trials])


def start_replay(rep: Any, **run_kw: Any) -> tuple[threading.Thread, dict]:
    """``rep.run(**run_kw)`` in a daemon thread; the result lands in ``box``."""
    box: dict = {}

    def target() -> None:
        box["result"] = rep.run(**run_kw)

    th = threading.Thread(target=target, name="replay", daemon=True)
    th.start()
    return th, box


# -- the live loop in a thread ----------------------------------------------------
class Collect(Sink):
    """Keeps what the live loop hands it: a test's in-process view of a run.

    Non-blocking (list appends), so it runs in the loop's thread, in step with
    the publisher: ``preds`` holds ``(window, payload dict)`` pairs, ``chunks``
    ``(data, timestamps)`` as the source delivered them.
    """

    nonblocking = True

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self.preds: list[tuple[Prediction, dict[str, Any]]] = []
        self.statuses: list[StatusMessage] = []

    def on_chunk(self, chunk: Chunk) -> None:
        self.chunks.append((chunk.data, chunk.timestamps))

    def on_prediction(self, message: Any, window: Prediction) -> None:
        self.preds.append((window, message.to_dict()))

    def on_status(self, message: StatusMessage) -> None:
        self.statuses.append(message)


class StreamThread:
    """:func:`run_stream` in a worker thread with a :class:`Collect` sink.

    Sinks are created by the test (main thread), handed to the worker for the
    run and closed by the test after :meth:`join`: ZeroMQ allows moving a
    socket between threads with a barrier in between (thread start and join).
    ``settings`` are :class:`StreamSettings` fields.
    """

    def __init__(
        self,
        source: Source,
        model: Path | LoadedModel | Pipeline,
        *,
        sinks: Sequence[Sink] = (),
        stop_event: threading.Event | None = None,
        **settings: Any,
    ) -> None:
        self.stop = stop_event or threading.Event()
        self.collect = Collect()
        self.chunks, self.preds = self.collect.chunks, self.collect.preds
        self.stats: StreamStats | None = None
        self.error: BaseException | None = None
        if not isinstance(model, (LoadedModel, Pipeline)):
            model = load_model(model)
        self._run_args = (source, model, [*sinks, self.collect], settings)
        self._th = threading.Thread(target=self._run, name="stream", daemon=True)

    def _run(self) -> None:
        source, model, sinks, settings = self._run_args
        try:
            self.stats = run_stream(
                source,
                model,
                sinks=sinks,
                settings=StreamSettings(**settings),
                stop_event=self.stop,
            )
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def start(self) -> StreamThread:
        self._th.start()
        return self

    def is_alive(self) -> bool:
        return self._th.is_alive()

    def join(self, timeout_s: float = 10.0) -> StreamStats:
        """Wait for the run's end; its stats (or what it raised)."""
        self._th.join(timeout_s)
        assert not self._th.is_alive(), "run_stream did not return in time"
        if self.error is not None:
            raise self.error
        assert self.stats is not None
        return self.stats
