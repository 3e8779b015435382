"""Session recording (``emomon stream --record``): spool, FIF, recovery, replay.

Unit tests write with :class:`SessionRecorder` directly and read back with MNE.
The integration tests are real end to end: a replay through liblsl into
``run_stream`` with a recorder attached, the saved FIF served again by emomon's
``Replay`` (the ``replay --file`` path, MNE reader) into a second ``run_stream``;
and the ``emomon stream --record`` command line stopped by SIGTERM, SIGINT and
SIGKILL (then ``emomon recover``). Waits are bounded library calls in loops with
deadlines, as in ``test_stream.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pytest

from emomon.cli import main as cli_main
from emomon.contract import model_digest
from emomon.datasets import Trial
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.realtime.loading import load_trials
from emomon.realtime.messages import PredictionMessage
from emomon.realtime.model import load_model
from emomon.realtime.pipeline import Prediction
from emomon.realtime.record import (
    DESCRIPTION_KEY,
    RecordError,
    RecorderSettings,
    SessionRecorder,
    read_recording,
    recording_paths,
)
from emomon.realtime.replay import ReplaySettings
from emomon.realtime.sources import ReplaySource
from emomon.realtime.stream import StreamSettings, run_stream
from emomon.realtime.subscribe import Subscriber

from .helpers import (
    SF,
    Collect,
    assert_can_bind,
    free_tcp_port,
    inlet_lost,
    open_inlet,
    predictions,
    receive_until,
    statuses,
    unique,
)
from .models import make_model

REPO = Path(__file__).resolve().parents[2]
SPEED = 8.0
NAMES = ("Fp1", "Fp2", "C3", "Cz", "C4", "O1", "Oz", "O2")
MODEL_CHANNELS = DEAP_CHANNELS[:8]


def _payload(seq: int, t_lsl: float, p: float | None) -> PredictionMessage:
    return PredictionMessage.build(
        seq=seq,
        stream="amp",
        t_lsl=t_lsl,
        window_s=2.0,
        tasks={
            "valence": (p, None if p is None else ("high" if p > 0.5 else "low")),
            "arousal": (None if p is None else 1 - p, None if p is None else "low"),
        },
        quality={"ok": p is not None, "bad_channels": [], "dropped": 0},
        latency_ms=1.5,
        model="sha256-0123456789ab",
    )


def _read_fif(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MNE's naming advice for "session.fif"
        return mne.io.read_raw_fif(path, preload=True, verbose="error")


def _signal(n_ch: int, n: int, seed: int = 0) -> np.ndarray:
    """µV noise as an LSL float32 amplifier delivers it, shape (n_ch, n)."""
    x = np.random.default_rng(seed).standard_normal((n_ch, n)) * 25.0
    return x.astype(np.float32).astype(np.float64)


# -- unit: writing, reading back, recovery -----------------------------------------
def test_recording_reads_back_exactly_with_predictions(tmp_path):
    n = 2000
    x = _signal(len(NAMES), n)
    x[:, 7] = np.pi * 1e3  # a float64 value: checked to one ulp
    ts = 500.0 + np.arange(n) / SF
    ts[1200:] += 0.5  # a dropout: the gap must stay visible
    path = tmp_path / "session.fif"
    payloads: list[tuple[int, PredictionMessage]] = []
    with SessionRecorder(
        path,
        ch_names=NAMES,
        sfreq=SF,
        stream_name="amp",
        source_id="amp-123",
        model="sha256-0123456789ab",
        metadata={"hop_s": 0.25},
    ) as rec:
        assert rec.state == "recording"
        assert recording_paths(path).spool.is_dir()
        pos = 0
        for i, size in enumerate([1, 5, 17, 300, 33] * 12):
            if pos >= n:
                break
            rec.write_chunk(x[:, pos : pos + size], ts[pos : pos + size])
            pos = min(pos + size, n)
            if i % 3 == 2:  # a prediction on a sample of the chunk just written
                k = pos - 1 - (i % 5)
                pl = _payload(len(payloads), float(ts[k]), None if i == 8 else 0.25)
                rec.write_prediction(pl)
                payloads.append((k, pl))
        assert rec.n_samples == n
        assert rec.n_predictions == len(payloads)
    files = rec.close()  # idempotent after the with block
    assert rec.state == "closed"
    assert files is rec.close()
    assert files.fif == (path,)
    assert files.n_samples == n
    assert not recording_paths(path).spool.exists()
    with pytest.raises(RecordError, match="closed"):
        rec.write_chunk(x[:, :1], ts[:1])

    raw = _read_fif(path)
    assert raw.ch_names == list(NAMES)
    assert raw.info["sfreq"] == SF
    assert set(raw.get_channel_types()) == {"eeg"}
    volts = mne.io.constants.FIFF.FIFF_UNIT_V
    assert all(ch["unit"] == volts for ch in raw.info["chs"])
    data = raw.get_data()
    assert data.dtype == np.float64
    assert data.shape == (len(NAMES), n)
    np.testing.assert_array_equal(data, x / 1e6)  # the file holds uV / 1e6 exactly
    np.testing.assert_array_max_ulp(data * 1e6, x, maxulp=1)  # uV within an ulp
    # float32 samples (what LSL delivers and a replay serves) come back exact
    float32 = np.ones(x.shape, dtype=bool)
    float32[:, 7] = False
    np.testing.assert_array_equal(
        (data * 1e6).astype(np.float32)[float32], x.astype(np.float32)[float32]
    )

    rec_read = read_recording(path)
    d = rec_read.description
    assert d[DESCRIPTION_KEY] == 1
    assert d["stream"] == "amp"
    assert d["source_id"] == "amp-123"
    assert d["model"] == "sha256-0123456789ab"
    assert d["n_samples"] == n
    assert d["n_predictions"] == len(payloads)
    assert d["first_sample_lsl"] == ts[0]
    assert d["last_sample_lsl"] == ts[-1]
    assert d["max_step_s"] == pytest.approx(0.5 + 1 / SF)
    assert d["metadata"] == {"hop_s": 0.25}
    assert d["recovered"] is False
    np.testing.assert_array_equal(rec_read.timestamps, ts)
    assert raw.info["meas_date"] is not None

    # predictions: annotations on the window's last sample, and the exact payloads
    ann = raw.annotations
    assert len(ann) == len(payloads)
    np.testing.assert_array_equal(
        np.round(ann.onset * SF).astype(int), [k for k, _ in payloads]
    )
    assert np.all(ann.duration == 0)
    assert ann.description[0] == (
        "emomon/prediction;seq=0;valence=0.250000;arousal=0.750000;ok=1"
    )
    assert "valence=none;arousal=none;ok=0" in ann.description[2]
    lines = files.predictions.read_bytes().splitlines()
    assert lines == [pl.to_json() for _, pl in payloads]
    assert rec_read.predictions == [json.loads(line) for line in lines]

    # the replay's reader serves the whole recording (emomon/ annotations are
    # not trials), in µV
    trials = load_trials(file=path)
    assert len(trials) == 1
    assert trials[0].ch_names == NAMES
    np.testing.assert_array_max_ulp(trials[0].eeg, x, maxulp=1)


_KILLED_WRITER = """
import os, signal, sys
import numpy as np
from emomon.realtime.messages import PredictionMessage
from emomon.realtime.record import RecorderSettings, SessionRecorder

