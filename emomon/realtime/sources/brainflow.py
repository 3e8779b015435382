"""Read EEG from any BrainFlow board (hardware, SYNTHETIC_BOARD, PLAYBACK_FILE_BOARD).

Units
    BrainFlow's data format description (docs/DataFormatDesc.rst): "For EXG
    channels BrainFlow returns uV wherever possible", so the EEG rows are passed
    on as microvolts without scaling.

Clock
    BrainFlow's timestamp row is "UNIX timestamp ... for some boards timestamps
    are generated on PC side as soon as packages were received" (same page), i.e.
    wall-clock seconds comparable with :func:`time.time`. They are mapped to the
    LSL clock with one offset, ``pylsl.local_clock() - time.time()``, measured
    once when the stream starts (a later step of the system time shifts the
    mapped arrival times by that step). Arrival times carry every stall of the
    transport, so they are not passed on as they are: a sample clock
    (:mod:`emomon.realtime.sources._sampleclock`) stamps sample ``n`` at
    ``anchor + n / sfreq``, with ``n`` advanced past the samples the board's
    package counter shows as lost and the anchor following the least delayed
    arrivals. A stall is then no gap and a loss an exact one. Boards without a
    counter that counts one per sample get their arrival times, non-decreasing.

Reading
    :meth:`BrainFlowSource.read` drains the board's ring buffer with
    ``get_board_data()`` and keeps the EEG rows (``BoardShim.get_eeg_channels``).
    For PLAYBACK_FILE_BOARD and STREAMING_BOARD the layout, names and sampling
    rate come from ``master_board``, as the BrainFlow docs require ("You need to
    use master board id instead Playback Board Id"). BrainFlow has no blocking
    read, so a positive ``read(timeout_s)`` polls the buffer in short steps until
    the first sample or the timeout.

States
    ``"connected"`` while samples arrive; ``"reconnecting"`` after
    ``stall_timeout_s`` without samples (BrainFlow reconnects some boards by
    itself; the state reports the gap), back to ``"connected"`` (and
    ``reconnects`` + 1) when samples resume.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pylsl
from brainflow.board_shim import (
    BoardIds,
    BoardShim,
    BrainFlowError,
    BrainFlowInputParams,
)

from emomon.dsp.layout import canonical_name
from emomon.dsp.montage import brainflow_montage_name
from emomon.errors import literal
from emomon.realtime.sources._sampleclock import SampleClock
from emomon.realtime.sources.base import Chunk, Source, SourceError

__all__ = ["BrainFlowSource", "board_id_from"]

_POLL_S = 0.005
_FINE_POLL_S = 0.001  # polling step once the awaited samples may be there
_STALE_S = 0.5  # the last stamp is this old: poll at _POLL_S (no data flowing)
_NEEDS_MASTER = (BoardIds.PLAYBACK_FILE_BOARD.value, BoardIds.STREAMING_BOARD.value)

#: Boards that need ``serial_port`` (the port of their USB dongle), from the
#: "Required inputs" tables of BrainFlow's supported boards page
#: (docs/SupportedBoards.rst, https://brainflow.readthedocs.io/en/stable/
#: SupportedBoards.html): "dongle serial port" for these, "-" for the others
#: (a board absent from the installed BrainFlow is skipped).
_NEEDS_SERIAL_PORT = frozenset(
    int(BoardIds[name].value)
    for name in (
        "CYTON_BOARD",
        "CYTON_DAISY_BOARD",
        "GANGLION_BOARD",
        "FREEEEG32_BOARD",
        "BRAINBIT_BLED_BOARD",
        "MUSE_S_BLED_BOARD",
        "MUSE_2_BLED_BOARD",
    )
    if name in BoardIds.__members__
)


def board_id_from(board: int | str, *, param: str = "board_id") -> int:
    """BrainFlow board id from an int, a digit string or a ``BoardIds`` name.

    ``"SYNTHETIC_BOARD"``, ``"synthetic"`` and ``-1`` all give ``-1``.

    Parameters
    ----------
    board : int or str
        The board.
    param : str, default "board_id"
        The parameter that gave ``board``, named in the error.

    Raises
    ------
    SourceError
        For a name or number BrainFlow does not know.
    """
    if isinstance(board, BoardIds):
        return int(board.value)
    if isinstance(board, int):
        value = board
    else:
        text = str(board).strip()
        try:
            value = int(text)
        except ValueError:
            key = text.upper().replace("-", "_").replace(" ", "_")
            for cand in (key, f"{key}_BOARD"):
                if cand in BoardIds.__members__:
                    return int(BoardIds[cand].value)
            raise SourceError(
                f"unknown BrainFlow board {literal(repr(board))} for {{{param}}}; use "
                "a BoardIds name such as SYNTHETIC_BOARD, CYTON_BOARD or "
                "PLAYBACK_FILE_BOARD, or its number",
                params=(param,),
            ) from None
    if value not in {int(b.value) for b in BoardIds}:
        raise SourceError(
            f"unknown BrainFlow board id {value} for {{{param}}}; see BoardIds",
            params=(param,),
        )
    return value


def _load_native_quietly() -> None:
    """Load BrainFlow's native library once, hiding its pkg_resources warning.

    brainflow.board_shim falls back to ``pkg_resources`` to locate its shared
    library on first use, which warns on recent setuptools.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        BoardShim.get_version()


