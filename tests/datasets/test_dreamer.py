"""DreamerReader on a small DREAMER.mat built with scipy.io.savemat."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from scipy.io import loadmat, savemat

from emomon.datasets import get_reader
from emomon.datasets.dreamer import DreamerReader
from emomon.dsp.layout import EMOTIV_CHANNELS
from emomon.errors import ConfigError, DatasetError

from .writers import dreamer_subjects, write_dreamer


@pytest.fixture
def dreamer(tmp_path):
    subjects = dreamer_subjects(n_subjects=2, n_clips=3, seed=4)
    path = write_dreamer(tmp_path / "DREAMER.mat", subjects)
    return path, subjects


def test_written_file_has_the_documented_indexing_paths(dreamer):
    path, subjects = dreamer
    d = loadmat(path)["DREAMER"][0, 0]
    assert d["Data"].shape == (1, 2)
    assert int(d["EEG_SamplingRate"][0, 0]) == 128
    for s, subj in enumerate(subjects):
        for v in range(3):
            stim = d["Data"][0, s]["EEG"][0, 0]["stimuli"][0, 0][v, 0]
            base = d["Data"][0, s]["EEG"][0, 0]["baseline"][0, 0][v, 0]
            np.testing.assert_array_equal(stim, subj["stimuli"][v])
            np.testing.assert_array_equal(base, subj["baseline"][v])
            assert stim.shape[1] == 14
            score = d["Data"][0, s]["ScoreValence"][0, 0][v, 0]
            assert score == subj["valence"][v]


def test_reads_with_common_average_reference(dreamer):
    path, subjects = dreamer
    reader = get_reader("dreamer", path.parent)
    assert isinstance(reader, DreamerReader)
    assert reader.subjects() == ["s01", "s02"]
    assert reader.files("s01") == [path]
    for s, sid in enumerate(("s01", "s02")):
        trials = reader.read_subject(sid)
        assert [t.video for t in trials] == ["v01", "v02", "v03"]
        for v, t in enumerate(trials):
            stim = subjects[s]["stimuli"][v]
            assert t.subject == sid
            assert t.sfreq == 128.0
            assert t.ch_names == EMOTIV_CHANNELS
            assert t.eeg.dtype == np.float64
            assert t.eeg.shape == (14, stim.shape[0])  # samples-first -> (14, n)
            expected = stim.T - stim.T.mean(axis=0, keepdims=True)
            np.testing.assert_allclose(t.eeg, expected, atol=1e-9)
            # CAR removes the ~4200 µV common offset: channel mean is zero per sample
            np.testing.assert_allclose(t.eeg.mean(axis=0), 0.0, atol=1e-9)
            assert np.abs(t.eeg).max() < 1000
            base = subjects[s]["baseline"][v].T
            np.testing.assert_allclose(
                t.baseline, base - base.mean(axis=0, keepdims=True), atol=1e-9
            )
            assert t.ratings == {
                "valence": subjects[s]["valence"][v],
                "arousal": subjects[s]["arousal"][v],
                "dominance": subjects[s]["dominance"][v],
            }
            assert t.scale == (1.0, 5.0)


def test_car_can_be_disabled_and_file_path_accepted(dreamer):
    path, subjects = dreamer
    t = DreamerReader(path, car=False).read_subject("2")[2]
    np.testing.assert_array_equal(t.eeg, subjects[1]["stimuli"][2].T)
    assert DreamerReader(path).cache_token()["options"] == {"car": True}


def test_data_stored_as_struct_array(tmp_path):
    subjects = dreamer_subjects(n_subjects=2, n_clips=2, seed=5)
    path = write_dreamer(tmp_path / "DREAMER.mat", subjects, struct_array=True)
    d = loadmat(path)["DREAMER"][0, 0]
    assert d["Data"].dtype.names is not None  # a struct array, not a cell
    t = DreamerReader(path, car=False).read_subject("s02")[1]
    np.testing.assert_array_equal(t.eeg, subjects[1]["stimuli"][1].T)
    assert t.ratings["valence"] == subjects[1]["valence"][1]


def test_mat_file_is_loaded_once_per_reader(dreamer, monkeypatch):
    path, _ = dreamer
    calls = []
    real = scipy.io.loadmat

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.io, "loadmat", counting)
    reader = DreamerReader(path.parent)
    trials = list(reader.iter_trials())
    assert len(trials) == 6
    assert len(calls) == 1


def test_electrode_names_come_from_the_file(tmp_path):
    subjects = dreamer_subjects(n_subjects=1, n_clips=1)
    lower = tuple(n.upper() for n in EMOTIV_CHANNELS)
    path = write_dreamer(tmp_path / "DREAMER.mat", subjects, electrodes=lower)
    t = DreamerReader(path).read_subject("s01")[0]
    assert t.ch_names == EMOTIV_CHANNELS  # canonical spelling


# -- errors ----------------------------------------------------------------------


def test_missing_file_and_dir(tmp_path, raises_one_line):
    with raises_one_line(DatasetError, "DREAMER.mat", str(tmp_path), "zenodo"):
        DreamerReader(tmp_path).subjects()
    with raises_one_line(DatasetError, "missing", "does not exist"):
        DreamerReader(tmp_path / "missing")


def test_corrupt_and_truncated_file(dreamer, tmp_path, raises_one_line):
    path, _ = dreamer
    raw = path.read_bytes()
    bad = tmp_path / "trunc" / "DREAMER.mat"
    bad.parent.mkdir()
    bad.write_bytes(raw[: len(raw) // 3])
    with raises_one_line(DatasetError, "DREAMER.mat", "corrupt"):
        DreamerReader(bad.parent).subjects()
    bad.write_bytes(b"\x00" * 10)
    with raises_one_line(DatasetError, "DREAMER.mat"):
        DreamerReader(bad).subjects()


def test_wrong_variable_and_fields(tmp_path, raises_one_line):
    path = tmp_path / "DREAMER.mat"
    savemat(path, {"SOMETHING": np.ones(3)})
    with raises_one_line(DatasetError, "DREAMER.mat", "no variable 'DREAMER'"):
        DreamerReader(path).subjects()
    savemat(path, {"DREAMER": {"Data": np.ones((1, 2)), "EEG_SamplingRate": 128}})
    with raises_one_line(DatasetError, "DREAMER.mat", "struct"):
        DreamerReader(path).read_subject("s01")
    savemat(path, {"DREAMER": {"EEG_SamplingRate": 128}})
    with raises_one_line(DatasetError, "DREAMER.mat", "no field 'Data'"):
        DreamerReader(path).subjects()


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda s: s["stimuli"].__setitem__(1, np.zeros((50, 13))), "stimuli{2}"),
        (lambda s: s["stimuli"].__setitem__(0, np.zeros((0, 14))), "stimuli{1}"),
        (lambda s: s["baseline"].__setitem__(2, np.full((9, 14), np.nan)), "NaN"),
        (lambda s: s.__setitem__("arousal", np.ones(2)), "ScoreArousal"),
        (lambda s: s.__setitem__("baseline", s["baseline"][:2]), "baselines"),
    ],
)
def test_malformed_subject(tmp_path, mutate, needle, raises_one_line):
    subjects = dreamer_subjects(n_subjects=2, n_clips=3)
    mutate(subjects[1])
    path = write_dreamer(tmp_path / "DREAMER.mat", subjects)
    reader = DreamerReader(path)
    assert len(reader.read_subject("s01")) == 3  # the good subject still reads
    with raises_one_line(DatasetError, "DREAMER.mat", "Data{2}", needle):
        reader.read_subject("s02")


def test_unknown_subject_and_option(dreamer, raises_one_line):
    path, _ = dreamer
    with raises_one_line(DatasetError, "s03", "s01..s02"):
        DreamerReader(path).read_subject("s03")
    with pytest.raises(ConfigError):
        DreamerReader(path, reference="car")
