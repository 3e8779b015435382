"""DREAMER reader: the single ``DREAMER.mat`` file (23 subjects x 18 film clips).

Layout, as returned by :func:`scipy.io.loadmat` (MATLAB 2-D shapes kept)::

    D = loadmat(f)["DREAMER"][0, 0]
    D["Data"]                 (1, 23) cell, one 1x1 struct per subject
    D["EEG_SamplingRate"]     128
    D["EEG_Electrodes"]       (1, 14) cell: AF3 F7 F3 FC5 T7 P7 O1 O2 P8 T8 FC6 F4 F8
                              AF4
    S = D["Data"][0, s]
    S["EEG"][0, 0]["stimuli"][0, 0][v, 0]    (n_samples, 14), samples first
    S["EEG"][0, 0]["baseline"][0, 0][v, 0]   (n_samples, 14), 61 s before clip v
    S["ScoreValence"][0, 0][v, 0]            1-5 (also ScoreArousal, ScoreDominance)

The Emotiv EPOC values are microvolts around a ~4200 µV DC offset and are not
average-referenced, so the reader applies a common average reference (CAR: at
each sample, the mean over the 14 channels is subtracted from every channel) to
both the clip and its baseline. Pass ``car=False`` to get the stored values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emomon.datasets._io import (
    check_finite,
    float_array,
    load_mat,
    mat_scalar,
    mat_str,
    reject_unknown_options,
    unwrap,
)
from emomon.datasets.base import Reader, Trial
from emomon.dsp.layout import EMOTIV_CHANNELS, canonical_name
from emomon.errors import DatasetError

__all__ = ["DreamerReader"]

FILE_NAME = "DREAMER.mat"
SCALE = (1.0, 5.0)
_SCORES = (
    ("valence", "ScoreValence"),
    ("arousal", "ScoreArousal"),
    ("dominance", "ScoreDominance"),
)
_EXPECTED = (
    "DREAMER.mat with struct DREAMER.Data{1..23}.EEG.stimuli{v} (n_samples, 14), "
    ".EEG.baseline{v}, .ScoreValence/.ScoreArousal/.ScoreDominance (n_clips, 1), "
    "DREAMER.EEG_SamplingRate"
)


class DreamerReader(Reader):
    """Read ``DREAMER.mat``; the file is loaded once per reader and kept in memory.

    Parameters
    ----------
    data_dir : str or Path
        ``DREAMER.mat`` itself or the folder holding it.
    car : bool, default True
        Re-reference to the common average (see the module docstring).

    Notes
    -----
    Subjects are ``"s01"`` .. ``"s23"`` (position in ``Data``), videos ``"v01"`` ..
    ``"v18"`` (clip index + 1, the same clips for everyone). Each :class:`Trial`
    has ``eeg`` (14, n_samples) µV, ``baseline`` (14, n_baseline) µV and
    ``ratings`` valence/arousal/dominance on (1, 5).
    """

    name = "dreamer"
    description = (
        "DREAMER: 23 subjects x 18 film clips, 14-ch Emotiv EEG at 128 Hz, 1-5"
    )
    source = (
        "Zenodo record 546113 (https://zenodo.org/record/546113, request access "
        "from the authors)"
    )
    expected_layout = "DREAMER.mat (the file itself or the folder holding it)"

    def __init__(
        self, data_dir: str | Path | None, *, car: bool = True, **unknown: Any
    ) -> None:
        reject_unknown_options(self.name, unknown, "car")
        super().__init__(data_dir, car=car)
        self.car = bool(car)
        self._data: list[Any] | None = None
        self._sfreq = 0.0
        self._ch_names: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        """The ``DREAMER.mat`` file (which need not exist yet)."""
        assert self.data_dir is not None
        if self.data_dir.is_file():
            return self.data_dir
        return self.data_dir / FILE_NAME

    def _load(self) -> list[Any]:
        if self._data is not None:
            return self._data
        path = self.path
        if not path.is_file():
            raise DatasetError(
                f"no {FILE_NAME} in {self.data_dir}: expected {self.expected_layout}; "
                f"get DREAMER from {self.source}"
            )
        mat = load_mat(path, _EXPECTED, variable_names=("DREAMER",))
        if "DREAMER" not in mat:
            keys = sorted(k for k in mat if not k.startswith("__"))
            raise DatasetError(
                f"{path.name}: no variable 'DREAMER' (found {keys}); "
                f"expected {_EXPECTED}"
            )
        root = _struct(mat["DREAMER"], f"{path.name}: DREAMER")
        data = _get(root, "Data", f"{path.name}: DREAMER")
        if not isinstance(data, np.ndarray) or data.size == 0:
            raise DatasetError(
                f"{path.name}: DREAMER.Data is empty or not a cell/struct array; "
                f"expected {_EXPECTED}"
            )
        self._sfreq = mat_scalar(
            _get(root, "EEG_SamplingRate", f"{path.name}: DREAMER"),
            f"{path.name}: DREAMER.EEG_SamplingRate",
        )
        if not self._sfreq > 0:
            raise DatasetError(
                f"{path.name}: DREAMER.EEG_SamplingRate is {self._sfreq:g}; "
                "expected a positive rate (128)"
            )
        names = EMOTIV_CHANNELS
        if root.dtype.names and "EEG_Electrodes" in root.dtype.names:
            cell = np.asarray(unwrap(root["EEG_Electrodes"]), dtype=object)
            names = tuple(mat_str(x) for x in cell.reshape(-1))
        self._ch_names = tuple(canonical_name(n) for n in names)
        self._data = list(data.reshape(-1))
        return self._data

    def subjects(self) -> list[str]:
        """Return ``s01`` .. ``sNN``, one per entry of ``DREAMER.Data``.

        Raises
        ------
        DatasetError
            If ``DREAMER.mat`` is missing or does not have the DREAMER layout.
        """
        return [f"s{i + 1:02d}" for i in range(len(self._load()))]

    def files(self, subject: str) -> list[Path]:
        """Return ``DREAMER.mat``: every subject lives in the one file."""
        return [self.path]

    def _index(self, subject: str) -> int:
        n = len(self._load())
        digits = subject[1:] if subject[:1].lower() == "s" else subject
        if not digits.isdigit() or not 1 <= int(digits) <= n:
            raise DatasetError(
                f"DREAMER subject '{subject}' not found in {self.path} "
                f"(subjects are s01..s{n:02d})"
            )
        return int(digits) - 1

    def read_subject(self, subject: str) -> list[Trial]:
        """Read the 18 film clips (or as many as stored) of one subject.

        ``"1"`` and ``"S1"`` stand for ``"s01"``. One trial per clip: the 14
        Emotiv channels (average-referenced with ``car``) at the file's rate,
        the clip's baseline recording, and valence/arousal/dominance on 1-5. A
        file without the DREAMER layout (shapes, finite samples and scores)
        raises :class:`~emomon.errors.DatasetError`.
        """
        data = self._load()
        idx = self._index(subject)
        sid = f"s{idx + 1:02d}"
        fname = self.path.name
        where = f"{fname}: DREAMER.Data{{{idx + 1}}}"
        subj = _struct(data[idx], where)
        eeg_struct = _struct(_get(subj, "EEG", where), f"{where}.EEG")
        stimuli = _cell(_get(eeg_struct, "stimuli", f"{where}.EEG"), f"{where}.EEG")
        baseline = _cell(_get(eeg_struct, "baseline", f"{where}.EEG"), f"{where}.EEG")
        n_clips = len(stimuli)
        if len(baseline) != n_clips:
            raise DatasetError(
                f"{where}.EEG: {n_clips} stimuli but {len(baseline)} baselines; "
                f"expected {_EXPECTED}"
            )
        scores: dict[str, np.ndarray] = {}
        for key, field in _SCORES:
            arr = np.asarray(unwrap(_get(subj, field, where)))
            if arr.dtype.kind not in "iuf" or arr.size != n_clips:
                raise DatasetError(
                    f"{where}.{field}: shape {arr.shape}, need ({n_clips}, 1) numeric "
                    f"(one score per clip); expected {_EXPECTED}"
                )
            arr = arr.reshape(-1).astype(np.float64)
            check_finite(arr, f"{where}.{field}", "scores on 1-5")
            scores[key] = arr
        trials = []
        for v in range(n_clips):
            eeg = self._clip(stimuli[v], f"{where}.EEG.stimuli{{{v + 1}}}")
            base = self._clip(baseline[v], f"{where}.EEG.baseline{{{v + 1}}}")
            trials.append(
                Trial(
                    subject=sid,
                    video=f"v{v + 1:02d}",
                    eeg=eeg,
                    sfreq=self._sfreq,
                    ch_names=self._ch_names,
                    baseline=base,
                    ratings={k: float(a[v]) for k, a in scores.items()},
                    dataset=self.name,
                    scale=SCALE,
                    meta={
                        "file": str(self.path),
                        "reference": "average (CAR by reader)" if self.car else "raw",
                    },
                )
            )
        return trials

    def _clip(self, x: Any, where: str) -> np.ndarray:
        """(n_samples, n_ch) stored array -> (n_ch, n_samples) float64, CAR'd."""
        n_ch = len(self._ch_names)
        eeg = float_array(
            x,
            where,
            (None, n_ch),
            _EXPECTED,
            finite="finite EEG samples",
            need=f", need (n_samples, {n_ch}) numeric, samples first",
        ).T
        if self.car:
            eeg -= eeg.mean(axis=0, keepdims=True)
        return eeg


