"""AMIGOS reader: per-participant ``Data_Preprocessed_PNN.mat`` files.

Layout, as returned by :func:`scipy.io.loadmat`::

    M = loadmat("Data_Preprocessed_P01.mat")
    M["joined_data"]            (1, n_videos) cell; [0, v] is (n_samples, 17):
                                14 EEG (Emotiv order) + 2 ECG + GSR at 128 Hz
    M["labels_selfassessment"]  (1, n_videos) cell; [0, v] is (1, 12): arousal,
                                valence, dominance, liking, familiarity, then 7
                                basic emotions (note: arousal FIRST)
    M["VideoIDs"]               (1, n_videos) cell of strings (stimulus ids)

The first 16 videos are the short videos (experiment 1), the last 4 the long
ones (experiment 2, not every participant). The preprocessed EEG is 128 Hz,
average-referenced, 4-45 Hz band-passed, in microvolts.

The real release has trials with no samples (participants who missed the long
videos) and trials with NaN self-assessments or NaN-filled signals; those trials
are skipped with a warning (``strict=True`` turns that into an error).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from emomon.datasets._io import load_mat, mat_str, reject_unknown_options
from emomon.datasets.base import NumberedReader, Trial
from emomon.dsp.layout import EMOTIV_CHANNELS, canonical_name
from emomon.errors import DatasetError

__all__ = ["AmigosReader"]

SFREQ = 128.0
N_EEG = 14
N_COLUMNS = 17
N_SHORT = 16
SCALE = (1.0, 9.0)
#: Column order of ``labels_selfassessment`` used for ``Trial.ratings``.
RATING_COLUMNS = ("arousal", "valence", "dominance", "liking", "familiarity")
BASIC_EMOTIONS = (
    "neutral", "disgust", "happiness", "surprise", "anger", "fear", "sadness",
)  # fmt: skip
_FILE_RE = re.compile(r"^Data_Preprocessed_P(\d+)\.mat$", re.IGNORECASE)
_EXPECTED = (
    "AMIGOS Data_Preprocessed_PNN.mat with cells joined_data{1,v} "
    "(n_samples, 17), labels_selfassessment{1,v} (1, 12), VideoIDs{1,v}"
)
_CH_NAMES = tuple(canonical_name(n) for n in EMOTIV_CHANNELS)


class AmigosReader(NumberedReader):
    """Read AMIGOS ``Data_Preprocessed_PNN.mat`` files (searched recursively).

    Parameters
    ----------
    data_dir : str or Path
        Folder holding ``Data_Preprocessed_P01.mat`` .. directly or in
        per-participant subfolders (``Data_Preprocessed_P01/...``).
    short_only : bool, default True
        Keep only the 16 short videos (indices 0-15), as in most AMIGOS studies.
    strict : bool, default False
        Raise :class:`DatasetError` on an empty trial or NaN rating/EEG instead of
        skipping it with a warning.

    Notes
    -----
    Subjects are ``"P01"`` .. (from the file name), ``video`` is the stimulus id
    from ``VideoIDs`` (``"10"``, ``"138"``, ``"N1"``, ...). Each :class:`Trial` has
    ``eeg`` (14, n_samples) µV and ``ratings`` valence, arousal, dominance,
    liking, familiarity on (1, 9); the basic-emotion columns go to
    ``meta["basic_emotions"]``.
    """

    name = "amigos"
    prefix = "P"
    unit = "AMIGOS subject"
    description = "AMIGOS: 40 participants, 16 short + 4 long videos, 14-ch Emotiv, 1-9"
    source = (
        "http://www.eecs.qmul.ac.uk/mmv/datasets/amigos/ "
        "(sign the EULA, download Data_Preprocessed)"
    )
    expected_layout = (
        "Data_Preprocessed_P01.mat .. Data_Preprocessed_P40.mat (directly or in "
        "Data_Preprocessed_PNN/ subfolders)"
    )

    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        short_only: bool = True,
        strict: bool = False,
        **unknown: Any,
    ) -> None:
        reject_unknown_options(self.name, unknown, "short_only, strict")
        super().__init__(data_dir, short_only=short_only, strict=strict)
        self.short_only = bool(short_only)
        self.strict = bool(strict)

    def _scan(self) -> dict[str, Path]:
        assert self.data_dir is not None
        paths = (
            [self.data_dir]
            if self.data_dir.is_file()
            else sorted(self.data_dir.rglob("*.mat"))
        )
        found: dict[str, Path] = {}
        for p in paths:
            m = _FILE_RE.match(p.name)
            if m and p.is_file():
                found.setdefault(self._numbered(m.group(1)), p)
        return self._by_number(found)

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return AMIGOS's fixed EEG channels (checks that ``subject`` exists)."""
        self.files(subject)
        return _CH_NAMES

    def read_subject(self, subject: str) -> list[Trial]:
        """Read the trials of one participant (``"P01"``; ``"1"`` and ``"p1"`` too).

        One trial per video in file order (the 16 short ones with
        ``short_only``): the 14 EEG channels in µV at 128 Hz, ratings on 1-9 and
        the 7 basic emotions in ``meta``. Trials with no samples, NaN
        self-assessments or non-finite EEG are skipped with a warning; a
        :class:`~emomon.errors.DatasetError` is raised for a missing
        participant, a file without the AMIGOS layout, no usable trial, or
        (``strict``) a trial that would be skipped.
        """
        path = self._path(subject)
        sid = self._numbered(_FILE_RE.match(path.name).group(1))  # type: ignore[union-attr]
        mat = load_mat(
            path, _EXPECTED, ("joined_data", "labels_selfassessment", "VideoIDs")
        )
        missing = [
            k
            for k in ("joined_data", "labels_selfassessment", "VideoIDs")
            if k not in mat
        ]
        if missing:
            raise DatasetError(
                f"{path.name}: missing variable(s) {', '.join(missing)}; "
                f"expected {_EXPECTED}"
            )
        data = _cells(mat["joined_data"], f"{path.name}: joined_data")
        labels = _cells(
            mat["labels_selfassessment"], f"{path.name}: labels_selfassessment"
        )
        ids = _cells(mat["VideoIDs"], f"{path.name}: VideoIDs")
        if not len(data) == len(labels) == len(ids):
            raise DatasetError(
                f"{path.name}: {len(data)} joined_data, {len(labels)} "
                f"labels_selfassessment and {len(ids)} VideoIDs entries differ; "
                f"expected {_EXPECTED}"
            )
        n = min(len(data), N_SHORT) if self.short_only else len(data)
        trials = []
        for v in range(n):
            where = f"{path.name}: trial {v + 1}"
            video = mat_str(ids[v]) or f"v{v + 1:02d}"
            sig = np.asarray(data[v])
            if sig.size == 0:
                self._bad(f"{where} (video {video}) has no samples")
                continue
            if sig.dtype.kind not in "iuf" or sig.ndim != 2 or sig.shape[1] < N_EEG:
                raise DatasetError(
                    f"{where}: joined_data has shape {sig.shape} ({sig.dtype}), need "
                    f"(n_samples, {N_COLUMNS}) numeric; expected {_EXPECTED}"
                )
            lab = np.asarray(labels[v])
            if lab.dtype.kind not in "iuf" or lab.size < len(RATING_COLUMNS):
                if lab.size == 0:
                    self._bad(f"{where} (video {video}) has no self-assessment")
                    continue
                raise DatasetError(
                    f"{where}: labels_selfassessment has shape {lab.shape}, need "
                    f"(1, 12) numeric; expected {_EXPECTED}"
                )
            lab = lab.reshape(-1).astype(np.float64)
            if not np.isfinite(lab[: len(RATING_COLUMNS)]).all():
                self._bad(f"{where} (video {video}) has NaN self-assessment")
                continue
            eeg = sig[:, :N_EEG].T.astype(np.float64)
            if not np.isfinite(eeg).all():
                n_bad = int(eeg.size - np.count_nonzero(np.isfinite(eeg)))
                self._bad(f"{where} (video {video}) has {n_bad} NaN/inf EEG values")
                continue
            trials.append(
                Trial(
                    subject=sid,
                    video=video,
                    eeg=eeg,
                    sfreq=SFREQ,
                    ch_names=_CH_NAMES,
                    ratings=dict(zip(RATING_COLUMNS, map(float, lab[:5]), strict=True)),
                    dataset=self.name,
                    scale=SCALE,
                    meta={
                        "file": str(path),
                        "trial_index": v,
                        "basic_emotions": dict(
                            zip(BASIC_EMOTIONS, map(float, lab[5:12]), strict=False)
                        ),
                    },
                )
            )
        if not trials:
            raise DatasetError(
                f"{path.name}: no usable trial (all empty or NaN); expected {_EXPECTED}"
            )
        return trials

    def _bad(self, what: str) -> None:
        if self.strict:
            raise DatasetError(f"{what}; expected {_EXPECTED}")
        warnings.warn(f"AMIGOS: skipping {what}", stacklevel=3)


def _cells(x: Any, where: str) -> list[Any]:
    """Return a (1, n) MATLAB cell array as a list of its n elements."""
    arr = np.asarray(x)
    if arr.dtype != object:
        raise DatasetError(
            f"{where}: expected a (1, n_videos) cell array, got "
            f"{arr.dtype} {arr.shape}; expected {_EXPECTED}"
        )
    return list(arr.reshape(-1))
