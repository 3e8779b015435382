"""OpenBCIReader / read_openbci_txt on the real Cyton recording and small files."""

from __future__ import annotations

import numpy as np
import pytest

from emomon.datasets import get_reader
from emomon.datasets.openbci import OpenBCIReader, read_openbci_txt
from emomon.errors import DatasetError

from .writers import openbci_v6_text

# -- the real recording (skips when ../shared/data is absent) ---------------------


def test_real_cyton_recording(openbci_sample):
    eeg, sfreq, names, ts = read_openbci_txt(openbci_sample)
    assert sfreq == 250.0
    assert eeg.shape == (8, 22490)
    assert eeg.dtype == np.float64
    assert np.isfinite(eeg).all()
    assert names == tuple(f"EXG{i}" for i in range(8))
    # first data row of the file, µV unchanged
    np.testing.assert_allclose(
        eeg[:, 0],
        [61379.36, 49492.89, -16597.06, -21309.75, 6703.91, -3284.86, 7223.10, 1740.11],
    )
    assert ts.shape == (22490,)
    assert np.all(np.diff(ts) >= 0)
    assert ts[0] == pytest.approx(1557936053.329)  # Unix ms -> s
    assert 85.0 < ts[-1] - ts[0] < 95.0  # ~90 s recording


def test_real_recording_through_the_reader(openbci_sample):
    names = ["Fp1", "FP2", "C3", "C4", "P7", "P8", "O1", "O2"]
    reader = get_reader("openbci", openbci_sample.parent, ch_names=names)
    assert isinstance(reader, OpenBCIReader)
    assert reader.subjects() == [openbci_sample.stem]  # README.md/LICENSE skipped
    (trial,) = reader.read_subject(openbci_sample.stem)
    assert trial.ch_names == ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2")
    assert trial.video == "rec"
    assert trial.ratings is None
    assert trial.label is None
    assert trial.duration_s == pytest.approx(22490 / 250)
    assert trial.meta["timestamps"].shape == (22490,)
    assert trial.meta["timestamps_synthetic"] is False


# -- small files ---------------------------------------------------------------


def _v6_file(path, n=50, seed=0):
    rng = np.random.default_rng(seed)
    eeg = np.round(rng.normal(0, 50, (8, n)), 2)
    ts = 1_700_000_000_000 + np.arange(n) * 4
    path.write_bytes(openbci_v6_text(eeg, ts).encode())
    return eeg, ts


def test_v6_file_values_timestamps_and_names(tmp_path, raises_one_line):
    f = tmp_path / "OpenBCI-RAW-2024-01-01_10-00-00.txt"
    eeg, ts = _v6_file(f)
    out, sfreq, names, t = read_openbci_txt(f)
    np.testing.assert_allclose(out, eeg)
    np.testing.assert_allclose(t, ts / 1000.0)
    assert sfreq == 250.0
    reader = OpenBCIReader(f, ch_names=[f"E{i}" for i in range(8)])
    assert reader.subjects() == [f.stem]
    assert reader.read_subject(f.stem)[0].ch_names[0] == "E0"
    with raises_one_line(DatasetError, f.name, "8 EXG channels", "2 ch_names"):
        OpenBCIReader(f, ch_names=["Fp1", "Fp2"]).read_subject(f.stem)


def test_v4_file_without_column_row(tmp_path):
    rng = np.random.default_rng(1)
    eeg = np.round(rng.normal(0, 50, (4, 30)), 2)
    head = [
        "%OpenBCI Raw EEG Data",
        "%Number of channels = 4",
        "%Sample Rate = 200.0 Hz",
        "%First Column = SampleIndex",
        "%Last Column = Timestamp ",
        "%Other Columns = EEG data in microvolts followed by Accel Data",
    ]
    rows = [
        f"{i}, " + ", ".join(f"{v:.2f}" for v in eeg[:, i]) + ", 0.0, 0.0, 0.0, "
        f"10:41:50.{i:03d}, {1539107310000 + 5 * i}"
        for i in range(30)
    ]
    f = tmp_path / "ganglion.txt"
    f.write_text("\n".join(head + rows) + "\n")
    out, sfreq, names, ts = read_openbci_txt(f)
    np.testing.assert_allclose(out, eeg)
    assert sfreq == 200.0
    assert names == ("EXG0", "EXG1", "EXG2", "EXG3")
    np.testing.assert_allclose(ts, (1539107310000 + 5 * np.arange(30)) / 1000)
    # no Unix column: timestamps count from 0 at the sample rate
    rows = [r.rsplit(",", 1)[0] for r in rows]
    f.write_text("\n".join(head + rows) + "\n")
    (trial,) = OpenBCIReader(f).read_subject("ganglion")
    np.testing.assert_allclose(trial.meta["timestamps"], np.arange(30) / 200.0)
    assert trial.meta["timestamps_synthetic"] is True


