"""SEED-V readers on files in the release's layout.

The .cnt files are written by ``tests/datasets/cnt_writer.py`` (MNE cannot write
Neuroscan) and read back through MNE: these tests show the reader and MNE agree
on the published layout, not that real SEED-V headers match it (see
``emomon/datasets/seed5.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import mne
import numpy as np
import pytest

from emomon.datasets import get_reader, seed5
from emomon.dsp.layout import SEED_CHANNELS
from emomon.errors import ConfigError, DatasetError
from tests.datasets import seedv
from tests.datasets.cnt_writer import SEEDV_CNT_CHANNELS


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Film times of ~1 s (the real ones span an hour of recording)."""
    short = seedv.short_spans()
    monkeypatch.setattr(seed5, "SESSION_SPANS", short)
    return short


@pytest.fixture
def one_subject(tmp_path: Path, spans: dict) -> Path:
    """Subject 3 with all three sessions (int16 samples)."""
    for s in (1, 2, 3):
        seedv.write_session(
            tmp_path, 3, s, seedv.session_counts(spans[s], seed=s), date=f"2018080{s}"
        )
    return tmp_path


def _mean_uv(row: int) -> float:
    return 100 * row / seedv.COUNTS_PER_UV


def test_trials_labels_videos_channels_and_microvolts(one_subject: Path) -> None:
    reader = get_reader("seed5", one_subject)
    assert reader.subjects() == ["3"]
    assert reader.classes == ("disgust", "fear", "sad", "neutral", "happy")
    trials = reader.read_subject("3")
    assert len(trials) == 45
    assert [t.session for t in trials] == [str(s) for s in (1, 2, 3) for _ in range(15)]
    assert [t.video for t in trials[:3]] == ["s1t01", "s1t02", "s1t03"]
    assert trials[-1].video == "s3t15"
    for s in (1, 2, 3):
        got = [t.label for t in trials if t.session == str(s)]
        assert got == [seed5.CLASSES[i] for i in seed5.SESSION_LABELS[s]]
    assert trials[0].label == "happy"
    assert trials[4].label == "disgust"
    t = trials[0]
    assert t.sfreq == 200.0
    assert t.eeg.shape == (62, 240)  # 1.2 s at 200 Hz
    assert t.ch_names[:3] == ("Fp1", "Fpz", "Fp2")
    assert not {"M1", "M2", "VEO", "HEO"} & set(t.ch_names)
    # Each row's level is its row in the file x 10 µV: the channels are picked
    # by name past M1/M2 (rows 32 and 42 of the file), and counts become µV once.
    rows = [seedv.CNT_ROW[n] for n in SEED_CHANNELS]
    want = np.array([_mean_uv(r) for r in rows])
    np.testing.assert_allclose(t.eeg.mean(axis=1), want, atol=0.3)
    assert t.meta["source_sfreq"] == 1000.0
    assert t.meta["start_s"] == 1.0


@pytest.mark.parametrize("dtype", ["int16", "int32"])
def test_native_rate_returns_the_exact_samples(
    tmp_path: Path, spans: dict, dtype: str
) -> None:
    counts = seedv.session_counts(spans[1]) * (1000 if dtype == "int32" else 1)
    path = seedv.write_session(tmp_path, 1, 1, counts, dtype=dtype, baseline=7)
    # The width is inferred ("auto"), or given as the option, reaching MNE.
    fmt = "auto" if dtype == "int16" else dtype
    reader = get_reader("seed5", path, sfreq="1000", data_format=fmt)
    trials = reader.read_subject("1")
    assert len(trials) == 15
    rows = [seedv.CNT_ROW[n] for n in SEED_CHANNELS]
    t0, t1 = spans[1][4]
    a, b = round(t0 * 1000), round(t1 * 1000)
    want = (counts[rows, a:b] - 7) / seedv.COUNTS_PER_UV
    np.testing.assert_allclose(trials[4].eeg, want, rtol=1e-6, atol=1e-6)
    assert trials[4].meta["resampling"] == "none"


