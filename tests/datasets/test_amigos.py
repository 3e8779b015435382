"""AmigosReader on small Data_Preprocessed_PNN.mat files built with savemat."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from emomon.datasets import get_reader
from emomon.datasets.amigos import AmigosReader
from emomon.dsp.layout import EMOTIV_CHANNELS
from emomon.errors import DatasetError

from .writers import AMIGOS_IDS, amigos_trials, write_amigos


@pytest.fixture
def amigos_dir(tmp_path):
    """P01 in the per-participant subfolder layout, P02 flat; 18 videos each."""
    d1, l1, ids = amigos_trials(seed=1)
    d2, l2, _ = amigos_trials(seed=2)
    write_amigos(
        tmp_path / "Data_Preprocessed_P01" / "Data_Preprocessed_P01.mat", d1, l1, ids
    )
    write_amigos(tmp_path / "Data_Preprocessed_P02.mat", d2, l2, ids)
    return tmp_path, (d1, l1), (d2, l2)


def test_written_file_has_the_documented_indexing_paths(amigos_dir):
    root, (d1, l1), _ = amigos_dir
    m = loadmat(root / "Data_Preprocessed_P01" / "Data_Preprocessed_P01.mat")
    assert m["joined_data"].shape == (1, 18)
    np.testing.assert_array_equal(m["joined_data"][0][3], d1[3])
    assert m["labels_selfassessment"][0][3].shape == (1, 12)
    assert str(m["VideoIDs"][0][2][0]) == "138"


def test_reads_short_videos_with_arousal_first_columns(amigos_dir):
    root, (d1, l1), (d2, _) = amigos_dir
    reader = get_reader("amigos", root)
    assert isinstance(reader, AmigosReader)
    assert reader.subjects() == ["P01", "P02"]
    trials = reader.read_subject("P01")
    assert len(trials) == 16  # short videos only by default
    assert [t.video for t in trials] == AMIGOS_IDS[:16]
    for v, t in enumerate(trials):
        assert t.subject == "P01"
        assert t.sfreq == 128.0
        assert t.ch_names == EMOTIV_CHANNELS
        assert t.eeg.dtype == np.float64
        assert t.eeg.shape == (14, d1[v].shape[0])
        np.testing.assert_array_equal(t.eeg, d1[v][:, :14].T)  # ECG/GSR dropped
        lab = l1[v][0]
        # labels_selfassessment columns: arousal, valence, dominance, liking, fam.
        assert t.ratings == {
            "arousal": lab[0],
            "valence": lab[1],
            "dominance": lab[2],
            "liking": lab[3],
            "familiarity": lab[4],
        }
        assert t.ratings["arousal"] == 1.0 + (v % 9)
        assert t.ratings["valence"] == 9.0 - (v % 9)
        assert t.scale == (1.0, 9.0)
        assert list(t.meta["basic_emotions"].values()) == list(lab[5:12])
    t2 = reader.read_subject("2")[0]
    np.testing.assert_array_equal(t2.eeg, d2[0][:, :14].T)


def test_long_videos_with_short_only_false(amigos_dir):
    root, *_ = amigos_dir
    trials = AmigosReader(root, short_only=False).read_subject("P02")
    assert [t.video for t in trials][-2:] == ["N1", "P1"]
    assert len(trials) == 18


def test_empty_trials_and_nan_labels_are_skipped_with_a_warning(
    tmp_path, raises_one_line
):
    data, labels, ids = amigos_trials(n_videos=18)
    data[2] = np.zeros((0, 0))  # missing recording, as in the real release
    data[17] = np.zeros((0, 0))  # long video the participant did not attend
    labels[17] = np.zeros((0, 0))
    labels[5] = np.full((1, 12), np.nan)
    data[7][:, 15] = np.nan  # NaN in ECG only: the EEG is fine, trial kept
    write_amigos(tmp_path / "Data_Preprocessed_P08.mat", data, labels, ids)
    with pytest.warns(UserWarning, match="^AMIGOS: skipping ") as rec:
        trials = AmigosReader(tmp_path, short_only=False).read_subject("P08")
    msgs = " | ".join(str(w.message) for w in rec)
    assert "Data_Preprocessed_P08.mat: trial 3" in msgs
    assert "trial 6" in msgs
    assert "NaN self-assessment" in msgs
    assert "trial 18" in msgs
    assert [t.video for t in trials] == [
        i for k, i in enumerate(AMIGOS_IDS) if k not in (2, 5, 17)
    ]
    with raises_one_line(
        DatasetError, "Data_Preprocessed_P08.mat", "trial 3", "no samples"
    ):
        AmigosReader(tmp_path, strict=True).read_subject("P08")


def test_nan_eeg_trial_is_skipped_and_strict_raises(tmp_path, raises_one_line):
    data, labels, ids = amigos_trials(n_videos=3)
    data[1][10, 4] = np.nan
    write_amigos(tmp_path / "Data_Preprocessed_P03.mat", data, labels, ids)
    with pytest.warns(UserWarning, match="1 NaN/inf EEG"):
        assert len(AmigosReader(tmp_path).read_subject("P03")) == 2
    with raises_one_line(DatasetError, "Data_Preprocessed_P03.mat", "trial 2", "NaN"):
        AmigosReader(tmp_path, strict=True).read_subject("P03")


def test_no_warning_on_clean_file(amigos_dir):
    root, *_ = amigos_dir
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AmigosReader(root).read_subject("P01")


# -- errors ----------------------------------------------------------------------


def test_missing_keys(tmp_path, raises_one_line):
    data, labels, ids = amigos_trials(n_videos=2)
    savemat(
        tmp_path / "Data_Preprocessed_P01.mat",
        {"joined_data": np.asarray([[data[0]]], dtype=object)},
    )
    with raises_one_line(
        DatasetError, "Data_Preprocessed_P01.mat", "labels_selfassessment", "VideoIDs"
    ):
        AmigosReader(tmp_path).read_subject("P01")


def test_wrong_shapes(tmp_path, raises_one_line):
    data, labels, ids = amigos_trials(n_videos=3)
    data[1] = np.zeros((50, 10))
    write_amigos(tmp_path / "Data_Preprocessed_P01.mat", data, labels, ids)
    with raises_one_line(
        DatasetError,
        "Data_Preprocessed_P01.mat",
        "trial 2",
        "(50, 10)",
        "(n_samples, 17)",
    ):
        AmigosReader(tmp_path).read_subject("P01")
    data, labels, ids = amigos_trials(n_videos=3)
    write_amigos(tmp_path / "Data_Preprocessed_P02.mat", data, labels[:2], ids)
    with raises_one_line(DatasetError, "Data_Preprocessed_P02.mat", "differ"):
        AmigosReader(tmp_path).read_subject("P02")
    savemat(
        tmp_path / "Data_Preprocessed_P03.mat",
        {"joined_data": np.ones((3, 17)), "labels_selfassessment": 1, "VideoIDs": 1},
    )
    with raises_one_line(DatasetError, "Data_Preprocessed_P03.mat", "cell array"):
        AmigosReader(tmp_path).read_subject("P03")


def test_all_trials_unusable(tmp_path, raises_one_line):
    data, labels, ids = amigos_trials(n_videos=2)
    labels = [np.full((1, 12), np.nan)] * 2
    write_amigos(tmp_path / "Data_Preprocessed_P01.mat", data, labels, ids)
    with (
        pytest.warns(UserWarning, match="^AMIGOS: skipping .*NaN self-assessment"),
        raises_one_line(DatasetError, "Data_Preprocessed_P01.mat", "no usable trial"),
    ):
        AmigosReader(tmp_path).read_subject("P01")


def test_corrupt_file(tmp_path, raises_one_line):
    (tmp_path / "Data_Preprocessed_P04.mat").write_bytes(b"\x01\x02garbage" * 20)
    with raises_one_line(DatasetError, "Data_Preprocessed_P04.mat", "corrupt"):
        AmigosReader(tmp_path).read_subject("P04")


def test_missing_and_empty_dir(tmp_path, raises_one_line):
    with raises_one_line(DatasetError, "nope", "does not exist", "amigos"):
        AmigosReader(tmp_path / "nope")
    (tmp_path / "other.mat").write_bytes(b"")
    with raises_one_line(DatasetError, str(tmp_path), "Data_Preprocessed_P01.mat"):
        AmigosReader(tmp_path).subjects()
    with raises_one_line(DatasetError, "P05", "none"):
        AmigosReader(tmp_path).read_subject("P05")


def test_channel_names_without_reading(amigos_dir):
    """What train --montage checks a montage against, without reading a file."""
    root, _, _ = amigos_dir
    reader = get_reader("amigos", root)
    assert reader.channel_names("P02") == reader.read_subject("P02")[0].ch_names
    with pytest.raises(DatasetError):
        reader.channel_names("P07")