rec = SessionRecorder(sys.argv[1], ch_names=["Fz", "Cz", "Pz"], sfreq=100.0,
                      settings=RecorderSettings(fsync_interval_s=0.0))
for i in range(40):
    x = np.full((3, 10), float(i)) + np.arange(10) / 10
    rec.write_chunk(x, 10.0 + (i * 10 + np.arange(10)) / 100.0)
    if i % 10 == 9:
        rec.write_prediction(PredictionMessage.build(
            seq=i // 10, stream="s", t_lsl=10.0 + (i * 10 + 9) / 100.0,
            window_s=2.0, tasks={"valence": (0.5, "high")},
            quality={"ok": True, "bad_channels": [], "dropped": 0},
            latency_ms=1.0, model="m"))
print("written", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_spool_of_a_killed_process_is_recovered(tmp_path):
    path = tmp_path / "crash.fif"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout == "written\n"
    paths = recording_paths(path)
    assert paths.spool.is_dir()
    assert not path.exists()
    # a kill in the middle of a write: half a sample and half a prediction line
    with open(paths.spool_eeg, "ab") as f:
        f.write(b"\x00" * 12)
    with open(paths.spool_predictions, "ab") as f:
        f.write(b'400\t{"v":1,"se')

    with pytest.raises(RecordError, match="emomon recover"):
        SessionRecorder(path, ch_names=["Fz"], sfreq=100.0)  # the spool is kept

    assert cli_main(["recover", str(paths.spool)]) == 0
    assert not paths.spool.exists()
    rec = read_recording(path)
    assert rec.description["recovered"] is True
    data = rec.raw.get_data() * 1e6
    assert data.shape == (3, 400)
    expected = np.repeat(np.arange(40.0), 10) + np.tile(np.arange(10) / 10, 40)
    np.testing.assert_allclose(data, np.tile(expected, (3, 1)), rtol=1e-15)
    np.testing.assert_array_equal(rec.timestamps, 10.0 + np.arange(400) / 100.0)
    assert [p["seq"] for p in rec.predictions] == [0, 1, 2, 3]
    np.testing.assert_array_equal(
        np.round(rec.raw.annotations.onset * 100.0), [99, 199, 299, 399]
    )
    with pytest.raises(RecordError, match="no unfinished recording"):
        SessionRecorder.recover(path)


def test_failing_disk_stops_writes_and_keeps_the_samples(tmp_path, monkeypatch):
    path = tmp_path / "full.fif"
    rec = SessionRecorder(
        path, ch_names=NAMES, sfreq=SF, settings=RecorderSettings(fsync_interval_s=0)
    )
    x = _signal(len(NAMES), 300)
    rec.write_chunk(x[:, :200], np.arange(200) / SF)
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(RecordError, match=r"No space left.*emomon recover"):
        rec.write_chunk(x[:, 200:], np.arange(200, 300) / SF)
    assert rec.state == "failed"
    with pytest.raises(RecordError, match="failed"):
        rec.write_chunk(x[:, :1], np.zeros(1))
    with pytest.raises(RecordError, match="No space left"):
        rec.close()  # cannot sync: the spool stays for recover
    assert recording_paths(path).spool.is_dir()
    monkeypatch.setattr(os, "fsync", real_fsync)
    files = rec.close()  # space again: finish
    assert files.n_samples == 300  # the failed chunk did reach the OS cache
    np.testing.assert_array_max_ulp(_read_fif(path).get_data() * 1e6, x, maxulp=1)


def test_long_recording_is_split_and_read_whole(tmp_path):
    n_ch, n = 8, 90_000  # 5.8 MB of float64 > a 4 MB split size
    x = _signal(n_ch, n, seed=1)
    ts = np.arange(n) / 250.0
    path = tmp_path / "long.fif"
    rec = SessionRecorder(
        path,
        ch_names=NAMES,
        sfreq=250.0,
        settings=RecorderSettings(split_size="4MB"),
    )
    for a in range(0, n, 5000):  # never more than a chunk in memory
        rec.write_chunk(x[:, a : a + 5000], ts[a : a + 5000])
    files = rec.close()
    assert files.fif == (path, tmp_path / "long-1.fif")
    np.testing.assert_array_equal(_read_fif(path).get_data(), x / 1e6)
    # A shorter session over it leaves no stale part behind.
    rec = SessionRecorder(
        path,
        ch_names=NAMES,
        sfreq=250.0,
        settings=RecorderSettings(split_size="4MB", overwrite=True),
    )
    rec.write_chunk(x[:, :500], ts[:500])
    assert rec.close().fif == (path,)
    assert sorted(p.name for p in tmp_path.glob("long*.fif")) == ["long.fif"]
    np.testing.assert_array_equal(_read_fif(path).get_data(), x[:, :500] / 1e6)


def test_recorder_refuses_bad_paths_and_input(tmp_path):
    with pytest.raises(RecordError, match=r"session\.edf.*ending in \.fif"):
        SessionRecorder(tmp_path / "session.edf", ch_names=NAMES, sfreq=SF)
    missing = tmp_path / "no" / "such" / "s.fif"
    with pytest.raises(RecordError, match=r"directory .*such does not exist"):
        SessionRecorder(missing, ch_names=NAMES, sfreq=SF)
    with pytest.raises(RecordError, match="duplicate channel names Cz"):
        SessionRecorder(tmp_path / "a.fif", ch_names=["Cz", "Cz"], sfreq=SF)
    with pytest.raises(RecordError, match="no regular sampling rate"):
        SessionRecorder(tmp_path / "a.fif", ch_names=NAMES, sfreq=0.0)
    (tmp_path / "b.predictions.jsonl").write_text("")
    with pytest.raises(RecordError, match=r"b\.predictions\.jsonl exists.*overwrite"):
        SessionRecorder(tmp_path / "b.fif", ch_names=NAMES, sfreq=SF)
    rec = SessionRecorder(
        tmp_path / "b.fif",
        ch_names=NAMES,
        sfreq=SF,
        settings=RecorderSettings(overwrite=True),
    )
    with pytest.raises(RecordError, match=r"chunk of shape \(3, 4\)"):
        rec.write_chunk(np.zeros((3, 4)), np.zeros(4))
    files = rec.close()  # nothing arrived: nothing written, the spool removed
    assert files.fif == ()
    assert files.n_samples == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.predictions.jsonl"]
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(RecordError, match="not writable"):
            SessionRecorder(ro / "s.fif", ch_names=NAMES, sfreq=SF)


# -- integration: live -> recording -> replay -> same probabilities -----------------
@pytest.fixture(scope="module")
def model(tmp_path_factory, synthetic_trials) -> Path:
    """8 of the 32 DEAP channels (the pipeline picks them by name)."""
    path = tmp_path_factory.mktemp("recmodel") / "model.onnx"
    eeg = np.hstack([np.hstack([t.baseline, t.eeg]) for t in synthetic_trials])
    return make_model(path, ch_names=MODEL_CHANNELS, sfreq=SF, eeg=eeg[:8])


def _stream(
    rig: Any,
    trials: list[Trial] | Any,
    model: Path,
    *,
    n_pred: int,
    file: Path | None = None,
    recorder: SessionRecorder | None = None,
) -> dict[str, Any]:
    """Replay ``trials`` over LSL into ``run_stream`` for ``n_pred`` predictions
    (the recorder, when given, is one more sink)."""
    name = unique("emomon-rec")
    settings = ReplaySettings(
        name=name, speed=SPEED, markers=False, wait_for_consumers_s=5.0
    )
    rep = rig.replay(trials, settings, file=file)
    src = rig.lsl(name, clock_update_s=60.0)
    run = rig.stream(
        src,
        model,
        sinks=[] if recorder is None else [recorder],
        max_predictions=n_pred,
        duration_s=20.0,
    )
    stats = run.join(30.0)
    ch_names, offset = src.ch_names, src.clock_offset
    ts = np.concatenate([t for _, t in run.chunks])
    return {
        "stats": stats,
        "preds": run.preds,
        "eeg": np.hstack([d for d, _ in run.chunks]),
        "ts": ts,
        "ch_names": ch_names,
        # samples the inlet missed at the start (the replay waits for it: 0)
        "k0": round((ts[0] - offset - rep.t0) * SF * SPEED),
    }


def _window_ends(run: dict[str, Any]) -> np.ndarray:
    """Each prediction's window end as a sample index from the first received."""
    t = np.array([p.t_lsl for p, _ in run["preds"]])
    k = np.searchsorted(run["ts"], t)
    np.testing.assert_array_equal(run["ts"][k], t)  # t_lsl is a sample's stamp
    return k


@pytest.mark.integration
def test_recorded_session_replays_to_the_same_predictions(
    tmp_path, live_rig, synthetic_trials, model
):
    n_pred = 24
    path = tmp_path / "session.fif"
    with SessionRecorder(
        path,
        ch_names=DEAP_CHANNELS,  # what the replay announces
        sfreq=SF,
        model=model_digest(model),
    ) as rec:
        live = _stream(live_rig(), synthetic_trials, model, n_pred=n_pred, recorder=rec)
    files = rec.close()
    assert live["ch_names"] == DEAP_CHANNELS
    assert files.n_samples == live["eeg"].shape[1] == live["stats"].samples
    assert files.n_predictions == n_pred == len(live["preds"])

    # the recording holds what was received and where each prediction was made
    recording = read_recording(path)
    np.testing.assert_array_equal(recording.timestamps, live["ts"])
    ends_live = _window_ends(live)
    np.testing.assert_array_equal(
        np.round(recording.raw.annotations.onset * SF).astype(int), ends_live
    )
    assert recording.predictions == [
        json.loads(PredictionMessage.from_dict(pl).to_json()) for _, pl in live["preds"]
    ]

    # `emomon replay --file session.fif` path: MNE reader -> Replay -> LSL
    trials = load_trials(file=path)
    assert len(trials) == 1
    assert trials[0].ch_names == DEAP_CHANNELS
    again = _stream(live_rig(), trials, model, n_pred=n_pred, file=path)
    assert again["k0"] == 0, "the second inlet missed the first samples"
    n2 = again["eeg"].shape[1]
    np.testing.assert_array_equal(again["eeg"], live["eeg"][:, :n2])  # sample-exact
    np.testing.assert_array_equal(_window_ends(again), ends_live)  # same windows

    diff = 0.0
    for (p1, pl1), (p2, pl2) in zip(live["preds"], again["preds"], strict=True):
        assert pl1["quality"]["ok"]
        assert pl2["quality"]["ok"]
        for task in ("valence", "arousal"):
            diff = max(diff, float(np.abs(p1.probs[task] - p2.probs[task]).max()))
            assert abs(pl1[task]["p_high"] - pl2[task]["p_high"]) <= 1e-5
    print(f"max probability difference live vs re-streamed recording: {diff:.3g}")
    assert diff <= 1e-5


def _score_in_process(trials: list[Trial], model: Path) -> list[Prediction]:
    got = Collect()
    with ReplaySource(trials) as src:
        run_stream(src, load_model(model), sinks=[got],
                   settings=StreamSettings(duration_s=60.0))  # fmt: skip
    return [p for p, _ in got.preds]


def test_a_session_with_dropouts_replays_with_the_same_flags(
    tmp_path, synthetic_trials, model
):
    """NaN bursts received live are recorded and served again as they were, so
    the re-scored session flags the same windows and predicts the others alike."""
    eeg = np.hstack([synthetic_trials[0].baseline, synthetic_trials[0].eeg])
    eeg[2:5, 600:640] = np.nan  # three channels drop out for 0.3 s
    eeg[:, 1200:1203] = np.inf
    path = tmp_path / "dropouts.fif"
    ts = 1000.0 + np.arange(eeg.shape[1]) / SF
    with SessionRecorder(path, ch_names=DEAP_CHANNELS, sfreq=SF) as rec:
        for i in range(0, eeg.shape[1], 32):
            rec.write_chunk(eeg[:, i : i + 32], ts[i : i + 32])
    trials = load_trials(file=path)  # the `emomon replay --file` reader
    got = trials[0].eeg
    np.testing.assert_array_equal(np.isnan(got), np.isnan(eeg))  # where they were
    np.testing.assert_array_equal(np.isinf(got), np.isinf(eeg))
    np.testing.assert_allclose(got, eeg, rtol=1e-12)  # µV -> V -> µV

    original = Trial(subject="s01", video="live", eeg=eeg, sfreq=SF,
                     ch_names=DEAP_CHANNELS)  # fmt: skip
    live, again = _score_in_process([original], model), _score_in_process(trials, model)
    assert len(live) == len(again) > 30
    flags = [p.quality.ok for p in live]
    assert flags == [p.quality.ok for p in again]
    assert 0 < flags.count(False) < len(flags)  # the bursts, and only them
    for p1, p2 in zip(live, again, strict=True):
        if p1.quality.ok:
            for task in ("valence", "arousal"):
                assert np.abs(p1.probs[task] - p2.probs[task]).max() <= 1e-5


# -- integration: the command line --------------------------------------------------
def _summary(err: str) -> tuple[int, int]:
    """(samples, predictions) of the ``stopped:`` line."""
    line = next(ln for ln in err.splitlines() if ln.startswith("stopped: "))
    samples = int(line.split(" samples")[0].rsplit(" ", 1)[1])
    preds = int(line.split(" predictions")[0].rsplit(" ", 1)[1])
    return samples, preds


@pytest.mark.integration
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_cli_record_survives_signals(
    tmp_path, live_rig, emomon_cli, synthetic_trials, model, sig
):
    """``emomon stream --record --lsl-outlet`` ended by a signal: SIGTERM and
    SIGINT exit 0 within 5 s with a final ``stopped`` status and the files
    closed; after any of the three the ZeroMQ port is free and the LSL
    prediction outlet is gone."""
    name = unique("emomon-cli-rec")
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    path = tmp_path / "live.fif"
    rig = live_rig()
    rep = rig.replay(
        synthetic_trials,
        ReplaySettings(name=name, speed=4.0, loop=True, markers=False),
    )
    inlet = None
    try:
        with Subscriber(address) as sub:
            stream = emomon_cli.start(
                "stream", "--source", "lsl", "--name", name, "--model", str(model),
                "--address", address, "--quiet", "--timeout", "10", "--record",
                str(path), "--lsl-outlet")  # fmt: skip
            try:
                msgs = receive_until(
                    sub, lambda m: len(predictions(m)) >= 3, timeout_s=25.0
                )
                assert len(predictions(msgs)) >= 3, stream.poll()
                inlet = open_inlet(f"name='{name}-emotion' and type='Emotion'")
                assert inlet.info(timeout=5.0).nominal_srate() == 4.0  # 1 / --hop
                sample, _ = inlet.pull_sample(timeout=5.0)
                assert sample is not None
                assert len(sample) == 2  # p_high per task
                t_signal = time.monotonic()
                stream.send_signal(getattr(signal, sig))
                if sig != "SIGKILL":
                    receive_until(
                        sub,
                        lambda m: any(s["state"] == "stopped" for s in statuses(m)),
                        timeout_s=10.0,
                        into=msgs,
                    )
                    stopped = [s for s in statuses(msgs) if s["state"] == "stopped"]
                    assert stopped, f"{sig}: no 'stopped' status within 10 s"
                _, err = emomon_cli.finish(stream, 20.0)
                took = time.monotonic() - t_signal
            finally:
                if stream.poll() is None:
                    stream.kill()
                    stream.communicate()
        # the process released the port and destroyed its outlet
        assert_can_bind(address)
        assert inlet is not None
        assert inlet_lost(inlet, timeout_s=2.0)
    finally:
        rig.vanish(rep)
        inlet = None  # destroyed with its last reference
    paths = recording_paths(path)
    received = {p["seq"]: p for p in predictions(msgs)}
    if sig == "SIGKILL":
        assert stream.returncode == -signal.SIGKILL
        assert paths.spool.is_dir()
        assert not path.exists()
        assert cli_main(["recover", str(path)]) == 0
        n_samples = n_preds = None
    else:
        assert stream.returncode == 0, err
        assert took < 5.0, f"{sig}: {took:.1f} s to exit"
        assert "Traceback" not in err
        n_samples, n_preds = _summary(err)
        assert f"recorded {path}: {n_samples} samples, {n_preds} predictions" in err
    assert not paths.spool.exists()

    raw = _read_fif(path)  # flushed and readable
    assert raw.ch_names == list(DEAP_CHANNELS)
    assert raw.info["sfreq"] == SF
    assert raw.n_times > 0
    assert np.isfinite(raw.get_data()).all()
    lines = paths.predictions.read_text(encoding="utf-8").splitlines()
    recorded = [json.loads(line) for line in lines]
    assert len(raw.annotations) == len(recorded) >= 2
    if n_samples is not None:
        assert raw.n_times == n_samples
        assert len(recorded) == n_preds
    # the recorded payloads are the published ones
    assert [p["seq"] for p in recorded] == list(range(len(recorded)))
    both = sorted(set(received) & {p["seq"] for p in recorded})
    assert len(both) >= 2
    for seq in both:
        assert recorded[seq] == received[seq]
    desc = read_recording(path).description
    assert desc["stream"] == name
    assert desc["model"] == model_digest(model)
    assert desc["metadata"]["time_scale"] == 4.0  # the replay's speed, from desc


def test_cli_record_path_errors(tmp_path, model, capsys):
    base = ["stream", "--source", "lsl", "--name", unique("never-resolved"),
            "--model", str(model), "--timeout", "0.1", "--record"]  # fmt: skip
    existing = tmp_path / "taken.fif"
    existing.write_bytes(b"")
    for target, why in [
        (tmp_path / "missing" / "s.fif", "does not exist"),
        (existing, "exists; pass --overwrite"),
        (tmp_path / "s.txt", "ending in .fif"),
    ]:
        assert cli_main([*base, str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, err
        assert str(target) in err, err
        assert why in err, err
    assert existing.read_bytes() == b""  # refused before anything was written
