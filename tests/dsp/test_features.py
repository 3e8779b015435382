import numpy as np
import pytest
from scipy import signal

from emomon.config import Band, FeatureSpec
from emomon.dsp.features import (
    ExtractorSettings,
    FeatureExtractor,
    band_integration_matrix,
    compute_features,
    differential_entropy,
)
from emomon.dsp.filters import bandpass_sos

SF = 128.0


def _chunked(ext, x, rng, max_chunk=300):
    vals, ends, i = [], [], 0
    sizes = [0, 1, 1, 0, 2]  # always exercise empty and single-sample chunks
    while i < x.shape[1]:
        n = sizes.pop(0) if sizes else int(rng.integers(0, max_chunk))
        out = ext.process(x[:, i : i + n])
        vals.append(out.values)
        ends.append(out.ends)
        i += n
    return np.concatenate(vals), np.concatenate(ends)


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(),
        FeatureSpec(notch=50.0, car=False, hop_s=0.25, warmup_s=0.3),
        FeatureSpec(kinds=("psd",), window_s=1.5, hop_s=0.2, welch_seg_s=0.5),
        FeatureSpec(kinds=("raw",), layout="eeg", notch=60.0),
    ],
    ids=["default", "notch-nocar", "psd-odd-hop", "raw"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_chunked_features_equal_one_shot(spec, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, int(30 * SF))) * 15 + rng.normal(0, 300, (6, 1))
    one = compute_features(x, sfreq=SF, spec=spec)
    ext = FeatureExtractor(ExtractorSettings(spec, SF, 6))
    vals, ends = _chunked(ext, x, rng)
    assert len(one) > 10
    np.testing.assert_array_equal(ends, one.ends)
    assert np.abs(vals - one.values).max() < 1e-9


def test_window_grid_and_warmup():
    spec = FeatureSpec(window_s=2.0, hop_s=0.5, warmup_s=1.0)
    out = compute_features(np.zeros((2, int(10 * SF))) + 1.0, sfreq=SF, spec=spec)
    # First window starts after the 1 s warm-up: ends at 3 s, then every 0.5 s.
    assert out.ends[0] == int(3 * SF)
    assert np.all(np.diff(out.ends) == int(0.5 * SF))
    assert out.ends[-1] <= 10 * SF
    assert out.values.shape == (len(out.ends), 2, 8)
    assert np.isfinite(out.values).all()  # flat input: floored, still finite


def test_hop_does_not_change_features():
    x = np.random.default_rng(5).standard_normal((4, int(20 * SF)))
    a = compute_features(x, sfreq=SF, spec=FeatureSpec(hop_s=0.5))
    b = compute_features(x, sfreq=SF, spec=FeatureSpec(hop_s=0.25))
    common, ia, ib = np.intersect1d(a.ends, b.ends, return_indices=True)
    assert common.size == len(a)
    assert np.abs(a.values[ia] - b.values[ib]).max() < 1e-9


def test_reset_restarts_warmup():
    x = np.random.default_rng(6).standard_normal((3, int(8 * SF)))
    ext = FeatureExtractor(ExtractorSettings(FeatureSpec(), SF, 3))
    first = ext.process(x)
    ext.reset()
    again = ext.process(x)
    np.testing.assert_array_equal(first.ends, again.ends)
    np.testing.assert_array_equal(first.values, again.values)


def test_de_of_band_limited_gaussian_noise_matches_closed_form():
    sigma = 20.0
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, int(120 * SF))) * sigma
    spec = FeatureSpec(kinds=("de",), car=False)
    out = compute_features(x, sfreq=SF, spec=spec)
    for j, b in enumerate(spec.bands):
        # Output variance of white noise through H: sigma^2 * (2/fs) * int |H|^2 df.
        f, h = signal.sosfreqz(bandpass_sos(b.lo, b.hi, sfreq=SF), worN=2**16, fs=SF)
        gain = np.trapezoid(np.abs(h) ** 2, f) * 2.0 / SF
        expected = 0.5 * np.log(2 * np.pi * np.e * sigma**2 * gain)
        measured = out.values[:, :, j].mean()
        assert measured == pytest.approx(expected, rel=0.02), b.name


def test_de_formula():
    assert differential_entropy(np.array([1.0]))[0] == pytest.approx(
        0.5 * np.log(2 * np.pi * np.e)
    )


def test_ten_hz_sine_puts_its_power_in_alpha():
    t = np.arange(int(20 * SF)) / SF
    rng = np.random.default_rng(8)
    x = 30 * np.sin(2 * np.pi * 10 * t) + rng.standard_normal((3, t.size)) * 0.5
    spec = FeatureSpec(car=False)
    out = compute_features(x, sfreq=SF, spec=spec)
    names = spec.feature_names
    psd = 10 ** out.values[:, :, [names.index(f"psd_{b}") for b in spec.band_names]]
    share = psd[..., spec.band_names.index("alpha")] / psd.sum(axis=-1)
    assert share.min() > 0.9
    de = out.values[:, :, [names.index(f"de_{b}") for b in spec.band_names]]
    assert (de.argmax(axis=-1) == spec.band_names.index("alpha")).all()


def test_psd_matches_scipy_welch():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, int(12 * SF))) * 10
    spec = FeatureSpec(kinds=("psd",), car=False)
    out = compute_features(x, sfreq=SF, spec=spec)
    k = 3
    end = out.ends[k]
    f, p = signal.welch(x[:, end - 256 : end], fs=SF, nperseg=128, window="hann")
    ref = np.log10(p @ band_integration_matrix(f, spec.bands))
    np.testing.assert_allclose(out.values[k], ref, atol=1e-10)


def test_bad_settings_and_chunks_name_the_problem():
    with pytest.raises(ValueError, match="Nyquist"):
        ExtractorSettings(FeatureSpec(), 64.0, 4)  # gamma 30-45 Hz at 64 Hz
    ext = FeatureExtractor(ExtractorSettings(FeatureSpec(), SF, 4))
    with pytest.raises(ValueError, match=r"\(4, n_times\)"):
        ext.process(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="Welch bins"):
        compute_features(
            np.zeros((1, 1000)),
            sfreq=SF,
            spec=FeatureSpec(bands=(Band("narrow", 10.0, 10.5),), kinds=("psd",)),
        )


def test_raw_windows_are_the_band_passed_referenced_signal():
    from emomon.dsp.filters import band_filter_bank, common_average

    x = np.random.default_rng(10).standard_normal((4, int(10 * SF))) * 10
    spec = FeatureSpec(kinds=("raw",), layout="eeg")
    out = compute_features(x, sfreq=SF, spec=spec)
    assert out.values.shape[1:] == (4, 256)
    y = band_filter_bank(
        (Band("raw", *spec.raw_band()),), sfreq=SF, n_channels=4
    ).process(common_average(x))[0]
    end = out.ends[2]
    np.testing.assert_allclose(out.values[2], y[:, end - 256 : end], atol=1e-12)
