"""Recording the ground truth: an LSL marker stream beside the EEG.

The recorder's marker file (written, recovered, read back, absent in older
recordings), :class:`MarkerTap` against independent pylsl outlets (not emomon's
replay), and ``emomon stream --record --markers`` refusing a stream that never
appears. Waits are bounded polls with deadlines.
"""

from __future__ import annotations

import json
import time
import warnings

import mne
import numpy as np
import pylsl
import pytest

from emomon.cli import main as cli_main
from emomon.realtime.markers import MarkerError, MarkerTap, open_marker_tap
from emomon.realtime.record import (
    RecordError,
    SessionRecorder,
    read_recording,
    recording_paths,
)
from emomon.realtime.replay import ReplaySettings

from .helpers import MAX_ITERATIONS, SF, unique

NAMES = ("Fp1", "Fp2", "Cz", "O1")


def _chunk(n: int, t0: float, k0: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(k0).standard_normal((len(NAMES), n)) * 20.0
    return x, t0 + (k0 + np.arange(n)) / SF


# -- the recorder's markers file ---------------------------------------------------
def test_markers_are_recorded_on_their_samples_and_read_back(tmp_path):
    path = tmp_path / "s.fif"
    t0 = 1000.0
    odd = 'tab\there, line\nbreak, "quotes", ünïcode'
    with SessionRecorder(path, ch_names=NAMES, sfreq=SF, markers_stream="cues") as rec:
        assert rec.markers_stream == "cues"
        rec.write_marker("before", t0 - 5.0)  # before the first sample arrived
        rec.write_chunk(*_chunk(300, t0))
        rec.write_marker(json.dumps({"event": "trial_start"}), t0 + 17 / SF)
        rec.write_marker(odd, t0 + 250.4 / SF)  # nearest: sample 250
        rec.write_chunk(*_chunk(200, t0, 300))
        rec.write_marker("7", t0 + 499 / SF)
    files = rec.close()
    assert files.n_markers == 4
    assert files.markers == recording_paths(path).markers
    assert "4 markers" in files.describe()

    got = read_recording(path)
    assert [m["marker"] for m in got.markers] == [
        "before",
        '{"event": "trial_start"}',
        odd,
        "7",
    ]
    assert [m["sample"] for m in got.markers] == [-1, 17, 250, 499]
    assert got.markers[1]["t_lsl"] == t0 + 17 / SF  # exact: repr round trip
    assert got.description["markers_stream"] == "cues"
    assert got.description["n_markers"] == 4
    # MNE users see them as annotations at their samples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = mne.io.read_raw_fif(path, verbose="error")
    notes = [
        (round(o * SF), d)
        for o, d in zip(raw.annotations.onset, raw.annotations.description, strict=True)
        if d.startswith("emomon/marker;")
    ]
    assert notes == [
        (17, 'emomon/marker;{"event": "trial_start"}'),
        (250, f"emomon/marker;{odd}"),
        (499, "emomon/marker;7"),
    ]


def test_a_recording_without_markers_reads_as_before(tmp_path):
    path = tmp_path / "s.fif"
    # an earlier recording of the same name had markers: overwriting drops them
    with SessionRecorder(path, ch_names=NAMES, sfreq=SF, markers_stream="m") as rec:
        rec.write_chunk(*_chunk(100, 5.0))
        rec.write_marker("x", 5.0)
    assert recording_paths(path).markers.is_file()
    from emomon.realtime.record import RecorderSettings

    with SessionRecorder(
        path, ch_names=NAMES, sfreq=SF, settings=RecorderSettings(overwrite=True)
    ) as rec:
        rec.write_chunk(*_chunk(100, 5.0))
        with pytest.raises(RecordError, match="without a marker stream"):
            rec.write_marker("x", 5.0)
    files = rec.close()
    assert files.markers is None
    assert "markers" not in files.describe()
    assert not recording_paths(path).markers.exists()
    got = read_recording(path)
    assert got.markers is None
    assert got.description["markers_file"] == ""


def test_without_overwrite_an_existing_markers_file_is_refused(tmp_path):
    path = tmp_path / "s.fif"
    recording_paths(path).markers.write_text("", encoding="utf-8")
    with pytest.raises(RecordError, match=r"s\.markers\.jsonl exists"):
        SessionRecorder(path, ch_names=NAMES, sfreq=SF, markers_stream="m")


def test_a_killed_recording_keeps_its_markers(tmp_path):
    path = tmp_path / "s.fif"
    rec = SessionRecorder(path, ch_names=NAMES, sfreq=SF, markers_stream="m")
    rec.write_chunk(*_chunk(100, 5.0))
    rec.write_marker("a", 5.0 + 10 / SF)
    rec.write_marker("b", 5.0 + 20 / SF)
    # the process dies mid-line: nothing closes the files, a torn line remains
    with open(recording_paths(path).spool_markers, "ab") as f:
        f.write(b'5.3\t"tor')
    files = SessionRecorder.recover(path)
    assert files.recovered
    got = read_recording(path)
    assert [(m["marker"], m["sample"]) for m in got.markers] == [("a", 10), ("b", 20)]
    rec._files_open = False  # its spool is gone; do not close twice
    for f in (rec._eeg, rec._times, rec._preds, rec._markers):
        f.close()


# -- MarkerTap against independent outlets ---------------------------------------------
def _outlet(name: str, fmt: int) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, fmt, name)
    return pylsl.StreamOutlet(info)