def _board_name(board_id: int) -> str:
    try:
        return BoardIds(board_id).name
    except ValueError:  # pragma: no cover - guarded by board_id_from
        return str(board_id)


class BrainFlowSource(Source):
    """EEG from a BrainFlow board.

    Parameters
    ----------
    board_id : int or str
        Any BrainFlow board id or ``BoardIds`` name (``"SYNTHETIC_BOARD"``).
    serial_port : str, optional
        Serial port of the dongle (Cyton: ``/dev/ttyUSB0``, ``COM3``); required
        by the boards that read from one (Cyton, Cyton-Daisy, Ganglion,
        FreeEEG32 and the BLED112 boards), unless ``params`` gives it.
    file : str or Path, optional
        Recording to play back (PLAYBACK_FILE_BOARD), written by BrainFlow
        (``DataFilter.write_file`` or a ``file://`` streamer).
    master_board : int or str, optional
        The board that recorded ``file`` (required by PLAYBACK_FILE_BOARD and
        STREAMING_BOARD); its layout and sampling rate are used.
    params : mapping, optional
        Other :class:`brainflow.board_shim.BrainFlowInputParams` fields
        (``mac_address``, ``ip_address``, ``ip_port``, ``serial_number``,
        ``timeout``, ``other_info``, ...).
    buffer_size : int, default 450000
        BrainFlow ring buffer size in samples (``start_stream``).
    streamer_params : str, default ""
        Extra BrainFlow streamer (``"file://rec.csv:w"``), passed to
        ``start_stream``.
    playback_loop : bool, default False
        PLAYBACK_FILE_BOARD: restart at the end of the file (BrainFlow's
        ``loopback_true`` command); otherwise it stops there.
    stall_timeout_s : float or None, default 5.0
        Report ``"reconnecting"`` after this long without samples.

    Attributes
    ----------
    board_id : int
        The board streamed from.
    descriptor_board : int
        The board whose layout applies (``master_board`` for playback).
    clock_offset : float
        Seconds added to BrainFlow's Unix timestamps to get LSL time.
    loss_detection : str
        ``"package counter"`` (losses counted from the board's counter),
        ``"checking"`` (the counter is being checked, the first
        256 samples) or ``"timestamps"`` (no usable counter).
    lost_samples : int
        Samples the package counter showed as lost since :meth:`open`.
    """

    def __init__(
        self,
        board_id: int | str,
        *,
        serial_port: str | None = None,
        file: str | Path | None = None,
        master_board: int | str | None = None,
        params: Mapping[str, Any] | None = None,
        buffer_size: int = 450_000,
        streamer_params: str = "",
        playback_loop: bool = False,
        stall_timeout_s: float | None = 5.0,
    ) -> None:
        super().__init__()
        self.board_id = board_id_from(board_id)
        self.master_board = (
            None
            if master_board is None
            else board_id_from(master_board, param="master_board")
        )
        if self.board_id in _NEEDS_MASTER and self.master_board is None:
            raise SourceError(
                f"BrainFlow {_board_name(self.board_id)} needs {{master_board}}: the "
                "id of the board that recorded the data (e.g. SYNTHETIC_BOARD, "
                "CYTON_BOARD)",
                params=("master_board",),
            )
        self.descriptor_board = (
            self.master_board if self.board_id in _NEEDS_MASTER else self.board_id
        )
        self.file = None if file is None else Path(file).expanduser()
        if self.board_id == BoardIds.PLAYBACK_FILE_BOARD.value:
            if self.file is None:
                raise SourceError(
                    "BrainFlow PLAYBACK_FILE_BOARD needs {file}: a recording written "
                    "by BrainFlow (DataFilter.write_file)",
                    params=("file",),
                )
            if not self.file.is_file():
                raise SourceError(
                    f"BrainFlow playback {{file}} {literal(self.file)} not found; "
                    "expected a recording written by BrainFlow (DataFilter.write_file)",
                    params=("file",),
                )
        self._params = BrainFlowInputParams()
        known = set(vars(self._params))
        extra = dict(params or {})
        unknown = sorted(set(extra) - known)
        if unknown:
            raise SourceError(
                f"unknown BrainFlowInputParams field(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(known))}"
            )
        for key, value in extra.items():
            setattr(self._params, key, value)
        if serial_port is not None:
            self._params.serial_port = str(serial_port)
        if self.board_id in _NEEDS_SERIAL_PORT and not self._params.serial_port:
            raise SourceError(
                f"BrainFlow {_board_name(self.board_id)} reads from a USB dongle: "
                "pass {serial_port}, the dongle's serial port (e.g. /dev/ttyUSB0, "
                "COM3, /dev/cu.usbserial-... on macOS)",
                params=("serial_port",),
            )
        if self.file is not None:
            self._params.file = str(self.file)
        if self.master_board is not None:
            self._params.master_board = self.master_board
        self.buffer_size = int(buffer_size)
        self.streamer_params = str(streamer_params)
        self.playback_loop = bool(playback_loop)
        self.stall_timeout_s = (
            None if stall_timeout_s is None else float(stall_timeout_s)
        )

        descr = self.descriptor_board
        self.name = _board_name(self.board_id)
        where = self._params.serial_port or self._params.file or ""
        self.source_id = f"brainflow:{self.name}" + (f":{where}" if where else "")
        self.metadata = {
            "acquisition/manufacturer": "BrainFlow",
            "acquisition/model": self.name,
            "brainflow/board_id": str(self.board_id),
        }
        if self.master_board is not None:
            self.metadata["brainflow/master_board"] = _board_name(self.master_board)
        _load_native_quietly()
        try:
            self._eeg_rows = [int(r) for r in BoardShim.get_eeg_channels(descr)]
            self._ts_row = int(BoardShim.get_timestamp_channel(descr))
            self.sfreq = float(BoardShim.get_sampling_rate(descr))
        except BrainFlowError as exc:
            param = "master_board" if descr != self.board_id else "board_id"
            raise SourceError(
                f"BrainFlow board {_board_name(descr)} has no EEG channels or "
                f"timestamp row ({literal(exc)}); choose an EEG board for "
                f"{{{param}}}",
                params=(param,),
            ) from None
        try:
            self._counter_row: int | None = int(
                BoardShim.get_package_num_channel(descr)
            )
        except BrainFlowError:  # no package counter: losses only from the stamps
            self._counter_row = None
        try:
            names = [n.strip() for n in BoardShim.get_eeg_names(descr)]
        except BrainFlowError:  # boards without a fixed montage
            names = []
        if len(names) != len(self._eeg_rows) or not all(names):
            names = [f"ch{i + 1}" for i in range(len(self._eeg_rows))]
        else:  # what `emomon train --montage` takes for this board
            self.montage = brainflow_montage_name(_board_name(descr))
        self.ch_names = tuple(canonical_name(n) for n in names)
        self.clock_offset = 0.0
        self._board: BoardShim | None = None
        self._clock = self._new_clock()
        self._last_data_at = 0.0
        self._last_stamp = -math.inf  # LSL time of the latest sample delivered

    def open(self, timeout_s: float | None = None) -> None:
        """Prepare the session and start streaming.

        ``timeout_s``, when given and the caller set no ``timeout`` in
        ``params``, becomes BrainFlow's own discovery timeout (whole seconds;
        used by Bluetooth and network boards). How long ``prepare_session``
        takes otherwise depends on the board.

        Raises
        ------
        SourceError
            If BrainFlow cannot prepare or start the board (message names the
            board, the port or file, and BrainFlow's error).
        """
        if self._board is not None:
            return
        self._set_state("connecting")
        BoardShim.disable_board_logger()
        if timeout_s is not None and not self._params.timeout:
            self._params.timeout = max(1, math.ceil(timeout_s))
        board = BoardShim(self.board_id, self._params)
        where = self._where()
        try:
            board.prepare_session()
        except BrainFlowError as exc:
            self._set_state("stopped")
            if not self._params.serial_port:
                raise SourceError(f"BrainFlow could not open {where}: {exc}") from None
            raise SourceError(
                f"BrainFlow could not open {literal(where)}: {literal(exc)}; check "
                "{serial_port} and that the board is on",
                params=("serial_port",),
            ) from None
        try:
            if self.board_id == BoardIds.PLAYBACK_FILE_BOARD.value:
                board.config_board(
                    "loopback_true" if self.playback_loop else "loopback_false"
                )
            board.start_stream(self.buffer_size, self.streamer_params)
        except BrainFlowError as exc:
            _quiet_release(board)
            self._set_state("stopped")
            raise SourceError(f"BrainFlow could not start {where}: {exc}") from None
        # BrainFlow stamps samples with Unix time; one offset maps it to LSL time.
        self.clock_offset = pylsl.local_clock() - time.time()
        self._board = board
        self._clock = self._new_clock()
        self._last_data_at = pylsl.local_clock()
        self._last_stamp = -math.inf
        self.samples_received = 0
        self.reconnects = 0
        self.last_error = None
        self._set_state("connected")

    def read(self, timeout_s: float = 0.0, *, min_samples: int = 1) -> Chunk:
        """Drain the board's buffer: EEG rows in µV, timestamps on the LSL clock.

        Parameters
        ----------
        timeout_s : float, default 0.0
            Wait at most this long while fewer than ``min_samples`` are buffered.
        min_samples : int, default 1
            Return as soon as this many samples are there.

        Raises
        ------
        SourceError
            If BrainFlow reports an error while reading.

        Notes
        -----
        BrainFlow has no blocking read, so the wait polls the board's sample
        count. It sleeps while the missing samples cannot be there yet (the
        sample clock stamps a sample no later than it arrives), then polls every
        :data:`_FINE_POLL_S`, so a package that completes ``min_samples`` waits
        at most that long in the board's buffer.
        """
        board = self._board
        if board is None:
            return Chunk.empty(self.n_channels)
        try:
            if timeout_s > 0:
                self._wait_for(board, min_samples, timeout_s)
            data = board.get_board_data()
        except BrainFlowError as exc:
            self.last_error = f"BrainFlow read from {self._where()} failed: {exc}"
            raise SourceError(self.last_error) from None
        now = pylsl.local_clock()
        n = data.shape[1]
        if n == 0:
            if (
                self.stall_timeout_s is not None
                and self.state == "connected"
                and now - self._last_data_at > self.stall_timeout_s
            ):
                self.last_error = (
                    f"no data from {self._where()} for {self.stall_timeout_s:g} s"
                )
                self._set_state("reconnecting")
            return Chunk.empty(self.n_channels)
        self._last_data_at = now
        if self.state == "reconnecting":
            self.reconnects += 1
            self._clock.reset()  # the counter and the timeline after an outage
            self._set_state("connected")
        eeg = np.ascontiguousarray(data[self._eeg_rows], dtype=np.float64)
        arrival = data[self._ts_row] + self.clock_offset
        counter = None if self._counter_row is None else data[self._counter_row]
        ts = self._clock.stamps(arrival, counter)
        self.samples_received += n
        self._last_stamp = float(ts[-1])
        return Chunk(eeg, ts)

    def _wait_for(self, board: BoardShim, min_samples: int, timeout_s: float) -> None:
        """Poll until ``min_samples`` are buffered or ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        # when the sample that makes min_samples is due, on the LSL clock
        due = self._last_stamp + min_samples / self.sfreq - _FINE_POLL_S
        while board.get_board_data_count() < min_samples:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            early = due - pylsl.local_clock()
            if early > _FINE_POLL_S:  # cannot be there yet (stamps <= arrival)
                step = early
            elif early > -_STALE_S:  # due now: poll finely
                step = _FINE_POLL_S
            else:  # no recent data (starting, or the board stalled)
                step = _POLL_S
            time.sleep(min(step, left))

    def _new_clock(self) -> SampleClock:
        return SampleClock(self.sfreq, counter=self._counter_row is not None)

    @property
    def loss_detection(self) -> str:
        """How losses are found.

        ``"package counter"``, ``"timestamps"`` (no usable counter) or
        ``"checking"`` (the counter is being checked).
        """
        mode = self._clock.mode
        return {"counter": "package counter", "arrival": "timestamps"}.get(mode, mode)

    @property
    def lost_samples(self) -> int:
        """Samples the board's package counter showed as lost (its sample clock)."""
        return self._clock.lost

    def close(self) -> None:
        """Stop the stream and release the session (idempotent)."""
        board, self._board = self._board, None
        if board is not None:
            try:
                board.stop_stream()
            except BrainFlowError:
                pass
            _quiet_release(board)
        self._set_state("stopped")

    def _where(self) -> str:
        parts = [f"board {self.name} (id {self.board_id})"]
        if self._params.serial_port:
            parts.append(f"on {self._params.serial_port}")
        if self.file is not None:
            parts.append(f"file {self.file}")
        return " ".join(parts)


def _quiet_release(board: BoardShim) -> None:
    try:
        board.release_session()
    except BrainFlowError:
        pass
