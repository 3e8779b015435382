"""Bad-channel interpolation in the live pipeline (``PipelineSettings.interpolate``).

The recordings go through the real live loop (``run_stream`` with the in-process
replay source, unpaced) with faults injected into the served samples: a zeroed
channel, a channel that rails now and then, too many dead channels.
"""

from __future__ import annotations

import dataclasses
import time

import mne
import numpy as np
import pytest

from emomon.cli import main as cli_main
from emomon.dsp.interpolate import InterpolationError
from emomon.realtime.interpolation import make_interpolator
from emomon.realtime.model import load_model
from emomon.realtime.pipeline import Pipeline, PipelineSettings
from emomon.realtime.replay import ReplaySession
from emomon.realtime.sources import ReplaySource
from emomon.realtime.stream import StreamSettings, run_stream

from .helpers import SF, Collect, free_tcp_port
from .models import make_model

HOP = 0.25


@pytest.fixture(scope="module")
def session(synthetic_trials) -> ReplaySession:
    return ReplaySession.from_trials(synthetic_trials)


def live(model_path, session, eeg, **settings):
    """Every window of ``eeg`` served by the replay source through run_stream."""
    damaged = dataclasses.replace(session, eeg=eeg)
    model = load_model(model_path)
    with ReplaySource(damaged, chunk=4) as src:
        pipe = Pipeline(
            model,
            source_ch_names=src.ch_names,
            source_sfreq=src.sfreq,
            settings=PipelineSettings(hop_s=HOP, **settings),
        )
        sink = Collect()
        run_stream(src, pipe, sinks=[sink], settings=StreamSettings())
    return [w for w, _ in sink.preds], pipe


def p_high(windows):
    return np.array(
        [np.nan if w.probs is None else w.probs["valence"][1] for w in windows]
    )


def test_default_flags_every_window_of_a_zeroed_channel(deap_model, session):
    eeg = session.eeg.copy()
    eeg[session.ch_names.index("Cz")] = 0.0
    windows, pipe = live(deap_model, session, eeg)
    assert pipe.interpolation is None
    assert windows
    assert not any(w.quality.ok for w in windows)
    assert {w.quality.reasons["Cz"] for w in windows} == {"flat"}


def test_a_zeroed_channel_is_interpolated_causally_and_named(deap_model, session):
    onset_s = 8.0
    onset = int(onset_s * SF)
    eeg = session.eeg.copy()
    eeg[session.ch_names.index("Cz"), onset:] = 0.0
    clean, _ = live(deap_model, session, session.eeg, interpolate=True)
    windows, pipe = live(deap_model, session, eeg, interpolate=True)
    assert len(windows) == len(clean) > 60
    # Seconds of the session up to each window's end (the first ends after the
    # 1 s warm-up and a 2 s window).
    end_s = np.array([w.t_lsl for w in windows]) - windows[0].t_lsl + 3.0
    # The undamaged run is the default run: nothing interpolated, all ok.
    assert all(w.quality.ok and not w.quality.bad_channels for w in clean)
    # Causal: windows ending before the fault are the undamaged run's.
    before = end_s < onset_s
    assert before.sum() > 10
    np.testing.assert_array_equal(p_high(windows)[before], p_high(clean)[before])
    # Flat from the first window wholly after the onset; interpolated from the
    # next hop on; published once Cz has been interpolated over a window and the
    # 1 s warm-up before it.
    q = [w.quality for w in windows]
    flat = [i for i, x in enumerate(q) if x.reasons.get("Cz") == "flat"]
    done = [i for i, x in enumerate(q) if x.reasons.get("Cz") == "interpolated"]
    assert flat
    assert done
    assert flat == list(range(flat[0], done[0]))
    assert done == list(range(done[0], len(q)))
    assert end_s[flat[0]] == pytest.approx(onset_s + 2.0, abs=HOP)
    assert len(flat) == round((2.0 + 1.0) / HOP)
    for x in q[done[0] :]:
        assert x.ok
        assert x.bad_channels == ("Cz",)
        assert dict(x.reasons) == {"Cz": "interpolated"}
    assert all(w.probs is not None for w in windows[done[0] :])
    assert pipe.interpolation.interpolator.active == (session.ch_names.index("Cz"),)
    assert pipe.interpolation.interpolator.matrices_built == 1


def test_a_flickering_channel_keeps_one_matrix(deap_model, session):
    # One railed sample on T7 every 2.75 s: every window holding one is flagged,
    # then three clean windows, fewer than the four that release a channel.
    eeg = session.eeg.copy()
    k = session.ch_names.index("T7")
    eeg[k, int(2 * SF) :: int(2.75 * SF)] = 2.0e5
    windows, pipe = live(deap_model, session, eeg, interpolate=True)
    assert pipe.interpolation.interpolator.matrices_built == 1
    assert pipe.interpolation.interpolator.active == (k,)
    # T7 joins after the first window; from 3 s (a window and the warm-up)
    # later every window is published, the spikes interpolated away.
    q = [w.quality for w in windows]
    flagged = [i for i, x in enumerate(q) if not x.ok]
    assert flagged
    assert max(flagged) < round((2.0 + 1.0) / HOP)
    assert all(x.bad_channels == ("T7",) for x in q[max(flagged) + 1 :])
    assert all(dict(x.reasons) == {"T7": "interpolated"} for x in q[max(flagged) + 1 :])
    assert len(q) - max(flagged) > 60
    # Without interpolation the spikes flag most windows.
    plain, _ = live(deap_model, session, eeg)
    assert sum(not w.quality.ok for w in plain) > 0.6 * len(plain)


