"""DEAP reader: ``data_preprocessed_python/sNN.dat`` (or the MATLAB release).

DEAP's preprocessed release holds one file per subject (``s01`` .. ``s32``), a
dict with ``data`` (40 trials, 40 channels, 8064 samples) and ``labels``
(40, 4) = valence, arousal, dominance, liking on 1-9. The signal is 128 Hz,
already average-referenced, 4-45 Hz band-passed, in microvolts. Channels 0-31
are EEG in the Geneva order (:data:`~emomon.dsp.layout.DEAP_CHANNELS`), 32-39
peripheral (ignored). The first 3 s (384 samples) of each trial are a pre-trial
baseline. Trials are stored in video order, so the trial index is the video id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from emomon.datasets._io import (
    check_finite,
    load_mat,
    load_pickle,
    reject_unknown_options,
)
from emomon.datasets.base import NumberedReader, Trial
from emomon.dsp.layout import DEAP_CHANNELS, canonical_name
from emomon.errors import DatasetError

__all__ = ["DeapReader"]

SFREQ = 128.0
N_EEG = 32
N_BASELINE = 384
RATING_KEYS = ("valence", "arousal", "dominance", "liking")
SCALE = (1.0, 9.0)

_EXPECTED = (
    "DEAP data_preprocessed_python format: dict with 'data' (40, 40, 8064) "
    "and 'labels' (40, 4)"
)
_EXPECTED_MAT = (
    "DEAP data_preprocessed_matlab format: variables 'data' (40, 40, 8064) "
    "and 'labels' (40, 4)"
)
_FILE_RE = re.compile(r"^s(\d+)\.(dat|mat)$")
_CH_NAMES = tuple(canonical_name(n) for n in DEAP_CHANNELS)


class DeapReader(NumberedReader):
    """Read DEAP's preprocessed Python (``sNN.dat``) or MATLAB (``sNN.mat``) files.

    Parameters
    ----------
    data_dir : str or Path
        The folder holding ``s01.dat`` .. directly, or its parent holding
        ``data_preprocessed_python/`` (or ``data_preprocessed_matlab/``).

    Notes
    -----
    Files with fewer than 40 trials are accepted (the synthetic generator writes
    such files), as are files with more than 40 channels as long as the first 32
    are the EEG channels. Where both releases are present the Python one is used.
    Each :class:`Trial` has ``eeg`` (32, n_samples - 384) µV, ``baseline``
    (32, 384) µV, ``video = "v01"`` .. (trial index + 1), ``subject = "s01"`` ..
    (the file stem) and ``ratings`` valence/arousal/dominance/liking on (1, 9).
    """

    name = "deap"
    prefix = "s"
    unit = "DEAP subject"
    description = (
        "DEAP: 32 subjects x 40 music videos, 32-ch EEG at 128 Hz, 1-9 ratings"
    )
    source = (
        "https://www.eecs.qmul.ac.uk/mmv/datasets/deap/ "
        "(sign the EULA, download data_preprocessed_python)"
    )
    expected_layout = (
        "data_preprocessed_python/s01.dat .. s32.dat (or the folder itself, or "
        "data_preprocessed_matlab/s01.mat ..)"
    )

    def __init__(self, data_dir: str | Path | None, **unknown: Any) -> None:
        reject_unknown_options(self.name, unknown, "")
        super().__init__(data_dir)

    # -- discovery ---------------------------------------------------------------

    def _scan(self) -> dict[str, Path]:
        assert self.data_dir is not None
        root = self.data_dir
        candidates = [
            root,
            root / "data_preprocessed_python",
            root / "data_preprocessed_matlab",
        ]
        found: dict[str, Path] = {}
        for ext in ("dat", "mat"):
            for folder in candidates:
                if not folder.is_dir():
                    continue
                for p in folder.iterdir():
                    m = _FILE_RE.match(p.name)
                    if m and m.group(2) == ext and p.is_file():
                        found.setdefault(self._numbered(m.group(1)), p)
            if found:
                break
        return self._by_number(found)

    # -- reading -----------------------------------------------------------------

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return DEAP's fixed EEG channels (checks that ``subject`` exists)."""
        self.files(subject)
        return _CH_NAMES

    def read_subject(self, subject: str) -> list[Trial]:
        """Read the 40 trials (or as many as the file holds) of one subject.

        ``"1"`` and ``"S1"`` stand for ``"s01"``. Trials come in file order: the
        32 EEG channels in µV at 128 Hz with the 3 s pre-trial baseline split
        off, and valence/arousal/dominance/liking on 1-9. A damaged file, or
        one without DEAP's arrays (shapes, finite values, ratings within 1-9),
        raises :class:`~emomon.errors.DatasetError`.
        """
        path = self._path(subject)
        sid = self._numbered(_FILE_RE.match(path.name).group(1))  # type: ignore[union-attr]
        eeg, labels = _load_arrays(path)
        trials = []
        for i in range(eeg.shape[0]):
            trials.append(
                Trial(
                    subject=sid,
                    video=f"v{i + 1:02d}",
                    eeg=eeg[i, :, N_BASELINE:],
                    sfreq=SFREQ,
                    ch_names=_CH_NAMES,
                    baseline=eeg[i, :, :N_BASELINE],
                    ratings=dict(zip(RATING_KEYS, map(float, labels[i]), strict=True)),
                    dataset=self.name,
                    scale=SCALE,
                    # The 3 s baseline directly precedes the trial in the recording.
                    meta={
                        "file": str(path),
                        "trial_index": i,
                        "baseline_contiguous": True,
                    },
                )
            )
        return trials


