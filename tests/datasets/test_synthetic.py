"""The synthetic DEAP-like generator: determinism, format, and physiology checks.

The realism checks can fail: they measure the generated EEG with ordinary
analysis code (Welch PSDs, Butterworth band filters) rather than reading the
generator's internals.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from scipy import signal, stats

from emomon.datasets import get_reader
from emomon.datasets.synthetic import (
    GENERATOR_VERSION,
    LEFT_FRONTAL,
    RIGHT_FRONTAL,
    SyntheticReader,
    SynthParams,
    generate,
    generate_subject,
    write_deap,
)
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.errors import ConfigError, DatasetError

FS = 128.0
IDX = {c: i for i, c in enumerate(DEAP_CHANNELS)}
POSTERIOR = [IDX[c] for c in DEAP_CHANNELS if c.startswith(("P", "O"))]  # P*, PO*, O*
FRONTAL = [IDX[c] for c in ("Fp1", "Fp2", "AF3", "AF4", "F3", "F4", "F7", "F8", "Fz")]


def _stack(trials):
    return np.stack([t.eeg for t in trials])


def _band_de(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Differential entropy per channel of the causally band-filtered signal."""
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=FS, output="sos")
    y = signal.sosfilt(sos, x, axis=-1)[:, int(FS) :]  # drop 1 s of transient
    return 0.5 * np.log(2 * np.pi * np.e * y.var(axis=-1, ddof=1))


def _band_power(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    f, p = signal.welch(x, fs=FS, nperseg=int(2 * FS), axis=-1)
    return p[..., (f >= lo) & (f <= hi)].mean(axis=-1)


# -- parameters -------------------------------------------------------------------


def test_defaults_match_design():
    p = SynthParams()
    assert (p.n_subjects, p.n_videos, p.sfreq) == (8, 20, 128.0)
    assert (p.baseline_s, p.trial_s) == (3.0, 60.0)
    assert (p.emotion_effect, p.content_effect, p.seed) == (1.0, 1.0, 0)
    assert (p.n_baseline, p.n_trial) == (384, 7680)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_subjects": 0}, "n_subjects"),
        ({"n_videos": 2.5}, "n_videos"),
        ({"sfreq": 64.0}, "sfreq"),
        ({"trial_s": "long"}, "trial_s"),
        ({"trial_s": float("nan")}, "trial_s"),
        ({"emotion_effect": -0.1}, "emotion_effect"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
        ({"alpha_freq_hz": (12.0, 8.0)}, "alpha_freq_hz"),
        ({"aperiodic_exponent": (1.0,)}, "aperiodic_exponent"),
        ({"content_freq_hz": (5.0, 80.0)}, "content_freq_hz"),
        ({"deap_preprocessing": "maybe"}, "deap_preprocessing"),
    ],
)
def test_invalid_params_name_the_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        SynthParams(**kwargs)


def test_reader_options_are_converted_and_unknown_rejected():
    r = SyntheticReader(
        None,
        n_subjects="2",
        emotion_effect="0.5",
        seed=3.0,
        alpha_freq_hz="9,11",
        deap_preprocessing="false",
    )
    assert r.params.n_subjects == 2
    assert r.params.emotion_effect == 0.5
    assert r.params.seed == 3
    assert r.params.alpha_freq_hz == (9.0, 11.0)
    assert r.params.deap_preprocessing is False
    with pytest.raises(ConfigError, match="n_subject"):
        SyntheticReader(None, n_subject=2)


# -- determinism --------------------------------------------------------------------


SMALL = {"n_videos": 3, "trial_s": 4.0}


def test_same_seed_identical_and_other_seed_differs():
    a = generate(SynthParams(n_subjects=2, seed=5, **SMALL))
    b = generate(SynthParams(n_subjects=2, seed=5, **SMALL))
    c = generate(SynthParams(n_subjects=2, seed=6, **SMALL))
    assert np.array_equal(_stack(a), _stack(b))
    assert np.array_equal(
        np.stack([t.baseline for t in a]), np.stack([t.baseline for t in b])
    )
    assert [t.ratings for t in a] == [t.ratings for t in b]
    assert not np.allclose(_stack(a), _stack(c))