def test_more_than_a_quarter_of_the_channels_is_flagged_as_today(deap_model, session):
    eeg = session.eeg.copy()
    eeg[:9] = 0.0  # 9 of 32; at most 8 are interpolated
    windows, pipe = live(deap_model, session, eeg, interpolate=True)
    assert pipe.interpolation.interpolator.active == ()
    assert len(pipe.interpolation.interpolator.bad_set) == 9
    assert not any(w.quality.ok for w in windows)
    assert all("interpolated" not in w.quality.reasons.values() for w in windows)


def test_interpolation_beats_predicting_on_the_zeroed_channel(deap_model, session):
    """Acceptance 3 on a short run (benchmarks/bench_interpolation.py: longer)."""
    k = session.ch_names.index("C3")
    eeg = session.eeg.copy()
    eeg[k] = 0.0
    ref = p_high(live(deap_model, session, session.eeg)[0])
    # "As it is": the flat check off (flat_uv=0), so the zeroed channel is
    # predicted on instead of flagged.
    as_is = p_high(live(deap_model, session, eeg, flat_uv=0.0)[0])
    interp = p_high(live(deap_model, session, eeg, interpolate=True)[0])
    both = np.isfinite(ref) & np.isfinite(as_is) & np.isfinite(interp)
    assert both.sum() > 50
    d_as_is = np.abs(as_is - ref)[both]
    d_interp = np.abs(interp - ref)[both]
    assert np.median(d_interp) < np.median(d_as_is)
    assert np.percentile(d_interp, 95) < np.percentile(d_as_is, 95)


def test_a_resampled_source_is_interpolated_and_losses_stay_flagged(
    deap_model, session
):
    from scipy.signal import resample_poly

    model = load_model(deap_model)
    eeg = resample_poly(session.eeg, 2, 1, axis=1)  # a 256 Hz headset
    eeg[session.ch_names.index("O1")] = 0.0
    t = np.arange(eeg.shape[1]) / 256.0
    t[int(16.0 * 256) :] += 0.5  # 0.5 s of samples lost at 16 s
    out = model.predict(
        eeg,
        sfreq=256.0,
        ch_names=session.ch_names,
        timestamps=t,
        settings=PipelineSettings(hop_s=HOP, interpolate=True),
    )
    q = out.quality
    assert out.ok.sum() > 40
    assert out.ok[-1]  # interpolated again after the loss
    for x, ok in zip(q, out.ok, strict=True):
        if ok:
            assert x.bad_channels == ("O1",)
        else:
            assert x.dropped > 0 or x.reasons.get("O1") == "flat"
    lossy = [x for x in q if x.dropped]
    assert lossy
    assert not any(x.ok for x in lossy)


def test_a_model_channel_without_a_position_is_refused():
    with pytest.raises(InterpolationError, match=r"'EXG1'.*run without interpolate"):
        make_interpolator(["Fp1", "Fp2", "C3", "C4", "EXG1"])
    with pytest.raises(InterpolationError, match="at least 4 channels"):
        make_interpolator(["Fp1", "Fp2", "Cz"])


def test_cli_refuses_interpolation_without_positions_before_connecting(
    tmp_path, capsys
):
    names = ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "EXG1")
    model = make_model(tmp_path / "exg.onnx", ch_names=names, sfreq=SF)
    argv = ["stream", "--source", "lsl", "--name", "emomon-test-never-there",
            "--timeout", "30", "--model", str(model), "--quiet",
            "--interpolate"]  # fmt: skip
    capsys.readouterr()
    t0 = time.monotonic()
    assert cli_main(argv) == 2
    assert time.monotonic() - t0 < 20  # refused before waiting for the stream
    err = capsys.readouterr().err.strip()
    assert err.startswith("emomon: error: ")
    assert "\n" not in err
    assert "'EXG1'" in err
    assert "run without --interpolate" in err


@pytest.mark.integration
def test_cli_stream_interpolate(tmp_path, deap_model, session, capsys):
    eeg = session.eeg.copy()
    eeg[session.ch_names.index("Pz")] = 0.0
    raw = mne.io.RawArray(
        eeg * 1e-6, mne.create_info(list(session.ch_names), SF, "eeg"), verbose="error"
    )
    rec = tmp_path / "dead-pz_raw.fif"
    raw.save(rec, verbose="error")
    argv = ["stream", "--source", "replay", "--file", str(rec), "--model",
            str(deap_model), "--quiet"]  # fmt: skip

    def flagged(*extra):
        port = free_tcp_port()
        capsys.readouterr()
        assert cli_main([*argv, *extra, "--address", f"tcp://127.0.0.1:{port}"]) == 0
        err = capsys.readouterr().err
        line = next(x for x in err.splitlines() if "predictions (" in x)
        n = int(line.split(" predictions (")[0].split()[-1])
        return n, int(line.split(" predictions (")[1].split()[0])

    n, bad = flagged()
    assert bad == n > 60
    n2, bad2 = flagged("--interpolate")
    assert n2 == n
    assert 0 < bad2 <= round(5.0 / HOP) + 1  # detection, window and warm-up
