"""BrainFlowSource on BrainFlow's SYNTHETIC_BOARD and PLAYBACK_FILE_BOARD."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest

from emomon.realtime.sources import BrainFlowSource, SourceError
from emomon.realtime.sources.brainflow import board_id_from

from .helpers import MAX_ITERATIONS, collect, grid_steps

bf = pytest.importorskip("brainflow.board_shim")
BoardIds, BoardShim = bf.BoardIds, bf.BoardShim
SYNTH = BoardIds.SYNTHETIC_BOARD.value


@pytest.fixture(autouse=True, scope="module")
def _native_library_loaded():
    """Load BrainFlow's native library as the source does (its first load warns
    about pkg_resources), so that a test calling BoardShim first, run alone,
    does not fail on that warning."""
    from emomon.realtime.sources.brainflow import _load_native_quietly

    _load_native_quietly()


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
    # the Python API names its keywords (the command line its flags, below)
    with pytest.raises(SourceError, match="unknown BrainFlow board 'x' for board_id"):
        BrainFlowSource("x")
    with pytest.raises(SourceError, match="'x' for master_board"):
        BrainFlowSource("PLAYBACK_FILE_BOARD", file=tmp_path / "x.csv",
                        master_board="x")  # fmt: skip
    with pytest.raises(SourceError, match="CYTON_BOARD reads from a USB dongle: pass "
                       "serial_port, the dongle's serial port"):  # fmt: skip
        BrainFlowSource("cyton")
    # with a port (either way) it is built; only open() would look for the dongle
    assert BrainFlowSource("cyton", serial_port="/dev/ttyUSB9").n_channels == 8
    assert BrainFlowSource("cyton-daisy", params={"serial_port": "COM3"}).n_channels
    assert BrainFlowSource("CYTON_WIFI_BOARD").n_channels == 8  # no dongle


def _stream_cli(capsys, model, *argv: str) -> tuple[int, list[str]]:
    from emomon.cli import main

    rc = main(["stream", "--source", "brainflow", "--model", str(model), *argv])
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--board-id", "cyton"],
         "BrainFlow CYTON_BOARD reads from a USB dongle: pass --serial-port, the "
         "dongle's serial port (e.g. /dev/ttyUSB0, COM3, /dev/cu.usbserial-... on "
         "macOS)"),
        (["--board-id", "GANGLION_BOARD"],
         "BrainFlow GANGLION_BOARD reads from a USB dongle: pass --serial-port"),
        (["--board-id", "nope"], "unknown BrainFlow board 'nope' for --board-id; use "
         "a BoardIds name such as SYNTHETIC_BOARD"),
        (["--board-id", "playback_file", "--file", "rec.csv"],
         "BrainFlow PLAYBACK_FILE_BOARD needs --master-board: the id of the board "
         "that recorded the data"),
        (["--board-id", "playback_file", "--file", "rec.csv", "--master-board", "nope"],
         "unknown BrainFlow board 'nope' for --master-board"),
        (["--board-id", "playback_file", "--master-board", "synthetic"],
         "BrainFlow PLAYBACK_FILE_BOARD needs --file: a recording"),
        (["--board-id", "playback_file", "--master-board", "synthetic", "--file",
          "missing.csv"], "BrainFlow playback --file missing.csv not found"),
    ],
)  # fmt: skip
def test_cli_brainflow_errors_name_the_flags(argv, line, capsys, deap_model,
                                             tmp_path, monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    rc, lines = _stream_cli(capsys, deap_model, *argv)
    assert rc == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"emomon: error: {line}"), lines[0]
    for keyword in ("master_board", "serial_port", "board_id"):
        assert keyword not in lines[0]


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
    assert got.n > 0
    assert eeg.shape == (src.n_channels, got.n)
    assert eeg.dtype == np.float64
    assert np.isfinite(eeg).all()
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
    assert src.descriptor_board == SYNTH
    assert src.n_channels == 16
    with src:
        got = collect(src, 200, timeout_s=5.0)
        now = pylsl.local_clock()
    eeg = got.eeg(16)
    assert got.n >= 200
    rows = BoardShim.get_eeg_channels(SYNTH)
    np.testing.assert_allclose(eeg, data[rows, : got.n], rtol=1e-6, atol=1e-6)
    ts = got.timestamps()
    assert now - 5.0 < ts[0] <= ts[-1] < now + 0.5  # new timestamps, LSL clock


def _synthetic_recording(path, n: int, *, lose: slice, pause_at: int, pause_s: float):
    """A SYNTHETIC_BOARD recording in BrainFlow's file format: a 10 Hz sine on
    the EEG rows, the package counter, Unix timestamps 1/250 s apart; the rows
    in ``lose`` never made it to the file (their counter values are missing) and
    the timestamps jump by ``pause_s`` at row ``pause_at``, where
    PLAYBACK_FILE_BOARD therefore pauses."""
    from brainflow.data_filter import DataFilter

    sf = BoardShim.get_sampling_rate(SYNTH)
    data = np.zeros((BoardShim.get_num_rows(SYNTH), n))
    k = np.arange(n)
    data[BoardShim.get_eeg_channels(SYNTH)] = 50.0 * np.sin(2 * np.pi * 10 * k / sf)
    data[BoardShim.get_package_num_channel(SYNTH)] = k % 256
    ts = time.time() + k / sf
    ts[pause_at:] += pause_s
    data[BoardShim.get_timestamp_channel(SYNTH)] = ts
    data = np.ascontiguousarray(np.delete(data, np.arange(n)[lose], axis=1))
    DataFilter.write_file(data, str(path), "w")
    return data


def test_playback_pause_is_no_gap_and_lost_rows_are_an_exact_one(tmp_path):
    """The stamps come from the sample clock: a 0.3 s pause of the playback
    (stamped on arrival by BrainFlow) is no gap; 7 rows missing from the
    recording (its package counter skips them) are a gap of exactly 7 periods."""
    path = tmp_path / "gappy.csv"
    data = _synthetic_recording(path, 700, lose=slice(500, 507), pause_at=350,
                                pause_s=0.3)  # fmt: skip
    src = BrainFlowSource("PLAYBACK_FILE_BOARD", file=path, master_board=SYNTH)
    assert src.loss_detection == "checking"
    with src:
        got = collect(src, data.shape[1], timeout_s=10.0)
        assert src.loss_detection == "package counter"
        assert src.lost_samples == 7
    assert got.n == data.shape[1]
    rows = BoardShim.get_eeg_channels(SYNTH)
    np.testing.assert_allclose(got.eeg(16), data[rows], rtol=0, atol=1e-5)  # 6 decimals
    ts = got.timestamps()
    assert np.all(np.diff(ts) >= 0)
    steps = grid_steps(ts, sfreq=src.sfreq)
    assert steps[499] == pytest.approx(7.0, abs=0.2)
    assert np.delete(steps, 499).max() < 0.25  # the pipeline's gap: 0.5


def test_looping_playback_is_seamless(tmp_path):
    """PLAYBACK_FILE_BOARD with loopback restarts the file: its counter jumps
    back (43 -> 0 here), which is no loss."""
    path = tmp_path / "short.csv"
    data = _synthetic_recording(path, 300, lose=slice(0, 0), pause_at=300,
                                pause_s=0.0)  # fmt: skip
    src = BrainFlowSource("PLAYBACK_FILE_BOARD", file=path, master_board=SYNTH,
                          playback_loop=True)  # fmt: skip
    with src:
        got = collect(src, 650, timeout_s=10.0)
        assert src.loss_detection == "package counter"
        assert src.lost_samples == 0
    assert got.n >= 650
    rows = BoardShim.get_eeg_channels(SYNTH)
    eeg = got.eeg(16)
    np.testing.assert_allclose(eeg[:, 300:600], data[rows], rtol=0, atol=1e-5)
    ts = got.timestamps()
    steps = grid_steps(ts, sfreq=src.sfreq)
    assert steps.max() < 0.25


def test_a_stall_is_reported_while_it_lasts_and_cleared_when_data_returns(tmp_path):
    """A 1 s pause of the playback with a 0.2 s stall timeout: ``reconnecting``
    with the stall in ``last_error`` while it lasts; ``connected`` again, one
    reconnect, and no ``last_error`` once samples resume."""
    path = tmp_path / "paused.csv"
    data = _synthetic_recording(path, 500, lose=slice(0, 0), pause_at=250,
                                pause_s=1.0)  # fmt: skip
    src = BrainFlowSource("PLAYBACK_FILE_BOARD", file=path, master_board=SYNTH,
                          stall_timeout_s=0.2)  # fmt: skip
    seen: list[tuple[str, str | None, int]] = []  # (state, last_error, samples)
    with src:
        deadline = time.monotonic() + 10.0
        for _ in range(MAX_ITERATIONS):
            if src.samples_received >= data.shape[1] or time.monotonic() > deadline:
                break
            src.read(timeout_s=0.02)
            seen.append((src.state, src.last_error, src.samples_received))
        assert src.samples_received == data.shape[1]
        stalled = [s for s in seen if s[0] == "reconnecting"]
        assert stalled, "the 1 s pause was not reported"
        assert all("no data from board PLAYBACK_FILE_BOARD" in (e or "")
                   for _, e, _ in stalled)  # fmt: skip
        assert src.state == "connected"
        assert src.reconnects == 1
        assert src.last_error is None
        # cleared as the samples resumed, not later
        back = next(i for i, s in enumerate(seen) if s[0] == "reconnecting")
        back += next(i for i, s in enumerate(seen[back:]) if s[0] == "connected")
        assert seen[back][1] is None
