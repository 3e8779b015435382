"""Record a live session: the raw EEG received and the predictions published.

``emomon stream --record session.fif`` hands every chunk it reads (before the
pipeline) and every prediction payload it publishes to a :class:`SessionRecorder`.
The session can later be served again with ``emomon replay --file session.fif``
and re-scored by ``emomon stream``: the same samples give the same windows and
the same probabilities.

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

Crash safety (the spool)
    While recording nothing is held in memory: samples are appended to a spool
    directory ``session.fif.partial/`` next to the target and flushed to the
    operating system after every chunk (so they survive the process being
    killed) and ``fsync``-ed every ``fsync_interval_s`` (power loss):
    ``meta.json`` (settings, written once), ``eeg.f64`` (little-endian float64,
    sample-major, volts), ``times.f64`` (float64 LSL timestamps) and
    ``predictions.tsv`` (``<sample index>\\t<payload JSON>`` lines). :meth:`close`
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

import contextlib
import datetime
import json
import logging
import math
import os
import shutil
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from emomon import __version__
from emomon.errors import EmomonError, literal
from emomon.realtime.messages import MessageError, PredictionMessage
from emomon.realtime.sinks import Sink

if TYPE_CHECKING:
    from emomon.realtime.sources.base import Chunk

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

#: Key of ``info["description"]`` JSON marking an emomon recording (its version).
DESCRIPTION_KEY = "emomon_recording"
#: Prefix of the annotations the recorder writes (ignored by emomon's readers).
ANNOTATION_PREFIX = "emomon/"
SPOOL_SUFFIX = ".partial"
_FIF_ENDINGS = (".fif.gz", ".fif")
_SPOOL_FORMAT = "emomon-recording-spool"
_SPOOL_VERSION = 1
_UV_PER_V = 1e6
_F64 = np.dtype("<f8")
_TAIL_S = 30.0  # timestamps kept in memory to place predictions on samples
_BLOCK = 1 << 20  # samples per block when scanning or copying the spool
_NAMING_WARNING = "does not conform to MNE naming conventions"


class RecordError(EmomonError):
    """A recording cannot be started, written or finished (one line, names the
    path and what to do)."""


# -- paths ------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordingPaths:
    """Where the files of one recording go.

    Attributes
    ----------
    fif : Path
        The target, ``session.fif`` (or ``.fif.gz``).
    predictions : Path
        ``session.predictions.jsonl``.
    timestamps : Path
        ``session.timestamps.npy``.
    spool : Path
        ``session.fif.partial/``, present only while recording (or after a crash).
    """

    fif: Path
    predictions: Path
    timestamps: Path
    spool: Path

    @property
    def spool_meta(self) -> Path:
        return self.spool / "meta.json"

    @property
    def spool_eeg(self) -> Path:
        return self.spool / "eeg.f64"

    @property
    def spool_times(self) -> Path:
        return self.spool / "times.f64"

    @property
    def spool_predictions(self) -> Path:
        return self.spool / "predictions.tsv"

    @property
    def outputs(self) -> tuple[Path, Path, Path]:
        """The finished recording's files (FIF, predictions, timestamps)."""
        return (self.fif, self.predictions, self.timestamps)


def recording_paths(path: str | Path) -> RecordingPaths:
    """The files of the recording ``path`` (which must end in ``.fif`` or
    ``.fif.gz``; a spool directory ``X.fif.partial`` names the recording ``X.fif``).

    Raises
    ------
    RecordError
        For any other ending (MNE writes FIF files only under these names).
    """
    p = Path(path).expanduser()
    if p.name.endswith(SPOOL_SUFFIX):
        p = p.with_name(p.name[: -len(SPOOL_SUFFIX)])
    lower = p.name.lower()
    ending = next((e for e in _FIF_ENDINGS if lower.endswith(e)), None)
    if ending is None or len(p.name) == len(ending):
        raise RecordError(
            f"record: {p}: a recording is a FIF file; expected a name ending in "
            ".fif (e.g. session.fif)"
        )
    base = p.name[: -len(ending)]
    return RecordingPaths(
        fif=p,
        predictions=p.with_name(f"{base}.predictions.jsonl"),
        timestamps=p.with_name(f"{base}.timestamps.npy"),
        spool=p.with_name(p.name + SPOOL_SUFFIX),
    )


