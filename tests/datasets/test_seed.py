"""SeedReader / SeedFeaturesReader on small files in SEED's layout."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from emomon.datasets import get_reader
from emomon.datasets.base import FeatureTrial
from emomon.datasets.seed import SeedFeaturesReader, SeedReader
from emomon.dsp.layout import SEED_CHANNELS
from emomon.errors import DatasetError

from .writers import (
    SEED_LABELS,
    seed_eeg,
    seed_features,
    write_seed_features,
    write_seed_label,
    write_seed_session,
)

NAMES = {1: "positive", 0: "neutral", -1: "negative"}


@pytest.fixture
def seed_root(tmp_path):
    folder = tmp_path / "Preprocessed_EEG"
    write_seed_label(folder)
    sessions = {
        "1_20131027.mat": seed_eeg(seed=1),
        "1_20131030.mat": seed_eeg(seed=2),
        "10_20131130.mat": seed_eeg(seed=3),
        "2_20140404.mat": seed_eeg(seed=4),
    }
    for name, films in sessions.items():
        write_seed_session(folder, name, films, initials=f"x{name[0]}y")
    return tmp_path, sessions


def test_label_file_round_trip(seed_root):
    root, _ = seed_root
    lab = loadmat(root / "Preprocessed_EEG" / "label.mat")["label"]
    assert lab.shape == (1, 15)
    assert lab[0].tolist() == SEED_LABELS


def test_reads_sessions_films_and_labels(seed_root):
    root, sessions = seed_root
    reader = get_reader("seed", root)
    assert isinstance(reader, SeedReader)
    assert reader.subjects() == ["1", "2", "10"]
    assert [p.name for p in reader.files("1")] == [
        "1_20131027.mat",
        "1_20131030.mat",
        "label.mat",
    ]
    trials = reader.read_subject("1")
    assert len(trials) == 30
    assert [t.session for t in trials] == ["20131027"] * 15 + ["20131030"] * 15
    assert [t.video for t in trials[:15]] == [f"film{i:02d}" for i in range(1, 16)]
    assert [t.label for t in trials[:15]] == [NAMES[v] for v in SEED_LABELS]
    assert trials[0].label == "positive"
    assert trials[1].label == "neutral"
    assert trials[2].label == "negative"
    expected_names = (
        ("Fp1", "Fpz", "Fp2", "AF3")
        + tuple(SEED_CHANNELS[4:9])
        + ("Fz",)
        + tuple(SEED_CHANNELS[10:])
    )
    for k, t in enumerate(trials):
        films = sessions["1_20131027.mat" if k < 15 else "1_20131030.mat"]
        np.testing.assert_array_equal(t.eeg, films[k % 15])  # µV, unchanged
        assert t.eeg.dtype == np.float64
        assert t.sfreq == 200.0
        assert t.subject == "1"
        assert t.ratings is None
        assert len(t.ch_names) == 62
    t = trials[0]
    assert t.ch_names[:10] == expected_names[:10]
    assert "Cz" in t.ch_names
    assert "CB1" in t.ch_names
    assert "Oz" in t.ch_names
    assert "FCz" in t.ch_names
    assert "POz" in t.ch_names
    # the folder itself works too
    assert SeedReader(root / "Preprocessed_EEG").subjects() == ["1", "2", "10"]


def test_features_reader(tmp_path, raises_one_line):
    folder = tmp_path / "ExtractedFeatures"
    write_seed_label(folder)
    feats = seed_features(seed=5)
    write_seed_features(folder, "3_20140611.mat", feats)
    everything = "de_LDS,de_movingAve,psd_LDS,psd_movingAve"  # as -o passes it
    reader = get_reader("seed-features", tmp_path, features=everything)
    assert isinstance(reader, SeedFeaturesReader)
    assert reader.subjects() == ["3"]
    out = reader.read_subject("3")
    assert len(out) == 15
    for i, ft in enumerate(out, start=1):
        assert isinstance(ft, FeatureTrial)
        assert ft.video == f"film{i:02d}"
        assert ft.label == NAMES[SEED_LABELS[i - 1]]
        assert ft.session == "20140611"
        assert ft.bands == ("delta", "theta", "alpha", "beta", "gamma")
        assert ft.window_s == 1.0
        assert ft.ch_names[0] == "Fp1"
        assert ft.band_edges[0] == (1.0, 3.0)
        assert ft.band_edges[-1] == (31.0, 50.0)
        assert ft.sfreq == 200.0
        assert set(ft.features) == {
            "de_LDS",
            "de_movingAve",
            "psd_LDS",
            "psd_movingAve",
        }
        for key, arr in ft.features.items():
            np.testing.assert_array_equal(arr, feats[f"{key}{i}"])
            assert arr.shape == (62, 3 + i % 4, 5)
    sub = SeedFeaturesReader(folder).read_subject("3")  # default: de_LDS alone
    assert set(sub[0].features) == {"de_LDS"}
    with raises_one_line(DatasetError, "de_foo", "de_LDS"):
        SeedFeaturesReader(folder, features=["de_foo"])


# -- errors ----------------------------------------------------------------------


def test_missing_label_file(tmp_path, raises_one_line):
    write_seed_session(tmp_path, "1_20131027.mat", seed_eeg())
    reader = SeedReader(tmp_path)
    assert reader.subjects() == ["1"]
    with raises_one_line(DatasetError, "label.mat", "file not found"):
        reader.read_subject("1")


def test_bad_label_file(tmp_path, raises_one_line):
    write_seed_session(tmp_path, "1_20131027.mat", seed_eeg())
    savemat(tmp_path / "label.mat", {"label": np.array([[1, 2, 3]])})
    with raises_one_line(DatasetError, "label.mat", "1/0/-1"):
        SeedReader(tmp_path).read_subject("1")


def test_missing_film_variable(tmp_path, raises_one_line):
    write_seed_label(tmp_path)
    write_seed_session(tmp_path, "4_20131027.mat", seed_eeg(n_films=14))
    with raises_one_line(DatasetError, "4_20131027.mat", "_eeg15"):
        SeedReader(tmp_path).read_subject("4")


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (np.zeros((61, 40)), "(61, 40)"),
        (np.zeros((62, 0)), "(62, 0)"),
        (np.full((62, 40), np.inf), "NaN/inf"),
    ],
)
def test_wrong_shape_and_nonfinite(tmp_path, bad, needle, raises_one_line):
    write_seed_label(tmp_path)
    films = seed_eeg()
    films[6] = bad
    write_seed_session(tmp_path, "5_20131027.mat", films)
    with raises_one_line(DatasetError, "5_20131027.mat", "_eeg7", needle):
        SeedReader(tmp_path).read_subject("5")


def test_bad_feature_file(tmp_path, raises_one_line):
    write_seed_label(tmp_path)
    feats = seed_features()
    write_seed_features(
        tmp_path, "1_20131027.mat", {**feats, "de_LDS4": np.ones((62, 5))}
    )
    write_seed_features(
        tmp_path, "2_20131027.mat", {**feats, "psd_LDS2": np.full((62, 4, 5), np.nan)}
    )
    del feats["psd_LDS2"]
    write_seed_features(tmp_path, "3_20131027.mat", feats)
    reader = SeedFeaturesReader(tmp_path, features="de_LDS,psd_LDS")
    with raises_one_line(DatasetError, "1_20131027.mat", "de_LDS4", "(62, 5)"):
        reader.read_subject("1")
    with raises_one_line(DatasetError, "2_20131027.mat", "psd_LDS2", "NaN"):
        reader.read_subject("2")
    with raises_one_line(
        DatasetError, "3_20131027.mat", "missing variable", "psd_LDS2"
    ):
        reader.read_subject("3")


def test_corrupt_session_file(tmp_path, raises_one_line):
    write_seed_label(tmp_path)
    (tmp_path / "7_20131027.mat").write_bytes(b"MATLAB 5.0" + b"\xff" * 200)
    with raises_one_line(DatasetError, "7_20131027.mat", "corrupt"):
        SeedReader(tmp_path).read_subject("7")


def test_missing_and_empty_dir(tmp_path, raises_one_line):
    with raises_one_line(DatasetError, "nope", "does not exist", "bcmi.sjtu.edu.cn"):
        SeedReader(tmp_path / "nope")
    write_seed_label(tmp_path)
    with raises_one_line(
        DatasetError, str(tmp_path), "Preprocessed_EEG/<subject>_<date>.mat"
    ):
        SeedReader(tmp_path).subjects()
    with raises_one_line(DatasetError, "ExtractedFeatures/<subject>_<date>.mat"):
        SeedFeaturesReader(tmp_path).subjects()


def test_channel_names_without_reading(seed_root):
    """What train --montage checks a montage against, without reading a file."""
    root, _ = seed_root
    reader = get_reader("seed", root)
    assert reader.channel_names("1") == reader.read_subject("1")[0].ch_names
    with pytest.raises(DatasetError):
        reader.channel_names("7")


def test_check_summarises_precomputed_features(tmp_path, capsys):
    """``datasets check`` on ExtractedFeatures: families, bands, sessions, labels."""
    from emomon.cli import main

    folder = tmp_path / "ExtractedFeatures"
    write_seed_label(folder)
    for name in ("3_20140611.mat", "3_20140629.mat"):
        write_seed_features(folder, name, seed_features(seed=5))
    pick = "features=de_LDS,psd_movingAve"
    argv = ["datasets", "check", "--dataset", "seed-features", "--quiet",
            "--data-dir", str(tmp_path), "-o", pick]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "sessions                  2 (subject, session) pairs" in out
    assert "trials                    30" in out
    assert "de_LDS, psd_movingAve x delta 1-3 Hz" in out
    assert "gamma 31-50 Hz; 1 s windows (precomputed, not causal)" in out
    assert "negative 10  neutral 10  positive 10" in out
