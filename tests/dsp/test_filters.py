import numpy as np
import pytest
from scipy import signal

from emomon.config import DEFAULT_BANDS
from emomon.dsp.filters import (
    band_filter_bank,
    bandpass_sos,
    common_average,
    notch_filter,
)


def test_bank_matches_one_shot_sosfilt_with_first_sample_state():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1000)) * 10 + 500.0  # DC offset like raw amplifiers
    bank = band_filter_bank(DEFAULT_BANDS, sfreq=128.0, n_channels=3)
    y = bank.process(x)
    for i, b in enumerate(DEFAULT_BANDS):
        sos = bandpass_sos(b.lo, b.hi, sfreq=128.0, order=4)
        zi = signal.sosfilt_zi(sos)[:, None, :] * x[:, :1]
        ref, _ = signal.sosfilt(sos, x, axis=-1, zi=zi)
        np.testing.assert_allclose(y[i], ref, rtol=0, atol=1e-9)
    # Initial state from the first sample: no step transient from the DC offset.
    assert np.abs(y[:, :, :5]).max() < 50.0


def test_bank_chunked_equals_one_shot_and_skips_empty():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 700))
    one = band_filter_bank(DEFAULT_BANDS, sfreq=128.0, n_channels=4).process(x)
    bank = band_filter_bank(DEFAULT_BANDS, sfreq=128.0, n_channels=4)
    outs, i = [], 0
    for n in [0, 1, 0, 5, 100, 1, 0, 300, 293]:
        outs.append(bank.process(x[:, i : i + n]))
        i += n
    assert i == 700
    np.testing.assert_array_equal(np.concatenate(outs, axis=-1), one)


def test_reset_forgets_state():
    x = np.random.default_rng(3).standard_normal((2, 200))
    bank = band_filter_bank(DEFAULT_BANDS, sfreq=128.0, n_channels=2)
    a = bank.process(x)
    bank.process(x)
    bank.reset()
    np.testing.assert_array_equal(bank.process(x), a)


def test_bandpass_rejects_band_above_nyquist():
    with pytest.raises(ValueError, match="Nyquist"):
        bandpass_sos(30.0, 70.0, sfreq=128.0)


def test_notch_attenuates_mains_and_passes_alpha():
    sf = 250.0
    t = np.arange(int(20 * sf)) / sf
    x = np.vstack([np.sin(2 * np.pi * 60 * t), np.sin(2 * np.pi * 10 * t)])
    y = notch_filter(60.0, sfreq=sf, n_channels=2).process(x)[0]
    tail = slice(int(5 * sf), None)  # after the notch has settled
    assert np.std(y[0, tail]) < 0.05 * np.std(x[0, tail])
    assert np.std(y[1, tail]) == pytest.approx(np.std(x[1, tail]), rel=0.02)


def test_common_average_removes_common_signal():
    rng = np.random.default_rng(4)
    common = rng.standard_normal(100)
    x = rng.standard_normal((5, 100)) + common
    y = common_average(x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y, x - x.mean(axis=0), atol=1e-12)


def test_kernel_fast_path_equals_public_sosfilt(monkeypatch):
    from emomon.dsp import filters

    x = np.random.default_rng(5).standard_normal((3, 300)) + 40.0
    fast = band_filter_bank(DEFAULT_BANDS, sfreq=128.0, n_channels=3)
    a = np.concatenate([fast.process(x[:, :7]), fast.process(x[:, 7:])], axis=-1)
    monkeypatch.setattr(filters, "_sosfilt_kernel", None)
    slow = band_filter_bank(DEFAULT_BANDS, sfreq=128.0, n_channels=3)
    b = np.concatenate([slow.process(x[:, :7]), slow.process(x[:, 7:])], axis=-1)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_designs_are_made_once_and_handed_out_as_copies():
    a = bandpass_sos(8.0, 13.0, sfreq=128.0, order=4)
    np.testing.assert_array_equal(
        a, signal.butter(4, [8.0, 13.0], btype="bandpass", fs=128.0, output="sos")
    )
    a[:] = 0.0  # a caller's copy: the next one is intact
    b = bandpass_sos(8.0, 13.0, sfreq=128.0, order=4)
    assert np.abs(b).max() > 0
    # Two banks of the same bands share one steady state, which nobody can write.
    z1 = band_filter_bank(DEFAULT_BANDS, sfreq=128.0, n_channels=2).settings.zi
    z2 = band_filter_bank(DEFAULT_BANDS, sfreq=128.0, n_channels=2).settings.zi
    assert all(p is q for p, q in zip(z1, z2, strict=True))
    assert not z1[0].flags.writeable
    np.testing.assert_allclose(z1[1], signal.sosfilt_zi(b), rtol=0, atol=0)  # alpha
