"""The files of a recording: where they go, how a spool becomes them, reading back.

:class:`~emomon.realtime.record.SessionRecorder` appends a live session to a
spool directory; :func:`finish_spool` turns the spool into ``session.fif``,
``session.timestamps.npy`` and ``session.predictions.jsonl`` (at the end of a
recording, or when a crashed one is recovered), plus ``session.markers.jsonl``
when a marker stream was recorded, and :func:`read_recording` opens them. The
layout of the files is described in :mod:`emomon.realtime.record`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import os
import shutil
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emomon import __version__
from emomon.errors import EmomonError, literal
from emomon.realtime.messages import MessageError, PredictionMessage

__all__ = [
    "ANNOTATION_PREFIX",
    "DESCRIPTION_KEY",
    "RecordError",
    "Recording",
    "RecordingFiles",
    "RecordingPaths",
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
_F64 = np.dtype("<f8")
_BLOCK = 1 << 20  # samples per block when scanning or copying the spool
_NAMING_WARNING = "does not conform to MNE naming conventions"


class RecordError(EmomonError):
    """A recording cannot be started, written or finished.

    The message is one line that names the path and what to do.
    """


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
    markers : Path
        ``session.markers.jsonl``, written only when a marker stream was
        recorded (an optional part: recordings without markers stay complete).
    spool : Path
        ``session.fif.partial/``, present only while recording (or after a crash).
    """

    fif: Path
    predictions: Path
    timestamps: Path
    markers: Path
    spool: Path

    @property
    def spool_meta(self) -> Path:
        """The spool's ``meta.json``."""
        return self.spool / "meta.json"

    @property
    def spool_eeg(self) -> Path:
        """The spool's ``eeg.f64`` (raw float64 samples)."""
        return self.spool / "eeg.f64"

    @property
    def spool_times(self) -> Path:
        """The spool's ``times.f64`` (raw float64 timestamps)."""
        return self.spool / "times.f64"

    @property
    def spool_predictions(self) -> Path:
        """The spool's ``predictions.tsv``."""
        return self.spool / "predictions.tsv"

    @property
    def spool_markers(self) -> Path:
        """The spool's ``markers.tsv`` (LSL time, tab, the marker as a JSON string)."""
        return self.spool / "markers.tsv"

    @property
    def outputs(self) -> tuple[Path, Path, Path]:
        """The finished recording's files (FIF, predictions, timestamps)."""
        return (self.fif, self.predictions, self.timestamps)


def recording_paths(path: str | Path) -> RecordingPaths:
    """Return the files of the recording ``path``.

    ``path`` must end in ``.fif`` or ``.fif.gz``; a spool directory
    ``X.fif.partial`` names the recording ``X.fif``.

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
        markers=p.with_name(f"{base}.markers.jsonl"),
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
    for p in (*paths.outputs, paths.markers):
        if p.is_dir():
            raise RecordError(f"record: {p} is a directory; expected a file name")
    existing = [p for p in (*paths.outputs, paths.markers) if p.exists()]
    if existing and not overwrite:
        raise RecordError(
            f"record: {literal(existing[0])} exists; pass {{overwrite}} to replace "
            "it or choose another name",
            params={"overwrite": "overwrite=True"},
        )
    return paths


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
    markers: Path | None = None
    n_markers: int = 0

    def describe(self) -> str:
        """One line for the command line."""
        if not self.fif or self.predictions is None or self.timestamps is None:
            return "recorded nothing: no sample arrived"
        parts = f" (+{len(self.fif) - 1} split parts)" if len(self.fif) > 1 else ""
        how = "recovered" if self.recovered else "recorded"
        return (
            f"{how} {self.fif[0]}{parts}: {self.n_samples} samples, "
            f"{self.n_predictions} predictions"
            + (f", {self.n_markers} markers" if self.markers is not None else "")
            + f" (+ {self.predictions.name}, {self.timestamps.name}"
            + (f", {self.markers.name})" if self.markers is not None else ")")
        )


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
    """Read ``(sample, payload bytes, message)`` of every complete line.

    A torn or corrupt line (the process died while writing it) is skipped.
    """
    out: list[tuple[int, bytes, PredictionMessage]] = []
    for head, text in _spool_lines(path):
        try:
            sample = int(head)
            msg = PredictionMessage.from_json(text)
        except (ValueError, MessageError):
            continue  # corrupt line (a crash while writing it)
        out.append((sample if sample < n_samples else -1, text, msg))
    return out


def _spool_lines(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(head, text)`` of every complete ``head<TAB>text`` line of a spool.

    Reading stops at a torn last line (the process died while writing it);
    a line without a tab is skipped.
    """
    if not path.is_file():
        return
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # torn last line
            head, sep, text = line[:-1].partition(b"\t")
            if sep:
                yield head, text