def _wait(cond, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_ITERATIONS):
        if cond():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return False


@pytest.mark.parametrize(
    ("fmt", "values", "texts"),
    [
        (pylsl.cf_string, ["a", '{"event": "trial_end"}', "ü"],
         ["a", '{"event": "trial_end"}', "ü"]),
        (pylsl.cf_int32, [3, 7, 42], ["3", "7", "42"]),
    ],
)  # fmt: skip
def test_tap_delivers_every_marker_with_its_lsl_time(fmt, values, texts):
    name = unique("emomon-markers")
    outlet = _outlet(name, fmt)
    got: list[tuple[str, float]] = []
    with MarkerTap(name) as tap:
        tap.open(5.0)
        assert tap.source_id == name
        assert outlet.wait_for_consumers(5.0)
        tap.start(lambda text, t: got.append((text, t)))
        now = pylsl.local_clock()
        stamps = [now - 1.0 + i * 0.125 for i in range(len(values))]
        for v, ts in zip(values, stamps, strict=True):
            outlet.push_sample([v], ts)
        assert _wait(lambda: len(got) == len(values), 5.0), got
    assert [t for t, _ in got] == texts
    # one machine: the time correction is an estimate of 0
    np.testing.assert_allclose([t for _, t in got], stamps, atol=1e-3)
    assert tap.n_received == len(values)
    assert tap.error is None


def test_markers_sent_just_before_close_are_delivered():
    name = unique("emomon-markers")
    outlet = _outlet(name, pylsl.cf_string)
    got: list[str] = []
    tap = MarkerTap(name)
    tap.open(5.0)
    assert outlet.wait_for_consumers(5.0)
    tap.start(lambda text, t: got.append(text))
    for i in range(50):
        outlet.push_sample([f"m{i}"])
    # wait until liblsl has them (the inlet's queue), not until the thread read them
    tap_inlet = tap._inlet
    assert _wait(lambda: len(got) + tap_inlet.samples_available() >= 50, 5.0)
    tap.close()
    assert got == [f"m{i}" for i in range(50)]


def test_a_stream_that_never_appears():
    name = unique("never-sent")
    t = time.monotonic()
    with pytest.raises(MarkerError, match=f"marker stream '{name}' not found"):
        MarkerTap(name).open(0.3)
    assert time.monotonic() - t < 3.0
    # named: an error; the replay's (announced, not answering): a warning
    with pytest.raises(MarkerError):
        open_marker_tap(name, {}, timeout_s=0.2)
    tap, warning = open_marker_tap(None, {"replay/markers_stream": name}, timeout_s=0.2)
    assert tap is None
    assert f"the replay's marker stream '{name}' did not answer" in warning
    assert open_marker_tap(None, {"replay/speed": "1.0"}, timeout_s=0.2) == (
        None,
        None,
    )


