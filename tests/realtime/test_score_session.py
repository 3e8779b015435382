"""``emomon score``: a recorded live session scored by the offline report's rules.

End to end: a logreg trained and exported on synthetic subjects (the training
code, ``permutations=0`` passed explicitly), a held-out subject served by a real
emomon replay over liblsl with its marker stream, ``emomon stream --record`` as
a separate process, then ``emomon score``. Its live numbers must equal the
offline ones for the same windows: those wholly inside a trial's marker span,
recomputed from the recorded EEG by the offline feature path.
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import numpy as np
import pytest

from emomon.cli import main as cli_main
from emomon.datasets import get_reader
from emomon.realtime.record import read_recording, recording_paths
from emomon.realtime.replay import ReplaySession, ReplaySettings
from emomon.realtime.subscribe import Subscriber

from .helpers import free_tcp_port, predictions, receive_until, unique

pytestmark = [pytest.mark.integration]

SYNTH = {
    "n_subjects": 3,
    "n_videos": 8,
    "trial_s": 6.0,
    "emotion_effect": 0.5,
    "content_effect": 1.0,
    "seed": 1,
}
SPEED = 8.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """model.onnx of a logreg trained on s01, s02 (s03 held out)."""
    from emomon.offline.train import TrainConfig, run_training

    out = tmp_path_factory.mktemp("score-train")
    cfg = TrainConfig(
        dataset="synthetic",
        synthetic=dict(SYNTH),
        subjects=("s01", "s02"),
        protocols=("lovo",),
        model="logreg",
        permutations=0,
        n_boot=50,
        cache_dir=str(out / "cache"),
    )
    report = run_training(cfg, out / "run", progress=False)
    return out / "run" / report.export.path


def _record_replayed_session(live_rig, emomon_cli, model: Path, path: Path) -> dict:
    """Replay s03 with markers, ``emomon stream --record`` it; return what was sent."""
    trials = get_reader("synthetic", None, **SYNTH).read_subject("s03")
    name = unique("emomon-score")
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    rig = live_rig()
    # The replay starts once the stream's EEG inlet and marker inlet subscribed.
    rep = rig.replay(
        trials,
        ReplaySettings(name=name, speed=SPEED, markers=True, wait_for_consumers_s=30),
    )
    with Subscriber(address) as sub:
        proc = emomon_cli.start(
            "stream", "--source", "lsl", "--name", name, "--model", str(model),
            "--address", address, "--quiet", "--timeout", "10",
            "--record", str(path),
        )  # fmt: skip
        n_total = rep.session.n_times
        rate = rep.session.sfreq * SPEED
        hop_n = int(round(0.25 * rep.session.sfreq))

        def last_window_in(msgs) -> bool:
            t0 = rep.t0
            return (
                t0 is not None
                and np.isfinite(t0)
                and any(
                    p["t_lsl"] >= t0 + (n_total - hop_n) / rate
                    for p in predictions(msgs)
                )
            )

        msgs = receive_until(sub, last_window_in, timeout_s=60.0)
        assert last_window_in(msgs), proc.poll()
        proc.send_signal(signal.SIGINT)
        _, err = emomon_cli.finish(proc, 30.0)
    assert proc.returncode == 0, err
    assert f"with the markers of '{name}-markers'" in err
    return {"trials": trials, "session": rep.session, "err": err, "name": name}


@pytest.mark.slow
def test_recorded_replay_scores_as_offline_on_the_same_windows(
    tmp_path, live_rig, emomon_cli, trained, capsys
):
    path = tmp_path / "session.fif"
    sent = _record_replayed_session(live_rig, emomon_cli, trained, path)
    session = sent["session"]

    # the ground truth is in the recording, on the samples the replay sent it with
    rec = read_recording(path)
    assert rec.description["markers_stream"] == f"{sent['name']}-markers"
    assert recording_paths(path).markers.is_file()
    events = [json.loads(m["marker"]) for m in rec.markers]
    assert [e["event"] for e in events] == [e.payload["event"] for e in session.events]
    # the replay waited for the recording's inlets: sample k is session sample k
    assert [m["sample"] for m in rec.markers] == [e.sample for e in session.events]
    assert rec.raw.n_times == session.n_times

    out = tmp_path / "score.json"
    argv = ["score", str(path), "--model", str(trained), "--permutations", "199",
            "--n-boot", "200", "--json", str(out)]  # fmt: skip
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    score = json.loads(out.read_text())

    # which windows: those whose first and last samples fall inside a trial
    # (trial_start..trial_end), as the replay laid the trials out
    spans = []
    for e in session.events:
        if e.payload["event"] == "trial_start":
            spans.append([e.sample, None, e.payload])
        elif e.payload["event"] == "trial_end":
            spans[-1][1] = e.sample
    window_n = int(round(2.0 * session.sfreq))
    ends = np.searchsorted(rec.timestamps, [p["t_lsl"] for p in rec.predictions])
    ok = np.array([p["quality"]["ok"] for p in rec.predictions])
    inside = np.zeros(ends.size, dtype=bool)
    y = {"valence": [], "arousal": []}
    for a, b, payload in spans:
        m = ok & (ends - window_n + 1 >= a) & (ends <= b)
        inside |= m
        for task in y:
            y[task] += [int(payload[task] > 5.0)] * int(m.sum())
    assert inside.sum() > 50
    assert score["trials"] == len(spans) == len(sent["trials"])

    for task in ("valence", "arousal"):
        live, off = score["live"][task], score["offline"][task]
        cmp = score["compared"][task]
        assert cmp["windows"] == live["n_windows"] == int(inside.sum())
        assert cmp["live_only"] == 0
        assert cmp["max_abs_proba_diff"] <= 1e-5
        # labels as the offline code makes them (fixed, threshold 5 on 1-9)
        conf = np.array(live["metrics"]["confusion"])
        assert conf.sum(axis=1).tolist() == np.bincount(y[task], minlength=2).tolist()
        # the acceptance: the same numbers, the same code
        for key in ("metrics", "ci95", "p_value", "n_permutations", "verdict"):
            assert live[key] == off[key], (task, key)
        # the null: each distinct label arrangement once when they are few
        # (the exact test), else 199 shuffles
        n_high = sum(int(p[task] > 5.0) for _, _, p in spans)
        n_arr = math.comb(len(spans), n_high)
        assert live["arrangements"] == n_arr
        assert live["exact"] == (n_arr <= 200)
        assert live["n_permutations"] == (n_arr - 1 if n_arr <= 200 else 199)
        assert live["p_value"] >= live["min_p"] == 1 / (live["n_permutations"] + 1)
        assert (live["verdict"] == "inconclusive") == (live["min_p"] >= 0.05)
        assert live["p_value"] is not None
        assert live["ci95"][0] is not None
        assert f"{task}\n  live     bal.acc" in text
    assert "labels permuted among the session's" in score["null"]
    lat = score["latency"]["sample_age_ms"]
    assert lat["n"] == len(rec.predictions)
    assert 0 < lat["p50"] <= lat["p99"] < 5000
    assert score["flagged"]["published"] == len(rec.predictions)
    assert "sender push -> prediction" in text


@pytest.mark.slow
def test_a_session_read_in_process_keeps_its_markers_and_scores(
    tmp_path, trained, capsys
):
    """``stream --source replay --record`` (no LSL) records the markers the LSL
    replay would send, and scores like the LSL session."""
    path = tmp_path / "inproc.fif"
    opts = [a for k, v in SYNTH.items() for a in ("--option", f"{k}={v}")]
    code = cli_main(
        ["stream", "--source", "replay", "--dataset", "synthetic", "--subject",
         "s03", *opts, "--model", str(trained), "--quiet", "--address",
         f"tcp://127.0.0.1:{free_tcp_port()}", "--record", str(path)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "with the markers of 'emomon-replay-markers'" in err
    rec = read_recording(path)
    session = ReplaySession.from_trials(
        get_reader("synthetic", None, **SYNTH).read_subject("s03")
    )
    assert [m["marker"] for m in rec.markers] == [e.text() for e in session.events]
    assert [m["sample"] for m in rec.markers] == [e.sample for e in session.events]

    out = tmp_path / "score.json"
    argv = ["score", str(path), "--permutations", "199", "--json", str(out)]
    assert cli_main(argv) == 0  # the model: the file the recording names
    score = json.loads(out.read_text())
    assert score["trials"] == 8
    for task in ("valence", "arousal"):
        live, off = score["live"][task], score["offline"][task]
        assert live["n_windows"] == score["compared"][task]["windows"] > 50
        for key in ("metrics", "ci95", "p_value", "verdict"):
            assert live[key] == off[key], (task, key)
    assert score["latency"]["sample_age_ms"]["n"] == 0  # unpaced: no meaning


def test_windows_scored_are_those_wholly_inside_a_trial(tmp_path):
    """The alignment rule at its edges, on a recording written directly."""
    from emomon.livescore import session_windows
    from emomon.realtime.messages import PredictionMessage
    from emomon.realtime.record import SessionRecorder

    sf, t0 = 128.0, 100.0

    def marker(event: str, trial: int, valence: float, arousal: float) -> str:
        return json.dumps({"event": event, "subject": "s", "video": f"v{trial}",
                           "trial": trial, "loop": 0, "valence": valence,
                           "arousal": arousal, "scale": [1, 9]})  # fmt: skip

    def pred(seq: int, end: int, ok: bool = True) -> PredictionMessage:
        p = 0.8 if ok else None
        return PredictionMessage.build(
            seq=seq, stream="amp", t_lsl=t0 + end / sf, window_s=2.0,
            tasks={t: (p, None if p is None else "high")
                   for t in ("valence", "arousal")},
            quality={"ok": ok, "bad_channels": [] if ok else ["Cz"], "dropped": 0,
                     "reasons": {} if ok else {"Cz": "flat"}},
            latency_ms=1.0, model="",
        )  # fmt: skip

    path = tmp_path / "s.fif"
    with SessionRecorder(
        path, ch_names=("Fp1", "Cz"), sfreq=sf, markers_stream="m"
    ) as rec:
        rec.write_chunk(np.zeros((2, 3000)), t0 + np.arange(3000) / sf)
        for text, k in ((marker("trial_start", 0, 7.0, 2.0), 500),
                        (marker("trial_end", 0, 7.0, 2.0), 1499),
                        (marker("trial_start", 1, 3.0, 8.0), 2000),
                        (marker("trial_end", 1, 3.0, 8.0), 2999)):  # fmt: skip
            rec.write_marker(text, t0 + k / sf)
        ends = [754, 755, 1499, 1500, 2255, 2400]
        for i, end in enumerate(ends):
            rec.write_prediction(pred(i, end, ok=end != 2255))
    win = session_windows(
        read_recording(path),
        classes={"valence": ["low", "high"], "arousal": ["low", "high"]},
        window_s=2.0,
    )
    assert [(t.start, t.end) for t in win.trials] == [(500, 1499), (2000, 2999)]
    assert win.end.tolist() == ends
    # 754 starts at 499 (the baseline), 1500 ends after trial_end
    assert win.trial.tolist() == [-1, 0, 0, -1, 1, 1]
    assert win.scored("valence").tolist() == [False, True, True, False, False, True]
    assert win.labels["valence"].tolist() == [-1, 1, 1, -1, 0, 0]
    assert win.labels["arousal"].tolist() == [-1, 0, 0, -1, 1, 1]
    assert np.isnan(win.proba["valence"][4]).all()
    np.testing.assert_allclose(win.proba["valence"][1], [0.2, 0.8])


# -- bad input: one line naming the file and what to do, exit 2 ----------------------
def _recording(path: Path, *, markers: list[str] | None, model_file: str = "") -> Path:
    from emomon.realtime.record import SessionRecorder

    names = ("Fp1", "Fp2", "Cz", "O1")
    with SessionRecorder(
        path,
        ch_names=names,
        sfreq=128.0,
        markers_stream="cues" if markers is not None else "",
        metadata={"model_file": model_file},
    ) as rec:
        rec.write_chunk(np.zeros((4, 256)), 10.0 + np.arange(256) / 128.0)
        for i, m in enumerate(markers or []):
            rec.write_marker(m, 10.0 + i)
    return path


def _score_error(capsys, *argv: str) -> str:
    assert cli_main(["score", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_score_refuses_what_is_not_a_scorable_recording(tmp_path, capsys, deap_model):
    missing = tmp_path / "none.fif"
    err = _score_error(capsys, str(missing))
    assert f"{missing} not found" in err
    assert "pass the .fif that `emomon stream --record` wrote" in err

    err = _score_error(capsys, str(tmp_path / "notes.txt"))
    assert "expected a name ending in .fif" in err

    old = _recording(tmp_path / "old.fif", markers=None)
    err = _score_error(capsys, str(old))
    assert err == (
        f"emomon: error: score: {old} holds no marker stream (recorded without "
        "one); record from an emomon replay (its markers are kept) or name the "
        "marker stream with `emomon stream --record ... --markers NAME`"
    )

    lost = _recording(tmp_path / "lost.fif", markers=["x"], model_file="gone.onnx")
    err = _score_error(capsys, str(lost))
    assert "its model file 'gone.onnx' is not there; pass --model" in err

    no_trials = _recording(tmp_path / "cues.fif", markers=["start", "7", "{}"])
    err = _score_error(capsys, str(no_trials), "--model", str(deap_model))
    assert f"{no_trials}: its 3 markers hold no complete trial" in err
