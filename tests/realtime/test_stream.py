"""``emomon stream`` end to end: real LSL/BrainFlow sources, onnxruntime, ZeroMQ.

Everything here is real: liblsl outlets and inlets on this machine (the LSL
session of ``tests/realtime/conftest.py``, a unique stream name per test), ZeroMQ
sockets on 127.0.0.1 with OS-chosen ports, the exported ONNX model run by
onnxruntime, BrainFlow's SYNTHETIC_BOARD and PLAYBACK_FILE_BOARD. Replays and
streams run in threads of the test process (the ``live_rig`` fixture), or as
``python -m emomon.cli`` subprocesses where the CLI itself is under test. There
are no sleeps used as synchronisation: every wait is a bounded library call
(``Source.read``, ``Subscriber.recv``, ``poll_subscriptions``,
``Thread.join``) inside a loop bounded by a deadline and an iteration count.

Replay speed and timestamps: a replay at speed ``s`` stamps sample ``k`` with
``t0 + k / (sfreq * s)`` (see :mod:`emomon.realtime.replay`) and announces
``s`` in its stream description, so the pipeline runs with ``time_scale=s`` and
consecutive predictions' ``t_lsl`` (the LSL time of a window's last sample) are
``hop_n / (sfreq * s)`` = ``hop_s / s`` seconds apart, not ``hop_s``.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pylsl
import pytest

from emomon.config import FeatureSpec
from emomon.contract import ModelContract, model_digest
from emomon.dsp.features import compute_features
from emomon.realtime.loading import load_trials
from emomon.realtime.messages import (
    PREDICTION_TOPIC,
    STATUS_FIELDS,
    STATUS_TOPIC,
    PredictionMessage,
    StatusMessage,
    validate,
)
from emomon.realtime.model import load_model
from emomon.realtime.pipeline import Prediction, map_channels
from emomon.realtime.publish import Publisher, PublisherSettings
from emomon.realtime.replay import ReplaySettings
from emomon.realtime.sinks import Sink
from emomon.realtime.sources import ReplaySource
from emomon.realtime.sources.base import Chunk
from emomon.realtime.stream import StreamSettings, StreamStats, run_stream
from emomon.realtime.subscribe import Subscriber

from .helpers import (
    LOOPBACK,
    SF,
    TASKS,
    Collect,
    check_prediction_payload,
    free_tcp_port,
    predictions,
    receive_until,
    signal_quality,
    statuses,
    unique,
)
from .models import make_model, offline_probabilities

SPEED = 4.0
BRAINFLOW_NAMES = ("Fz", "C3", "Cz", "C4", "Pz", "Oz", "F3", "F4")


@pytest.fixture(scope="module")
def brainflow_model(tmp_path_factory) -> Path:
    """8 of SYNTHETIC_BOARD's EEG channels at 128 Hz: the board's 250 Hz is
    resampled by the pipeline."""
    path = tmp_path_factory.mktemp("bf") / "model.onnx"
    return make_model(path, ch_names=BRAINFLOW_NAMES, sfreq=SF)


# -- 1. parity: live == offline --------------------------------------------------------
class _StopAtLast(Collect):
    """Collects, and sets ``stop`` once the chunk holding the session's last
    sample arrived (checked by the loop after that chunk's predictions)."""

    def __init__(self, stop: threading.Event, last_due: float, rate: float) -> None:
        super().__init__()
        self.stop, self.last_due, self.rate = stop, last_due, rate

    def on_chunk(self, chunk: Chunk) -> None:
        super().on_chunk(chunk)
        if chunk.timestamps[-1] >= self.last_due - 0.5 / self.rate:
            self.stop.set()


@pytest.mark.integration
def test_live_stream_equals_offline_features_and_probabilities(
    live_rig, synthetic_trials, deap_model
):
    """The acceptance test: replay -> LSL -> run_stream gives, for every window,
    the features and probabilities of one offline pass over the same samples."""
    name = unique("emomon-parity")
    rig = live_rig()
    rep = rig.replay(
        synthetic_trials,
        ReplaySettings(name=name, speed=SPEED, markers=False, wait_for_consumers_s=5.0),
    )
    contract = ModelContract.from_onnx(deap_model)
    rate = SF * SPEED
    n = rep.session.n_times
    # A fixed clock offset (no refresh during the run) keeps timestamps exact.
    src = rig.lsl(name, clock_update_s=60.0)
    offset = src.clock_offset
    stop = threading.Event()
    got = _StopAtLast(stop, rep.t0 + (n - 1) / rate + offset, rate)
    stats = run_stream(
        src,
        load_model(deap_model),
        sinks=[rig.pub, got],
        settings=StreamSettings(duration_s=n / rate + 10.0),
        stop_event=stop,
    )
    chunks, preds, ch_names, t0 = got.chunks, got.preds, src.ch_names, rep.t0
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
        got_p = np.stack([p.probs[task] for p, _ in preds])
        assert np.abs(got_p - ref[task]).max() < 1e-5, task
        # and the published p_high is the online probability of "high"
        p_high = np.array([pl[task]["p_high"] for _, pl in preds])
        np.testing.assert_array_equal(p_high, got_p[:, 1])
    assert all(p.quality.ok for p, _ in preds)
    assert stats.dropped == 0
    assert stats.flagged == 0
    assert stats.samples == n - k0
    # t_lsl advances by hop / speed (32 samples at 128 Hz * 4)
    np.testing.assert_allclose(np.diff(t_on), 0.25 / SPEED, rtol=0, atol=1e-9)


# -- 2. the wire: a real Subscriber ----------------------------------------------------
@pytest.mark.integration
def test_subscriber_receives_consecutive_valid_predictions_and_status(
    live_rig, synthetic_trials, deap_model
):
    name = unique("emomon-wire")
    n_pred = 16
    t_start = time.time()
    rig = live_rig()
    rep, src, run = rig.replay_and_stream(
        synthetic_trials,
        ReplaySettings(name=name, speed=SPEED, markers=False, wait_for_consumers_s=5.0),
        deap_model,
        source={"clock_update_s": 60.0},
        max_predictions=n_pred,
        duration_s=20.0,
    )
    offset = src.clock_offset
    msgs = rig.receive_until(
        lambda m: any(s["state"] == "stopped" for s in statuses(m)), timeout_s=20.0
    )
    stats = run.join()
    t0 = rep.t0
    assert rig.sub.invalid == 0, rig.sub.last_error  # every message passed parse()
    assert rig.sub.missed[PREDICTION_TOPIC] == 0
    t_end = time.time()

    preds = predictions(msgs)
    assert (
        [p["seq"] for p in preds]
        == list(range(n_pred))
        == list(range(stats.predictions))
    )
    for p in preds:
        check_prediction_payload(p, stream=name)
        assert signal_quality(p) == {"ok": True, "bad_channels": [], "dropped": 0}
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
        assert list(s) == list(STATUS_FIELDS)
        assert s["stream"] == name
    assert any(s["state"] == "connected" for s in st)
    last = st[-1]
    assert last["state"] == "stopped"
    assert last["predictions"] == n_pred
    assert last["samples"] == stats.samples
    assert last["dropped"] == 0
    assert [s["seq"] for s in st] == sorted({s["seq"] for s in st})


# -- 3. a sink is one small class ------------------------------------------------------
class _Keep(Sink):
    """Keeps every message it is handed, as JSON (a sink written by a user)."""

    def __init__(self) -> None:
        self.frames: list[list[bytes]] = []

    def on_prediction(self, message: PredictionMessage, window: Prediction) -> None:
        self.frames.append(message.frames())

    def on_status(self, message: StatusMessage) -> None:
        self.frames.append(message.frames())


@pytest.mark.integration
def test_a_collecting_sink_gets_exactly_what_a_zeromq_subscriber_gets(
    live_rig, synthetic_trials, deap_model
):
    """A user's sink (queued by run_stream: it declares nothing) and a real
    ZeroMQ subscriber of the same run receive the same messages, byte for byte."""
    rig = live_rig()
    rig.subscribed()
    keep = _Keep()
    with ReplaySource(synthetic_trials, name=unique("emomon-sink"), speed=16.0) as src:
        stats = run_stream(
            src,
            load_model(deap_model),
            sinks=[rig.pub, keep],
            settings=StreamSettings(max_predictions=20, duration_s=20.0),
        )
    msgs = rig.receive_until(
        lambda m: any(s["state"] == "stopped" for s in statuses(m)), timeout_s=5.0
    )
    assert stats.predictions == 20
    assert stats.sink_drops == {"zeromq": 0, "_Keep": 0}
    wire = [
        [m.topic.encode("ascii"), (m.prediction or m.status).to_json()] for m in msgs
    ]
    assert len(keep.frames) == len(wire) >= 22  # 20 predictions and the statuses
    assert keep.frames == wire


# -- 4, 5. BrainFlow ------------------------------------------------------------------
def _run_board(src, model: Path, **settings) -> tuple[StreamStats, Collect]:
    """``run_stream`` over an opened BrainFlow source, publishing on loopback;
    closes the source (which flushes BrainFlow's streamer file)."""
    got = Collect()
    try:
        with Publisher(PublisherSettings(address=LOOPBACK)) as pub:
            stats = run_stream(
                src,
                load_model(model),
                sinks=[pub, got],
                settings=StreamSettings(**settings),
            )
    finally:
        src.close()
    return stats, got


@pytest.fixture(scope="module")
def synthetic_board_run(tmp_path_factory, brainflow_model):
    """SYNTHETIC_BOARD -> run_stream, with BrainFlow's file streamer recording
    every row of the board (the recording feeds the playback test)."""
    pytest.importorskip("brainflow.board_shim")
    from emomon.realtime.sources import BrainFlowSource

    raw = tmp_path_factory.mktemp("bfrec") / "streamed.csv"
    src = BrainFlowSource("SYNTHETIC_BOARD", streamer_params=f"file://{raw}:w")
    src.open(timeout_s=5.0)
    stats, got = _run_board(src, brainflow_model, max_predictions=6, duration_s=15.0)
    now = pylsl.local_clock()
    return {"stats": stats, "preds": got.preds, "now": now, "raw": raw, "src": src}


@pytest.mark.integration
def test_brainflow_synthetic_board_streams_predictions(synthetic_board_run):
    run = synthetic_board_run
    preds, stats = run["preds"], run["stats"]
    assert run["src"].sfreq == 250.0  # resampled 250 -> 128 Hz by the pipeline
    assert len(preds) == stats.predictions >= 6
    t = np.array([p.t_lsl for p, _ in preds])
    # window ends on the LSL clock, recent, a hop apart (+- a resampled sample)
    assert run["now"] - 15.0 < t[0]
    assert t[-1] <= run["now"]
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
    src.open(timeout_s=5.0)
    stats, got = _run_board(src, brainflow_model, max_predictions=3, duration_s=12.0)
    preds = got.preds
    assert len(preds) == stats.predictions >= 3
    # the file's EEG rows, played back in order
    eeg = np.hstack([d for d, _ in got.chunks])
    rows = BoardShim.get_eeg_channels(synth)
    np.testing.assert_allclose(eeg, data[rows, : eeg.shape[1]], rtol=0, atol=1e-9)
    for p, payload in preds:
        assert np.isfinite(p.features).all()
        check_prediction_payload(payload, stream="PLAYBACK_FILE_BOARD")
    # the playback thread's stalls (it never makes them up) are no sample loss
    assert stats.dropped == 0
    assert all(pl["quality"]["ok"] for _, pl in preds)


# -- 6. the real OpenBCI recording ----------------------------------------------------
@pytest.mark.integration
def test_real_openbci_recording_streams_end_to_end(live_rig, openbci_sample, tmp_path):
    trials = load_trials(file=openbci_sample)
    names = tuple(f"EXG{i}" for i in range(8))
    assert trials[0].ch_names == names
    assert trials[0].sfreq == 250.0
    model = make_model(
        tmp_path / "cyton.onnx",
        ch_names=names,
        sfreq=250.0,
        eeg=trials[0].eeg,
        spec=FeatureSpec(layout="flat", notch=60.0),
    )
    name = unique("emomon-cyton")
    rig = live_rig(topics=(PREDICTION_TOPIC,))
    rig.subscribed()
    rig.replay(
        trials,
        ReplaySettings(name=name, speed=SPEED, markers=False, wait_for_consumers_s=5.0),
        file=openbci_sample,
    )
    src = rig.lsl(name)
    assert src.ch_names == names
    assert src.sfreq == 250.0
    run = rig.stream(src, model, max_predictions=12, duration_s=15.0)
    msgs = rig.receive_until(lambda m: len(m) >= 12, timeout_s=15.0)
    stats = run.join()
    assert stats.predictions == 12
    assert stats.dropped == 0
    assert [m.seq for m in msgs] == list(range(12))
    for (p, _), m in zip(run.preds, msgs, strict=True):
        assert p.features.shape == (8, 8)
        assert np.isfinite(p.features).all()
        check_prediction_payload(m.payload, stream=name)
    # the Cyton's DC offsets (tens of mV) are within range: windows are usable
    assert all(m.payload["quality"]["ok"] for m in msgs), [
        m.payload["quality"] for m in msgs
    ]


# -- 7. the command line --------------------------------------------------------------
def _looping_replay(rig, trials, name: str):
    return rig.replay(
        trials, ReplaySettings(name=name, speed=2.0, loop=True, markers=False)
    )


@pytest.mark.integration
def test_cli_stream_and_listen(live_rig, emomon_cli, synthetic_trials, deap_model):
    name = unique("emomon-cli")
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    _looping_replay(live_rig(), synthetic_trials, name)
    listen = emomon_cli.start("listen", "--count", "3", "--json", "--topic",
                              "prediction", "--address", address, "--duration",
                              "25")  # fmt: skip
    stream = emomon_cli.start("stream", "--source", "lsl", "--name", name, "--model",
                              str(deap_model), "--address", address, "--duration",
                              "4", "--quiet", "--timeout", "10")  # fmt: skip
    s_out, s_err = emomon_cli.finish(stream, 30.0)
    l_out, l_err = emomon_cli.finish(listen, 30.0)
    assert stream.returncode == 0, s_err
    assert f"emomon stream: {name} (32 ch @ 128 Hz)" in s_err
    summary = [ln for ln in s_err.splitlines() if ln.startswith("stopped: ")]
    assert len(summary) == 1, s_err
    n_pred = int(summary[0].split(" predictions")[0].rsplit(" ", 1)[1])
    assert n_pred >= 3, summary
    assert " 0 dropped" in summary[0], summary
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
def test_cli_stream_stops_cleanly_on_sigint(
    live_rig, emomon_cli, synthetic_trials, deap_model
):
    name = unique("emomon-sigint")
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    rig = live_rig()
    _looping_replay(rig, synthetic_trials, name)
    with Subscriber(address) as sub:
        stream = emomon_cli.start("stream", "--source", "lsl", "--name", name,
                                  "--model", str(deap_model), "--address", address,
                                  "--quiet", "--timeout", "10")  # fmt: skip
        msgs = receive_until(sub, lambda m: len(predictions(m)) >= 2, timeout_s=25.0)
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
        _, err = emomon_cli.finish(stream, 10.0)
    assert stream.returncode == 0, err
    assert "stopped: " in err
    assert "Traceback" not in err
    assert any(s["state"] == "stopped" for s in statuses(msgs))
    seqs = [p["seq"] for p in predictions(msgs)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
