"""Serve a recorded session as a real LSL stream: simulated hardware for ``stream``.

``emomon replay`` reads one subject with any dataset reader (or one OpenBCI GUI /
MNE-readable file), lays the subject's trials back to back as the session was
recorded (each trial's pre-trial baseline, then the trial), and pushes it through
a :class:`pylsl.StreamOutlet` of type ``EEG`` in chunks, paced in real time, plus
an optional second outlet of type ``Markers`` with one JSON string per event.

Schedule
    Sample ``k`` (counted from the start of :meth:`Replay.run`, across loops) is
    due at ``t0 + k / (sfreq * speed)`` on :func:`pylsl.local_clock` (a monotonic
    clock); a chunk is pushed when its last sample is due. Every due time is
    computed from ``t0``, never by adding up sleeps, so waking late for one chunk
    does not delay the next ones (no drift); if the process falls behind (a pause,
    a busy CPU), the overdue chunks are pushed at once to catch up.

Timestamps
    Each sample is pushed with an explicit timestamp equal to its due time,
    ``t0 + k / (sfreq * speed)``: LSL timestamps are capture times on the
    sender's ``local_clock`` (pylsl ``push_sample``: "the capture time of the
    sample, in agreement with local_clock()"), and a replay "captures" a sample
    when it emits it. So timestamps stay on the real LSL clock at every speed:
    markers, predictions' ``t_lsl``, latency measurements and LabRecorder files
    line up with everything else on the network, and the spacing of
    timestamps is ``1 / (sfreq * speed)``. The stream's ``nominal_srate`` stays
    the recording's ``sfreq``, because that is the rate of the *content*
    (filters and features must treat it as ``sfreq`` data); a consumer checking
    timestamp gaps reads the factor from ``desc/replay/speed``. At speed 1 the
    two coincide. (Stamping ``t0 + k / sfreq`` instead would put timestamps in
    the future at speed > 1 and break every latency figure.) Timestamps are
    jitter-free: they come from the schedule, not from when the push happened.

Markers
    ``{"event": "trial_start", "subject": ..., "video": ..., "valence": ...,
    "arousal": ..., "label": ..., ...}`` at a trial's first sample and
    ``"trial_end"`` at its last sample (and ``"baseline_start"`` at the first
    sample of a pre-trial baseline), each timestamped with the LSL time of that
    sample and pushed together with the chunk holding it. Missing ratings are
    ``null``.

Stream description (``desc``)
    ``channels/channel/{label, unit="microvolts", type="EEG"}``,
    ``acquisition/{manufacturer="emomon replay", model=<dataset>}`` and
    ``replay/{dataset, subject, file, speed, loop, n_trials, n_samples,
    markers_stream, emomon_version}``.

Readers that cut trials out of one continuous file (MNE annotations) give only
the annotated segments, so the replay serves those segments back to back, not
the gaps between them.

The ``source_id`` defaults to a stable id derived from the dataset and subject
(or the file path), so a restarted replay is recognised by consumers as the same
source and they reconnect to it.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pylsl

from emomon import __version__
from emomon.datasets import Trial
from emomon.errors import ConfigError, DatasetError, EmomonError, literal
from emomon.realtime._closing import Closing
from emomon.realtime._lsl import add_channels
from emomon.realtime.loading import load_trials

__all__ = [
    "MarkerEvent",
    "Replay",
    "ReplayResult",
    "ReplaySession",
    "ReplaySettings",
    "default_source_id",
    "run_replay",
]

_FORMATS = {
    "float32": (pylsl.cf_float32, np.float32),
    "double64": (pylsl.cf_double64, np.float64),
}
_MAX_WAIT_SLICE_S = 0.1  # stop requests are noticed at least this often


# -- settings -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ReplaySettings:
    """How a recording is served over LSL.

    Parameters
    ----------
    name : str, default "emomon-replay"
        LSL stream name of the EEG outlet.
    source_id : str, default ""
        LSL source id; empty means a stable id derived from the dataset and
        subject (or file) by :func:`default_source_id`.
    stream_type : str, default "EEG"
        LSL content type of the EEG outlet.
    chunk : int or None, default None
        Samples per push; None means about 1/32 s (``round(sfreq / 32)``, at
        least 1), like a typical amplifier's packets.
    speed : float, default 1.0
        Playback speed (1.0 = real time, 4.0 = four times faster).
    loop : bool, default False
        Start again from the first trial after the last one, continuing the
        schedule and timestamps without a gap.
    markers : bool, default True
        Also serve the ``Markers`` outlet with trial start/end events.
    marker_name : str or None, default None
        Name of the marker outlet; None means ``"<name>-markers"``.
    channel_format : {"float32", "double64"}, default "float32"
        LSL sample type of the EEG outlet (float32 holds 24-bit amplifier data
        exactly).
    wait_for_consumers_s : float, default 0.0
        Before the first sample, wait up to this long for a consumer of every
        outlet (the EEG one and, with ``markers``, the marker one), so that
        they receive the session from its first sample; :meth:`Replay.run`
        raises :class:`~emomon.errors.EmomonError` if one has none by then.
        0 starts at once, as hardware does.
    """

    name: str = "emomon-replay"
    source_id: str = ""
    stream_type: str = "EEG"
    chunk: int | None = None
    speed: float = 1.0
    loop: bool = False
    markers: bool = True
    marker_name: str | None = None
    channel_format: Literal["float32", "double64"] = "float32"
    wait_for_consumers_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("replay: name must not be empty")
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise ConfigError(f"replay: speed must be a number > 0, got {self.speed}")
        if self.chunk is not None and self.chunk < 1:
            raise ConfigError(f"replay: chunk must be >= 1 sample, got {self.chunk}")
        if self.channel_format not in _FORMATS:
            raise ConfigError(
                f"replay: channel_format must be one of {', '.join(_FORMATS)}, "
                f"got {self.channel_format!r}"
            )
        if not (
            self.wait_for_consumers_s >= 0 and math.isfinite(self.wait_for_consumers_s)
        ):
            raise ConfigError(
                "replay: {wait_for_consumers_s} must be a number of seconds >= 0, "
                f"got {self.wait_for_consumers_s}",
                params=("wait_for_consumers_s",),
            )

    @property
    def marker_stream_name(self) -> str:
        """Name of the marker outlet."""
        return self.marker_name or f"{self.name}-markers"


# -- the session: trials back to back -------------------------------------------
@dataclass(frozen=True)
class MarkerEvent:
    """One marker: the sample it belongs to (index in the session) and payload."""

    sample: int
    payload: dict[str, Any]

    def text(self, loop: int = 0) -> str:
        """Return the marker string as sent: compact JSON with ``sample``, ``loop``."""
        return json.dumps(
            {**self.payload, "sample": self.sample, "loop": loop},
            separators=(",", ":"),
        )


@dataclass(frozen=True, eq=False)
class ReplaySession:
    """A subject's trials laid back to back (baseline, trial, baseline, ...).

    Attributes
    ----------
    eeg : ndarray, shape (n_channels, n_times)
        The whole session in µV, float64.
    sfreq : float
        Sampling rate in Hz.
    ch_names : tuple of str
        Channel names.
    events : tuple of MarkerEvent
        Markers in sample order.
    subject, dataset : str
        Where the trials came from.
    n_trials : int
        Number of trials.
    """

    eeg: np.ndarray
    sfreq: float
    ch_names: tuple[str, ...]
    events: tuple[MarkerEvent, ...]
    subject: str
    dataset: str
    n_trials: int

    @property
    def n_times(self) -> int:
        """Number of samples in the session."""
        return int(self.eeg.shape[1])

    @property
    def duration_s(self) -> float:
        """Length of the session in seconds (at its own rate, not the replay's)."""
        return self.n_times / self.sfreq

    @classmethod
    def from_trials(cls, trials: Sequence[Trial]) -> ReplaySession:
        """Concatenate ``trials`` (baseline then trial each) and build markers.

        Raises
        ------
        DatasetError
            If there are no trials, or they differ in channels or sampling rate.
        """
        if not trials:
            raise DatasetError("replay: no trials to serve")
        first = trials[0]
        parts: list[np.ndarray] = []
        events: list[MarkerEvent] = []
        pos = 0
        for i, tr in enumerate(trials):
            if tr.ch_names != first.ch_names or tr.sfreq != first.sfreq:
                raise DatasetError(
                    f"replay: trial {tr.subject}/{tr.video} has "
                    f"{len(tr.ch_names)} channels at {tr.sfreq:g} Hz but the first "
                    f"trial has {len(first.ch_names)} at {first.sfreq:g} Hz; a "
                    "session must keep one layout"
                )
            base = _payload(tr, i)
            if tr.baseline is not None and tr.baseline.shape[1] > 0:
                events.append(MarkerEvent(pos, {"event": "baseline_start", **base}))
                parts.append(tr.baseline)
                pos += tr.baseline.shape[1]
            n = tr.eeg.shape[1]
            if n == 0:
                continue
            events.append(MarkerEvent(pos, {"event": "trial_start", **base}))
            events.append(MarkerEvent(pos + n - 1, {"event": "trial_end", **base}))
            parts.append(tr.eeg)
            pos += n
        if pos == 0:
            raise DatasetError(
                f"replay: subject {first.subject}'s trials hold no samples"
            )
        eeg = np.concatenate(parts, axis=1)  # NaN/inf kept: served as recorded
        return cls(
            eeg=eeg,
            sfreq=first.sfreq,
            ch_names=first.ch_names,
            events=tuple(events),
            subject=first.subject,
            dataset=first.dataset,
            n_trials=len(trials),
        )


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _payload(trial: Trial, index: int) -> dict[str, Any]:
    ratings = trial.ratings or {}
    return {
        "subject": trial.subject,
        "video": trial.video,
        "valence": _finite_or_none(ratings.get("valence")),
        "arousal": _finite_or_none(ratings.get("arousal")),
        "label": trial.label,
        "dataset": trial.dataset,
        "trial": index,
        "scale": list(trial.scale) if trial.scale is not None else None,
    }


def default_source_id(
    *, dataset: str = "", subject: str = "", file: str | Path | None = None
) -> str:
    """Return a source id that stays the same when a recording is served again.

    ``"emomon-replay:deap:s01"`` for a dataset subject;
    ``"emomon-replay:file:<stem>:<8 hex of the absolute path's SHA-1>"`` for a file.
    """
    if file is not None:
        path = Path(file).expanduser().resolve()
        digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:8]
        return f"emomon-replay:file:{path.stem}:{digest}"
    return f"emomon-replay:{dataset or 'unknown'}:{subject or 'unknown'}"