def _struct(x: Any, where: str) -> np.void:
    """Return a 1x1 MATLAB struct (structured array or record) as a record."""
    x = unwrap(x)
    if isinstance(x, np.ndarray) and x.dtype.names and x.size == 1:
        x = x.reshape(-1)[0]
    if not isinstance(x, np.void) or not x.dtype.names:
        raise DatasetError(f"{where}: expected a MATLAB struct; expected {_EXPECTED}")
    return x


def _get(struct: np.void, field: str, where: str) -> Any:
    names = struct.dtype.names or ()
    if field not in names:
        raise DatasetError(
            f"{where}: no field '{field}' (fields: {', '.join(names)}); "
            f"expected {_EXPECTED}"
        )
    return struct[field]


def _cell(field: Any, where: str) -> list[Any]:
    """Return an (n, 1) cell of arrays (a struct field's value) as n arrays."""
    arr = np.asarray(field)
    while arr.dtype == object and arr.size == 1:
        inner = arr.reshape(-1)[0]
        if not (isinstance(inner, np.ndarray) and inner.dtype == object):
            break  # a 1x1 cell holding one clip
        arr = inner  # an extra 1x1 wrapper (struct-array indexing)
    if arr.dtype != object or arr.size == 0:
        raise DatasetError(
            f"{where}: expected a non-empty cell array of (n_samples, 14) arrays; "
            f"expected {_EXPECTED}"
        )
    return list(arr.reshape(-1, order="F"))