def test_subject_does_not_depend_on_n_subjects():
    two = generate(SynthParams(n_subjects=2, **SMALL))
    five = generate(SynthParams(n_subjects=5, **SMALL))
    s2_two = [t for t in two if t.subject == "s02"]
    s2_five = [t for t in five if t.subject == "s02"]
    assert np.array_equal(_stack(s2_two), _stack(s2_five))
    assert [t.ratings for t in s2_two] == [t.ratings for t in s2_five]
    assert np.array_equal(
        _stack(generate_subject(SynthParams(**SMALL), 1)), _stack(s2_two)
    )


def test_video_properties_shared_by_subjects():
    trials = generate(SynthParams(n_subjects=3, **SMALL))
    for v in ("v01", "v02", "v03"):
        freqs = {t.meta["content_freq_hz"] for t in trials if t.video == v}
        assert len(freqs) == 1
    # ... while subjects differ in their own physiology
    assert len({t.meta["iaf_hz"] for t in trials}) == 3


def test_baseline_is_unaffected_by_emotion_and_content():
    """The pre-stimulus rest must not carry the video's effects."""
    on = generate_subject(SynthParams(**SMALL), 0)
    off = generate_subject(SynthParams(emotion_effect=0, content_effect=0, **SMALL), 0)
    for a, b in zip(on, off, strict=True):
        np.testing.assert_allclose(a.baseline, b.baseline, rtol=0, atol=1e-4)
        assert not np.allclose(a.eeg, b.eeg, atol=1e-2)


# -- shapes, units, ratings ------------------------------------------------------------


def test_trial_records_look_like_deap():
    p = SynthParams(n_subjects=2, n_videos=4, trial_s=8.0)
    trials = generate(p)
    assert [(t.subject, t.video) for t in trials[:5]] == [
        ("s01", "v01"), ("s01", "v02"), ("s01", "v03"), ("s01", "v04"),
        ("s02", "v01"),
    ]  # fmt: skip
    for t in trials:
        assert t.eeg.shape == (32, 1024)
        assert t.eeg.dtype == np.float64
        assert t.baseline.shape == (32, 384)
        assert t.ch_names == DEAP_CHANNELS
        assert t.sfreq == 128.0
        assert t.dataset == "synthetic"
        assert t.scale == (1.0, 9.0)
        assert set(t.ratings) == {"valence", "arousal", "dominance", "liking"}
        assert all(1.0 <= r <= 9.0 for r in t.ratings.values())
        full = np.concatenate([t.baseline, t.eeg], axis=1)
        assert np.isfinite(full).all()
        # average-referenced like DEAP
        assert np.abs(full.mean(axis=0)).max() < 1e-3
        # tens of µV, like DEAP's preprocessed EEG
        rms = full.std(axis=1)
        assert 3.0 < rms.min()
        assert rms.max() < 50.0
        assert np.abs(full).max() < 400.0
    # ratings spread over the four quadrants
    quads = {(t.ratings["valence"] > 5, t.ratings["arousal"] > 5) for t in trials}
    assert len(quads) == 4
    no_base = generate_subject(SynthParams(baseline_s=0, **SMALL), 0)
    assert no_base[0].baseline is None


def test_liking_follows_valence():
    trials = generate(SynthParams(n_subjects=4, n_videos=20, trial_s=2.0))
    val = [t.ratings["valence"] for t in trials]
    assert stats.pearsonr(val, [t.ratings["liking"] for t in trials])[0] > 0.4


# -- DEAP files ------------------------------------------------------------------------


def test_write_deap_round_trip(tmp_path):
    p = SynthParams(n_subjects=2, n_videos=4)
    paths = write_deap(p, tmp_path / "deap")
    assert [x.name for x in paths] == ["s01.dat", "s02.dat"]
    with paths[1].open("rb") as f:
        d = pickle.load(f, encoding="latin1")
    assert set(d) == {"data", "labels"}
    assert d["data"].shape == (4, 40, 8064)
    assert d["data"].dtype == np.float64
    assert d["labels"].shape == (4, 4)
    assert d["labels"].dtype == np.float64
    ref = generate_subject(p, 1)
    for j, t in enumerate(ref):
        assert np.array_equal(d["data"][j, :32, :384], t.baseline)
        assert np.array_equal(d["data"][j, :32, 384:], t.eeg)
        assert list(d["labels"][j]) == [
            t.ratings[k] for k in ("valence", "arousal", "dominance", "liking")
        ]
    assert np.isfinite(d["data"][:, 32:]).all()
    assert d["data"][:, 32:].std() > 0
    # Like DEAP's Python 2 files: the numpy-1 module name, and str data that
    # only loads with encoding="latin1".
    raw = paths[0].read_bytes()[:200]
    assert b"numpy.core.multiarray" in raw
    with paths[0].open("rb") as f, pytest.raises(UnicodeDecodeError):
        pickle.load(f)


