"""DeapReader on small files in DEAP's exact layouts (pickle protocol 2, .mat)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from emomon.datasets import get_reader
from emomon.datasets.deap import DeapReader
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.errors import ConfigError, DatasetError

from .writers import deap_arrays, write_deap_dat, write_deap_mat


def test_reads_python_release_from_parent_dir(tmp_path):
    data, labels = deap_arrays(n_trials=3, seed=1)
    data2, labels2 = deap_arrays(n_trials=3, seed=2)
    folder = tmp_path / "data_preprocessed_python"
    write_deap_dat(folder / "s01.dat", {"data": data, "labels": labels})
    write_deap_dat(folder / "s02.dat", {"data": data2, "labels": labels2})

    reader = get_reader("deap", tmp_path)
    assert isinstance(reader, DeapReader)
    assert reader.subjects() == ["s01", "s02"]
    assert reader.files("s02") == [folder / "s02.dat"]
    trials = reader.read_subject("s01")
    assert [t.video for t in trials] == ["v01", "v02", "v03"]
    for i, t in enumerate(trials):
        assert t.subject == "s01"
        assert t.dataset == "deap"
        assert t.sfreq == 128.0
        assert t.ch_names == DEAP_CHANNELS
        assert t.eeg.dtype == np.float64
        assert t.eeg.shape == (32, 200)
        assert t.baseline is not None
        assert t.baseline.shape == (32, 384)
        # µV passed through unchanged; channels 32-39 (peripheral) dropped.
        np.testing.assert_array_equal(t.eeg, data[i, :32, 384:])
        np.testing.assert_array_equal(t.baseline, data[i, :32, :384])
        assert t.ratings == {
            "valence": labels[i, 0],
            "arousal": labels[i, 1],
            "dominance": labels[i, 2],
            "liking": labels[i, 3],
        }
        assert t.scale == (1.0, 9.0)
    # numeric subject ids are accepted too
    np.testing.assert_array_equal(reader.read_subject("2")[1].eeg, data2[1, :32, 384:])


def test_reads_folder_directly_and_files_with_fewer_trials(tmp_path):
    data, labels = deap_arrays(n_trials=4, n_samples=8064)
    write_deap_dat(tmp_path / "s07.dat", {"data": data, "labels": labels})
    trials = DeapReader(tmp_path).read_subject("s07")
    assert len(trials) == 4
    assert trials[0].eeg.shape == (32, 7680)
    assert trials[0].duration_s == 60.0


def test_python3_pickle_names_also_load(tmp_path):
    data, labels = deap_arrays(n_trials=2)
    write_deap_dat(
        tmp_path / "s01.dat", {"data": data, "labels": labels}, python2_names=False
    )
    np.testing.assert_array_equal(
        DeapReader(tmp_path).read_subject("s01")[1].eeg, data[1, :32, 384:]
    )


def test_reads_float32_data_as_float64(tmp_path):
    data, labels = deap_arrays(n_trials=2)
    obj = {"data": data.astype(np.float32), "labels": labels}
    write_deap_dat(tmp_path / "s01.dat", obj)
    t = DeapReader(tmp_path).read_subject("s01")[0]
    assert t.eeg.dtype == np.float64
    np.testing.assert_allclose(t.eeg, data[0, :32, 384:], rtol=1e-6)


def test_reads_matlab_release(tmp_path):
    data, labels = deap_arrays(n_trials=2, seed=3)
    write_deap_mat(tmp_path / "data_preprocessed_matlab" / "s03.mat", data, labels)
    reader = DeapReader(tmp_path)
    assert reader.subjects() == ["s03"]
    trials = reader.read_subject("s03")
    np.testing.assert_array_equal(trials[1].eeg, data[1, :32, 384:])
    assert trials[1].ratings["arousal"] == labels[1, 1]


def test_python_release_preferred_over_matlab(tmp_path):
    data, labels = deap_arrays(n_trials=2)
    write_deap_dat(
        tmp_path / "data_preprocessed_python" / "s01.dat",
        {"data": data, "labels": labels},
    )
    write_deap_mat(tmp_path / "data_preprocessed_matlab" / "s01.mat", data, labels)
    assert DeapReader(tmp_path).files("s01")[0].suffix == ".dat"


# -- errors ----------------------------------------------------------------------


def test_truncated_pickle(tmp_path, raises_one_line):
    data, labels = deap_arrays(n_trials=2)
    good = write_deap_dat(tmp_path / "s01.dat", {"data": data, "labels": labels})
    raw = good.read_bytes()
    (tmp_path / "s02.dat").write_bytes(raw[: len(raw) // 2])
    reader = DeapReader(tmp_path)
    assert reader.subjects() == ["s01", "s02"]
    with raises_one_line(
        DatasetError, "s02.dat", "truncated or corrupt pickle", "'data' (40, 40, 8064)"
    ):
        reader.read_subject("s02")


def test_empty_and_garbage_files(tmp_path, raises_one_line):
    (tmp_path / "s01.dat").write_bytes(b"")
    (tmp_path / "s02.dat").write_bytes(b"this is not a pickle at all")
    reader = DeapReader(tmp_path)
    for s in ("s01", "s02"):
        with raises_one_line(DatasetError, f"{s}.dat", "pickle"):
            reader.read_subject(s)


def test_pickle_with_foreign_global_is_refused_not_executed(tmp_path, raises_one_line):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "s01.dat").write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with raises_one_line(DatasetError, "s01.dat"):
        DeapReader(tmp_path).read_subject("s01")


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ({"labels": np.ones((2, 4))}, "missing 'data'/'labels'"),
        ([1, 2, 3], "missing 'data'/'labels'"),
        ({"data": np.zeros((2, 20, 600)), "labels": np.ones((2, 4))}, "(2, 20, 600)"),
        ({"data": np.zeros((2, 40, 300)), "labels": np.ones((2, 4))}, "300 samples"),
        ({"data": np.zeros((40, 8064)), "labels": np.ones((2, 4))}, "(40, 8064)"),
        ({"data": np.zeros((2, 40, 600)), "labels": np.ones((3, 4))}, "'labels'"),
        ({"data": np.zeros((2, 40, 600)), "labels": np.ones((2, 2))}, "'labels'"),
        ({"data": np.zeros((2, 40, 600)), "labels": np.full((2, 4), 50.0)}, "1-9"),
        ({"data": np.zeros((2, 40, 600)), "labels": np.full((2, 4), np.nan)}, "NaN"),
    ],
)
def test_wrong_keys_shapes_and_ratings(tmp_path, obj, needle, raises_one_line):
    write_deap_dat(tmp_path / "s05.dat", obj)
    with raises_one_line(DatasetError, "s05.dat", needle):
        DeapReader(tmp_path).read_subject("s05")


def test_nan_and_inf_in_eeg(tmp_path, raises_one_line):
    data, labels = deap_arrays(n_trials=2)
    data[1, 5, 400] = np.nan
    data[0, 3, 10] = np.inf
    write_deap_dat(tmp_path / "s01.dat", {"data": data, "labels": labels})
    with raises_one_line(DatasetError, "s01.dat", "2 NaN/inf"):
        DeapReader(tmp_path).read_subject("s01")


def test_nan_in_peripheral_channels_is_ignored(tmp_path):
    data, labels = deap_arrays(n_trials=2)
    data[:, 36, :] = np.nan
    write_deap_dat(tmp_path / "s01.dat", {"data": data, "labels": labels})
    assert len(DeapReader(tmp_path).read_subject("s01")) == 2


def test_corrupt_mat(tmp_path, raises_one_line):
    folder = tmp_path / "data_preprocessed_matlab"
    folder.mkdir()
    (folder / "s01.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
    with raises_one_line(DatasetError, "s01.mat", "data_preprocessed_matlab"):
        DeapReader(tmp_path).read_subject("s01")


def test_missing_and_empty_dir(tmp_path, raises_one_line):
    with raises_one_line(DatasetError, "nope", "does not exist", "s01.dat", "qmul"):
        DeapReader(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.txt").write_text("x")
    with raises_one_line(DatasetError, "empty", "s01.dat"):
        DeapReader(tmp_path / "empty").subjects()
    with pytest.raises(DatasetError):
        DeapReader(None)


def test_unknown_subject_and_option(tmp_path, raises_one_line):
    data, labels = deap_arrays(n_trials=2)
    write_deap_dat(tmp_path / "s01.dat", {"data": data, "labels": labels})
    with raises_one_line(DatasetError, "s09", "s01"):
        DeapReader(tmp_path).read_subject("s09")
    with pytest.raises(ConfigError):
        DeapReader(tmp_path, bogus=1)


def test_channel_names_without_reading(tmp_path):
    """What train --montage checks a montage against, without reading a file."""
    data, labels = deap_arrays(n_trials=2, seed=3)
    write_deap_dat(tmp_path / "s01.dat", {"data": data, "labels": labels})
    reader = get_reader("deap", tmp_path)
    assert reader.channel_names("1") == reader.read_subject("s01")[0].ch_names
    with pytest.raises(DatasetError):
        reader.channel_names("s02")
