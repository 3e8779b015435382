r"""Record a live session: the raw EEG received and the predictions published.

``emomon stream --record session.fif`` hands every chunk it reads (before the
pipeline) and every prediction payload it publishes to a :class:`SessionRecorder`.
The session can later be served again with ``emomon replay --file session.fif``
and re-scored by ``emomon stream``: the same samples give the same windows and
the same probabilities.

This module writes (:class:`SessionRecorder`, a sink of the live loop);
:mod:`emomon.realtime.recording` knows the files: their paths, how a spool
becomes them, and :func:`read_recording`.

Files of a finished recording ``session.fif``
    ``session.fif``
        MNE raw FIF, float64 (``fmt="double"``), every channel of the source as
        type ``eeg`` in volts (MNE's unit; the source's µV divided by 1e6 once),
        channel names as the source gave them (10-20 names, so ``replay`` serves
        them and ``stream`` maps them to a model). ``info["sfreq"]`` is the
        source's nominal rate. ``info["description"]`` is a JSON object
        (:data:`DESCRIPTION_KEY` = 1, stream name, source id, model id, first
        and last sample's LSL time, counts, the side files' names, free-form
        metadata); :func:`read_recording` parses it. ``info["meas_date"]`` is the
        wall-clock time of the first sample. Each prediction is an annotation at
        its window's last sample (duration 0), described as
        ``emomon/prediction;seq=12;valence=0.712345;arousal=0.310123;ok=1``
        (the probability of the second class of a binary task, the label of a
        multi-class task, ``none`` for a window flagged bad). Readers of emomon
        ignore ``emomon/`` annotations, so the replay serves the whole recording.
        Recordings over ``split_size`` (2 GB, the FIF limit) continue in
        ``session-1.fif``, ``session-2.fif``, ... (MNE's split naming); MNE
        reads them all when opening ``session.fif``.
    ``session.timestamps.npy``
        LSL timestamp (s, this machine's LSL clock) of every sample, float64,
        shape (n_times,): gaps, jitter and a replay's speed stay visible.
    ``session.predictions.jsonl``
        The prediction payloads exactly as published (the ZeroMQ frame's UTF-8
        JSON), one per line.
    ``session.markers.jsonl`` (only with a marker stream)
        The ground truth: every string of the recorded LSL marker stream
        (``markers_stream``: the replay's ``<name>-markers`` or the one
        ``--markers`` names), one JSON object per line in arrival order,
        ``{"t_lsl": <float>, "sample": <int>, "marker": <str>}``: ``t_lsl`` the
        marker's timestamp mapped to this machine's LSL clock (the clock of
        ``session.timestamps.npy`` and of the predictions' ``t_lsl``),
        ``sample`` the recorded sample nearest to it (-1 outside the
        recording), ``marker`` the string as sent. Each marker is also a FIF
        annotation ``emomon/marker;<string>`` at its sample. The description
        then names ``markers_stream``, ``markers_file`` and ``n_markers``; a
        recording without them (every one made before markers were recorded)
        reads as before, with ``Recording.markers`` None.

Crash safety (the spool)
    While recording nothing is held in memory: samples are appended to a spool
    directory ``session.fif.partial/`` next to the target and flushed to the
    operating system after every chunk (so they survive the process being
    killed) and ``fsync``-ed every ``fsync_interval_s`` (power loss):
    ``meta.json`` (settings, written once), ``eeg.f64`` (little-endian float64,
    sample-major, volts), ``times.f64`` (float64 LSL timestamps) and
    ``predictions.tsv`` (``<sample index>\t<payload JSON>`` lines) and, with a
    marker stream, ``markers.tsv`` (``<LSL time>\t<marker as a JSON string>``).
    :meth:`close`
    builds the FIF from a memory map of the spool (constant memory, any length)
    and removes the spool only after every file is written. A spool left by a
    process that died (SIGKILL, power loss, a failed disk) is finished with
    :meth:`SessionRecorder.recover` or ``emomon recover session.fif``: a torn last
    sample or prediction line is dropped, everything before it is kept. A new
    recorder refuses to start while a spool is in the way.

Exactness
    The FIF holds exactly ``uV / 1e6`` in float64. Reading back (``x 1e6``)
    returns the µV within one unit in the last place (a decimal scale is not a
    power of two); samples that came as float32 (most LSL amplifiers, emomon
    replay) come back bit-identical once cast to float32, which is what a replay
    serves, so a re-streamed session is sample-exact.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from emomon import __version__
from emomon.realtime.messages import PredictionMessage
from emomon.realtime.recording import (
    _F64,
    ANNOTATION_PREFIX,
    DESCRIPTION_KEY,
    SPOOL_SUFFIX,
    RecordError,
    Recording,
    RecordingFiles,
    RecordingPaths,
    _split_bytes,
    _write_atomic,
    check_record_path,
    finish_spool,
    read_recording,
    recording_paths,
)
from emomon.realtime.sinks import Sink

if TYPE_CHECKING:
    from emomon.realtime.sources.base import Chunk

_SPOOL_FORMAT = "emomon-recording-spool"
_SPOOL_VERSION = 1
_UV_PER_V = 1e6
_TAIL_S = 30.0  # timestamps kept in memory to place predictions on samples

__all__ = [
    "ANNOTATION_PREFIX",
    "DESCRIPTION_KEY",
    "RecordError",
    "RecorderSettings",
    "Recording",
    "RecordingFiles",
    "RecordingPaths",
    "SessionRecorder",
    "check_record_path",
    "read_recording",
    "recording_paths",
]


# -- settings and results ------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RecorderSettings:
    """How a :class:`SessionRecorder` writes.

    Parameters
    ----------
    overwrite : bool, default False
        Replace an existing recording of the same name.
    fsync_interval_s : float, default 1.0
        Force the spool to disk this often (seconds), from a background thread
        so a slow disk never delays the stream; 0 syncs after every chunk in
        the caller's thread. Between syncs the data is in the operating
        system's cache: it survives the process being killed, not a power loss.
    split_size : int or str, default "2GB"
        Largest FIF file (bytes, or ``"500MB"``/``"2GB"``); longer recordings
        continue in ``session-1.fif`` etc. At most 2 GB (the FIF limit).
    """

    overwrite: bool = False
    fsync_interval_s: float = 1.0
    split_size: int | str = "2GB"

    def __post_init__(self) -> None:
        if not (self.fsync_interval_s >= 0 and math.isfinite(self.fsync_interval_s)):
            raise RecordError(
                f"record: fsync_interval_s must be >= 0, got {self.fsync_interval_s}"
            )
        _split_bytes(self.split_size)  # validate now, not at close


# -- the recorder -------------------------------------------------------------------
RecorderState = Literal["recording", "failed", "closed"]


class SessionRecorder(Sink):
    """Spool a live session to disk as it arrives; write the FIF at :meth:`close`.

    A :class:`~emomon.realtime.sinks.Sink` of the live loop: every chunk as
    received, every prediction as published. Disk writes may block, so
    :func:`~emomon.realtime.stream.run_stream` runs it behind a bounded queue
    of :attr:`queue_size` items (a minute of 1-sample chunks at 128 Hz);
    what a stalled disk makes it drop is counted in the stream's summary and
    shows as a gap in the recorded timestamps.

    Parameters
    ----------
    path : str or Path
        The recording, ``session.fif`` (see the module docstring for the files).
    ch_names : sequence of str
        Channel names of the source, in row order of the chunks (unique).
    sfreq : float
        Nominal sampling rate of the source (Hz).
    stream_name, source_id : str, optional
        The source's stream name and id (stored in the FIF description).
    model : str, optional
        Model id of the predictions (the payloads' ``model``).
    markers_stream : str, optional
        Name of the LSL marker stream whose strings :meth:`write_marker`
        records (``session.markers.jsonl``); empty: no markers are recorded.
    metadata : mapping, optional
        JSON-serialisable extras stored in the description (hop, replay speed).
    settings : RecorderSettings, optional

    Raises
    ------
    RecordError
        If the path is unusable (see :func:`check_record_path`), the channels or
        rate are invalid, or the spool cannot be created.

    Notes
    -----
    State: ``"recording"`` after construction; :meth:`close` finishes the FIF
    and moves to ``"closed"`` (idempotent). ``"failed"`` after a failed disk
    write (no more writes are accepted) or a failed finish: the spool is kept,
    ``close`` may be called again, or the spool recovered later. One thread
    writes; the calls are not thread-safe (a daemon thread only ``fsync``-s,
    see ``fsync_interval_s``). As a context manager the recording is finished
    also when the block raises.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        ch_names: Sequence[str],
        sfreq: float,
        stream_name: str = "",
        source_id: str = "",
        model: str = "",
        markers_stream: str = "",
        metadata: Mapping[str, Any] | None = None,
        settings: RecorderSettings | None = None,
    ) -> None:
        self.settings = settings or RecorderSettings()
        self._marker_lock = threading.Lock()
        self._n_markers = 0
        names = tuple(str(c) for c in ch_names)
        if not names:
            raise RecordError(f"record: {path}: the source has no channels")
        dupes = sorted({c for c in names if names.count(c) > 1})
        if dupes:
            raise RecordError(
                f"record: {path}: duplicate channel names {', '.join(dupes)}; a "
                "FIF file needs unique names"
            )
        sfreq = float(sfreq)
        if not (sfreq > 0 and math.isfinite(sfreq)):
            raise RecordError(
                f"record: {path}: the source has no regular sampling rate "
                f"({sfreq}); expected a rate > 0 Hz"
            )
        self.paths = check_record_path(path, overwrite=self.settings.overwrite)
        self.ch_names = names
        self.sfreq = sfreq
        import pylsl

        self._meta: dict[str, Any] = {
            "format": _SPOOL_FORMAT,
            "version": _SPOOL_VERSION,
            "emomon_version": __version__,
            "target": self.paths.fif.name,
            "ch_names": list(names),
            "sfreq": sfreq,
            "stream": str(stream_name),
            "source_id": str(source_id),
            "model": str(model),
            "markers_stream": str(markers_stream),
            "metadata": dict(metadata or {}),
            "split_size": self.settings.split_size,
            # the first sample's wall time is derived from this pair at the end
            "opened_unix": time.time(),
            "opened_lsl": pylsl.local_clock(),
        }
        try:
            meta_text = json.dumps(self._meta, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise RecordError(
                f"record: {path}: metadata is not JSON-serialisable ({exc})"
            ) from None
        self._n = 0
        self._n_pred = 0
        self._tail: deque[tuple[int, np.ndarray]] = deque()
        self._tail_n = 0
        self._tail_cap = max(1024, math.ceil(_TAIL_S * sfreq))
        self._result: RecordingFiles | None = None
        self._syncer: _Syncer | None = None
        self._files_open = False
        spool = self.paths.spool
        try:
            spool.mkdir()
        except FileExistsError:  # another recorder started meanwhile
            raise RecordError(
                f"record: {self.paths.fif}: {spool} appeared while starting; is "
                "another recording writing there?"
            ) from None
        except OSError as exc:
            raise RecordError(
                f"record: cannot create {spool} ({exc.strerror or exc})"
            ) from None
        try:
            _write_atomic(self.paths.spool_meta, meta_text.encode("utf-8"))
            self._eeg = open(self.paths.spool_eeg, "xb")  # kept open: appended to
            self._times = open(self.paths.spool_times, "xb")
            self._preds = open(self.paths.spool_predictions, "xb")
            self._markers = open(self.paths.spool_markers, "xb")
        except OSError as exc:
            for name in ("_eeg", "_times", "_preds", "_markers"):
                f = getattr(self, name, None)
                if f is not None:
                    f.close()
            shutil.rmtree(spool, ignore_errors=True)
            raise RecordError(
                f"record: cannot write in {spool} ({exc.strerror or exc})"
            ) from None
        self._files_open = True
        if self.settings.fsync_interval_s > 0:
            self._syncer = _Syncer(
                [
                    f.fileno()
                    for f in (self._eeg, self._times, self._preds, self._markers)
                ],
                self.settings.fsync_interval_s,
            )
        self.state: RecorderState = "recording"

    # -- properties -------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The target FIF."""
        return self.paths.fif

    @property
    def n_channels(self) -> int:
        """Number of channels recorded (``len(ch_names)``)."""
        return len(self.ch_names)

    @property
    def n_samples(self) -> int:
        """Samples written so far."""
        return self._n

    @property
    def n_predictions(self) -> int:
        """Predictions written so far."""
        return self._n_pred

    @property
    def markers_stream(self) -> str:
        """Name of the marker stream recorded ("" when none)."""
        return str(self._meta["markers_stream"])

    @property
    def n_markers(self) -> int:
        """Markers written so far."""
        return self._n_markers

    # -- writing --------------------------------------------------------------------
    def write_chunk(self, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Append samples as read from the source.

        Parameters
        ----------
        data : ndarray, shape (n_channels, n_times)
            EEG in µV, rows in ``ch_names`` order; NaN/inf are kept as received.
        timestamps : ndarray, shape (n_times,)
            LSL timestamps (s) of the samples.

        Raises
        ------
        RecordError
            If the recorder is closed, the shapes do not match, or the disk
            write fails (the samples so far stay in the spool).
        """
        self._check_recording()
        x = np.asarray(data, dtype=np.float64)
        t = np.asarray(timestamps, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.n_channels or t.shape != x.shape[1:]:
            raise RecordError(
                f"record: chunk of shape {x.shape} with {t.shape} timestamps; "
                f"expected ({self.n_channels}, n) with (n,)"
            )
        n = t.shape[0]
        if n == 0:
            return
        # Sample-major volts: appending rows keeps the spool one growing array.
        buf = np.empty((n, self.n_channels), dtype=_F64)
        np.divide(x.T, _UV_PER_V, out=buf)
        stamps = np.array(t, dtype=_F64)  # a copy: the caller may reuse its array
        try:
            self._eeg.write(buf.data)
            self._times.write(stamps.data)
            self._eeg.flush()  # to the OS: survives the process being killed
            self._times.flush()
            self._maybe_sync()
        except OSError as exc:
            raise self._write_failed(exc) from None
        self._tail.append((self._n, stamps))
        self._tail_n += n
        while self._tail_n - self._tail[0][1].shape[0] >= self._tail_cap:
            self._tail_n -= self._tail.popleft()[1].shape[0]
        self._n += n

    def write_prediction(self, message: PredictionMessage) -> None:
        """Append a published prediction.

        Parameters
        ----------
        message : PredictionMessage
            Its ``t_lsl`` places it on the recorded sample with that timestamp
            (the window's last sample); its JSON is written as published.

        Raises
        ------
        RecordError
            If the recorder is closed or the write fails.
        """
        self._check_recording()
        text = message.to_json()  # the exact bytes published
        sample = self._sample_at(message.t_lsl)
        try:
            self._preds.write(b"%d\t%b\n" % (sample, text))
            self._preds.flush()
        except OSError as exc:
            raise self._write_failed(exc) from None
        self._n_pred += 1

    def write_marker(self, marker: str, t_lsl: float) -> None:
        """Append a string of the marker stream (thread-safe).

        Parameters
        ----------
        marker : str
            The marker as sent (emomon replay: one JSON object per event).
        t_lsl : float
            Its timestamp on this machine's LSL clock (the sender's stamp plus
            the inlet's time correction), the clock of the samples.

        Raises
        ------
        RecordError
            If the recorder records no marker stream, is closed, or the write
            fails.
        """
        if not self.markers_stream:
            raise RecordError(
                f"record: {self.paths.fif}: this recorder was opened without a "
                "marker stream (markers_stream)"
            )
        line = b"%s\t%s\n" % (
            repr(float(t_lsl)).encode("ascii"),
            json.dumps(str(marker), ensure_ascii=False).encode("utf-8"),
        )
        with self._marker_lock:
            self._check_recording()
            try:
                self._markers.write(line)
                self._markers.flush()
            except OSError as exc:
                raise self._write_failed(exc) from None
            self._n_markers += 1

    # -- the Sink interface ------------------------------------------------------
    queue_size = 8192

    def on_chunk(self, chunk: Chunk) -> None:
        """Record a chunk of the live loop as received."""
        self.write_chunk(chunk.data, chunk.timestamps)

    def on_prediction(self, message: PredictionMessage, window: Any) -> None:
        """Record a prediction of the live loop as published."""
        self.write_prediction(message)

    def _sample_at(self, t_lsl: Any) -> int:
        """Index of the recent sample nearest to ``t_lsl`` (-1 if none)."""
        if not self._tail or not isinstance(t_lsl, (int, float)):
            return -1
        if not math.isfinite(t_lsl):
            return -1
        stamps = np.concatenate([ts for _, ts in self._tail])
        # nearest, not searchsorted: stamps may step back when a stream restarts
        return self._tail[0][0] + int(np.argmin(np.abs(stamps - t_lsl)))

    def _maybe_sync(self) -> None:
        if self._syncer is None:  # fsync_interval_s == 0: after every chunk
            for f in (self._eeg, self._times, self._preds, self._markers):
                os.fsync(f.fileno())
        elif self._syncer.error is not None:
            raise self._syncer.error

    def _check_recording(self) -> None:
        if self.state != "recording":
            raise RecordError(f"record: {self.paths.fif}: the recorder is {self.state}")

    def _write_failed(self, exc: OSError) -> RecordError:
        # A partial write may have left the files out of step: no more writes;
        # close() (or recover) keeps the complete samples.
        self.state = "failed"
        return RecordError(
            f"record: cannot write to {self.paths.spool} ({exc.strerror or exc}); "
            f"the samples so far are kept there: free space and run `emomon "
            f"recover {self.paths.fif}`"
        )

    # -- finishing ------------------------------------------------------------------
    def close(self) -> RecordingFiles:
        """Write the FIF, the timestamps and the predictions; remove the spool.

        Returns
        -------
        RecordingFiles
            The same object on every later call.

        Raises
        ------
        RecordError
            If the files cannot be written; the spool is kept for
            :meth:`recover` and ``close`` may be retried.
        """
        if self._result is not None:
            return self._result
        self.state = "failed"  # until the FIF is written
        if self._files_open:
            self._files_open = False
            if self._syncer is not None:
                self._syncer.stop()  # before the files (and their fds) close
            errors = []
            with self._marker_lock:  # a marker write in flight ends first
                files = (self._eeg, self._times, self._preds, self._markers)
            for f in files:
                try:
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as exc:
                    errors.append(exc)
                finally:
                    f.close()
            if errors:
                raise self._write_failed(errors[0])
        self._result = finish_spool(self.paths, self._meta, recovered=False)
        self.state = "closed"
        return self._result

    @classmethod
    def recover(cls, path: str | Path) -> RecordingFiles:
        """Finish a recording whose process died before :meth:`close`.

        Parameters
        ----------
        path : str or Path
            The recording (``session.fif``) or its spool (``session.fif.partial``).
            Existing output files are replaced: they can only be an earlier,
            interrupted attempt to finish this spool.

        Returns
        -------
        RecordingFiles
            With ``recovered=True``. A torn last sample or prediction is dropped.

        Raises
        ------
        RecordError
            If there is no spool or its ``meta.json`` is unreadable.
        """
        paths = recording_paths(path)
        if not paths.spool_meta.is_file():
            raise RecordError(
                f"recover: no unfinished recording at {paths.spool} (expected the "
                f"{SPOOL_SUFFIX} directory that `emomon stream --record "
                f"{paths.fif}` leaves when it dies)"
            )
        try:
            meta = json.loads(paths.spool_meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RecordError(
                f"recover: {paths.spool_meta} is unreadable ({exc})"
            ) from None
        if meta.get("format") != _SPOOL_FORMAT or meta.get("version") != _SPOOL_VERSION:
            raise RecordError(
                f"recover: {paths.spool_meta} is not an emomon spool of version "
                f"{_SPOOL_VERSION} (found {meta.get('format')!r} "
                f"{meta.get('version')!r})"
            )
        return finish_spool(paths, meta, recovered=True)

    def __repr__(self) -> str:
        return (
            f"SessionRecorder({str(self.paths.fif)!r}, state={self.state!r}, "
            f"n_samples={self._n}, n_predictions={self._n_pred})"
        )


class _Syncer:
    """``fsync`` the spool's files every ``interval_s`` in a daemon thread.

    An fsync can block for tens of milliseconds on a busy disk; done in the
    streaming thread it would delay predictions. The writer flushes to the OS
    itself (enough to survive the process being killed); this thread only
    pushes the OS cache to the disk (power loss). It touches file descriptors,
    never the Python file objects, and :meth:`stop` joins it before the files
    are closed.
    """

    def __init__(self, fds: Sequence[int], interval_s: float) -> None:
        self.fds = tuple(fds)
        self.interval_s = float(interval_s)
        self.error: OSError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="emomon-record-fsync", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                for fd in self.fds:
                    os.fsync(fd)
            except OSError as exc:  # reported by the next write
                self.error = exc
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
