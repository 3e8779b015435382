"""``emomon replay``: a recording served through real LSL outlets on a schedule."""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import emomon.cli.replay
from emomon.cli import add_verb
from emomon.cli import main as cli_main
from emomon.datasets import Trial
from emomon.datasets.openbci import read_openbci_txt
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.errors import ConfigError, DatasetError, EmomonError
from emomon.realtime.loading import reader_for_file
from emomon.realtime.replay import (
    Replay,
    ReplaySession,
    ReplaySettings,
    default_source_id,
)
from emomon.realtime.sources import LSLSource

from .helpers import (
    collect,
    open_inlet,
    pull_markers,
    start_replay,
    synthetic_subject,
    unique,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synthetic_trials() -> list[Trial]:
    """2 trials of (3 s baseline + 4 s) at 128 Hz, 32 DEAP channels: 1792 samples."""
    return synthetic_subject(trial_s=4)


def _small_trials(n_trials: int = 2, n_times: int = 32, sfreq: float = 128.0):
    rng = np.random.default_rng(0)
    names = ("Fz", "Cz", "Pz")
    return [
        Trial(
            subject="s07",
            video=f"v{i}",
            eeg=rng.normal(0, 10, (3, n_times)),
            sfreq=sfreq,
            ch_names=names,
            baseline=rng.normal(0, 10, (3, n_times // 2)),
            ratings={"valence": 2.0 + i, "arousal": 7.0 - i},
            dataset="toy",
            scale=(1.0, 9.0),
        )
        for i in range(n_trials)
    ]


# -- unit tests: no sockets ------------------------------------------------------
def test_session_lays_trials_back_to_back_with_markers():
    trials = _small_trials()
    s = ReplaySession.from_trials(trials)
    assert s.eeg.shape == (3, 2 * (16 + 32))
    np.testing.assert_array_equal(s.eeg[:, :16], trials[0].baseline)
    np.testing.assert_array_equal(s.eeg[:, 16:48], trials[0].eeg)
    np.testing.assert_array_equal(s.eeg[:, 48:64], trials[1].baseline)
    kinds = [(e.payload["event"], e.sample) for e in s.events]
    assert kinds == [
        ("baseline_start", 0), ("trial_start", 16), ("trial_end", 47),
        ("baseline_start", 48), ("trial_start", 64), ("trial_end", 95),
    ]  # fmt: skip
    start = s.events[4].payload
    assert start["video"] == "v1"
    assert start["valence"] == 3.0
    assert start["arousal"] == 6.0
    assert start["label"] is None


def test_session_refuses_mixed_layouts():
    a, b = _small_trials()
    c = Trial(subject="s07", video="x", eeg=np.zeros((2, 4)), sfreq=128.0,
              ch_names=("Fz", "Cz"))  # fmt: skip
    with pytest.raises(DatasetError, match="one layout"):
        ReplaySession.from_trials([a, c])
    with pytest.raises(DatasetError, match="no trials"):
        ReplaySession.from_trials([])


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"speed": 0}, "speed"), ({"chunk": 0}, "chunk"),
     ({"channel_format": "int16"}, "channel_format"), ({"name": " "}, "name")],
)  # fmt: skip
def test_settings_validate(kw, match):
    with pytest.raises(ConfigError, match=match):
        ReplaySettings(**kw)


def test_source_id_is_stable_and_specific(tmp_path):
    assert default_source_id(dataset="deap", subject="s01") == (
        "emomon-replay:deap:s01"
    )
    f = tmp_path / "rec.edf"
    a = default_source_id(file=f)
    assert a == default_source_id(file=str(f))
    assert a.startswith("emomon-replay:file:rec:")
    assert a != default_source_id(file=tmp_path / "sub" / "rec.edf")


def test_reader_for_file_sniffs_format(tmp_path):
    txt = tmp_path / "rec.dat"
    txt.write_text("%OpenBCI Raw EXG Data\n%Number of channels = 1\n")
    assert reader_for_file(txt).name == "openbci"
    edf = tmp_path / "rec.edf"
    edf.write_bytes(b"0       ")
    assert reader_for_file(edf).name == "mne"
    other = tmp_path / "rec.bin"
    other.write_bytes(b"\x00\x01")
    with pytest.raises(DatasetError, match="cannot tell"):
        reader_for_file(other)
    with pytest.raises(DatasetError, match="not found"):
        reader_for_file(tmp_path / "missing.txt")