def test_write_deap_is_read_by_the_deap_reader(tmp_path):
    p = SynthParams(n_subjects=1, n_videos=2, trial_s=10.0)
    write_deap(p, tmp_path)
    got = get_reader("deap", tmp_path).read_subject("s01")
    for a, b in zip(got, generate_subject(p, 0), strict=True):
        assert (a.subject, a.video, a.ratings) == (b.subject, b.video, b.ratings)
        assert np.array_equal(a.eeg, b.eeg)
        assert np.array_equal(a.baseline, b.baseline)


def test_write_deap_refuses_non_deap_timing(tmp_path):
    with pytest.raises(ConfigError, match="sfreq"):
        write_deap(SynthParams(sfreq=256.0, **SMALL), tmp_path)
    with pytest.raises(ConfigError, match="baseline_s"):
        write_deap(SynthParams(baseline_s=2.0, **SMALL), tmp_path)


# -- reader ----------------------------------------------------------------------------


def test_reader_generates_in_memory():
    r = get_reader("synthetic", None, n_subjects=2, n_videos=4, seed=1)
    assert isinstance(r, SyntheticReader)
    assert r.subjects() == ["s01", "s02"]
    assert r.files("s01") == []
    got = r.read_subject("s02")
    ref = generate_subject(SynthParams(n_subjects=2, n_videos=4, seed=1), 1)
    assert np.array_equal(_stack(got), _stack(ref))
    assert r.read_subject("2")[0].subject == "s02"
    with pytest.raises(DatasetError, match="s03"):
        r.read_subject("s03")
    assert SyntheticReader.from_params(r.params).params == r.params


def test_cache_token_covers_every_parameter():
    tok = SyntheticReader(None, n_videos=4).cache_token()
    assert tok["generator_version"] == GENERATOR_VERSION
    names = {f.name for f in dataclasses.fields(SynthParams)}
    assert set(tok["params"]) == names
    assert tok != SyntheticReader(None, n_videos=4, blink_rate_per_min=3).cache_token()
    assert tok == SyntheticReader(None, n_videos=4).cache_token()


# -- physiology ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rest_trials():
    """4 subjects x 3 videos, 20 s, no emotion or content effect."""
    p = SynthParams(
        n_subjects=4, n_videos=3, trial_s=20.0, emotion_effect=0, content_effect=0
    )
    return generate(p)


def test_alpha_is_posterior_and_at_the_individual_frequency(rest_trials):
    for s in ("s01", "s02", "s03", "s04"):
        trials = [t for t in rest_trials if t.subject == s]
        alpha = _band_power(_stack(trials), 8.0, 13.0).mean(axis=0)  # (32,)
        ratio = alpha[POSTERIOR].mean() / alpha[FRONTAL].mean()
        assert ratio > 1.4, (s, ratio)
        # posterior spectral peak at the subject's individual alpha frequency
        f, pxx = signal.welch(_stack(trials)[:, POSTERIOR], fs=FS, nperseg=512)
        band = (f >= 6.0) & (f <= 15.0)
        peak = f[band][np.argmax(pxx.mean(axis=(0, 1))[band])]
        assert abs(peak - trials[0].meta["iaf_hz"]) <= 1.0, (s, peak)


def test_aperiodic_slope(rest_trials):
    """Log-log PSD slope outside the alpha band and the filter skirts."""
    x = _stack(rest_trials)
    f, pxx = signal.welch(x, fs=FS, nperseg=256, axis=-1)
    keep = ((f >= 5.0) & (f < 7.0)) | ((f > 14.0) & (f <= 35.0))
    slopes = []
    for s in range(4):
        p = pxx[3 * s : 3 * s + 3].mean(axis=0)[:, keep]  # (32, n_freq)
        slope = np.polyfit(np.log10(f[keep]), np.log10(p.T), 1)[0]  # per channel
        slopes.append(np.median(slope))
        assert 0.5 <= -np.median(slope) <= 2.5, slopes
    chis = [rest_trials[3 * s].meta["aperiodic_exponent"] for s in range(4)]
    assert stats.pearsonr(chis, slopes)[0] < -0.8  # steeper for larger chi