def test_folder_of_recordings(tmp_path):
    _v6_file(tmp_path / "rec10.txt", seed=1)
    _v6_file(tmp_path / "rec2.csv", seed=2)
    (tmp_path / "notes.txt").write_text("not a recording\n")
    reader = OpenBCIReader(tmp_path)
    assert reader.subjects() == ["rec2", "rec10"]
    assert [t.subject for t in reader.iter_trials()] == ["rec2", "rec10"]


def test_incomplete_last_row_is_dropped_with_warning(tmp_path):
    f = tmp_path / "cut.txt"
    eeg, _ = _v6_file(f, n=20)
    f.write_bytes(f.read_bytes() + b"20, 1.0, 2.0, 3.0")
    with pytest.warns(UserWarning, match="incomplete last row"):
        out, *_ = read_openbci_txt(f)
    np.testing.assert_allclose(out, eeg)


# -- errors ----------------------------------------------------------------------


def test_no_header(tmp_path, raises_one_line):
    f = tmp_path / "plain.txt"
    f.write_text("1, 2, 3\n4, 5, 6\n")
    with raises_one_line(DatasetError, "plain.txt", "no '%' header", "%Sample Rate"):
        read_openbci_txt(f)
    # a folder with only such files has no recordings
    with raises_one_line(DatasetError, str(tmp_path), "OpenBCI"):
        OpenBCIReader(tmp_path).subjects()


def test_missing_sample_rate_unless_given(tmp_path, raises_one_line):
    f = tmp_path / "r.txt"
    _v6_file(f, n=10)
    raw = f.read_bytes()
    f.write_bytes(raw.replace(b"%Sample Rate = 250 Hz\r\n", b""))
    with raises_one_line(DatasetError, "r.txt", "Sample Rate", "sfreq"):
        read_openbci_txt(f)
    assert read_openbci_txt(f, sfreq=125.0)[1] == 125.0
    assert OpenBCIReader(f, sfreq=125).read_subject("r")[0].sfreq == 125.0


def test_malformed_rows_and_nan(tmp_path, raises_one_line):
    f = tmp_path / "bad.txt"
    _v6_file(f, n=10)
    lines = f.read_text().splitlines()
    lines[8] = lines[8].replace(lines[8].split(",")[3], " abc", 1)
    f.write_text("\n".join(lines) + "\n")
    with raises_one_line(DatasetError, "bad.txt", "malformed sample row"):
        read_openbci_txt(f)
    lines = f.read_text().splitlines()
    lines[8] = lines[8].replace(" abc", " nan", 1)
    f.write_text("\n".join(lines) + "\n")
    with raises_one_line(DatasetError, "bad.txt", "1 NaN/inf"):
        read_openbci_txt(f)


def test_channel_count_mismatch_and_empty(tmp_path, raises_one_line):
    f = tmp_path / "m.txt"
    _v6_file(f, n=5)
    f.write_text(f.read_text().replace("channels = 8", "channels = 16"))
    with raises_one_line(DatasetError, "m.txt", "16 channels", "8 EXG columns"):
        read_openbci_txt(f)
    f.write_text(
        "%OpenBCI Raw EXG Data\n%Number of channels = 8\n%Sample Rate = 250 Hz\n"
    )
    with raises_one_line(DatasetError, "m.txt", "no sample rows"):
        read_openbci_txt(f)


def test_missing_path(tmp_path, raises_one_line):
    with raises_one_line(DatasetError, "nope.txt", "does not exist"):
        OpenBCIReader(tmp_path / "nope.txt")
    with raises_one_line(DatasetError, "nope.txt", "file not found"):
        read_openbci_txt(tmp_path / "nope.txt")