# -- the replay -------------------------------------------------------------------
@dataclass(frozen=True)
class ReplayResult:
    """What :meth:`Replay.run` did.

    Attributes
    ----------
    reason : {"end", "duration", "stopped"}
        Why it returned: the recording ended (no loop), ``duration_s`` elapsed,
        or a stop was requested.
    samples_pushed : int
        Samples pushed by this run.
    markers_pushed : int
        Marker strings pushed by this run.
    loops : int
        Completed passes over the recording.
    elapsed_s : float
        Wall seconds from the first due time (``t0``) to the return.
    t0 : float
        LSL time of the first sample (nan if nothing was pushed).
    """

    reason: Literal["end", "duration", "stopped"]
    samples_pushed: int
    markers_pushed: int
    loops: int
    elapsed_s: float
    t0: float


@dataclass
class _Outlets:
    eeg: pylsl.StreamOutlet
    markers: pylsl.StreamOutlet | None
    infos: list[pylsl.StreamInfo] = field(default_factory=list)


class Replay(Closing):
    """Push a :class:`ReplaySession` through real LSL outlets on a fixed schedule.

    Parameters
    ----------
    trials : sequence of Trial or ReplaySession
        One subject's trials, in the order they were recorded.
    settings : ReplaySettings, optional
        Stream name, speed, chunking, loop, markers.
    file : str or Path, optional
        The file the trials came from (recorded in ``desc``, used for the
        default source id).

    Notes
    -----
    :meth:`open` creates the outlets (the stream becomes discoverable),
    :meth:`run` pushes until the end, ``duration_s``, or a stop request
    (:meth:`stop` or ``stop_event``, noticed within 0.1 s), :meth:`close`
    destroys the outlets. ``run`` may be called from a worker thread while
    another thread calls :meth:`stop`; each call of ``run`` starts again at the
    first sample with a new ``t0``. A stop is sticky: after :meth:`stop` (even
    one that came before ``run`` started) ``run`` returns at once until the
    replay is closed and opened again.
    """

    def __init__(
        self,
        trials: Sequence[Trial] | ReplaySession,
        *,
        settings: ReplaySettings | None = None,
        file: str | Path | None = None,
    ) -> None:
        self.session = (
            trials
            if isinstance(trials, ReplaySession)
            else ReplaySession.from_trials(trials)
        )
        self.settings = settings or ReplaySettings()
        self.file = None if file is None else Path(file)
        self.source_id = self.settings.source_id or default_source_id(
            dataset=self.session.dataset, subject=self.session.subject, file=file
        )
        s = self.session
        self.chunk = self.settings.chunk or max(1, round(s.sfreq / 32))
        fmt, dtype = _FORMATS[self.settings.channel_format]
        self._lsl_format = fmt
        # (n_times, n_channels) in the outlet's type, converted once
        self._samples = np.ascontiguousarray(s.eeg.T, dtype=dtype)
        self._offsets = np.arange(self.chunk, dtype=np.float64)
        self._outlets: _Outlets | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.samples_pushed = 0
        self.markers_pushed = 0
        self.t0 = math.nan

    # -- properties -------------------------------------------------------------
    @property
    def sfreq(self) -> float:
        """The session's sampling rate in Hz (as announced on the EEG outlet)."""
        return self.session.sfreq

    @property
    def ch_names(self) -> tuple[str, ...]:
        """The session's channel names."""
        return self.session.ch_names

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.session.ch_names)

    @property
    def is_open(self) -> bool:
        """Whether the outlets exist."""
        return self._outlets is not None

    def expected_timestamps(self, t0: float, n: int | None = None) -> np.ndarray:
        """Return the LSL timestamps of the first ``n`` samples of a run from ``t0``.

        ``t0 + k / (sfreq * speed)``, shape (n,); ``n`` defaults to the whole
        session.
        """
        n = self.session.n_times if n is None else n
        return t0 + np.arange(n, dtype=np.float64) / (self.sfreq * self.settings.speed)

    # -- outlets ------------------------------------------------------------------
    def open(self) -> None:
        """Create the EEG (and marker) outlets; idempotent."""
        with self._lock:
            if self._outlets is not None:
                return
            st = self.settings
            s = self.session
            info = pylsl.StreamInfo(
                st.name,
                st.stream_type,
                self.n_channels,
                s.sfreq,
                self._lsl_format,
                self.source_id,
            )
            desc = info.desc()
            add_channels(desc, s.ch_names, unit="microvolts", kind="EEG")
            acq = desc.append_child("acquisition")
            acq.append_child_value("manufacturer", "emomon replay")
            acq.append_child_value("model", s.dataset or "recording")
            rep = desc.append_child("replay")
            for key, value in (
                ("dataset", s.dataset),
                ("subject", s.subject),
                ("file", "" if self.file is None else str(self.file)),
                ("speed", repr(float(st.speed))),
                ("loop", "true" if st.loop else "false"),
                ("n_trials", str(s.n_trials)),
                ("n_samples", str(s.n_times)),
                ("markers_stream", st.marker_stream_name if st.markers else ""),
                ("emomon_version", __version__),
            ):
                rep.append_child_value(key, value)
            eeg = pylsl.StreamOutlet(info, chunk_size=0)
            markers = None
            infos = [info]
            if st.markers:
                minfo = pylsl.StreamInfo(
                    st.marker_stream_name,
                    "Markers",
                    1,
                    pylsl.IRREGULAR_RATE,
                    pylsl.cf_string,
                    f"{self.source_id}:markers",
                )
                minfo.desc().append_child("replay").append_child_value(
                    "eeg_stream", st.name
                )
                markers = pylsl.StreamOutlet(minfo)
                infos.append(minfo)
            self._outlets = _Outlets(eeg=eeg, markers=markers, infos=infos)
            self._stop.clear()

    def close(self) -> None:
        """Stop a running :meth:`run` and destroy the outlets (idempotent)."""
        self._stop.set()
        with self._lock:
            # pylsl destroys an outlet when its last reference goes (its
            # __del__ calls lsl_destroy_outlet): consumers then see it vanish.
            self._outlets = None

    def stop(self) -> None:
        """Ask a running (or the next) :meth:`run` to return (thread-safe)."""
        self._stop.set()

    def wait_for_consumers(
        self, timeout_s: float, stop_event: threading.Event | None = None
    ) -> bool:
        """Wait until every outlet (EEG, and markers if served) has a consumer.

        Opens the outlets first. Stop requests (:meth:`stop`, ``stop_event``)
        are noticed within 0.1 s.

        Parameters
        ----------
        timeout_s : float
            Longest wait in seconds.
        stop_event : threading.Event, optional
            Return False soon after it is set.

        Returns
        -------
        bool
            True once every outlet has a consumer; False if a stop came first.

        Raises
        ------
        EmomonError
            If an outlet still has no consumer after ``timeout_s``; the message
            names it and the ``wait_for_consumers_s`` parameter.
        """
        self.open()
        outlets = self._outlets
        if outlets is None:  # closed from another thread meanwhile
            return False
        waiting = [(self.settings.name, outlets.eeg)]
        if outlets.markers is not None:
            waiting.append((self.settings.marker_stream_name, outlets.markers))
        deadline = pylsl.local_clock() + timeout_s
        while True:
            if self._stop.is_set() or (stop_event is not None and stop_event.is_set()):
                return False
            waiting = [(n, o) for n, o in waiting if not o.have_consumers()]
            if not waiting:
                return True
            left = deadline - pylsl.local_clock()
            if left <= 0:
                break
            waiting[0][1].wait_for_consumers(min(left, _MAX_WAIT_SLICE_S))
        names = " and ".join(f"'{literal(n)}'" for n, _ in waiting)
        markers_only = waiting[0][0] != self.settings.name
        raise EmomonError(
            f"replay: nothing connected to LSL stream{'s' * (len(waiting) > 1)} "
            f"{names} within "
            f"{timeout_s:g} s ({{wait_for_consumers_s}}); "
            + (
                "start what reads the markers sooner, or serve no markers ({markers})"
                if markers_only
                else "start the consumer within that time, or wait longer"
            ),
            params=("wait_for_consumers_s", "markers"),
        )

    def __enter__(self) -> Replay:
        self.open()
        return self

    # -- pushing ------------------------------------------------------------------
    def run(
        self,
        duration_s: float | None = None,
        stop_event: threading.Event | None = None,
    ) -> ReplayResult:
        """Push the session on the absolute schedule until done or stopped.

        Parameters
        ----------
        duration_s : float, optional
            Return after this many wall seconds from the first due time (the
            samples due by then are pushed); None runs to the end (forever with
            ``loop``).
        stop_event : threading.Event, optional
            Return soon (within 0.1 s) after it is set; :meth:`stop` works too.

        Returns
        -------
        ReplayResult

        Raises
        ------
        EmomonError
            With ``settings.wait_for_consumers_s``, if an outlet has no
            consumer by then (see :meth:`wait_for_consumers`).
        """
        if duration_s is not None and not duration_s >= 0:
            raise ConfigError(f"replay: duration must be >= 0 s, got {duration_s}")
        self.open()
        outlets = self._outlets
        if outlets is None:  # closed from another thread meanwhile
            return ReplayResult("stopped", 0, 0, 0, 0.0, math.nan)
        ext = stop_event

        def stopped() -> bool:
            return self._stop.is_set() or (ext is not None and ext.is_set())

        def sleep_until(t: float) -> bool:
            """Wait until local_clock() >= t; False if a stop came first."""
            waiter = ext if ext is not None else self._stop
            while True:
                if stopped():
                    return False
                dt = t - pylsl.local_clock()
                if dt <= 0:
                    return True
                waiter.wait(min(dt, _MAX_WAIT_SLICE_S))

        st = self.settings
        if st.wait_for_consumers_s > 0 and not self.wait_for_consumers(
            st.wait_for_consumers_s, ext
        ):
            return ReplayResult("stopped", 0, 0, 0, 0.0, math.nan)

        s = self.session
        n_total = s.n_times
        rate = s.sfreq * st.speed
        events = s.events
        data = self._samples
        offsets = self._offsets
        t0 = pylsl.local_clock()
        self.t0 = t0
        end = math.inf if duration_s is None else t0 + duration_s
        k = 0  # samples pushed in this run (drives the schedule)
        i = 0  # position in the session
        loops = 0
        next_event = 0
        pushed_markers = 0
        self.samples_pushed = 0
        self.markers_pushed = 0
        reason: Literal["end", "duration", "stopped"] = "end"
        while True:
            if stopped():
                reason = "stopped"
                break
            n = min(self.chunk, n_total - i)
            if t0 + (k + n - 1) / rate > end:  # only part of the chunk is due
                n = min(n, math.floor((end - t0) * rate) - k + 1)
                if n <= 0:
                    reason = "duration"
                    break
            if not sleep_until(t0 + (k + n - 1) / rate):
                reason = "stopped"
                break
            stamps = t0 + (k + offsets[:n]) / rate
            outlets.eeg.push_chunk(data[i : i + n], stamps.tolist())
            if outlets.markers is not None:
                while next_event < len(events) and events[next_event].sample < i + n:
                    ev = events[next_event]
                    ts = t0 + (k + ev.sample - i) / rate
                    outlets.markers.push_sample([ev.text(loops)], ts)
                    pushed_markers += 1
                    next_event += 1
                self.markers_pushed = pushed_markers
            k += n
            i += n
            self.samples_pushed = k
            if i >= n_total:
                loops += 1
                if not st.loop:
                    reason = "end"
                    break
                i = 0
                next_event = 0
            if k > 0 and t0 + k / rate > end:
                reason = "duration"
                break
        return ReplayResult(
            reason=reason,
            samples_pushed=k,
            markers_pushed=pushed_markers,
            loops=loops,
            elapsed_s=pylsl.local_clock() - t0,
            t0=t0 if k else math.nan,
        )


