"""``emomon stream`` end to end: real LSL/BrainFlow sources, onnxruntime, ZeroMQ.

Everything here is real: liblsl outlets and inlets on this machine (the LSL
session of ``tests/realtime/conftest.py``, a unique stream name per test), ZeroMQ
sockets on 127.0.0.1 with OS-chosen ports, the exported ONNX model run by
onnxruntime, BrainFlow's SYNTHETIC_BOARD and PLAYBACK_FILE_BOARD. Replays and
streams run in threads of the test process, or as ``python -m emomon.cli``
subprocesses where the CLI itself is under test. There are no sleeps used as
synchronisation: every wait is a bounded library call (``Source.read``,
``Subscriber.recv``, ``poll_subscriptions``, ``Thread.join``) inside a loop
bounded by a deadline and an iteration count.

Replay speed and timestamps: a replay at speed ``s`` stamps sample ``k`` with
``t0 + k / (sfreq * s)`` (see :mod:`emomon.realtime.replay`), so the pipeline
gets ``PipelineSettings(time_scale=s)`` and consecutive predictions' ``t_lsl``
(the LSL time of a window's last sample) are ``hop_n / (sfreq * s)`` = ``hop_s /
s`` seconds apart, not ``hop_s``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pylsl
import pytest
import zmq

from emomon.config import FeatureSpec
from emomon.contract import ModelContract, model_digest
from emomon.datasets import Trial, get_reader
from emomon.dsp.features import compute_features
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.realtime.messages import (
    PREDICTION_FIELDS,
    PREDICTION_TOPIC,
    STATUS_FIELDS,
    STATUS_TOPIC,
    Message,
    validate,
)
from emomon.realtime.pipeline import PipelineSettings, Prediction, map_channels
from emomon.realtime.publish import Publisher, PublisherSettings
from emomon.realtime.replay import Replay, ReplaySettings, load_trials
from emomon.realtime.sources import LSLSource
from emomon.realtime.stream import StreamStats, run_stream
from emomon.realtime.subscribe import Subscriber

from .lsl_helpers import MAX_ITERATIONS, unique
from .models import make_model, offline_probabilities

REPO = Path(__file__).resolve().parents[2]
SF = 128.0
SPEED = 4.0
LOOPBACK = "tcp://127.0.0.1:*"
TASKS = ("valence", "arousal")
#: The exact key set of a prediction payload of a valence/arousal model.
PREDICTION_KEYS = set(PREDICTION_FIELDS) | set(TASKS)
BRAINFLOW_NAMES = ("Fz", "C3", "Cz", "C4", "Pz", "Oz", "F3", "F4")


# -- helpers (also used by test_stream_faults.py) ------------------------------------
def start_replay(rep: Replay, **run_kw: Any) -> tuple[threading.Thread, dict]:
    """``rep.run(**run_kw)`` in a daemon thread; the result lands in ``box``."""
    box: dict = {}

    def target() -> None:
        box["result"] = rep.run(**run_kw)

    th = threading.Thread(target=target, name="replay", daemon=True)
    th.start()
    return th, box


class StreamThread:
    """:func:`run_stream` in a worker thread, collecting chunks and predictions.

    The publisher is created by the test (main thread), handed to the worker
    for the run and closed by the test after :meth:`join`: ZeroMQ allows moving
    a socket between threads with a barrier in between (thread start and join).
    """

    def __init__(self, source, **kw: Any) -> None:
        self.stop = kw.pop("stop_event", None) or threading.Event()
        self.preds: list[tuple[Prediction, dict[str, Any]]] = []
        self.chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self.stats: StreamStats | None = None
        self.error: BaseException | None = None
        kw.setdefault("on_prediction", lambda p, pl: self.preds.append((p, pl)))
        kw.setdefault("on_chunk", lambda d, t: self.chunks.append((d, t)))
        self._args = (source, kw)
        self._th = threading.Thread(target=self._run, name="stream", daemon=True)

    def _run(self) -> None:
        source, kw = self._args
        try:
            self.stats = run_stream(source, stop_event=self.stop, **kw)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def start(self) -> StreamThread:
        self._th.start()
        return self

    def is_alive(self) -> bool:
        return self._th.is_alive()

    def join(self, timeout_s: float = 10.0) -> StreamStats:
        self._th.join(timeout_s)
        assert not self._th.is_alive(), "run_stream did not return in time"
        if self.error is not None:
            raise self.error
        assert self.stats is not None
        return self.stats


def wait_subscribed(pub: Publisher, n_events: int, timeout_s: float = 5.0) -> None:
    """Poll the XPUB until ``n_events`` subscriptions arrived (bounded)."""
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if pub.stats.subscribe_events >= n_events:
            return
        assert time.monotonic() < deadline, f"subscriptions: {pub.stats}"
        pub.poll_subscriptions(timeout_s=0.05)


def receive_until(
    sub: Subscriber,
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
    return [m.payload for m in msgs if m.topic == PREDICTION_TOPIC]


def statuses(msgs: list[Message]) -> list[dict[str, Any]]:
    return [m.payload for m in msgs if m.topic == STATUS_TOPIC]


def free_tcp_port() -> int:
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


def session_eeg(trials: list[Trial]) -> np.ndarray:
    return np.hstack([np.hstack([t.baseline, t.eeg]) for t in trials])


def check_prediction_payload(payload: dict[str, Any], *, stream: str) -> None:
    """The DESIGN.md section 10 prediction message, field by field."""
    validate(PREDICTION_TOPIC, payload)
    assert set(payload) == PREDICTION_KEYS, sorted(payload)
    assert payload["v"] == 1 and payload["stream"] == stream
    assert payload["window_s"] == 2.0
    assert set(payload["quality"]) == {"ok", "bad_channels", "dropped"}
    for task in TASKS:
        assert set(payload[task]) == {"p_high", "label"}
        p, label = payload[task]["p_high"], payload[task]["label"]
        if payload["quality"]["ok"]:
            assert 0.0 <= p <= 1.0 and label == ("high" if p > 0.5 else "low")
        else:
            assert p is None and label is None
    assert payload["latency_ms"] >= 0.0
    assert payload["model"].startswith("sha256-")


# -- fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_trials() -> list[Trial]:
    """Subject s01: 2 videos of (3 s baseline + 10 s), 32 DEAP channels, 128 Hz."""
    reader = get_reader("synthetic", None, n_subjects=1, n_videos=2, trial_s=10)
    return reader.read_subject("s01")


@pytest.fixture(scope="module")
def deap_model(tmp_path_factory, synthetic_trials) -> Path:
    path = tmp_path_factory.mktemp("deap") / "model.onnx"
    eeg = session_eeg(synthetic_trials)
    return make_model(path, ch_names=DEAP_CHANNELS, sfreq=SF, eeg=eeg)


@pytest.fixture(scope="module")
def brainflow_model(tmp_path_factory) -> Path:
    """8 of SYNTHETIC_BOARD's EEG channels at 128 Hz: the board's 250 Hz is
    resampled by the pipeline."""
    path = tmp_path_factory.mktemp("bf") / "model.onnx"
    return make_model(path, ch_names=BRAINFLOW_NAMES, sfreq=SF)


# -- 1. parity: live == offline --------------------------------------------------------
@pytest.mark.integration
def test_live_stream_equals_offline_features_and_probabilities(
    synthetic_trials, deap_model
):
    """The acceptance test: replay -> LSL -> run_stream gives, for every window,
    the features and probabilities of one offline pass over the same samples."""
    name = unique("emomon-parity")
    settings = ReplaySettings(
        name=name, speed=SPEED, markers=False, wait_for_consumers_s=5.0
    )
    contract = ModelContract.from_onnx(deap_model)
    rate = SF * SPEED
    with (
        Replay(synthetic_trials, settings=settings) as rep,
        Publisher(PublisherSettings(address=LOOPBACK)) as pub,
    ):
        n = rep.session.n_times
        th, _ = start_replay(rep)
        # A fixed clock offset (no refresh during the run) keeps timestamps exact.
        src = LSLSource(name, timeout_s=5.0, clock_update_s=60.0)
        src.open()
        chunks: list[tuple[np.ndarray, np.ndarray]] = []
        preds: list[tuple[Prediction, dict]] = []
        stop = threading.Event()
        offset = src.clock_offset

        def on_chunk(data: np.ndarray, ts: np.ndarray) -> None:
            chunks.append((data, ts))
            last_due = rep.t0 + (n - 1) / rate + offset  # the session's last sample
            if ts[-1] >= last_due - 0.5 / rate:
                stop.set()  # checked after this chunk's predictions are out

        try:
            stats = run_stream(
                src,
                model_path=deap_model,
                publisher=pub,
                settings=PipelineSettings(time_scale=SPEED),
                stop_event=stop,
                duration_s=n / rate + 10.0,
                on_chunk=on_chunk,
                on_prediction=lambda p, pl: preds.append((p, pl)),
            )
            ch_names = src.ch_names
        finally:
            src.close()
        th.join(5.0)
        t0 = rep.t0
    assert stop.is_set(), "the whole session did not arrive in time"

    # (a) the same samples: from the first received one to the end, exact in
    # float32 (the outlet's format), with the replay's schedule as timestamps
    received = np.hstack([d for d, _ in chunks])
    ts = np.concatenate([t for _, t in chunks])
    k0 = int(round((ts[0] - offset - t0) * rate))
    assert 0 <= k0 < 64  # the replay waited for the inlet: (almost) sample 0
    assert received.shape == (32, n - k0)
    sent = rep.session.eeg.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(received, sent[:, k0:])
    np.testing.assert_allclose(
        ts, rep.expected_timestamps(t0)[k0:] + offset, rtol=0, atol=1e-9
    )

    # (b) one offline pass over the received samples, windows matched by the
    # timestamp of their last sample
    rows = map_channels(contract.ch_names, ch_names)
    off = compute_features(received[rows], sfreq=SF, spec=contract.spec, hop_s=0.25)
    assert len(off) == len(preds) == stats.predictions > 80
    t_off = ts[off.ends - 1]
    t_on = np.array([p.t_lsl for p, _ in preds])
    np.testing.assert_array_equal(t_on, t_off)  # every window, same order
    feats = np.stack([p.features for p, _ in preds])
    assert np.abs(feats - off.values).max() < 1e-6
    ref = offline_probabilities(deap_model, off.values)
    for task in TASKS:
        got = np.stack([p.probs[task] for p, _ in preds])
        assert np.abs(got - ref[task]).max() < 1e-5, task
        # and the published p_high is the online probability of "high"
        p_high = np.array([pl[task]["p_high"] for _, pl in preds])
        np.testing.assert_array_equal(p_high, got[:, 1])
    assert all(p.quality["ok"] for p, _ in preds)
    assert stats.dropped == 0 and stats.flagged == 0 and stats.samples == n - k0
    # t_lsl advances by hop / speed (32 samples at 128 Hz * 4)
    np.testing.assert_allclose(np.diff(t_on), 0.25 / SPEED, rtol=0, atol=1e-9)


# -- 2. the wire: a real Subscriber ----------------------------------------------------
@pytest.mark.integration
def test_subscriber_receives_consecutive_valid_predictions_and_status(
    synthetic_trials, deap_model
):
    name = unique("emomon-wire")
    n_pred = 16
    settings = ReplaySettings(
        name=name, speed=SPEED, markers=False, wait_for_consumers_s=5.0
    )
    t_start = time.time()
    with (
        Replay(synthetic_trials, settings=settings) as rep,
        Publisher(PublisherSettings(address=LOOPBACK)) as pub,
        Subscriber(pub.endpoint) as sub,
    ):
        wait_subscribed(pub, 2)  # prediction and status topics
        th, _ = start_replay(rep)
        src = LSLSource(name, timeout_s=5.0, clock_update_s=60.0)
        src.open()
        offset = src.clock_offset
        try:
            run = StreamThread(
                src,
                model_path=deap_model,
                publisher=pub,
                settings=PipelineSettings(time_scale=SPEED),
                max_predictions=n_pred,
                duration_s=20.0,
            ).start()
            msgs = receive_until(
                sub,
                lambda m: any(s["state"] == "stopped" for s in statuses(m)),
                timeout_s=20.0,
            )
            stats = run.join()
        finally:
            src.close()
        rep.stop()
        th.join(5.0)
        t0 = rep.t0
        assert sub.invalid == 0, sub.last_error  # every message passed parse()
        assert sub.missed[PREDICTION_TOPIC] == 0
    t_end = time.time()

    preds = predictions(msgs)
    assert (
        [p["seq"] for p in preds]
        == list(range(n_pred))
        == list(range(stats.predictions))
    )
    for p in preds:
        check_prediction_payload(p, stream=name)
        assert p["quality"] == {"ok": True, "bad_channels": [], "dropped": 0}
        assert t_start <= p["t_pub"] <= t_end
        assert p["model"] == model_digest(deap_model)
    # t_lsl are the LSL timestamps of the replayed samples: window ends on the
    # replay's schedule t0 + k / (sfreq * speed), hop_s / speed apart
    t = np.array([p["t_lsl"] for p in preds])
    np.testing.assert_allclose(np.diff(t), 0.25 / SPEED, rtol=0, atol=1e-6)
    k = (t - offset - t0) * SF * SPEED
    np.testing.assert_allclose(k, np.round(k), rtol=0, atol=1e-4)
    # the first window ends warm-up (1 s) + window (2 s) into the received data
    assert round(k[0]) >= 3 * SF - 1

    st = statuses(msgs)
    for s in st:
        validate(STATUS_TOPIC, s)
        assert list(s) == list(STATUS_FIELDS) and s["stream"] == name
    assert any(s["state"] == "connected" for s in st)
    last = st[-1]
    assert last["state"] == "stopped" and last["predictions"] == n_pred
    assert last["samples"] == stats.samples and last["dropped"] == 0
    assert [s["seq"] for s in st] == sorted({s["seq"] for s in st})


# -- 3, 4. BrainFlow ------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_board_run(tmp_path_factory, brainflow_model):
    """SYNTHETIC_BOARD -> run_stream, with BrainFlow's file streamer recording
    every row of the board (the recording feeds the playback test)."""
    pytest.importorskip("brainflow.board_shim")
    from emomon.realtime.sources import BrainFlowSource

    raw = tmp_path_factory.mktemp("bfrec") / "streamed.csv"
    src = BrainFlowSource("SYNTHETIC_BOARD", streamer_params=f"file://{raw}:w")
    src.open(timeout_s=5.0)
    preds: list[tuple[Prediction, dict]] = []
    try:
        with Publisher(PublisherSettings(address=LOOPBACK)) as pub:
            stats = run_stream(
                src,
                model_path=brainflow_model,
                publisher=pub,
                max_predictions=6,
                duration_s=15.0,
                on_prediction=lambda p, pl: preds.append((p, pl)),
            )
        now = pylsl.local_clock()
    finally:
        src.close()  # flushes and closes the streamer file
    return {"stats": stats, "preds": preds, "now": now, "raw": raw, "src": src}


@pytest.mark.integration
def test_brainflow_synthetic_board_streams_predictions(synthetic_board_run):
    run = synthetic_board_run
    preds, stats = run["preds"], run["stats"]
    assert run["src"].sfreq == 250.0  # resampled 250 -> 128 Hz by the pipeline
    assert len(preds) == stats.predictions >= 6
    t = np.array([p.t_lsl for p, _ in preds])
    # window ends on the LSL clock, recent, a hop apart (+- a resampled sample)
    assert run["now"] - 15.0 < t[0] and t[-1] <= run["now"]
    np.testing.assert_allclose(np.diff(t), 0.25, atol=1.5 / SF)
    for p, payload in preds:
        assert p.features.shape == (len(BRAINFLOW_NAMES), 8)
        assert np.isfinite(p.features).all()
        check_prediction_payload(payload, stream="SYNTHETIC_BOARD")
    # BrainFlow stamps samples on the PC as they arrive (jittered, and late
    # after any stall of its thread): the source's sample clock keeps that from
    # looking like sample loss
    assert all(pl["quality"]["ok"] for _, pl in preds), [
        pl["quality"] for _, pl in preds
    ]
    assert stats.dropped == 0


@pytest.mark.integration
def test_brainflow_playback_file_board_streams_predictions(
    synthetic_board_run, brainflow_model, tmp_path
):
    from brainflow.board_shim import BoardIds, BoardShim
    from brainflow.data_filter import DataFilter

    from emomon.realtime.sources import BrainFlowSource

    data = DataFilter.read_file(str(synthetic_board_run["raw"]))
    assert data.shape[1] >= 4 * 250  # the synthetic run lasted > 4 s
    path = tmp_path / "synthetic.csv"
    DataFilter.write_file(data, str(path), "w")
    synth = BoardIds.SYNTHETIC_BOARD.value

    src = BrainFlowSource("PLAYBACK_FILE_BOARD", file=path, master_board=synth)
    chunks: list[np.ndarray] = []
    preds: list[tuple[Prediction, dict]] = []
    src.open(timeout_s=5.0)
    try:
        with Publisher(PublisherSettings(address=LOOPBACK)) as pub:
            stats = run_stream(
                src,
                model_path=brainflow_model,
                publisher=pub,
                max_predictions=3,
                duration_s=12.0,
                on_chunk=lambda d, t: chunks.append(d),
                on_prediction=lambda p, pl: preds.append((p, pl)),
            )
    finally:
        src.close()
    assert len(preds) == stats.predictions >= 3
    # the file's EEG rows, played back in order
    eeg = np.hstack(chunks)
    rows = BoardShim.get_eeg_channels(synth)
    np.testing.assert_allclose(eeg, data[rows, : eeg.shape[1]], rtol=0, atol=1e-9)
    for p, payload in preds:
        assert np.isfinite(p.features).all()
        check_prediction_payload(payload, stream="PLAYBACK_FILE_BOARD")
    # the playback thread's stalls (it never makes them up) are no sample loss
    assert stats.dropped == 0
    assert all(pl["quality"]["ok"] for _, pl in preds)


# -- 5. the real OpenBCI recording ----------------------------------------------------
@pytest.mark.integration
def test_real_openbci_recording_streams_end_to_end(openbci_sample, tmp_path):
    trials = load_trials(file=openbci_sample)
    names = tuple(f"EXG{i}" for i in range(8))
    assert trials[0].ch_names == names and trials[0].sfreq == 250.0
    model = make_model(
        tmp_path / "cyton.onnx",
        ch_names=names,
        sfreq=250.0,
        eeg=trials[0].eeg,
        spec=FeatureSpec(layout="flat", notch=60.0),
    )
    name = unique("emomon-cyton")
    settings = ReplaySettings(
        name=name, speed=SPEED, markers=False, wait_for_consumers_s=5.0
    )
    with (
        Replay(trials, settings=settings, file=openbci_sample) as rep,
        Publisher(PublisherSettings(address=LOOPBACK)) as pub,
        Subscriber(pub.endpoint, topics=(PREDICTION_TOPIC,)) as sub,
    ):
        wait_subscribed(pub, 1)
        th, _ = start_replay(rep)
        src = LSLSource(name, timeout_s=5.0)
        src.open()
        try:
            assert src.ch_names == names and src.sfreq == 250.0
            run = StreamThread(
                src,
                model_path=model,
                publisher=pub,
                settings=PipelineSettings(time_scale=SPEED),
                max_predictions=12,
                duration_s=15.0,
            ).start()
            msgs = receive_until(sub, lambda m: len(m) >= 12, timeout_s=15.0)
            stats = run.join()
        finally:
            src.close()
        rep.stop()
        th.join(5.0)
    assert stats.predictions == 12 and stats.dropped == 0
    assert [m.seq for m in msgs] == list(range(12))
    for (p, _), m in zip(run.preds, msgs, strict=True):
        assert p.features.shape == (8, 8) and np.isfinite(p.features).all()
        check_prediction_payload(m.payload, stream=name)
    # the Cyton's DC offsets (tens of mV) are within range: windows are usable
    assert all(m.payload["quality"]["ok"] for m in msgs), [
        m.payload["quality"] for m in msgs
    ]


# -- 6. the command line --------------------------------------------------------------
def _cli(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emomon.cli", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # LSLAPICFG is inherited
    )


def _finish(proc: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _looping_replay(trials, name: str) -> tuple[Replay, threading.Thread]:
    rep = Replay(trials, settings=ReplaySettings(name=name, speed=2.0, loop=True,
                                                 markers=False))  # fmt: skip
    rep.open()
    th, _ = start_replay(rep)
    return rep, th


@pytest.mark.integration
def test_cli_stream_and_listen(synthetic_trials, deap_model):
    name = unique("emomon-cli")
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    rep, th = _looping_replay(synthetic_trials, name)
    try:
        listen = _cli("listen", "--count", "3", "--json", "--topic", "prediction",
                      "--address", address, "--duration", "25")  # fmt: skip
        stream = _cli("stream", "--source", "lsl", "--name", name, "--model",
                      str(deap_model), "--address", address, "--duration", "4",
                      "--quiet", "--timeout", "10")  # fmt: skip
        s_out, s_err = _finish(stream, 30.0)
        l_out, l_err = _finish(listen, 30.0)
    finally:
        rep.close()
        th.join(5.0)
    assert stream.returncode == 0, s_err
    assert f"emomon stream: {name} (32 ch @ 128 Hz)" in s_err
    summary = [ln for ln in s_err.splitlines() if ln.startswith("stopped: ")]
    assert len(summary) == 1, s_err
    n_pred = int(summary[0].split(" predictions")[0].rsplit(" ", 1)[1])
    assert n_pred >= 3 and " 0 dropped" in summary[0], summary
    assert "\r" not in s_err  # --quiet: no status line

    assert listen.returncode == 0, l_err
    lines = l_out.splitlines()
    assert len(lines) == 3, l_out
    payloads = [json.loads(line) for line in lines]
    for p in payloads:
        check_prediction_payload(p, stream=name)
    seqs = [p["seq"] for p in payloads]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert "3 message(s), 0 missed" in l_err


@pytest.mark.integration
def test_cli_stream_stops_cleanly_on_sigint(synthetic_trials, deap_model):
    name = unique("emomon-sigint")
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    rep, th = _looping_replay(synthetic_trials, name)
    try:
        with Subscriber(address) as sub:
            stream = _cli("stream", "--source", "lsl", "--name", name, "--model",
                          str(deap_model), "--address", address, "--quiet",
                          "--timeout", "10")  # fmt: skip
            try:
                msgs = receive_until(
                    sub, lambda m: len(predictions(m)) >= 2, timeout_s=25.0
                )
                assert len(predictions(msgs)) >= 2, stream.poll()
                assert stream.poll() is None
                stream.send_signal(signal.SIGINT)
                # the clean shutdown publishes a final "stopped" status
                msgs = receive_until(
                    sub,
                    lambda m: any(s["state"] == "stopped" for s in statuses(m)),
                    timeout_s=10.0,
                    into=msgs,
                )
                _, err = _finish(stream, 10.0)
            finally:
                if stream.poll() is None:
                    stream.kill()
                    stream.communicate()
    finally:
        rep.close()
        th.join(5.0)
    assert stream.returncode == 0, err
    assert "stopped: " in err and "Traceback" not in err
    assert any(s["state"] == "stopped" for s in statuses(msgs))
    seqs = [p["seq"] for p in predictions(msgs)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