def check_record_path(path: str | Path, *, overwrite: bool = False) -> RecordingPaths:
    """Check that a recording can be written at ``path``; return its paths.

    Parameters
    ----------
    path : str or Path
        The target ``.fif``.
    overwrite : bool, default False
        Replace existing output files.

    Raises
    ------
    RecordError
        If the name is not a FIF name, the directory is missing or not writable,
        an output file exists (without ``overwrite``), or an unfinished
        recording (a spool) is in the way.
    """
    paths = recording_paths(path)
    parent = paths.fif.parent
    if not parent.is_dir():
        raise RecordError(
            f"record: {paths.fif}: directory {parent} does not exist; create it first"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RecordError(f"record: {paths.fif}: directory {parent} is not writable")
    if paths.spool.exists():
        raise RecordError(
            f"record: {paths.fif}: an unfinished recording is in {paths.spool} (a "
            f"session that did not close); finish it with `emomon recover "
            f"{paths.fif}` or delete it"
        )
    for p in paths.outputs:
        if p.is_dir():
            raise RecordError(f"record: {p} is a directory; expected a file name")
    existing = [p for p in paths.outputs if p.exists()]
    if existing and not overwrite:
        raise RecordError(
            f"record: {literal(existing[0])} exists; pass {{overwrite}} to replace "
            "it or choose another name",
            params={"overwrite": "overwrite=True"},
        )
    return paths


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


def _split_bytes(split_size: int | str) -> int:
    """``split_size`` in bytes (MNE's rules: an int, or a number + MB/GB)."""
    value: float
    if isinstance(split_size, str):
        text = split_size.strip().upper()
        exp = {"MB": 20, "GB": 30}.get(text[-2:])
        try:
            value = float(text[:-2]) * 2.0**exp if exp else math.nan
        except ValueError:
            value = math.nan
    else:
        value = float(split_size)
    if not (2**22 <= value <= 2**31):  # MNE keeps a 1 MB cushion per file
        raise RecordError(
            f"record: split_size must be between 4MB and 2GB, got {split_size!r}"
        )
    return int(value)


@dataclass(frozen=True)
class RecordingFiles:
    """What :meth:`SessionRecorder.close` (or ``recover``) wrote.

    Attributes
    ----------
    fif : tuple of Path
        The FIF file and its split parts, in order; empty if no sample arrived
        (then nothing is written).
    predictions : Path or None
        The JSON-lines file of published payloads (None if no sample arrived).
    timestamps : Path or None
        The per-sample LSL timestamps (None if no sample arrived).
    n_samples : int
        Samples recorded.
    n_predictions : int
        Predictions recorded.
    recovered : bool
        Finished from a spool left by a process that did not close it.
    """

    fif: tuple[Path, ...]
    predictions: Path | None
    timestamps: Path | None
    n_samples: int
    n_predictions: int
    recovered: bool = False

    def describe(self) -> str:
        """One line for the command line."""
        if not self.fif or self.predictions is None or self.timestamps is None:
            return "recorded nothing: no sample arrived"
        parts = f" (+{len(self.fif) - 1} split parts)" if len(self.fif) > 1 else ""
        how = "recovered" if self.recovered else "recorded"
        return (
            f"{how} {self.fif[0]}{parts}: {self.n_samples} samples, "
            f"{self.n_predictions} predictions (+ {self.predictions.name}, "
            f"{self.timestamps.name})"
        )


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
        metadata: Mapping[str, Any] | None = None,
        settings: RecorderSettings | None = None,
    ) -> None:
        self.settings = settings or RecorderSettings()
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
        except OSError as exc:
            for name in ("_eeg", "_times", "_preds"):
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
                [f.fileno() for f in (self._eeg, self._times, self._preds)],
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
        return len(self.ch_names)

    @property
    def n_samples(self) -> int:
        """Samples written so far."""
        return self._n

    @property
    def n_predictions(self) -> int:
        """Predictions written so far."""
        return self._n_pred

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
            for f in (self._eeg, self._times, self._preds):
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
            for f in (self._eeg, self._times, self._preds):
                try:
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as exc:
                    errors.append(exc)
                finally:
                    f.close()
            if errors:
                raise self._write_failed(errors[0])
        self._result = _finish_spool(self.paths, self._meta, recovered=False)
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
        return _finish_spool(paths, meta, recovered=True)

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


# -- finishing a spool -----------------------------------------------------------------
def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_spool_predictions(
    path: Path, n_samples: int
) -> list[tuple[int, bytes, PredictionMessage]]:
    """``(sample, payload bytes, message)`` of every complete line; a torn or
    corrupt line (the process died while writing it) is skipped."""
    out: list[tuple[int, bytes, PredictionMessage]] = []
    if not path.is_file():
        return out
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # torn last line
            head, sep, text = line[:-1].partition(b"\t")
            try:
                sample = int(head)
                msg = PredictionMessage.from_json(text)
            except (ValueError, MessageError):
                continue  # corrupt line (a crash while writing it)
            if not sep:
                continue
            out.append((sample if sample < n_samples else -1, text, msg))
    return out


