"""EAV reader on files in the release's exact layout (scipy.io v5, h5py v7.3)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
from scipy.io import savemat

from emomon.datasets import get_reader
from emomon.datasets.eav import CHANNELS, CLASSES, EavReader
from emomon.datasets.summary import summarize
from emomon.errors import ConfigError, DatasetError
from tests.datasets.eav_files import (
    EMOTIONS,
    eav_rows,
    media_name,
    write_eav_subject,
)


@pytest.fixture
def eav_root(tmp_path):
    """EAV/subject2 (seg1) and EAV/subject10 (seg), 20 trials of 0.5 s, Video."""
    root = tmp_path / "EAV"
    s2 = write_eav_subject(root, 2, variable="seg1", seed=2)
    s10 = write_eav_subject(root, 10, variable="seg", seed=10)
    return root, {"2": s2, "10": s10}


def test_layout_seg_seg1_unpadded_folders_and_media_names(eav_root, caplog):
    root, written = eav_root
    # The EAV folder itself and its parent both work; subject2 sorts before 10.
    for data_dir in (root, root.parent):
        assert get_reader("eav", data_dir).subjects() == ["2", "10"]
    reader = get_reader("eav", root.parent)
    assert reader.classes == CLASSES
    for sid, (_folder, seg, label) in written.items():
        with caplog.at_level(logging.INFO, logger="emomon.datasets.eav"):
            trials = reader.read_subject(f"subject{sid}")
        assert "from 20 Video file names: 0-based label rows even" in caplog.text
        caplog.clear()
        rows = np.argmax(label, axis=0)
        listening = [k for k in range(20) if rows[k] % 2 == 0]
        assert listening == list(range(0, 20, 2))  # odd NNN = listening
        assert [t.video for t in trials] == [f"t{k + 1:03d}" for k in listening]
        for t, k in zip(trials, listening, strict=True):
            assert t.subject == sid
            assert t.sfreq == 500.0
            assert t.ch_names == CHANNELS
            assert t.ch_names[0] == "Fp1"
            np.testing.assert_array_equal(t.eeg, seg[:, :, k].T)
            assert not t.eeg.flags.owndata  # a view of the file's array
            assert t.label == CLASSES[rows[k] // 2]
            assert t.meta["condition"] == "listening"
            assert t.meta["trial"] == k + 1
            assert t.meta["channels_assumed"] is True
            assert t.meta["variable"] == ("seg1" if sid == "2" else "seg")
    assert reader.files("10")[0].name == "subject10_eeg.mat"


def test_real_shape_layout(tmp_path):
    """The release's shapes: 200 trials x 30 channels, 10 label rows, 200 Video
    names. The time axis is 1 s here, not 20 s: a (10000, 30, 200) float64
    file is 480 MB (benchmarks/bench_eav_memory.py reads one: one copy)."""
    root = tmp_path / "EAV"
    _, seg, _ = write_eav_subject(root, 1, n_times=500, n_trials=200)
    both = get_reader("eav", root, condition="both").read_subject("1")
    assert len(both) == 200
    assert both[-1].video == "t200"
    assert {t.meta["condition"] for t in both[0::2]} == {"listening"}
    assert {t.meta["condition"] for t in both[1::2]} == {"speaking"}
    assert [sum(t.label == c for t in both) for c in CLASSES] == [40] * 5
    assert both[0].eeg.shape == (30, 500)
    speak = get_reader("eav", root, condition="speaking").read_subject("1")
    assert [t.video for t in speak] == [f"t{k:03d}" for k in range(2, 201, 2)]


def test_condition_from_option_without_video_and_refusal(tmp_path, raises_one_line):
    root = tmp_path / "EAV"
    _, seg, label = write_eav_subject(
        root, 3, listening_rows="odd", video=False, seed=3
    )
    with raises_one_line(
        DatasetError, "Video", "listening_rows=even", "condition=both"
    ):
        get_reader("eav", root).read_subject("3")
    # condition=both needs no rule; the condition is then unknown.
    both = get_reader("eav", root, condition="both").read_subject("3")
    assert len(both) == 20
    assert {t.meta["condition"] for t in both} == {""}
    odd = get_reader("eav", root, listening_rows="odd").read_subject("3")
    rows = np.argmax(label, axis=0)
    assert [t.meta["trial"] for t in odd] == [k + 1 for k in range(20) if rows[k] % 2]
    even = get_reader("eav", root, listening_rows="even").read_subject("3")
    assert {t.meta["trial"] for t in even}.isdisjoint(t.meta["trial"] for t in odd)


def test_media_names_decide_and_must_agree(tmp_path, raises_one_line):
    """Video names with odd rows listening win over the default; an option that
    contradicts them, a name whose emotion the label does not give, or names
    that put both parities in one condition, are refused naming the file."""
    root = tmp_path / "EAV"
    folder, _, label = write_eav_subject(root, 4, listening_rows="odd")
    trials = get_reader("eav", root).read_subject("4")
    assert all(np.argmax(label[:, t.meta["trial"] - 1]) % 2 == 1 for t in trials)
    with raises_one_line(DatasetError, "odd label rows listening", "listening_rows"):
        get_reader("eav", root, listening_rows="even").read_subject("4")

    rows = eav_rows(20, listening_rows="odd")
    wrong = folder / "Video" / media_name(4, int(rows[4]), listening_rows="odd")
    renamed = wrong.with_name(wrong.name.replace(EMOTIONS[rows[4] // 2], "Neutral"))
    wrong.rename(renamed)
    with raises_one_line(DatasetError, renamed.name, "Neutral", "disagree"):
        get_reader("eav", root).read_subject("4")
    renamed.rename(wrong)
    flip = folder / "Video" / media_name(7, int(rows[7]), listening_rows="odd")
    flip.rename(flip.with_name(flip.name.replace("Speaking", "Listening")))
    with raises_one_line(DatasetError, "008_Trial_08_Listening", "contradicts"):
        get_reader("eav", root).read_subject("4")


def test_channel_override_and_options(eav_root, raises_one_line):
    root, _ = eav_root
    names = [f"e{i}" for i in range(29)] + ["cz"]
    reader = get_reader("eav", root, channels=",".join(names))
    trial = reader.read_subject("2")[0]
    assert trial.ch_names[-1] == "Cz"
    assert trial.meta["channels_assumed"] is False
    assert reader.channel_names("2") == trial.ch_names
    assert reader.cache_token()["options"]["channels"][-1] == "Cz"
    assert get_reader("eav", root, channels=names).ch_names == trial.ch_names
    with raises_one_line(ConfigError, "channels=", "29 names", "30"):
        get_reader("eav", root, channels=",".join(names[:29]))
    with raises_one_line(ConfigError, "no option(s) montage", "listening_rows"):
        get_reader("eav", root, montage="x")
    with raises_one_line(ConfigError, "condition='talking'", "listening"):
        get_reader("eav", root, condition="talking")
    with raises_one_line(ConfigError, "listening_rows='first'", "even"):
        get_reader("eav", root, listening_rows="first")


def test_datasets_check_marks_assumed_channels(eav_root):
    root, _ = eav_root
    text = summarize(get_reader("eav", root), progress=False).format()
    assert "channels" in text
    assert "Fp1 Fp2 F7" in text
    assert "ASSUMED" in text
    assert "labels" in text
    reader = get_reader("eav", root, channels=",".join(CHANNELS))
    assert "ASSUMED" not in summarize(reader, progress=False).format()


def test_v73_hdf5_layout(tmp_path, monkeypatch, raises_one_line):
    pytest.importorskip("h5py")
    root = tmp_path / "EAV"
    _, seg, label = write_eav_subject(root, 5, v73=True, variable="seg", seed=5)
    with (root / "subject5" / "EEG" / "subject5_eeg.mat").open("rb") as f:
        assert f.read(10) == b"MATLAB 7.3"
    trials = get_reader("eav", root, condition="both").read_subject("5")
    rows = np.argmax(label, axis=0)
    for k, t in enumerate(trials):
        np.testing.assert_array_equal(t.eeg, seg[:, :, k].T)
        assert t.label == CLASSES[rows[k] // 2]
        assert t.meta["variable"] == "seg"
        assert t.eeg.flags.c_contiguous
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if not installed
    with raises_one_line(DatasetError, "subject5_eeg_label.mat", "v7.3", "mat73"):
        get_reader("eav", root).read_subject("5")


def test_bad_input_names_the_file(tmp_path, raises_one_line):
    root = tmp_path / "EAV"
    folder, seg, label = write_eav_subject(root, 6, n_trials=10)
    eeg_dir = folder / "EEG"
    reader = EavReader(root)
    with raises_one_line(DatasetError, "EAV subject '7' not found", "found: 6"):
        reader.read_subject("7")

    lab = label.copy()
    lab[:, 3] = 0
    savemat(eeg_dir / "subject6_eeg_label.mat", {"label": lab})
    with raises_one_line(DatasetError, "subject6_eeg_label.mat", "column 4", "one-hot"):
        EavReader(root).read_subject("6")
    savemat(eeg_dir / "subject6_eeg_label.mat", {"label": label[:9]})
    with raises_one_line(DatasetError, "subject6_eeg_label.mat", "(9, 10)"):
        EavReader(root).read_subject("6")
    savemat(eeg_dir / "subject6_eeg_label.mat", {"label": label})

    savemat(eeg_dir / "subject6_eeg.mat", {"seg1": seg[:, :29]})
    with raises_one_line(DatasetError, "subject6_eeg.mat", "(250, 29, 10)", "30"):
        EavReader(root).read_subject("6")
    savemat(eeg_dir / "subject6_eeg.mat", {"data": seg})
    with raises_one_line(DatasetError, "subject6_eeg.mat", "no variable seg1 or seg"):
        EavReader(root).read_subject("6")
    bad = seg.copy()
    bad[5, 2, 4] = np.nan
    savemat(eeg_dir / "subject6_eeg.mat", {"seg1": bad})
    with raises_one_line(DatasetError, "subject6_eeg.mat: seg1 trial 5", "NaN"):
        EavReader(root, condition="both").read_subject("6")
    (eeg_dir / "subject6_eeg.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 20)
    with raises_one_line(DatasetError, "subject6_eeg.mat", "corrupt"):
        EavReader(root).read_subject("6")
    (eeg_dir / "subject6_eeg.mat").unlink()
    with raises_one_line(DatasetError, "subject6_eeg.mat", "file not found"):
        EavReader(root).read_subject("6")
    with raises_one_line(DatasetError, "no EAV subject folders", "zenodo"):
        EavReader(tmp_path / "EAV" / "subject6").subjects()