def _read_spool_markers(path: Path) -> list[tuple[float, str]]:
    """Read ``(LSL time, marker string)`` of every complete line of the spool.

    A torn last line or a corrupt one (a crash while writing it) is skipped.
    """
    out: list[tuple[float, str]] = []
    for head, text in _spool_lines(path):
        try:
            t = float(head)
            marker = json.loads(text)
        except ValueError:
            continue
        if isinstance(marker, str) and math.isfinite(t):
            out.append((t, marker))
    return out


def _nearest_samples(times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the sample whose timestamp is nearest to each ``t`` (-1 if none).

    Times outside the recording by more than its largest step map to -1 (a
    marker sent before the first sample arrived or after the last).
    """
    n = times.shape[0]
    out = np.full(t.shape, -1, dtype=np.int64)
    if n == 0 or t.size == 0:
        return out
    step = max(float(times[-1] - times[0]) / max(n - 1, 1), 0.0) * 2.0
    right = np.clip(np.searchsorted(times, t), 1, max(n - 1, 1))
    left = right - 1
    pick = np.where(
        np.abs(times[np.minimum(right, n - 1)] - t) < np.abs(times[left] - t),
        np.minimum(right, n - 1),
        left,
    )
    inside = (t >= times[0] - step) & (t <= times[-1] + step)
    out[inside] = pick[inside]
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
    """Write ``source``'s first ``n`` float64 values as a .npy file (block copy)."""
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
        return datetime.datetime.fromtimestamp(unix, tz=datetime.UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


class _DropNaming(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _NAMING_WARNING not in record.getMessage()


@contextlib.contextmanager
def _mne_naming_quiet() -> Iterator[None]:
    """Silence only MNE's advice to name raw files ``*_raw.fif``.

    The user chose ``session.fif``. MNE sends it as a warning and, when a file
    handler is attached to its logger, also as a log record.
    """
    log = logging.getLogger("mne")
    drop = _DropNaming()
    log.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=f".*{_NAMING_WARNING}")
            yield
    finally:
        log.removeFilter(drop)


def finish_spool(
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
    markers_stream = str(meta.get("markers_stream") or "")

    import mne

    _write_npy(paths.timestamps, paths.spool_times, n)
    times = np.memmap(paths.spool_times, dtype=_F64, mode="r", shape=(n,))
    eeg = np.memmap(paths.spool_eeg, dtype=_F64, mode="r", shape=(n, n_ch))
    first, last = float(times[0]), float(times[-1])
    min_step, max_step = _step_range(times)
    markers: list[tuple[float, str]] = []
    marker_samples = np.empty(0, dtype=np.int64)
    if markers_stream:
        markers = _read_spool_markers(paths.spool_markers)
        marker_samples = _nearest_samples(
            np.asarray(times), np.array([t for t, _ in markers], dtype=np.float64)
        )
        lines = [
            json.dumps(
                {"t_lsl": t, "sample": int(k), "marker": text},
                ensure_ascii=False,
                allow_nan=False,
            ).encode("utf-8")
            + b"\n"
            for (t, text), k in zip(markers, marker_samples, strict=True)
        ]
        _write_atomic(paths.markers, b"".join(lines))
    else:  # an overwritten recording's markers must not pass for this one's
        paths.markers.unlink(missing_ok=True)
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
        "markers_stream": markers_stream,
        "markers_file": paths.markers.name if markers_stream else "",
        "n_markers": len(markers),
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
    notes = [(s, _annotation(msg)) for s, _, msg in preds if s >= 0]
    notes += [
        (int(k), f"{ANNOTATION_PREFIX}marker;{text}")
        for (_, text), k in zip(markers, marker_samples, strict=True)
        if k >= 0
    ]
    if notes:
        notes.sort(key=lambda sn: sn[0])
        raw.set_annotations(
            mne.Annotations(
                onset=np.array([s for s, _ in notes], dtype=np.float64) / sfreq,
                duration=np.zeros(len(notes)),
                description=[d for _, d in notes],
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
        markers=paths.markers if markers_stream else None,
        n_markers=len(markers),
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
    markers : list of dict or None
        The recorded marker stream, in arrival order: ``{"t_lsl": float (this
        machine's LSL clock), "sample": int (nearest recorded sample, -1 when
        outside the recording), "marker": str (as sent)}``; None when no marker
        stream was recorded (also every recording made before markers were).
    """

    raw: Any
    description: dict[str, Any]
    timestamps: np.ndarray
    predictions: list[dict[str, Any]]
    markers: list[dict[str, Any]] | None = None


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
    markers = None
    if desc.get("markers_file"):
        mpath = paths.fif.with_name(str(desc["markers_file"]))
        try:
            with open(mpath, encoding="utf-8") as f:
                markers = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            raise RecordError(
                f"recording: {mpath} not found (the recording says it holds the "
                f"markers of {desc.get('markers_stream')!r}); put it back beside "
                f"{paths.fif.name}"
            ) from None
        except ValueError as exc:
            raise RecordError(f"recording: {mpath} is not JSON lines ({exc})") from None
    return Recording(raw, desc, timestamps, predictions, markers)