def _annotation(message: PredictionMessage) -> str:
    """``emomon/prediction;seq=3;valence=0.712345;arousal=0.310123;ok=1``."""
    parts = [f"{ANNOTATION_PREFIX}prediction", f"seq={message.seq}"]
    for task, value in message.tasks.items():
        if value.binary:
            p = value.p_high
            parts.append(f"{task}={'none' if p is None else format(p, '.6f')}")
        else:
            parts.append(f"{task}={value.label or 'none'}")
    parts.append(f"ok={int(message.quality.ok)}")
    return ";".join(parts)


def _step_range(times: np.ndarray) -> tuple[float, float]:
    """Smallest and largest step between consecutive timestamps (blockwise)."""
    lo, hi = math.inf, -math.inf
    for a in range(0, max(times.shape[0] - 1, 0), _BLOCK):
        d = np.diff(times[a : a + _BLOCK + 1])
        lo, hi = min(lo, float(d.min())), max(hi, float(d.max()))
    return (lo, hi) if math.isfinite(hi) else (math.nan, math.nan)


def _write_npy(target: Path, source: Path, n: int) -> None:
    """``source``'s first ``n`` float64 values as a .npy file (block copy)."""
    tmp = target.with_name(target.name + ".tmp")
    with open(source, "rb") as src, open(tmp, "wb") as dst:
        np.lib.format.write_array_header_1_0(
            dst, {"descr": _F64.str, "fortran_order": False, "shape": (n,)}
        )
        left = n * _F64.itemsize
        while left > 0:
            block = src.read(min(left, _BLOCK * 8))
            if not block:
                raise RecordError(f"record: {source} ended early")
            dst.write(block)
            left -= len(block)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, target)