# -- through real outlets ---------------------------------------------------------
@pytest.mark.integration
def test_replay_delivers_every_sample_bit_exact_with_markers(synthetic_trials):
    name = unique()
    speed = 8.0
    settings = ReplaySettings(name=name, speed=speed, wait_for_consumers_s=5.0)
    with Replay(synthetic_trials, settings=settings) as rep:
        n = rep.session.n_times
        markers = open_inlet(f"name='{settings.marker_stream_name}'")
        th, box = start_replay(rep)
        with LSLSource(name, timeout_s=5.0, clock_update_s=60.0) as src:
            got = collect(src, n, timeout_s=10.0)
            assert src.ch_names == DEAP_CHANNELS
            assert src.sfreq == 128.0
            assert src.metadata["acquisition/manufacturer"] == "emomon replay"
            assert src.metadata["replay/subject"] == "s01"
            assert float(src.metadata["replay/speed"]) == speed
            assert src.source_id == "emomon-replay:synthetic:s01"
            offset = src.clock_offset
        events = pull_markers(markers, 6, timeout_s=5.0)
        th.join(10.0)
    assert not th.is_alive()
    assert box["result"].reason == "end"
    eeg, ts = got.eeg(32), got.timestamps()
    assert eeg.shape == (32, n)
    # float32 on the wire: exactly the float32-rounded recording, in order
    expected = rep.session.eeg.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(eeg, expected)
    # timestamps: the pushed schedule t0 + k / (sfreq * speed), plus the offset
    assert abs(offset) < 1e-3  # same machine: the estimate of 0
    np.testing.assert_allclose(
        ts, rep.expected_timestamps(rep.t0) + offset, rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(np.diff(ts), 1 / (128.0 * speed), rtol=0, atol=1e-9)

    assert [e["event"] for e, _ in events] == [
        "baseline_start", "trial_start", "trial_end",
    ] * 2  # fmt: skip
    by_kind = {(e["event"], e["trial"]): (e, t) for e, t in events}
    for i, trial in enumerate(synthetic_trials):
        start, t_start = by_kind[("trial_start", i)]
        end, t_end = by_kind[("trial_end", i)]
        assert start["subject"] == "s01"
        assert start["video"] == trial.video
        assert start["valence"] == trial.ratings["valence"]
        assert start["arousal"] == trial.ratings["arousal"]
        assert end["sample"] - start["sample"] == trial.eeg.shape[1] - 1
        for ev, t in ((start, t_start), (end, t_end)):
            assert t == pytest.approx(rep.t0 + ev["sample"] / (128.0 * speed), abs=1e-9)
            # the marker's time is the time of that very sample in the EEG stream
            assert ts[ev["sample"]] - offset == pytest.approx(t, abs=1e-9)


@pytest.mark.integration
def test_pacing_follows_the_absolute_schedule(synthetic_trials):
    name = unique()
    speed = 4.0
    settings = ReplaySettings(name=name, speed=speed, wait_for_consumers_s=5.0,
                              markers=False)  # fmt: skip
    with Replay(synthetic_trials, settings=settings) as rep:
        n = rep.session.n_times
        nominal = n / (rep.sfreq * speed)  # 3.5 s
        th, box = start_replay(rep)
        with LSLSource(name, timeout_s=5.0, clock_update_s=60.0) as src:
            got = collect(src, n, timeout_s=nominal * 2 + 5)
            offset = src.clock_offset
        th.join(10.0)
    result = box["result"]
    assert got.n == n
    assert result.samples_pushed == n
    assert result.elapsed_s == pytest.approx(nominal, rel=0.2)
    # chunks never arrive before their last sample is due, and the lag between
    # due time and arrival does not grow over the run (no accumulated drift)
    lags = np.array([arr - (last - offset) for arr, last in got.arrivals])
    assert lags.min() > -2e-3
    third = max(1, len(lags) // 3)
    assert abs(np.median(lags[-third:]) - np.median(lags[:third])) < 0.1
    assert np.median(lags) < 0.1


@pytest.mark.integration
def test_duration_and_stop_bound_the_run():
    trials = _small_trials(n_trials=1, n_times=128 * 60)  # a minute of data
    rep = Replay(trials, settings=ReplaySettings(name=unique(), markers=False))
    with rep:
        t = time.monotonic()
        result = rep.run(duration_s=0.5)
        assert time.monotonic() - t == pytest.approx(0.5, abs=0.25)
        assert result.reason == "duration"
        assert result.samples_pushed == int(0.5 * 128) + 1  # samples due by then
        stop = threading.Event()
        th, box = start_replay(rep, stop_event=stop)
        t = time.monotonic()
        stop.set()
        th.join(2.0)
        assert not th.is_alive()
        assert box["result"].reason == "stopped"
        assert time.monotonic() - t < 1.0
    assert not rep.is_open


@pytest.mark.integration
def test_loop_continues_the_schedule_without_a_gap():
    trials = _small_trials(n_trials=1, n_times=32)  # 48 samples per pass
    name = unique()
    settings = ReplaySettings(name=name, loop=True, speed=2.0, chunk=4,
                              wait_for_consumers_s=5.0)  # fmt: skip
    with Replay(trials, settings=settings) as rep:
        markers = open_inlet(f"name='{settings.marker_stream_name}'")
        stop = threading.Event()
        th, box = start_replay(rep, stop_event=stop)
        with LSLSource(name, timeout_s=5.0, clock_update_s=60.0) as src:
            got = collect(src, 3 * 48, timeout_s=10.0)
        stop.set()
        th.join(2.0)
        events = pull_markers(markers, 9, timeout_s=2.0)
    assert got.n >= 3 * 48
    ts = got.timestamps()
    np.testing.assert_allclose(np.diff(ts), 1 / (128.0 * 2.0), rtol=0, atol=1e-9)
    session = rep.session.eeg.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(got.eeg(3)[:, : 3 * 48], np.tile(session, 3))
    assert [e["loop"] for e, _ in events[:9]] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert box["result"].loops >= 3


def _replay_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="emomon")
    add_verb(parser.add_subparsers(dest="command"), emomon.cli.replay)
    return parser.parse_args(["replay", *argv])


def test_replay_parser_defaults():
    args = _replay_args("--dataset", "synthetic")
    assert args.speed == 1.0
    assert not args.loop
    assert not args.no_markers
    assert args.chunk is None
    assert args.duration is None
    assert args.file is None
    args = _replay_args("--file", "x.txt", "--speed", "2", "--loop", "--chunk", "8",
                        "--name", "N", "--source-id", "S", "--no-markers",
                        "--duration", "3", "-o", "n_videos=2")  # fmt: skip
    assert (args.speed, args.loop, args.chunk, args.name, args.source_id) == (
        2.0, True, 8, "N", "S",
    )  # fmt: skip
    assert args.no_markers
    assert args.duration == 3.0
    assert args.reader_options == [("n_videos", 2)]
    with pytest.raises(ConfigError, match="either --dataset"):
        args.func(_replay_args())


@pytest.mark.integration
def test_cli_replay_serves_the_real_openbci_file(openbci_sample, capsys):
    name = unique()
    args = _replay_args("--file", str(openbci_sample), "--name", name,
                        "--speed", "2", "--duration", "2")  # fmt: skip
    box: dict = {}
    th = threading.Thread(target=lambda: box.update(rc=args.func(args)), daemon=True)
    th.start()
    with LSLSource(name, timeout_s=5.0) as src:
        got = collect(src, 200, timeout_s=5.0)
        assert src.n_channels == 8
        assert src.sfreq == 250.0
        assert src.ch_names == tuple(f"EXG{i}" for i in range(8))
    th.join(5.0)
    assert not th.is_alive()
    assert box["rc"] == 0
    out = capsys.readouterr().out
    assert name in out
    assert "8 ch" in out
    assert "250 Hz" in out
    assert "emomon-replay:file:OpenBCI_GUI-v6-blinks-jawClench-alpha:" in out
    # what arrived is a contiguous block of the file, exact in float32
    eeg = got.eeg(8)
    assert eeg.shape[1] >= 200
    ref = read_openbci_txt(openbci_sample)[0].astype(np.float32).astype(np.float64)
    starts = np.flatnonzero((ref == eeg[:, :1]).all(axis=0))
    assert starts.size >= 1
    j = int(starts[0])
    np.testing.assert_array_equal(eeg, ref[:, j : j + eeg.shape[1]])


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_replay_stops_cleanly_on_signals(sig):
    code = (
        "import sys, argparse\n"
        "import emomon.cli.replay as verb\nfrom emomon.cli import add_verb\n"
        "p = argparse.ArgumentParser(); add_verb(p.add_subparsers(), verb)\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "replay",
            "--dataset",
            "synthetic",
            "-o",
            "n_videos=1",
            "-o",
            "trial_s=2",
            "-o",
            "n_subjects=1",
            "--name",
            unique(),
            "--loop",
        ],  # fmt: skip
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        line = ""
        deadline = time.monotonic() + 30.0
        while not line and time.monotonic() < deadline and proc.poll() is None:
            if sel.select(timeout=0.5):
                line = proc.stdout.readline()
        assert line.startswith("replay: "), line
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "replay: stopped" in err


# -- --wait-for-consumer -----------------------------------------------------------
_REPLAY_FLAGS = emomon.cli.replay.FLAGS


def test_wait_for_consumer_option():
    assert _replay_args("--dataset", "synthetic").wait_for_consumer is None
    args = _replay_args("--dataset", "synthetic", "--wait-for-consumer")
    assert args.wait_for_consumer == emomon.cli.replay.WAIT_FOR_CONSUMER_S == 60.0
    args = _replay_args("--wait-for-consumer", "5", "--dataset", "synthetic")
    assert args.wait_for_consumer == 5.0
    with pytest.raises(SystemExit):
        _replay_args("--dataset", "synthetic", "--wait-for-consumer", "0")
    for bad in (float("nan"), -1.0):
        with pytest.raises(ConfigError) as info:
            ReplaySettings(wait_for_consumers_s=bad)
        assert info.value.render(_REPLAY_FLAGS).startswith(
            "replay: --wait-for-consumer must be a number of seconds >= 0"
        )


@pytest.mark.integration
def test_cli_replay_nobody_connecting_in_time_exits_2_naming_the_flag(capsys):
    name = unique()
    argv = ["replay", "--dataset", "synthetic", "-o", "n_subjects=1", "-o",
            "n_videos=1", "-o", "trial_s=2", "--name", name]  # fmt: skip
    t = time.monotonic()
    assert cli_main([*argv, "--wait-for-consumer", "0.3"]) == 2
    assert time.monotonic() - t < 10.0
    out, err = capsys.readouterr()
    assert (
        f"replay: waiting up to 0.3 s for a consumer of '{name}' and "
        f"'{name}-markers' before the first sample (--wait-for-consumer)"
    ) in out
    assert err == (
        f"emomon: error: replay: nothing connected to LSL streams '{name}' and "
        f"'{name}-markers' within 0.3 s (--wait-for-consumer); start the consumer "
        "within that time, or wait longer\n"
    )
    assert cli_main([*argv, "--no-markers", "--wait-for-consumer", "0.3"]) == 2
    err = capsys.readouterr().err
    assert f"nothing connected to LSL stream '{name}' within 0.3 s" in err


@pytest.mark.integration
def test_wait_for_consumers_waits_for_the_markers_too(synthetic_trials):
    name = unique()
    settings = ReplaySettings(name=name, wait_for_consumers_s=0.5)
    with Replay(synthetic_trials, settings=settings) as rep:
        inlet = open_inlet(f"name='{name}'")  # the EEG only
        with pytest.raises(EmomonError) as info:
            rep.run()
        assert rep.samples_pushed == 0
        assert info.value.render(_REPLAY_FLAGS) == (
            f"replay: nothing connected to LSL stream '{name}-markers' within 0.5 s "
            "(--wait-for-consumer); start what reads the markers sooner, or serve "
            "no markers (--no-markers)"
        )
        markers = open_inlet(f"name='{name}-markers'")
        th, box = start_replay(rep, duration_s=0.2)
        th.join(10.0)
        assert box["result"].samples_pushed > 0
        # the consumers got the first sample and the first marker
        sample, _ = inlet.pull_sample(timeout=5.0)
        np.testing.assert_array_equal(sample, rep.session.eeg[:, 0].astype(np.float32))
        assert pull_markers(markers, 1, timeout_s=5.0)[0][0]["sample"] == 0
        del inlet, markers


@pytest.mark.integration
def test_a_stop_ends_the_wait(synthetic_trials):
    settings = ReplaySettings(name=unique(), wait_for_consumers_s=30.0)
    with Replay(synthetic_trials, settings=settings) as rep:
        stop = threading.Event()
        th, box = start_replay(rep, stop_event=stop)
        t = time.monotonic()
        stop.set()
        th.join(5.0)
        assert not th.is_alive()
        assert time.monotonic() - t < 1.0
        assert box["result"].reason == "stopped"
        assert box["result"].samples_pushed == 0
        assert rep.wait_for_consumers(30.0, stop) is False
