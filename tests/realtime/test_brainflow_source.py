"""BrainFlowSource on BrainFlow's SYNTHETIC_BOARD and PLAYBACK_FILE_BOARD."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest

from emomon.realtime.sources import BrainFlowSource, SourceError
from emomon.realtime.sources.brainflow import board_id_from

from .lsl_helpers import MAX_ITERATIONS, collect

bf = pytest.importorskip("brainflow.board_shim")
BoardIds, BoardShim = bf.BoardIds, bf.BoardShim
SYNTH = BoardIds.SYNTHETIC_BOARD.value


def test_board_ids_and_bad_parameters(tmp_path):
    assert board_id_from("SYNTHETIC_BOARD") == SYNTH
    assert board_id_from("synthetic") == SYNTH
    assert board_id_from(str(SYNTH)) == SYNTH
    with pytest.raises(SourceError, match="unknown BrainFlow board"):
        board_id_from("no-such-board")
    with pytest.raises(SourceError, match="master_board"):
        BrainFlowSource("PLAYBACK_FILE_BOARD", file=tmp_path / "x.csv")
    with pytest.raises(SourceError, match="not found"):
        BrainFlowSource("PLAYBACK_FILE_BOARD", file=tmp_path / "x.csv",
                        master_board="SYNTHETIC_BOARD")  # fmt: skip
    with pytest.raises(SourceError, match="unknown BrainFlowInputParams"):
        BrainFlowSource(SYNTH, params={"bogus": 1})


def test_synthetic_board_streams_microvolts_on_the_lsl_clock():
    src = BrainFlowSource("SYNTHETIC_BOARD")
    assert src.state == "stopped"
    assert src.n_channels == len(BoardShim.get_eeg_channels(SYNTH))
    assert src.ch_names[:3] == ("Fz", "C3", "Cz")
    assert src.sfreq == BoardShim.get_sampling_rate(SYNTH)
    with src:
        assert src.state == "connected"
        got = collect(src, int(src.sfreq), timeout_s=3.0)  # about 1 s of data
        now = pylsl.local_clock()
    assert src.state == "stopped"
    eeg, ts = got.eeg(src.n_channels), got.timestamps()
    assert got.n > 0 and eeg.shape == (src.n_channels, got.n)
    assert eeg.dtype == np.float64 and np.isfinite(eeg).all()
    # microvolts: the synthetic board's EEG is tens to hundreds of µV
    assert 1.0 < np.abs(eeg).max() < 5000.0
    # timestamps mapped onto the LSL clock, recent and non-decreasing
    assert np.all(np.diff(ts) >= 0)
    assert now - 5.0 < ts[0] <= ts[-1] < now + 0.5
    assert src.samples_received == got.n


def test_playback_file_board_replays_a_recording(tmp_path):
    from brainflow.data_filter import DataFilter

    rec = BoardShim(SYNTH, bf.BrainFlowInputParams())
    rec.prepare_session()
    try:
        rec.start_stream()
        deadline = time.monotonic() + 5.0
        for _ in range(MAX_ITERATIONS):  # BrainFlow has no blocking read: poll
            if rec.get_board_data_count() >= 260 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        data = rec.get_board_data()
        rec.stop_stream()
    finally:
        rec.release_session()
    assert data.shape[1] >= 250
    path = tmp_path / "synthetic.csv"
    DataFilter.write_file(data, str(path), "w")

    src = BrainFlowSource("PLAYBACK_FILE_BOARD", file=path, master_board=SYNTH)
    assert src.descriptor_board == SYNTH and src.n_channels == 16
    with src:
        got = collect(src, 200, timeout_s=5.0)
        now = pylsl.local_clock()
    eeg = got.eeg(16)
    assert got.n >= 200
    rows = BoardShim.get_eeg_channels(SYNTH)
    np.testing.assert_allclose(eeg, data[rows, : got.n], rtol=1e-6, atol=1e-6)
    ts = got.timestamps()
    assert now - 5.0 < ts[0] <= ts[-1] < now + 0.5  # new timestamps, LSL clock
