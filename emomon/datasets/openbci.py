"""OpenBCI GUI text recordings (``OpenBCI-RAW-*.txt``), one recording per file.

The GUI (v4, v5, v6) writes ``%`` header lines, among them
``%Number of channels = 8`` and ``%Sample Rate = 250 Hz``, then, from v5 on, a
comma-separated column header row (``Sample Index, EXG Channel 0, ...,
Timestamp, ..., Timestamp (Formatted)``), then one row per sample. The EXG
columns are microvolts; ``Timestamp`` is Unix time in milliseconds. Older (v3/v4)
files have no column row: the EXG channels are columns 1..n_channels and a Unix
millisecond timestamp, when present, is one of the trailing columns.

The file carries no montage: channels are named ``EXG0`` .. unless the user
passes ``ch_names`` (10-20 names), and no labels.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emomon.datasets._io import one_line, reject_unknown_options, sorted_naturally
from emomon.datasets.base import FileReader, Trial
from emomon.dsp.layout import canonical_name
from emomon.errors import ConfigError, DatasetError

__all__ = ["OpenBCIReader", "read_openbci_txt"]

SUFFIXES = (".txt", ".csv")
_EXPECTED = (
    "OpenBCI GUI text: '%' header lines with '%Number of channels = N' and "
    "'%Sample Rate = F Hz', a comma-separated column row, one row per sample"
)
_N_CH_RE = re.compile(r"number\s+of\s+channels\s*=\s*(\d+)", re.IGNORECASE)
_SFREQ_RE = re.compile(r"sample\s+rate\s*=\s*([0-9]*\.?[0-9]+)", re.IGNORECASE)
_EXG_RE = re.compile(r"^(?:EXG|EEG)\s*Channel\s*(\d+)$", re.IGNORECASE)


def read_openbci_txt(
    path: str | Path, *, sfreq: float | None = None
) -> tuple[np.ndarray, float, tuple[str, ...], np.ndarray]:
    """Read one OpenBCI GUI text recording.

    Parameters
    ----------
    path : str or Path
        The ``.txt`` (or ``.csv``) file written by the OpenBCI GUI.
    sfreq : float, optional
        Sampling rate to use when the header has no ``%Sample Rate`` line; one
        that disagrees with the header is an error.

    Returns
    -------
    eeg : ndarray, shape (n_channels, n_times)
        The EXG channels in microvolts, float64.
    sfreq : float
        Sampling rate in Hz (from the header).
    ch_names : tuple of str
        ``("EXG0", "EXG1", ...)`` in column order.
    timestamps : ndarray, shape (n_times,)
        Unix time of each sample in seconds (the GUI stamps packets, so
        consecutive samples may share a stamp); when the file has no Unix
        timestamp column, ``arange(n_times) / sfreq`` (seconds from the start).

    Raises
    ------
    DatasetError
        If the file is missing or not in the OpenBCI GUI text format, has
        non-finite samples, or its header rate disagrees with ``sfreq``.
    """
    eeg, fs, names, ts, _ = _read(Path(path), sfreq)
    return eeg, fs, names, ts


def _read(
    path: Path, sfreq: float | None
) -> tuple[np.ndarray, float, tuple[str, ...], np.ndarray, bool]:
    name = path.name
    if not path.is_file():
        raise DatasetError(f"{path}: file not found; expected {_EXPECTED}")
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"{name}: cannot read ({one_line(exc)})") from exc
    lines = text.lstrip("\ufeff").splitlines()
    n_header = 0
    while n_header < len(lines) and lines[n_header].lstrip().startswith("%"):
        n_header += 1
    if n_header == 0:
        raise DatasetError(f"{name}: no '%' header lines; expected {_EXPECTED}")
    header = "\n".join(lines[:n_header])
    m = _N_CH_RE.search(header)
    n_ch_header = int(m.group(1)) if m else None
    m = _SFREQ_RE.search(header)
    fs = float(m.group(1)) if m else sfreq
    if m and sfreq is not None and not math.isclose(fs, sfreq, rel_tol=1e-6):
        # The header is what the board ran at; a different rate given by the
        # user would silently mis-time every feature.
        raise DatasetError(
            f"{name}: the header says '%Sample Rate = {fs:g} Hz' but sfreq={sfreq:g} "
            "was given; drop the sfreq option (it is only for files without that "
            "header line) or fix the header"
        )
    if fs is None or not fs > 0:
        raise DatasetError(
            f"{name}: no '%Sample Rate = F Hz' header line (pass sfreq=...); "
            f"expected {_EXPECTED}"
        )
    start, end = n_header, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    body = lines[start:end]  # blank lines inside are skipped by np.loadtxt
    if not body:
        raise DatasetError(
            f"{name}: no sample rows after the header; expected {_EXPECTED}"
        )

    first = [c.strip() for c in body[0].split(",")]
    ts_col: int | None = None
    if _is_number(first[0]):  # v3/v4: no column row
        if n_ch_header is None:
            raise DatasetError(
                f"{name}: no column row and no '%Number of channels' line; "
                f"expected {_EXPECTED}"
            )
        if len(first) < n_ch_header + 1:
            raise DatasetError(
                f"{name}: {len(first)} columns, need sample index + {n_ch_header} "
                f"channels; expected {_EXPECTED}"
            )
        exg_cols = list(range(1, n_ch_header + 1))
        for i in range(len(first) - 1, n_ch_header, -1):
            if _is_number(first[i]) and float(first[i]) > 1e8:
                ts_col = i
                break
    else:
        columns = first
        skip = 1
        while skip < len(body) and not body[skip].strip():
            skip += 1
        body = body[skip:]
        exg = sorted(
            (int(mm.group(1)), i)
            for i, c in enumerate(columns)
            if (mm := _EXG_RE.match(c))
        )
        exg_cols = [i for _, i in exg]
        if not exg_cols:
            raise DatasetError(
                f"{name}: no 'EXG Channel N' column in the column row; "
                f"expected {_EXPECTED}"
            )
        if n_ch_header is not None and n_ch_header != len(exg_cols):
            raise DatasetError(
                f"{name}: header says {n_ch_header} channels but the column row has "
                f"{len(exg_cols)} EXG columns; expected {_EXPECTED}"
            )
        if "Timestamp" in columns:
            ts_col = columns.index("Timestamp")
        if not body:
            raise DatasetError(f"{name}: no sample rows; expected {_EXPECTED}")

    n_fields = body[0].count(",") + 1
    if body[-1].count(",") + 1 < n_fields:  # recording cut off mid-row
        warnings.warn(f"{name}: dropping the incomplete last row", stacklevel=3)
        body = body[:-1]
        if not body:
            raise DatasetError(f"{name}: no complete sample row; expected {_EXPECTED}")
    usecols = exg_cols + ([ts_col] if ts_col is not None else [])
    try:
        values = np.loadtxt(
            body,
            delimiter=",",
            usecols=usecols,
            comments="%",
            dtype=np.float64,
            ndmin=2,
        )
    except ValueError as exc:
        raise DatasetError(
            f"{name}: malformed sample row ({one_line(exc)}); expected {_EXPECTED}"
        ) from exc
    eeg = np.ascontiguousarray(values[:, : len(exg_cols)].T)
    bad = ~np.isfinite(eeg)
    if bad.any():
        raise DatasetError(
            f"{name}: {int(bad.sum())} NaN/inf EXG value(s); expected finite samples"
        )
    n = eeg.shape[1]
    synthetic = ts_col is None
    if synthetic:
        ts = np.arange(n, dtype=np.float64) / fs
    else:
        ts = values[:, -1].copy()
        if np.nanmedian(ts) > 1e11:  # Unix milliseconds (GUI); seconds otherwise
            ts /= 1000.0
    names = tuple(f"EXG{i}" for i in range(len(exg_cols)))
    return eeg, fs, names, ts, synthetic


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class OpenBCIReader(FileReader):
    """Read OpenBCI GUI text recordings: one file = one subject = one Trial.

    Parameters
    ----------
    data_dir : str or Path
        One recording (``.txt``/``.csv``) or a folder of them (files whose first
        line starts with ``%``).
    ch_names : sequence of str or str, optional
        10-20 names of the EXG channels in order (the file has no montage), or
        one comma-separated string; default ``EXG0`` ... Names must be unique.
    sfreq : float, optional
        Sampling rate for files whose header lacks ``%Sample Rate`` (one that
        disagrees with the header is an error).

    Notes
    -----
    Subject id is the file stem; the :class:`Trial` has ``video = "rec"``, no
    ratings, ``eeg`` (n_channels, n_times) µV and ``meta["timestamps"]``
    (n_times,) Unix seconds (``meta["timestamps_synthetic"]`` is True when the file
    had none and they count from 0).
    """

    name = "openbci"
    unit = "OpenBCI recording"
    description = "OpenBCI GUI text recordings (Cyton/Ganglion/Daisy), unlabelled"
    source = "your own recordings saved by the OpenBCI GUI (https://openbci.com)"
    expected_layout = "an OpenBCI GUI .txt file (OpenBCI-RAW-*.txt) or a folder of them"

    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        ch_names: Sequence[str] | None = None,
        sfreq: float | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_options(self.name, unknown, "ch_names, sfreq")
        names = _channel_option(ch_names)
        fs = _rate_option(sfreq)
        super().__init__(data_dir, ch_names=names, sfreq=fs)
        self.ch_names = (
            None if names is None else tuple(canonical_name(c) for c in names)
        )
        self.sfreq = fs

    def _scan(self) -> dict[str, Path]:
        paths = self._entries(
            lambda p: p.is_file() and p.suffix.lower() in SUFFIXES and _has_header(p)
        )
        found = {p.stem: p for p in paths}
        return {k: found[k] for k in sorted_naturally(found)}

    def _none_found(self) -> str:
        return (
            f"no OpenBCI GUI recordings in {self.data_dir}: expected "
            f"{self.expected_layout} (first line starting with '%')"
        )

    def read_subject(self, subject: str) -> list[Trial]:
        """Read one OpenBCI GUI recording (named by its file stem) as one trial.

        The trial ``"rec"`` holds the EXG channels in µV, named by ``ch_names``
        when given, and the sample timestamps in ``meta["timestamps"]``. A
        recording that cannot be parsed, or ``ch_names`` that do not match the
        number of channels, raise :class:`~emomon.errors.DatasetError`.
        """
        (path,) = self.files(subject)
        eeg, fs, names, ts, synthetic = _read(path, self.sfreq)
        if self.ch_names is not None:
            if len(self.ch_names) != eeg.shape[0]:
                raise DatasetError(
                    f"{path.name}: {eeg.shape[0]} EXG channels but "
                    f"{len(self.ch_names)} ch_names given ({', '.join(self.ch_names)})"
                )
            names = self.ch_names
        return [
            Trial(
                subject=subject,
                video="rec",
                eeg=eeg,
                sfreq=fs,
                ch_names=names,
                dataset=self.name,
                meta={
                    "file": str(path),
                    "timestamps": ts,
                    "timestamps_synthetic": synthetic,
                },
            )
        ]


def _channel_option(ch_names: Sequence[str] | str | None) -> list[str] | None:
    """Return the ``ch_names`` option as a list.

    The option is a sequence, or one comma-separated string (``-o
    ch_names=Fp1,Fp2,...`` on the command line).
    """
    if ch_names is None:
        return None
    if isinstance(ch_names, str):
        ch_names = ch_names.split(",")
    names = [str(c).strip() for c in ch_names]
    if not names or any(not n for n in names):
        raise ConfigError(
            f"openbci: ch_names has an empty name ({','.join(names)!r}); give one "
            "10-20 name per EXG channel, e.g. ch_names=Fp1,Fp2,C3,C4,P7,P8,O1,O2"
        )
    canon = [canonical_name(n) for n in names]
    dups = sorted({n for n in canon if canon.count(n) > 1})
    if dups:
        raise ConfigError(
            f"openbci: ch_names names {', '.join(dups)} more than once; give each "
            "EXG channel its own name"
        )
    return names


def _rate_option(sfreq: Any) -> float | None:
    if sfreq is None:
        return None
    try:
        fs = float(sfreq)
    except (TypeError, ValueError):
        fs = math.nan
    if not (math.isfinite(fs) and fs > 0):
        raise ConfigError(f"openbci: sfreq must be a rate in Hz > 0, got {sfreq!r}")
    return fs


def _has_header(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%")