def _load_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load and validate a subject file.

    Returns
    -------
    eeg : ndarray, shape (n_trials, 32, n_samples)
        EEG channels (µV, float64; a view when the file holds float64).
    labels : ndarray, shape (n_trials, 4)
        Valence, arousal, dominance, liking on 1-9.
    """
    if path.suffix == ".mat":
        expected = _EXPECTED_MAT
        obj: Any = load_mat(path, expected, variable_names=("data", "labels"))
    else:
        expected = _EXPECTED
        obj = load_pickle(path, expected)
    if not isinstance(obj, dict) or "data" not in obj or "labels" not in obj:
        got = f"keys {_key_names(obj)}" if isinstance(obj, dict) else type(obj).__name__
        raise DatasetError(
            f"{path.name}: missing 'data'/'labels' (got {got}); expected {expected}"
        )
    data, labels = obj["data"], obj["labels"]
    # Arrays only: np.asarray of nested lists from a damaged pickle can be ragged
    # (ValueError) or self-referencing.
    if not isinstance(data, np.ndarray) or not isinstance(labels, np.ndarray):
        raise DatasetError(
            f"{path.name}: 'data' and 'labels' must be numpy arrays (got "
            f"{type(data).__name__}, {type(labels).__name__}); expected {expected}"
        )
    if data.dtype.kind not in "iuf" or labels.dtype.kind not in "iuf":
        raise DatasetError(
            f"{path.name}: 'data' and 'labels' must be numeric arrays (got "
            f"{data.dtype}, {labels.dtype}); expected {expected}"
        )
    if data.ndim != 3 or data.shape[0] < 1 or data.shape[1] < N_EEG:
        raise DatasetError(
            f"{path.name}: 'data' has shape {data.shape}, need (n_trials, >= {N_EEG} "
            f"channels, n_samples); expected {expected}"
        )
    if data.shape[2] <= N_BASELINE:
        raise DatasetError(
            f"{path.name}: 'data' has {data.shape[2]} samples per trial, need more "
            f"than the {N_BASELINE}-sample baseline; expected {expected}"
        )
    if labels.ndim != 2 or labels.shape[0] != data.shape[0] or labels.shape[1] < 4:
        raise DatasetError(
            f"{path.name}: 'labels' has shape {labels.shape}, need "
            f"({data.shape[0]}, 4) to match 'data' {data.shape}; expected {expected}"
        )
    eeg = data[:, :N_EEG, :].astype(np.float64, copy=False)
    check_finite(eeg, f"{path.name}: EEG channels 0-{N_EEG - 1}", expected)
    labels = labels[:, :4].astype(np.float64)
    check_finite(labels, f"{path.name}: 'labels'", "ratings on 1-9")
    lo, hi = float(labels.min()), float(labels.max())
    if lo < SCALE[0] - 1e-6 or hi > SCALE[1] + 1e-6:
        raise DatasetError(
            f"{path.name}: 'labels' range {lo:g}..{hi:g} is outside DEAP's 1-9 "
            f"rating scale; expected {expected}"
        )
    return eeg, labels


def _key_names(obj: dict[Any, Any]) -> list[str]:
    """Return up to 8 keys of a loaded dict for an error message.

    Str keys are shown as is, others by type: a damaged pickle's keys can be
    anything.
    """
    names = [k if isinstance(k, str) else f"<{type(k).__name__}>" for k in obj]
    return sorted(names)[:8]