def test_trials_are_read_span_by_span_without_preload(
    one_subject: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[mne.io.BaseRaw] = []
    spans_read: list[tuple[int, int]] = []
    real_open = seed5.open_raw
    real_segment = mne.io.cnt.cnt.RawCNT._read_segment_file

    def spy_open(*args, **kwargs):
        raw = real_open(*args, **kwargs)
        opened.append(raw)
        return raw

    def spy_segment(self, data, idx, fi, start, stop, cals, mult):
        spans_read.append((start, stop))
        return real_segment(self, data, idx, fi, start, stop, cals, mult)

    monkeypatch.setattr(seed5, "open_raw", spy_open)
    monkeypatch.setattr(mne.io.cnt.cnt.RawCNT, "_read_segment_file", spy_segment)
    get_reader("seed5", one_subject).read_subject("3")
    assert len(opened) == 3
    assert all(not r.preload for r in opened)
    # One read per film, each the film plus the filter's context (50 samples
    # a side at 1000 -> 200 Hz), never the whole file.
    assert len(spans_read) == 45
    n_times = opened[0].n_times
    for start, stop in spans_read:
        assert stop - start <= 1200 + 2 * 50
        assert stop - start < n_times / 10


def test_downsampling_filters_what_would_alias(tmp_path: Path, spans: dict) -> None:
    counts = seedv.session_counts(spans[1])
    t = np.arange(counts.shape[1]) / 1000.0
    fz, cz = seedv.CNT_ROW["FZ"], seedv.CNT_ROW["CZ"]
    # 100 µV tones: 150 Hz (above the new Nyquist, would fold to 50 Hz) on Fz,
    # 20 Hz (kept) on Cz.
    counts[fz] += np.round(1000 * np.sin(2 * np.pi * 150 * t)).astype(np.int64)
    counts[cz] += np.round(1000 * np.sin(2 * np.pi * 20 * t)).astype(np.int64)
    seedv.write_session(tmp_path, 1, 1, counts)
    trial = get_reader("seed5", tmp_path).read_subject("1")[2]
    assert trial.sfreq == 200.0

    def amplitude(x: np.ndarray, freq: float) -> float:
        x = x - x.mean()
        spec = np.abs(np.fft.rfft(x)) * 2 / x.size
        return float(spec[int(round(freq * x.size / 200.0))])

    fz_row = trial.ch_names.index("Fz")
    cz_row = trial.ch_names.index("Cz")
    # Keeping every 5th sample would leave a 100 µV tone at 50 Hz.
    assert amplitude(trial.eeg[fz_row], 50.0) < 1.0
    assert amplitude(trial.eeg[cz_row], 20.0) == pytest.approx(100.0, rel=0.02)


def test_features_refused_without_trust_and_read_with_it(tmp_path: Path) -> None:
    data = seedv.de_trials()
    path = seedv.write_npz(tmp_path, 2, data, seedv.de_labels(data))
    reader = get_reader("seed5-features", tmp_path)
    assert reader.precomputed
    assert reader.subjects() == ["2"]
    with pytest.raises(DatasetError) as err:
        reader.read_subject("2")
    msg = str(err.value)
    assert "\n" not in msg
    assert path.name in msg
    assert "trust_pickle=yes" in msg

    trials = get_reader("seed5-features", tmp_path, trust_pickle="yes").read_subject(
        "2"
    )
    assert len(trials) == 45
    ft = trials[16]  # key 16: session 2, film 2
    assert (ft.session, ft.video, ft.label) == ("2", "s2t02", "fear")
    de = ft.features["de"]
    assert de.shape == (62, data[16].shape[0], 5)
    # Channel-major rows: value ch * 10 + band (+ key / 100).
    assert de[7, 0, 3] == pytest.approx(7 * 10 + 3 + 0.16)
    assert ft.ch_names == trials[0].ch_names
    assert ft.ch_names[0] == "Fp1"
    assert ft.band_edges == seed5.BAND_EDGES
    assert ft.sfreq == 200.0
    assert ft.window_s == 4.0
    assert [t.label for t in trials[:15]] == [
        seed5.CLASSES[i] for i in seed5.SESSION_LABELS[1]
    ]


def test_features_unpickle_numpy_only(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    data = seedv.de_trials()
    data[0] = Evil()
    path = seedv.write_npz(tmp_path, 1, data, seedv.de_labels(seedv.de_trials()))
    reader = get_reader("seed5-features", path, trust_pickle=True)
    with pytest.raises(DatasetError) as err:
        reader.read_subject("1")
    msg = str(err.value)
    assert "\n" not in msg
    assert "1_123.npz" in msg
    assert "refusing" in msg


def test_features_bad_content(tmp_path: Path) -> None:
    data = seedv.de_trials()
    labels = seedv.de_labels(data)
    short = dict(data)
    del short[44]
    seedv.write_npz(tmp_path, 1, short, labels)
    reader = get_reader("seed5-features", tmp_path, trust_pickle="true")
    with pytest.raises(DatasetError, match=r"1_123\.npz: 'data' lacks trial key"):
        reader.read_subject("1")

    wide = dict(data)
    wide[3] = np.zeros((4, 300))
    seedv.write_npz(tmp_path, 1, wide, labels)
    with pytest.raises(DatasetError, match=r"trial key 3 'data' has shape \(4, 300\)"):
        get_reader("seed5-features", tmp_path, trust_pickle="1").read_subject("1")

    swapped = dict(labels)
    swapped[0] = np.full(data[0].shape[0], 2)
    seedv.write_npz(tmp_path, 1, data, swapped)
    with pytest.warns(UserWarning, match=r"trial key\(s\) \[0\] differ"):
        trials = get_reader("seed5-features", tmp_path, trust_pickle="on").read_subject(
            "1"
        )
    assert trials[0].label == "sad"  # the file's label wins

    (tmp_path / "EEG_DE_features" / "1_123.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"1_123\.npz: not a readable \.npz"):
        get_reader("seed5-features", tmp_path, trust_pickle="yes").read_subject("1")

    np.savez(tmp_path / "EEG_DE_features" / "1_123.npz", data=np.zeros(3))
    with pytest.raises(DatasetError, match="no member 'label'"):
        get_reader("seed5-features", tmp_path, trust_pickle="yes").read_subject("1")


def test_recording_shorter_than_a_film(tmp_path: Path, spans: dict) -> None:
    counts = seedv.session_counts(spans[2])
    seedv.write_session(tmp_path, 1, 2, counts[:, :15000])
    with pytest.raises(DatasetError) as err:
        get_reader("seed5", tmp_path).read_subject("1")
    msg = str(err.value)
    assert "\n" not in msg
    assert "1_2_20180804.cnt" in msg
    assert "ends at 15.0 s but film 15 of session 2 ends at" in msg


def test_header_rate_and_channels_are_checked(tmp_path: Path, spans: dict) -> None:
    counts = seedv.session_counts(spans[1], sfreq=500)
    path = seedv.write_session(tmp_path, 1, 1, counts, sfreq=500)
    with pytest.raises(DatasetError, match=r"1_1_20180804\.cnt: header says 500 Hz"):
        get_reader("seed5", tmp_path).read_subject("1")
    names = list(SEEDV_CNT_CHANNELS)
    names[names.index("CZ")] = "C0"
    seedv.write_session(tmp_path, 1, 1, seedv.session_counts(spans[1]), ch_names=names)
    with pytest.raises(DatasetError, match=r"no channel\(s\) CZ among its 66"):
        get_reader("seed5", tmp_path).read_subject("1")
    path.write_bytes(b"\0" * 100)
    with pytest.raises(DatasetError, match=r"1_1_20180804\.cnt: cannot be read by MNE"):
        get_reader("seed5", tmp_path).read_subject("1")


def test_options_and_layout_errors(tmp_path: Path) -> None:
    for bad in ({"sfreq": "2000"}, {"sfreq": "fast"}, {"sfreq": 199.9999}):
        with pytest.raises(DatasetError, match="option 'sfreq'"):
            get_reader("seed5", tmp_path, **bad)
    with pytest.raises(DatasetError, match="option 'data_format'"):
        get_reader("seed5", tmp_path, data_format="int8")
    with pytest.raises(ConfigError, match="valid options: sfreq, data_format"):
        get_reader("seed5", tmp_path, trust_pickle="yes")
    with pytest.raises(DatasetError, match="option 'trust_pickle' must be yes or no"):
        get_reader("seed5-features", tmp_path, trust_pickle="maybe")
    with pytest.raises(DatasetError, match="unknown feature"):
        get_reader("seed5-features", tmp_path, features="de_LDS")
    with pytest.raises(DatasetError, match=r"no SEED-V files in .*EEG_raw/"):
        get_reader("seed5", tmp_path).subjects()
    raw_dir = tmp_path / "EEG_raw"
    raw_dir.mkdir()
    (raw_dir / "1_4_20180101.cnt").write_bytes(b"")
    with pytest.raises(DatasetError, match="session 4 is not 1, 2 or 3"):
        get_reader("seed5", tmp_path).files("1")
    with pytest.raises(DatasetError, match="subject '9' not found"):
        get_reader("seed5", tmp_path).files("9")
    (raw_dir / "1_4_20180101.cnt").unlink()
    (raw_dir / "1_2_20180101.cnt").write_bytes(b"")
    (raw_dir / "1_2_20180102.cnt").write_bytes(b"")
    with pytest.raises(DatasetError, match="two recordings of subject 1 session 2"):
        get_reader("seed5", tmp_path).files("1")


def test_default_spans_are_the_published_table() -> None:
    spans = seed5.SESSION_SPANS
    assert spans[1][0] == (30, 102)
    assert spans[1][-1] == (3204, 3359)
    assert spans[2][4] == (836, 967)
    assert spans[3][-1] == (2888, 3066)
    assert all(len(spans[s]) == 15 and all(a < b for a, b in spans[s]) for s in spans)