def _meas_date(meta: Mapping[str, Any], first_lsl: float) -> datetime.datetime | None:
    try:
        unix = float(meta["opened_unix"]) + (first_lsl - float(meta["opened_lsl"]))
        return datetime.datetime.fromtimestamp(unix, tz=datetime.timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


class _DropNaming(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _NAMING_WARNING not in record.getMessage()


@contextlib.contextmanager
def _mne_naming_quiet() -> Iterator[None]:
    """Silence only MNE's advice to name raw files ``*_raw.fif``: the user chose
    ``session.fif``. MNE sends it as a warning and, when a file handler is
    attached to its logger, also as a log record."""
    log = logging.getLogger("mne")
    drop = _DropNaming()
    log.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=f".*{_NAMING_WARNING}")
            yield
    finally:
        log.removeFilter(drop)


def _finish_spool(
    paths: RecordingPaths, meta: Mapping[str, Any], *, recovered: bool
) -> RecordingFiles:
    """Write the FIF, timestamps and predictions from the spool; remove it."""
    try:
        return _finish_spool_unchecked(paths, meta, recovered=recovered)
    except RecordError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:  # disk full, MNE refusing
        raise RecordError(
            f"record: could not write {paths.fif} ({exc}); the session is kept in "
            f"{paths.spool}: run `emomon recover {paths.fif}`"
        ) from exc


def _finish_spool_unchecked(
    paths: RecordingPaths, meta: Mapping[str, Any], *, recovered: bool
) -> RecordingFiles:
    ch_names = [str(c) for c in meta["ch_names"]]
    n_ch = len(ch_names)
    sfreq = float(meta["sfreq"])
    # A process killed mid-write may leave a torn sample: keep whole ones only.
    n = min(
        _file_size(paths.spool_eeg) // (n_ch * _F64.itemsize),
        _file_size(paths.spool_times) // _F64.itemsize,
    )
    if n == 0:  # nothing arrived: leave no empty files behind
        shutil.rmtree(paths.spool)
        return RecordingFiles((), None, None, 0, 0, recovered)
    preds = _read_spool_predictions(paths.spool_predictions, n)
    _write_atomic(paths.predictions, b"".join(text + b"\n" for _, text, _ in preds))

    import mne

    _write_npy(paths.timestamps, paths.spool_times, n)
    times = np.memmap(paths.spool_times, dtype=_F64, mode="r", shape=(n,))
    eeg = np.memmap(paths.spool_eeg, dtype=_F64, mode="r", shape=(n, n_ch))
    first, last = float(times[0]), float(times[-1])
    min_step, max_step = _step_range(times)
    description = {
        DESCRIPTION_KEY: 1,
        "emomon_version": meta.get("emomon_version", __version__),
        "stream": meta.get("stream", ""),
        "source_id": meta.get("source_id", ""),
        "model": meta.get("model", ""),
        "sfreq": sfreq,
        "unit": "V (the source's uV / 1e6)",
        "n_samples": n,
        "n_predictions": len(preds),
        "first_sample_lsl": first,
        "last_sample_lsl": last,
        "min_step_s": min_step,
        "max_step_s": max_step,
        "timestamps_file": paths.timestamps.name,
        "predictions_file": paths.predictions.name,
        "recovered": recovered,
        "metadata": meta.get("metadata", {}),
    }
    info = mne.create_info(ch_names, sfreq, "eeg", verbose="error")
    info["description"] = json.dumps(description, ensure_ascii=False)
    when = _meas_date(meta, first)
    if when is not None:
        info.set_meas_date(when)
    # eeg.T is a (n_channels, n_times) view of the memory map: MNE writes it in
    # buffers, so the recording never has to fit in memory.
    raw = mne.io.RawArray(eeg.T, info, copy="auto", verbose="error")
    kept = [(s, msg) for s, _, msg in preds if s >= 0]
    if kept:
        raw.set_annotations(
            mne.Annotations(
                onset=np.array([s for s, _ in kept], dtype=np.float64) / sfreq,
                duration=np.zeros(len(kept)),
                description=[_annotation(msg) for _, msg in kept],
            )
        )
    with _mne_naming_quiet():
        written = raw.save(
            paths.fif,
            fmt="double",
            overwrite=True,
            split_size=_split_bytes(meta.get("split_size", "2GB")),
            verbose="warning",
        )
    del raw, eeg, times
    _remove_stale_parts(paths.fif, len(written))
    shutil.rmtree(paths.spool)
    return RecordingFiles(
        fif=tuple(paths.fif.with_name(Path(p).name) for p in written),
        predictions=paths.predictions,
        timestamps=paths.timestamps,
        n_samples=n,
        n_predictions=len(preds),
        recovered=recovered,
    )


def _remove_stale_parts(fif: Path, n_written: int) -> None:
    """Delete split parts an earlier, longer recording left beyond ours.

    An overwritten ``session.fif`` no longer points to them, so MNE would never
    read them; only the unbroken run of MNE-named parts after ours goes.
    """
    lower = fif.name.lower()
    ending = next(e for e in _FIF_ENDINGS if lower.endswith(e))
    base, tail = fif.name[: -len(ending)], fif.name[-len(ending) :]
    k = max(n_written, 1)
    while (part := fif.with_name(f"{base}-{k}{tail}")).is_file():
        part.unlink()
        k += 1


# -- reading -------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Recording:
    """A finished recording, as read by :func:`read_recording`.

    Attributes
    ----------
    raw : mne.io.Raw
        The FIF (not preloaded; ``raw.get_data() * 1e6`` is µV).
    description : dict
        The parsed ``info["description"]`` JSON.
    timestamps : ndarray, shape (n_times,)
        LSL timestamp of every sample (memory-mapped).
    predictions : list of dict
        The published payloads, in order.
    """

    raw: Any
    description: dict[str, Any]
    timestamps: np.ndarray
    predictions: list[dict[str, Any]]


def read_recording(path: str | Path) -> Recording:
    """Open a recording written by :class:`SessionRecorder`.

    Raises
    ------
    RecordError
        If a file is missing or the FIF is not an emomon recording.
    """
    import mne

    paths = recording_paths(path)
    for p in paths.outputs:
        if not p.is_file():
            raise RecordError(f"recording: {p} not found")
    with _mne_naming_quiet():
        raw = mne.io.read_raw_fif(paths.fif, preload=False, verbose="warning")
    try:
        desc = json.loads(raw.info["description"] or "")
        if not isinstance(desc, dict) or DESCRIPTION_KEY not in desc:
            raise ValueError("no emomon description")
    except ValueError:
        raise RecordError(
            f"recording: {paths.fif} is not an emomon recording (no "
            f"{DESCRIPTION_KEY} in its description)"
        ) from None
    timestamps = np.load(paths.timestamps, mmap_mode="r")
    with open(paths.predictions, encoding="utf-8") as f:
        predictions = [json.loads(line) for line in f if line.strip()]
    return Recording(raw, desc, timestamps, predictions)
