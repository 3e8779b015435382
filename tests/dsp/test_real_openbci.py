"""DSP on the real OpenBCI Cyton recording (../shared/data; skipped when absent)."""

import numpy as np
import pytest
from scipy import signal

from emomon.config import FeatureSpec
from emomon.datasets.openbci import read_openbci_txt
from emomon.dsp.features import ExtractorSettings, FeatureExtractor, compute_features
from emomon.dsp.filters import notch_filter


@pytest.fixture(scope="module")
def recording(openbci_sample):
    eeg, sfreq, ch_names, _ = read_openbci_txt(openbci_sample)
    return eeg, sfreq, ch_names


def test_notch_cuts_mains_by_more_than_20_db(recording):
    eeg, sf, _ = recording
    y = notch_filter(60.0, sfreq=sf, n_channels=eeg.shape[0]).process(eeg)[0]
    settled = slice(int(2 * sf), None)
    f, before = signal.welch(eeg[:, settled], fs=sf, nperseg=int(sf))
    _, after = signal.welch(y[:, settled], fs=sf, nperseg=int(sf))
    mains = (f >= 59) & (f <= 61)
    cut_db = 10 * np.log10(before[:, mains].sum(1) / after[:, mains].sum(1))
    assert cut_db.min() > 20.0, cut_db
    # The 8-45 Hz EEG bands are untouched (< 0.5 dB change).
    band = (f >= 8) & (f <= 45)
    change_db = 10 * np.log10(before[:, band].sum(1) / after[:, band].sum(1))
    assert np.abs(change_db).max() < 0.5, change_db


def test_features_of_the_real_recording_are_finite(recording):
    eeg, sf, _ = recording
    spec = FeatureSpec(notch=60.0, layout="flat")
    out = compute_features(eeg, sfreq=sf, spec=spec, hop_s=0.25)
    assert len(out) > 300
    assert np.isfinite(out.values).all()
    # DE in the typical few-units range for µV-scale EEG, not an absurd scale.
    de = out.values[:, :, : len(spec.bands)]
    assert 0.0 < np.median(de) < 10.0


def test_real_recording_chunked_equals_one_shot(recording):
    eeg, sf, _ = recording
    spec = FeatureSpec(notch=60.0)
    one = compute_features(eeg, sfreq=sf, spec=spec, hop_s=0.25)
    ext = FeatureExtractor(ExtractorSettings(spec, sf, eeg.shape[0], hop_s=0.25))
    rng = np.random.default_rng(0)
    vals, i = [], 0
    while i < eeg.shape[1]:
        n = int(rng.integers(0, 40))  # LSL-like small chunks, some empty
        vals.append(ext.process(eeg[:, i : i + n]).values)
        i += n
    assert np.abs(np.concatenate(vals) - one.values).max() < 1e-9
