"""MNEReader on FIF files written by MNE, a hand-written EDF+ file, BrainVision."""

from __future__ import annotations

import datetime

import mne
import numpy as np
import pytest

from emomon.datasets import get_reader
from emomon.datasets.mne_reader import MNEReader, parse_description
from emomon.errors import ConfigError, DatasetError

from .writers import write_edf

SFREQ = 100.0
CH = ["FP1", "EEG Cz-REF", "Oz", "O2", "EOG1", "STI 014"]
TYPES = ["eeg", "eeg", "eeg", "eeg", "eog", "stim"]


def _raw(n_times=2000, first_samp=0, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 20e-6, (len(CH), n_times))  # volts, as MNE stores them
    info = mne.create_info(CH, SFREQ, TYPES)
    raw = mne.io.RawArray(data, info, first_samp=first_samp, verbose="error")
    raw.set_meas_date(datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC))
    return raw


def _save(raw, path):
    raw.save(path, overwrite=True, verbose="error")
    # what is on disk (FIF stores float32): the reference for value checks
    return mne.io.read_raw_fif(path, preload=True, verbose="error").get_data()


def test_parse_description():
    assert parse_description("video=v03; valence=7;Arousal=3") == (
        "",
        {"video": "v03", "valence": "7", "arousal": "3"},
    )
    assert parse_description("film 2") == ("film 2", {})
    assert parse_description("stim/a;label=happy") == ("stim/a", {"label": "happy"})


def test_annotations_with_durations_become_trials_in_microvolts(tmp_path):
    raw = _raw(first_samp=300)
    raw.set_annotations(
        mne.Annotations(
            onset=[2.0, 5.0, 9.0, 12.0],
            duration=[3.0, 1.0, 4.0, 0.0],
            description=[
                "video=v03;valence=7;arousal=3;intensity=high",
                "BAD_muscle",
                "calm film;label=neutral",
                "button",  # instantaneous: ignored when others have durations
            ],
            orig_time=None,  # relative to the first sample
        )
    )
    path = tmp_path / "sub01_eeg.fif"
    volts = _save(raw, path)
    reader = get_reader("mne", path)
    assert isinstance(reader, MNEReader)
    assert reader.subjects() == ["sub01_eeg"]
    trials = reader.read_subject("sub01_eeg")
    assert [t.video for t in trials] == ["v03", "calm film"]
    t0, t1 = trials
    assert t0.ch_names == ("Fp1", "Cz", "Oz", "O2")  # EEG only, 10-20 spelling
    assert t0.sfreq == SFREQ
    assert t0.eeg.shape == (4, 300)
    assert t0.eeg.dtype == np.float64
    # V -> µV, sample-exact onset (2.0 s after the first sample)
    np.testing.assert_allclose(t0.eeg, volts[:4, 200:500] * 1e6, rtol=1e-12)
    assert 5.0 < np.std(t0.eeg) < 50.0  # µV-sized numbers
    assert t0.ratings == {"valence": 7.0, "arousal": 3.0}
    assert t0.scale == (1.0, 9.0)
    assert t0.meta["extra"] == {"intensity": "high"}
    np.testing.assert_allclose(t1.eeg, volts[:4, 900:1300] * 1e6, rtol=1e-12)
    assert t1.label == "neutral"
    assert t1.ratings is None
    assert t1.scale is None


def test_trial_duration_after_instantaneous_annotations_and_baseline(
    tmp_path, raises_one_line
):
    raw = _raw()
    raw.set_annotations(
        mne.Annotations([1.0, 4.0], [0.0, 0.0], ["stim/v01", "stim/v02"])
    )
    path = tmp_path / "run1_eeg.fif"
    volts = _save(raw, path)
    with raises_one_line(DatasetError, "run1_eeg.fif", "trial_duration"):
        MNEReader(path).read_subject("run1_eeg")
    reader = MNEReader(
        tmp_path,
        event_prefix="stim/",
        trial_duration=2.0,
        baseline_s=0.5,
        rating_scale=(1, 5),
    )
    trials = reader.read_subject("run1_eeg")
    assert [t.video for t in trials] == ["v01", "v02"]
    np.testing.assert_allclose(trials[1].eeg, volts[:4, 400:600] * 1e6, rtol=1e-12)
    np.testing.assert_allclose(trials[1].baseline, volts[:4, 350:400] * 1e6)
    assert reader.cache_token()["options"]["trial_duration"] == 2.0


def test_no_annotations_gives_whole_recording(tmp_path):
    path = tmp_path / "rest_eeg.fif"
    volts = _save(_raw(n_times=500), path)
    (trial,) = MNEReader(tmp_path).read_subject("rest_eeg")
    assert trial.video == "rec"
    np.testing.assert_allclose(trial.eeg, volts[:4] * 1e6, rtol=1e-12)


def test_emomon_prediction_annotations_are_not_trials(tmp_path):
    """A session recorded by ``emomon stream --record`` is served whole; its
    ``emomon/`` prediction annotations never become (or break) trials."""
    preds = ["emomon/prediction;seq=0;valence=0.7;ok=1", "emomon/prediction;seq=1"]
    raw = _raw(n_times=600)
    raw.set_annotations(mne.Annotations([3.0, 3.25], [0.0, 0.0], preds))
    volts = _save(raw, tmp_path / "session.fif")
    (trial,) = MNEReader(tmp_path / "session.fif").read_subject("session")
    assert trial.video == "rec"
    assert trial.eeg.shape == (4, 600)
    np.testing.assert_allclose(trial.eeg, volts[:4] * 1e6, rtol=1e-12)
    # beside stimulus annotations they are ignored
    raw.set_annotations(
        mne.Annotations([1.0, 3.0, 3.25], [2.0, 0.0, 0.0], ["video=v1", *preds])
    )
    _save(raw, tmp_path / "session.fif")
    (trial,) = MNEReader(tmp_path / "session.fif").read_subject("session")
    assert trial.video == "v1"
    assert trial.eeg.shape == (4, 200)


