"""The :class:`Source` interface shared by every live EEG input, and :class:`Chunk`.

A source hides how samples arrive (an LSL inlet, a BrainFlow board) and hands the
pipeline chunks in one convention: ``(n_channels, n_times)`` float64 microvolts
with one timestamp per sample on the **LSL clock** (:func:`pylsl.local_clock` of
this machine), so that every prediction's ``t_lsl`` lines up with any other LSL
stream (markers, other devices) recorded beside it. Units and clocks are converted
once, inside the source.

Every wait is bounded: :meth:`Source.open` takes a timeout and :meth:`Source.read`
never blocks longer than its ``timeout_s`` (default 0: return what is there).
Within that bound a read returns as soon as ``min_samples`` samples are there, so
the live loop waits for the sample that completes a window in one blocking read
(in liblsl, for an LSL stream) instead of sleeping and guessing when it comes.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from emomon.errors import EmomonError
from emomon.realtime._closing import Closing
from emomon.realtime.states import State

__all__ = ["CLOCK_RESTART_S", "Chunk", "Source", "SourceError", "SourceState"]

#: A step back of the timestamps by more than this (seconds) is a restart of the
#: sender's clock: a source delivers it at the start of a new chunk (instead of
#: holding the timestamps at the last one) and the stream restarts the pipeline.
CLOCK_RESTART_S = 1.0

#: Life cycle of a source (:mod:`emomon.realtime.states`, shared with the wire
#: format): ``"stopped"`` before :meth:`Source.open` and after
#: :meth:`Source.close`; ``"connecting"`` inside ``open``; ``"connected"`` while
#: data can flow; ``"reconnecting"`` while the input is lost (or silent) and the
#: source waits for it to come back.
SourceState = State


class SourceError(EmomonError):
    """A live source cannot be opened or read (nothing found, bad stream, I/O).

    The message is one line naming what was searched for or what failed.
    """


@dataclass(frozen=True, eq=False)
class Chunk:
    """Samples read from a source in one :meth:`Source.read` call.

    Attributes
    ----------
    data : ndarray, shape (n_channels, n_times)
        EEG in microvolts, float64, C-contiguous. The chunk owns its arrays (they
        are never reused by the source), so a consumer may keep them.
    timestamps : ndarray, shape (n_times,)
        Acquisition time of each sample in seconds on this machine's LSL clock
        (:func:`pylsl.local_clock`), float64, non-decreasing, also from one
        chunk to the next, except that a chunk may start more than
        :data:`CLOCK_RESTART_S` before the previous one ended: the sender's
        clock restarted.
    """

    data: np.ndarray
    timestamps: np.ndarray

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.timestamps.ndim != 1:
            raise ValueError(
                f"chunk data must be 2-D and timestamps 1-D, got {self.data.shape} "
                f"and {self.timestamps.shape}"
            )
        if self.data.shape[1] != self.timestamps.shape[0]:
            raise ValueError(
                f"chunk has {self.data.shape[1]} samples but "
                f"{self.timestamps.shape[0]} timestamps"
            )

    @classmethod
    def empty(cls, n_channels: int) -> Chunk:
        """Make a chunk with no samples.

        Its data has shape ``(n_channels, 0)``, its timestamps ``(0,)``.
        """
        return cls(
            np.empty((n_channels, 0), dtype=np.float64), np.empty(0, dtype=np.float64)
        )

    @property
    def n_times(self) -> int:
        """Number of samples in the chunk."""
        return int(self.timestamps.shape[0])

    def __len__(self) -> int:
        return self.n_times


class Source(ABC, Closing):
    """A live EEG input: open it, call :meth:`read` in a loop, close it.

    Attributes
    ----------
    name : str
        Human-readable name (the LSL stream name, the BrainFlow board name).
    ch_names : tuple of str
        Channel names in row order of :attr:`Chunk.data` (valid after ``open``).
    sfreq : float
        Nominal sampling rate in Hz (valid after ``open``; ``nan`` before).
    samples_received : int
        Samples delivered by :meth:`read` since ``open``.
    reconnects : int
        Times the input was lost and came back.
    last_error : str or None
        The latest problem seen (lost stream, refused replacement), one line;
        kept while the source reconnects, cleared when it is back
        (``"reconnecting"`` -> ``"connected"``).
    realtime : bool
        Whether samples arrive at the sampling rate (True for every live input;
        False for a recording handed out as fast as it is read).
    source_id : str
        Stable identity of the input (the LSL ``source_id``, the board and its
        port, the recording); empty when unknown.
    metadata : dict
        What the input says about itself, under flattened ``"node/child"``
        keys (an LSL stream's ``desc``, text values); ``"replay/speed"`` gives
        :attr:`time_scale`.
    montage : str or None
        The input's montage as ``emomon train --montage`` takes it, where the
        source knows one (a BrainFlow board's ``"brainflow:synthetic"``); None
        otherwise (its channel names are the montage then).
    unconverted_units : dict of str to str
        Channel name -> unit of each channel delivered as it came because its
        unit is not a voltage the source converts to microvolts (an LSL trigger
        channel in ``"none"``); empty when every channel is in µV. The pipeline
        refuses a model channel listed here.

    Notes
    -----
    Subclasses implement :meth:`open`, :meth:`read` and :meth:`close` and keep
    :attr:`state` up to date through :meth:`_set_state`. ``state``, the counters
    and ``last_error`` may be read from any thread (for status messages);
    ``open``/``read``/``close`` are meant for one consumer thread, though
    ``close`` may be called from another thread to stop the source.
    """

    name: str
    ch_names: tuple[str, ...]
    sfreq: float
    realtime: bool = True

    def __init__(self) -> None:
        self.name = ""
        self.ch_names = ()
        self.sfreq = float("nan")
        self.samples_received = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.source_id = ""
        self.metadata: dict[str, Any] = {}
        self.unconverted_units: dict[str, str] = {}
        self.montage: str | None = None
        self._state: SourceState = "stopped"
        self._state_lock = threading.Lock()

    @property
    def time_scale(self) -> float:
        """How much faster than real time the samples are stamped.

        A replay's speed, as ``emomon replay`` announces it in
        ``metadata["replay/speed"]``; 1 for live inputs. The pipeline scales its
        timing (gaps, pacing) by it.
        """
        try:
            speed = float(self.metadata.get("replay/speed", 1.0))
        except (TypeError, ValueError):
            return 1.0
        return speed if speed > 0 and math.isfinite(speed) else 1.0

    @property
    def n_channels(self) -> int:
        """Number of channels (``len(ch_names)``)."""
        return len(self.ch_names)

    @property
    def state(self) -> SourceState:
        """The state of the source.

        One of ``"connecting"``, ``"connected"``, ``"reconnecting"`` and
        ``"stopped"``.
        """
        with self._state_lock:
            return self._state

    def _set_state(self, state: SourceState) -> None:
        """Set the state; back from ``"reconnecting"``, clear :attr:`last_error`."""
        with self._state_lock:
            if state == "connected" and self._state == "reconnecting":
                self.last_error = None  # the problem it reported is over
            self._state = state

    def counters(self) -> dict[str, int | str | None]:
        """Snapshot for status messages: state, samples, reconnects, last error."""
        return {
            "state": self.state,
            "samples_received": self.samples_received,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }

    @abstractmethod
    def open(self, timeout_s: float | None = None) -> None:
        """Find and connect the input, waiting at most ``timeout_s`` seconds.

        Raises
        ------
        SourceError
            If nothing matching was found in time or the input cannot be used;
            the message names what was searched for.
        """

    @abstractmethod
    def read(self, timeout_s: float = 0.0, *, min_samples: int = 1) -> Chunk:
        """Return the samples that arrived since the last call (maybe none).

        Parameters
        ----------
        timeout_s : float, default 0.0
            Wait at most this long (seconds) while fewer than ``min_samples``
            samples have arrived; 0 returns what is there at once. Never blocks
            for long, also while the input is being reconnected.
        min_samples : int, default 1
            Return as soon as this many samples are there (with every other
            sample already there); fewer only when ``timeout_s`` runs out, the
            input is lost or the source stops.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the input (idempotent); :attr:`state` becomes ``"stopped"``."""

    def __enter__(self) -> Source:
        if self.state == "stopped":
            self.open()
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, state={self.state!r}, "
            f"n_channels={self.n_channels}, sfreq={self.sfreq})"
        )
