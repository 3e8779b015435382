""":class:`ReplaySource`: a recording handed to the pipeline in process, no LSL.

What ``emomon replay`` serves over LSL, read directly: the subject's trials back
to back (baseline, trial, ...; :class:`~emomon.realtime.replay.ReplaySession`),
stamped on this machine's LSL clock. Unpaced (the default) each :meth:`read`
returns the next chunk at once, so the live pipeline runs over a recording as
fast as the CPU allows and gives, window for window, what it would give live;
with ``speed`` it keeps the absolute schedule of a real headset (or of
``emomon replay --speed``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np
import pylsl

from emomon.datasets import Trial
from emomon.errors import ConfigError
from emomon.realtime.replay import ReplaySession, default_source_id
from emomon.realtime.sources.base import Chunk, Source

__all__ = ["ReplaySource"]


class ReplaySource(Source):
    """A recording as a live source, in this process.

    Parameters
    ----------
    trials : sequence of Trial or ReplaySession
        One subject's trials (laid back to back) or a session built already.
    name : str
        Stream name reported in status messages and recordings.
    speed : float or None
        None (default): not paced, every :meth:`read` returns the next ``chunk``
        samples, stamped at the nominal rate. A number: samples become due on
        the absolute schedule ``t0 + k / (sfreq * speed)``, as from a headset.
    loop : bool
        Start again at the first trial after the last one, stamps continuing.
        Without it the source ends (:attr:`state` ``"stopped"``) once the last
        sample was read.
    chunk : int or None
        Most samples per unpaced read (default about 1/32 s, like
        ``emomon replay``); a paced read returns every sample that is due.

    Attributes
    ----------
    realtime : bool
        Whether samples arrive at the sampling rate (``speed`` given).
    metadata : dict
        ``{"replay/speed": speed}`` (1 unpaced): the stamps advance at the
        nominal rate times this, as from ``emomon replay --speed``.
    """

    def __init__(
        self,
        trials: Sequence[Trial] | ReplaySession,
        *,
        name: str = "replay",
        speed: float | None = None,
        loop: bool = False,
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise ConfigError(f"replay source: speed must be > 0, got {speed}")
        if chunk is not None and chunk < 1:
            raise ConfigError(f"replay source: chunk must be >= 1, got {chunk}")
        self.session = (
            trials
            if isinstance(trials, ReplaySession)
            else ReplaySession.from_trials(trials)
        )
        self.stream_name = name
        s = self.session
        self.source_id = default_source_id(dataset=s.dataset, subject=s.subject)
        self.speed = speed
        self.loop = loop
        self.realtime = speed is not None
        self.chunk = chunk or max(1, round(self.session.sfreq / 32))
        self.metadata = {"replay/speed": 1.0 if speed is None else float(speed)}
        self.t0 = math.nan
        self._rate = self.session.sfreq * (1.0 if speed is None else speed)
        self._k = 0  # samples delivered since open (drives the stamps)
        self._i = 0  # position in the session
        self._closed = threading.Event()

    def open(self, timeout_s: float | None = None) -> None:
        """Start the session now (``t0`` = :func:`pylsl.local_clock`)."""
        s = self.session
        self.name = self.stream_name
        self.ch_names = s.ch_names
        self.sfreq = s.sfreq
        self.samples_received = 0
        self._k = self._i = 0
        self._closed.clear()
        self.t0 = pylsl.local_clock()
        self._set_state("connected")

    def read(self, timeout_s: float = 0.0, *, min_samples: int = 1) -> Chunk:
        """Read the next chunk (unpaced) or every sample due by now (paced).

        A paced read waits at most ``timeout_s`` for ``min_samples`` samples to
        be due, then returns every sample due by then.
        """
        if self.state != "connected":
            return Chunk.empty(self.n_channels)
        if self.speed is None:
            n = self.chunk
        else:
            due = self.t0 + (self._k + max(1, min_samples) - 1) / self._rate
            wait = due - pylsl.local_clock()
            if wait > 0 and timeout_s > 0 and self._closed.wait(min(wait, timeout_s)):
                return Chunk.empty(self.n_channels)  # closed while waiting
            n = math.floor((pylsl.local_clock() - self.t0) * self._rate) + 1 - self._k
            if n <= 0:
                return Chunk.empty(self.n_channels)
        return self._take(n)

    def _take(self, n: int) -> Chunk:
        eeg = self.session.eeg
        total = eeg.shape[1]
        parts = []
        left = n
        while left > 0:
            m = min(left, total - self._i)
            parts.append(eeg[:, self._i : self._i + m])
            self._i += m
            left -= m
            if self._i >= total:
                if not self.loop:
                    self._set_state("stopped")
                    break
                self._i = 0
        # a fresh C-contiguous array either way (the chunk owns it)
        data = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0].copy()
        got = data.shape[1]
        stamps = self.t0 + np.arange(self._k, self._k + got, dtype=np.float64) / (
            self._rate
        )
        self._k += got
        self.samples_received += got
        return Chunk(data, stamps)

    def markers(self) -> list[tuple[str, float]]:
        """Return the first pass's markers with their timestamps (after :meth:`open`).

        The strings an ``emomon replay`` sends on its marker outlet, each
        stamped as the sample it belongs to will be (``t0 + sample / (sfreq *
        speed)``), so that a recorder can keep the ground truth of a session
        read in process.

        Returns
        -------
        list of (str, float)
            ``(marker, LSL time)`` in sample order; empty before :meth:`open`.
        """
        if not math.isfinite(self.t0):
            return []
        return [
            (ev.text(0), self.t0 + ev.sample / self._rate) for ev in self.session.events
        ]

    def close(self) -> None:
        """End the session (idempotent); :attr:`state` becomes ``"stopped"``."""
        self._closed.set()
        self._set_state("stopped")