def test_aperiodic_slope_without_deap_filter():
    p = SynthParams(
        n_subjects=1,
        n_videos=2,
        trial_s=20.0,
        emotion_effect=0,
        content_effect=0,
        blink_uv=0,
        deap_preprocessing=False,
    )
    x = _stack(generate(p))
    f, pxx = signal.welch(x, fs=FS, nperseg=256, axis=-1)
    keep = ((f >= 2.0) & (f < 7.0)) | ((f > 14.0) & (f <= 40.0))
    slope = np.polyfit(np.log10(f[keep]), np.log10(pxx.mean(axis=0)[:, keep].T), 1)[0]
    assert 0.5 <= -np.median(slope) <= 2.5


def test_blinks_are_frontal():
    base = {"n_subjects": 1, "n_videos": 2, "trial_s": 20.0, "blink_rate_per_min": 30}
    with_b = _stack(generate(SynthParams(**base)))
    without = _stack(generate(SynthParams(blink_uv=0, **base)))
    rms = (with_b - without).std(axis=(0, 2))
    fp = rms[[IDX["Fp1"], IDX["Fp2"]]].mean()
    af = rms[[IDX["AF3"], IDX["AF4"]]].mean()
    occ = rms[[IDX["O1"], IDX["O2"], IDX["Oz"]]].mean()
    assert fp > 1.4 * af
    assert af > 2 * occ
    assert fp > 2.5  # µV RMS: visible after the 4-45 Hz band-pass


@pytest.fixture(scope="module")
def emotion_sets():
    """4 subjects x 20 videos, 10 s trials, with and without the emotion effect."""
    kw = {"n_subjects": 4, "n_videos": 20, "trial_s": 10.0}
    return {e: generate(SynthParams(emotion_effect=e, **kw)) for e in (1.0, 0.0)}


def _faa(trials):
    """Right-minus-left frontal alpha DE per trial."""
    r = [IDX[c] for c in RIGHT_FRONTAL]
    left = [IDX[c] for c in LEFT_FRONTAL]
    out = []
    for t in trials:
        de = _band_de(t.eeg, 8.0, 13.0)
        out.append(de[r].mean() - de[left].mean())
    return np.array(out)


def test_valence_drives_frontal_alpha_asymmetry(emotion_sets):
    """Davidson's direction: higher valence, less LEFT-frontal alpha, so
    right-minus-left alpha DE correlates positively with valence. (DESIGN.md and
    issue 2 state the reverse sign, contrary to Davidson 1992 / Coan & Allen
    2004; see synthetic._ASYMMETRY_SIGN.)"""
    r = {}
    for e, trials in emotion_sets.items():
        val = [t.ratings["valence"] for t in trials]
        r[e] = stats.pearsonr(_faa(trials), val)[0]
    assert r[1.0] > 0.4, r
    assert abs(r[0.0]) < 0.25, r


def test_arousal_raises_beta_over_alpha(emotion_sets):
    r = {}
    for e, trials in emotion_sets.items():
        x = _stack(trials)
        beta, alpha = _band_power(x, 13.0, 30.0), _band_power(x, 8.0, 13.0)
        ratio = np.log(beta.mean(axis=1) / alpha.mean(axis=1))
        r[e] = stats.pearsonr(ratio, [t.ratings["arousal"] for t in trials])[0]
    assert r[1.0] > 0.4, r
    assert abs(r[0.0]) < 0.25, r


def test_content_fingerprint_is_per_video_and_subject_independent():
    """Same video -> similar band-power change across subjects; other videos not."""
    p = SynthParams(n_subjects=3, n_videos=4, trial_s=20.0, emotion_effect=0)
    trials = generate(p)
    bands = ((4, 8), (8, 13), (13, 30), (30, 45))

    def feat(t):
        return np.concatenate([
            np.log(_band_power(t.eeg, lo, hi) / _band_power(t.baseline, lo, hi))
            for lo, hi in bands
        ])  # fmt: skip

    f = np.stack([feat(t) for t in trials]).reshape(3, 4, -1)
    f -= f.mean(axis=1, keepdims=True)  # remove each subject's own offsets
    same, other = [], []
    for a in range(3):
        for b in range(a + 1, 3):
            for v in range(4):
                for w in range(4):
                    rr = np.corrcoef(f[a, v], f[b, w])[0, 1]
                    (same if v == w else other).append(rr)
    assert np.mean(same) > np.mean(other) + 0.25, (np.mean(same), np.mean(other))