def run_replay(
    trials: Sequence[Trial] | None = None,
    *,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    subject: str | None = None,
    file: str | Path | None = None,
    reader_options: dict[str, Any] | None = None,
    settings: ReplaySettings | None = None,
    duration_s: float | None = None,
    stop_event: threading.Event | None = None,
    on_start: Callable[[Replay], None] | None = None,
    linger_s: float = 0.5,
) -> ReplayResult:
    """Load a recording, serve it until the end, ``duration_s`` or a stop.

    Parameters
    ----------
    trials : sequence of Trial, optional
        Trials to serve; otherwise loaded with :func:`load_trials` from
        ``dataset``/``data_dir``/``subject``/``reader_options`` or ``file``.
    settings : ReplaySettings, optional
        Stream settings.
    duration_s : float, optional
        Wall seconds to serve for.
    stop_event : threading.Event, optional
        Set it to stop (e.g. from a signal handler).
    on_start : callable, optional
        Called with the open :class:`Replay` before pushing starts.
    linger_s : float, default 0.5
        After a natural end, keep the outlets this long (interruptible) so
        consumers receive the last chunk before the stream vanishes.
    """
    if trials is None:
        trials = load_trials(
            dataset=dataset,
            data_dir=data_dir,
            subject=subject,
            file=file,
            reader_options=reader_options,
        )
    with Replay(trials, settings=settings, file=file) as replay:
        if on_start is not None:
            on_start(replay)
        result = replay.run(duration_s=duration_s, stop_event=stop_event)
        if result.reason != "stopped" and linger_s > 0:
            (stop_event or threading.Event()).wait(linger_s)
    return result