# -- the command line ------------------------------------------------------------
def test_stream_refuses_a_named_marker_stream_that_never_appears(
    tmp_path, live_rig, synthetic_trials, deap_model, capsys
):
    name = unique("emomon-eeg")
    missing = unique("no-such-markers")
    rig = live_rig()
    rig.replay(synthetic_trials, ReplaySettings(name=name, speed=4.0, markers=False))
    path = tmp_path / "s.fif"
    code = cli_main(
        ["stream", "--source", "lsl", "--name", name, "--model", str(deap_model),
         "--timeout", "1", "--record", str(path), "--markers", missing]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("emomon: error")]
    assert lines == [
        f"emomon: error: marker stream '{missing}' not found on LSL within 1 s; "
        "start what sends it first (emomon replay serves '<name>-markers'), check "
        "the name, or record without --markers"
    ]
    paths = recording_paths(path)
    assert not any(p.exists() for p in (*paths.outputs, paths.markers, paths.spool))


def test_markers_without_record_is_refused(deap_model, capsys):
    code = cli_main(
        ["stream", "--source", "lsl", "--name", unique("x"), "--model",
         str(deap_model), "--markers", "cues"]
    )  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "emomon: error: --markers needs --record"
    )


def test_stream_records_a_named_marker_stream(
    tmp_path, live_rig, emomon_cli, synthetic_trials, deap_model
):
    """``emomon stream --record --markers NAME``: an independent pylsl outlet's
    markers land beside the EEG, each on the sample of its LSL time."""
    import signal

    from emomon.realtime.subscribe import Subscriber

    from .helpers import free_tcp_port, predictions, receive_until

    name = unique("emomon-eeg")
    cues = unique("cues")
    outlet = _outlet(cues, pylsl.cf_string)
    rig = live_rig()
    rig.replay(
        synthetic_trials, ReplaySettings(name=name, speed=4.0, loop=True, markers=False)
    )
    path = tmp_path / "s.fif"
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    with Subscriber(address) as sub:
        proc = emomon_cli.start(
            "stream", "--source", "lsl", "--name", name, "--model", str(deap_model),
            "--address", address, "--quiet", "--timeout", "10",
            "--record", str(path), "--markers", cues,
        )  # fmt: skip
        assert outlet.wait_for_consumers(20.0), proc.poll()
        msgs = receive_until(sub, lambda m: len(predictions(m)) >= 2, timeout_s=20.0)
        assert len(predictions(msgs)) >= 2, proc.poll()
        sent = []
        for i in range(3):
            t = pylsl.local_clock()
            outlet.push_sample([f"cue {i}"], t)
            sent.append(t)
        # the markers are in once predictions made after them were published
        receive_until(
            sub,
            lambda m: any(p["t_lsl"] > sent[-1] + 0.5 for p in predictions(m)),
            timeout_s=20.0,
            into=msgs,
        )
        proc.send_signal(signal.SIGINT)
        _, err = emomon_cli.finish(proc, 20.0)
    assert proc.returncode == 0, err
    assert f"with the markers of '{cues}'" in err
    assert ", 3 markers" in err
    rec = read_recording(path)
    assert rec.description["markers_stream"] == cues
    assert [m["marker"] for m in rec.markers] == ["cue 0", "cue 1", "cue 2"]
    for m, t in zip(rec.markers, sent, strict=True):
        assert abs(m["t_lsl"] - t) < 1e-3
        # the sample nearest in time; the replay's samples are 1/(128*4) s apart
        assert abs(rec.timestamps[m["sample"]] - m["t_lsl"]) <= 1 / (SF * 4.0)