def test_annotation_past_the_end_is_clipped(tmp_path):
    raw = _raw(n_times=1000)
    raw.set_annotations(mne.Annotations([8.0], [0.0], ["late"]))
    path = tmp_path / "c_eeg.fif"
    _save(raw, path)
    with pytest.warns(UserWarning, match="clipped"):
        (trial,) = MNEReader(path, trial_duration=5.0).read_subject("c_eeg")
    assert trial.eeg.shape == (4, 200)


def test_brainvision_if_pybv_available(tmp_path):
    pytest.importorskip("pybv")
    raw = _raw(n_times=600)
    raw.set_annotations(mne.Annotations([1.0], [2.0], ["video=v01;valence=2"]))
    path = tmp_path / "bv.vhdr"
    mne.export.export_raw(path, raw.copy().pick(["eeg"]), verbose="error")
    (trial,) = MNEReader(tmp_path).read_subject("bv")
    np.testing.assert_allclose(
        trial.eeg, raw.get_data(picks="eeg")[:, 100:300] * 1e6, rtol=1e-4, atol=0.01
    )
    assert len(MNEReader(tmp_path).files("bv")) == 3


def test_edf_plus_file_with_microvolt_dimension(tmp_path):
    """A real EDF+ file (written byte by byte): 'uV' samples -> MNE volts -> µV."""
    rng = np.random.default_rng(3)
    uv = write_edf(
        tmp_path / "subj7.edf",
        rng.normal(0.0, 30.0, (3, 400)),
        ["EEG Fp1-REF", "EEG O2-REF", "EEG CZ-REF"],
        100,
        [(1.0, 2.0, "video=v02;arousal=8"), (0.5, 0.0, "BAD_blink")],
    )
    raw = mne.io.read_raw_edf(tmp_path / "subj7.edf", preload=True, verbose="error")
    np.testing.assert_allclose(raw.get_data(), uv * 1e-6, atol=1e-12)  # MNE: volts
    (trial,) = MNEReader(tmp_path).read_subject("subj7")
    assert trial.ch_names == ("Fp1", "O2", "Cz")
    assert trial.video == "v02"
    assert trial.ratings == {"arousal": 8.0}
    np.testing.assert_allclose(trial.eeg, uv[:, 100:300], atol=1e-9)  # µV again


# -- errors ----------------------------------------------------------------------


def test_corrupt_file(tmp_path, raises_one_line):
    (tmp_path / "broken_eeg.fif").write_bytes(b"\x00\x01not a fif file" * 10)
    with raises_one_line(DatasetError, "broken_eeg.fif", "cannot be read by MNE"):
        MNEReader(tmp_path).read_subject("broken_eeg")


def test_no_eeg_channels(tmp_path, raises_one_line):
    info = mne.create_info(["EOG1", "ECG"], SFREQ, ["eog", "ecg"])
    raw = mne.io.RawArray(np.zeros((2, 100)), info, verbose="error")
    raw.save(tmp_path / "x_eeg.fif", verbose="error")
    with raises_one_line(DatasetError, "x_eeg.fif", "no EEG channels", "ecg"):
        MNEReader(tmp_path).read_subject("x_eeg")


def test_nan_samples(tmp_path, raises_one_line):
    raw = _raw(n_times=100)
    raw._data[2, 10] = np.nan
    raw.save(tmp_path / "n_eeg.fif", verbose="error")
    with raises_one_line(DatasetError, "n_eeg.fif", "1 NaN/inf"):
        MNEReader(tmp_path).read_subject("n_eeg")
    # replay reads recorded sessions as they were received
    (trial,) = MNEReader(tmp_path, allow_nonfinite=True).read_subject("n_eeg")
    assert np.isnan(trial.eeg[2, 10])
    assert np.isfinite(trial.eeg).sum() == trial.eeg.size - 1


def test_only_bad_annotations_and_bad_ratings(tmp_path, raises_one_line):
    raw = _raw()
    raw.set_annotations(mne.Annotations([1.0], [1.0], ["BAD_blink"]))
    _save(raw, tmp_path / "b_eeg.fif")
    with raises_one_line(DatasetError, "b_eeg.fif", "no usable annotation"):
        MNEReader(tmp_path).read_subject("b_eeg")
    raw.set_annotations(mne.Annotations([1.0], [1.0], ["video=v1;valence=high"]))
    _save(raw, tmp_path / "b_eeg.fif")
    with raises_one_line(DatasetError, "b_eeg.fif", "valence is not a number"):
        MNEReader(tmp_path).read_subject("b_eeg")


def test_missing_empty_dir_and_bad_options(tmp_path, raises_one_line):
    with raises_one_line(DatasetError, "nope", "does not exist"):
        MNEReader(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with raises_one_line(DatasetError, str(tmp_path), ".edf"):
        MNEReader(tmp_path).subjects()
    with pytest.raises(DatasetError):
        MNEReader(tmp_path, trial_duration=0)
    with pytest.raises(DatasetError):
        MNEReader(tmp_path, rating_scale=(9, 1))
    with pytest.raises(ConfigError):
        MNEReader(tmp_path, tmin=0)
