"""Per-channel quality reasons: each detected on an injected fault, none on clean
synthetic EEG, and ``quality.reasons`` on the wire through a real subscriber."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

from emomon.datasets import get_reader
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.realtime.messages import (
    PREDICTION_TOPIC,
    MessageError,
    PredictionMessage,
    Quality,
    TaskOutput,
    encode,
    parse,
    validate,
)
from emomon.realtime.model import load_model
from emomon.realtime.pipeline import Pipeline, PipelineSettings
from emomon.realtime.quality import (
    ANNOTATING_REASONS,
    FLAGGING_REASONS,
    QUALITY_REASONS,
    RunningLevel,
    SpectralMeasure,
)
from emomon.realtime.sources import ReplaySource
from emomon.realtime.stream import StreamSettings, run_stream

from .helpers import SF, predictions, statuses, unique

#: Faults start here (s): the running level has 20 s of clean windows by then.
T_FAULT = 25.0
FAULT_S = 4.0
CH = 5  # the faulty channel (FC1)


@pytest.fixture(scope="module")
def clean_eeg():
    """40 s of clean synthetic EEG (subject s02: not the model's training data)."""
    trials = get_reader(
        "synthetic", None, n_subjects=2, n_videos=1, trial_s=40
    ).read_subject("s02")
    return trials[0].eeg[:, : int(40 * SF)]


def _run(model_path, eeg, *, settings=None, ts=None):
    model = load_model(model_path)
    pipe = Pipeline(
        model,
        source_ch_names=DEAP_CHANNELS,
        source_sfreq=SF,
        settings=settings or PipelineSettings(),
    )
    ts = 1000.0 + np.arange(eeg.shape[1]) / SF if ts is None else ts
    preds = []
    for i in range(0, eeg.shape[1], 16):  # LSL-like chunks
        preds += pipe.process(eeg[:, i : i + 16], ts[i : i + 16], arrival=ts[i])
    return preds, ts


def _during_fault(preds, t0=1000.0 + T_FAULT, dur=FAULT_S):
    """Windows (2 s) that lie inside the fault."""
    return [p for p in preds if t0 + 2.0 <= p.t_lsl <= t0 + dur]


def _outside_fault(preds, window_s=2.0, t0=1000.0 + T_FAULT, dur=FAULT_S):
    return [p for p in preds if not (t0 <= p.t_lsl <= t0 + dur + window_s)]


def _inject(eeg, fn):
    x = eeg.copy()
    a, b = int(T_FAULT * SF), int((T_FAULT + FAULT_S) * SF)
    x[CH, a:b] = fn(x[CH, a:b], np.arange(b - a) / SF)
    return x


def _assert_reason(preds, reason, *, flags):
    during = _during_fault(preds)
    assert len(during) >= 4
    name = DEAP_CHANNELS[CH]
    for p in during:
        assert p.quality.reasons.get(name) == reason, p.quality
        assert set(p.quality.reasons) == {name}, p.quality.reasons
        assert p.quality.ok is (not flags)
        assert (name in p.quality.bad_channels) is flags
        assert (p.probs is None) is flags
    # before and well after the fault: nothing
    for p in _outside_fault(preds):
        assert p.quality.ok, (p.t_lsl, p.quality)
        assert not p.quality.reasons, (p.t_lsl, p.quality)


def test_clean_synthetic_eeg_has_no_finding(deap_model, clean_eeg):
    preds, _ = _run(deap_model, clean_eeg)
    assert len(preds) > 140
    found = [(p.t_lsl, dict(p.quality.reasons)) for p in preds if p.quality.reasons]
    assert not found
    assert all(p.quality.ok and not p.quality.bad_channels for p in preds)


def test_flat_channel_is_named_flat(deap_model, clean_eeg):
    preds, _ = _run(deap_model, _inject(clean_eeg, lambda x, t: np.full_like(x, 7.0)))
    _assert_reason(preds, "flat", flags=True)


def test_railed_channel_is_named_railed(deap_model, clean_eeg):
    preds, _ = _run(deap_model, _inject(clean_eeg, lambda x, t: x + 187_500.0))
    _assert_reason(preds, "railed", flags=True)


def test_nonfinite_channel_is_named_nonfinite(deap_model, clean_eeg):
    def dropout(x, t):
        x = x.copy()
        x[::50] = np.nan  # every 0.4 s
        return x

    preds, _ = _run(deap_model, _inject(clean_eeg, dropout))
    _assert_reason(preds, "nonfinite", flags=True)
    assert all(p.quality.nonfinite for p in _during_fault(preds))


def test_noisy_by_absolute_level(deap_model, clean_eeg):
    """White noise of 300 µV: 1-40 Hz RMS ~234 µV, above noisy_uv (150); the
    ratio rule is off, so the absolute rule alone names it."""
    rng = np.random.default_rng(0)
    faulty = _inject(clean_eeg, lambda x, t: x + 300.0 * rng.standard_normal(x.size))
    preds, _ = _run(deap_model, faulty, settings=PipelineSettings(noisy_ratio=math.inf))
    _assert_reason(preds, "noisy", flags=True)


def test_noisy_by_ratio_to_the_running_level(deap_model, clean_eeg):
    """The channel at 7 times its amplitude (a loose electrode): below
    noisy_uv, so only the ratio rule (5 x its running level) names it."""
    faulty = _inject(clean_eeg, lambda x, t: 7.0 * x)
    spec = SpectralMeasure(SF)
    a = int(T_FAULT * SF) + int(SF)
    rms, _ = spec(faulty[:, a : a + int(2 * SF)])
    assert rms[CH] < PipelineSettings().noisy_uv  # the absolute rule cannot fire
    preds, _ = _run(deap_model, faulty, settings=PipelineSettings(noisy_uv=math.inf))
    _assert_reason(preds, "noisy", flags=True)


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_line_noise_is_named_and_only_annotates(deap_model, clean_eeg, mains):
    hum = lambda x, t: x + 40.0 * np.sin(2 * np.pi * mains * t)  # noqa: E731
    preds, _ = _run(deap_model, _inject(clean_eeg, hum))
    _assert_reason(preds, "line_noise", flags=False)


def test_no_data_names_every_channel(deap_model, clean_eeg):
    """A source announcing a 1000x replay whose stamps advance in real time
    puts fewer than two samples in the 2 ms a window then spans."""
    settings = PipelineSettings(time_scale=1000.0)
    preds, _ = _run(deap_model, clean_eeg[:, : int(6 * SF)], settings=settings)
    assert preds
    for p in preds:
        assert not p.quality.ok
        assert p.probs is None
        assert p.quality.bad_channels == DEAP_CHANNELS
        assert set(p.quality.reasons.values()) == {"no_data"}


def test_worst_reason_wins(deap_model, clean_eeg):
    """A railed channel with mains on it is named railed, not line_noise."""
    faulty = _inject(
        clean_eeg, lambda x, t: x + 187_500.0 + 40 * np.sin(2 * np.pi * 50 * t)
    )
    preds, _ = _run(deap_model, faulty)
    _assert_reason(preds, "railed", flags=True)


def test_reason_sets_are_consistent():
    assert set(FLAGGING_REASONS) | set(ANNOTATING_REASONS) == set(QUALITY_REASONS)
    assert not set(FLAGGING_REASONS) & set(ANNOTATING_REASONS)


def test_spectral_measure_against_scipy_periodogram():
    """1-40 Hz RMS and mains ratio match scipy's periodogram of the detrended window
    (a DC offset of 50 mV and a drift do not leak into the band)."""
    from scipy import signal

    rng = np.random.default_rng(1)
    fs, n = 250.0, 500
    t = np.arange(n) / fs
    x = 10 * rng.standard_normal((3, n)) + 50_000.0 + 300.0 * t
    x[1] += 30 * np.sin(2 * np.pi * 60.0 * t)
    rms, ratio = SpectralMeasure(fs)(x)
    f, p = signal.periodogram(x, fs=fs, window="hann", detrend="linear")
    df = f[1] - f[0]
    band = p[:, (f >= 1) & (f <= 40)].sum(axis=1) * df
    line = p[:, np.abs(f - 60) <= 1].sum(axis=1) * df
    np.testing.assert_allclose(rms, np.sqrt(band), rtol=1e-9)
    np.testing.assert_allclose(ratio, line / band, rtol=1e-9)
    assert ratio[1] > 1 > ratio[0]


def test_running_level_is_a_median_that_skips_excluded_windows():
    lv = RunningLevel(2, length=5, min_count=3)
    lv.push(np.array([1.0, 1.0]))
    lv.push(np.array([2.0, 50.0]), exclude=np.array([False, True]))
    assert np.isnan(lv.level()).all()  # fewer than 3 windows
    lv.push(np.array([3.0, 3.0]))
    lv.push(np.array([100.0, 4.0]))
    level = lv.level()
    assert level[0] == 2.5  # median of 1, 2, 3, 100
    assert level[1] == 3.0  # median of 1, 3, 4 (50 was excluded)
    for _ in range(5):
        lv.push(np.array([7.0, 8.0]))
    np.testing.assert_array_equal(lv.level(), [7.0, 8.0])  # older ones rolled out


def test_running_level_median_is_numpys_nanmedian():
    # The level's own NaN-aware median (numpy's goes through masked arrays, ms
    # per hop) gives numpy's values: odd and even counts, all-NaN rows, inf.
    rng = np.random.default_rng(7)
    for _ in range(300):
        n_ch, length = int(rng.integers(1, 6)), int(rng.integers(1, 10))
        buf = rng.standard_normal((n_ch, length))
        buf[rng.random(buf.shape) < rng.random()] = np.nan
        buf[rng.random(buf.shape) < 0.05] = np.inf
        min_count = int(rng.integers(1, length + 1))
        lv = RunningLevel(n_ch, length=length, min_count=min_count)
        for col in buf.T:
            lv.push(col)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            want = np.nanmedian(buf, axis=1)
        want[(~np.isnan(buf)).sum(axis=1) < min_count] = np.nan
        np.testing.assert_array_equal(lv.level(), want)


def test_settings_refuse_bad_thresholds():
    for kw in (
        {"noisy_uv": 0},
        {"noisy_ratio": -1},
        {"line_noise_ratio": 0},
        {"noisy_level_s": 2, "noisy_level_min_s": 3},
        {"line_freqs": (0.0,)},
    ):
        with pytest.raises(Exception, match=next(iter(kw))):
            PipelineSettings(**kw)
    assert PipelineSettings(noisy_uv=math.inf).noisy_uv == math.inf


# -- the wire ----------------------------------------------------------------------
def _message(quality: Quality) -> PredictionMessage:
    return PredictionMessage(
        seq=0,
        stream="s",
        t_lsl=1.0,
        t_pub=2.0,
        window_s=2.0,
        tasks={"valence": TaskOutput(label=None)},
        quality=quality,
        latency_ms=1.0,
        model="m",
    )


def test_reasons_round_trip_on_the_wire_including_interpolated():
    # an interpolated channel stays among bad_channels; the window is ok
    q = Quality(
        ok=True,
        bad_channels=("Fp1",),
        reasons={"Fp1": "interpolated", "O2": "line_noise"},
    )
    msg = _message(q)
    validate(PREDICTION_TOPIC, msg.to_dict())
    payload = msg.to_dict()
    assert payload["quality"]["reasons"] == {"Fp1": "interpolated", "O2": "line_noise"}
    back = PredictionMessage.from_json(msg.to_json())
    assert back.quality.reasons == q.reasons
    assert back.to_json() == msg.to_json()
    # a clean window carries no reasons (older readers see the v1 payload as before)
    assert "reasons" not in _message(Quality(ok=True)).to_dict()["quality"]


@pytest.mark.parametrize(
    ("reasons", "bad", "match"),
    [
        (["Fp1"], ["Fp1"], "reasons must be an object"),
        ({"Fp1": 3}, ["Fp1"], "must be a reason"),
        ({"Fp1": "Flat!"}, ["Fp1"], "must be a reason"),
        ({"": "flat"}, [], "channel names"),
        ({"Fp1": "flat"}, ["Fp1", "O2"], "lacks bad channel"),
    ],
)
def test_schema_refuses_malformed_reasons(reasons, bad, match):
    payload = _message(Quality(ok=False)).to_dict()
    payload["quality"]["bad_channels"] = bad
    payload["quality"]["reasons"] = reasons
    with pytest.raises(MessageError, match=match):
        validate(PREDICTION_TOPIC, payload)


def test_schema_accepts_a_reason_word_it_does_not_know():
    """A reason added later within v1 must not break this reader."""
    payload = _message(Quality(ok=False)).to_dict()
    payload["quality"].update(bad_channels=["Fp1"], reasons={"Fp1": "sweat"})
    validate(PREDICTION_TOPIC, payload)


def test_reasons_arrive_through_a_real_subscriber(live_rig, deap_model, clean_eeg):
    """End to end: a flat and a mains-laden channel in a replayed recording;
    every prediction's quality.reasons arrives over ZeroMQ and validates."""
    trials = get_reader(
        "synthetic", None, n_subjects=2, n_videos=1, trial_s=40
    ).read_subject("s02")
    eeg = trials[0].eeg.copy()
    eeg[CH, int(10 * SF) : int(14 * SF)] = 3.0  # flat for 4 s
    eeg[0] += 40.0 * np.sin(2 * np.pi * 50.0 * np.arange(eeg.shape[1]) / SF)
    trial = dataclasses.replace(trials[0], eeg=eeg, baseline=None)
    rig = live_rig()
    rig.subscribed()
    with ReplaySource([trial], name=unique("emomon-quality")) as src:
        stats = run_stream(
            src,
            load_model(deap_model),
            sinks=[rig.pub],
            settings=StreamSettings(max_predictions=80, duration_s=30.0),
        )
    msgs = rig.receive_until(
        lambda m: any(s["state"] == "stopped" for s in statuses(m)), timeout_s=10.0
    )
    preds = predictions(msgs)
    assert len(preds) == stats.predictions == 80
    for m in msgs:  # the subscriber validated each as received; again here
        parse(encode(m.topic, m.payload))
    fp1, fc1 = DEAP_CHANNELS[0], DEAP_CHANNELS[CH]
    for p in preds:
        q = p["quality"]
        assert q["reasons"][fp1] == "line_noise"
        assert fp1 not in q["bad_channels"]
        assert set(q["bad_channels"]) <= set(q["reasons"])
    flat = [p for p in preds if p["quality"]["reasons"].get(fc1) == "flat"]
    assert flat
    assert all(not p["quality"]["ok"] for p in flat)
    assert all(p["valence"]["p_high"] is None for p in flat)
    ok = [p for p in preds if p["quality"]["ok"]]
    assert ok
    assert all(p["valence"]["p_high"] is not None for p in ok)
