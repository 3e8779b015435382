"""EAV reader: EEG of conversations, 5 emotions (Lee et al., Scientific Data 2024).

Layout of the Zenodo release (record 10205702), one folder per subject, numbers
not zero-padded (``subject1`` .. ``subject42``; sorted by number here, so
``subject2`` comes before ``subject10``)::

    EAV/subjectN/EEG/subjectN_eeg.mat         one variable, seg1 (most) or seg
    EAV/subjectN/EEG/subjectN_eeg_label.mat   label, one-hot (10, 200)
    EAV/subjectN/Video/NNN_Trial_TT_Listening_Neutral.mp4, ...   (200 clips)
    EAV/subjectN/Audio/NNN_Trial_TT_Speaking_Neutral_Aud.wav, ... (100 clips)

``seg``/``seg1`` is (10000, 30, 200) = (time, channels, trials): 500 Hz, 20 s
trials, in the order they were recorded. Label row ``r`` (0-based) is emotion
``r // 2`` in the order Neutral, Sadness, Anger, Happiness, Calmness and
condition ``r % 2``.

Which parity is *listening* (sources disagree, so the reader does not guess):

- The authors' loader (github.com/nubcico/EAV, ``Dataload_eeg.py``,
  ``SELECTED_CLASSES = [1, 3, 5, 7, 9]  # ... listening tasks``) keeps the trials
  whose 0-based ``np.argmax`` row is odd, i.e. odd rows as listening.
- A public audit (``scripts/audit_eav_alignment.py`` and
  ``src/preprocessing/eav_labels.py`` of an EAV fusion project) cross-checked
  every Audio/Video file name against ``label`` (42 subjects, 12,600 files, 0
  mismatches; table "row 0 Listening Neutral, row 1 Speaking Neutral") and finds
  the 0-based *even* rows listening, with ``NNN`` in the media names the 1-based
  trial index (``001_..._Listening``, ``002_..._Speaking``; only Speaking trials
  have Audio, 100 of 200, which the audit also checks). A second loader reads
  ``NNN - 1`` as the EEG trial index of ``..._Speaking_...`` names, and a
  published file tree of the release (an openmedlab dataset card) lists
  ``001_Trial_01_Listening_Neutral.mp4``, ``002_Trial_02_Speaking_Neutral.mp4``,
  ..., ``200_Trial_20_Speaking_Sadness.mp4``: odd ``NNN`` listening. ``TT``
  differs between Video and Audio names and is not used.
- Both count rows from 0 (the authors' list indexes ``np.argmax`` output), so
  they are not one claim in two countings: the numbers 1, 3, 5, 7, 9 are the
  audit's listening rows only when counted from 1. If the audit is right, the
  authors' EEG baseline used the speaking trials.

So the condition comes from the ``Video`` file names when that folder is there
(each name's ``NNN`` is the 1-based trial, its emotion must match ``label``, and
all names must agree on one parity); otherwise from the option
``listening_rows`` ("even" or "odd": the 0-based label rows that are listening);
with neither, a condition other than "both" is refused. The rule used is logged.

Stimuli and video ids: the authors' README describes one pseudo-random class
sequence ("[A, A, C, C, S, S, H, A, ...]") for the experiment and pre-recorded
clips of one actor, so trial ``NNN`` is taken as the same stimulus for every
subject: ``video = "t001"`` .. ``"t200"`` (one id = one trial position across
subjects). The ``Video`` clips
are the camera recording of the participant, not the stimulus, so the release
cannot prove that the clips shown were identical (participants picked scripts
in a screening phase); cross-subject protocols (``loso``) therefore share
stimuli, as on DEAP, which the report's measured ``content_dependent`` shows.

Channels: the files carry no names. The default is the probable BrainAmp 10-20
list of :data:`CHANNELS` (also used by published EAV loaders), marked
``channels_assumed`` in every trial's ``meta``, in ``emomon datasets check``, the
training report and the model contract; ``channels=`` overrides it. Values are
taken as microvolts (BrainVision's unit; the release does not state it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from emomon.datasets._io import check_finite, load_mat, one_line, reject_unknown_options
from emomon.datasets.base import Reader, Trial
from emomon.dsp.layout import canonical_name
from emomon.errors import ConfigError, DatasetError

__all__ = ["CHANNELS", "CLASSES", "EavReader"]

log = logging.getLogger(__name__)

SFREQ = 500.0
#: Probable channel order of the 30 EEG rows (no names in the files): ASSUMED.
CHANNELS: tuple[str, ...] = tuple(
    canonical_name(n)
    for n in (
        "FP1 FP2 F7 F3 FZ F4 F8 FC5 FC1 FC2 FC6 T7 C3 CZ C4 T8 CP5 CP1 CP2 CP6 "
        "P7 P3 PZ P4 P8 PO9 O1 OZ O2 PO10"
    ).split()
)
#: Emotion of label rows (0, 1), (2, 3), ...: row // 2.
CLASSES: tuple[str, ...] = ("neutral", "sadness", "anger", "happiness", "calmness")
CONDITIONS = ("listening", "speaking", "both")
N_ROWS = 2 * len(CLASSES)
EEG_VARIABLES = ("seg1", "seg")

_SUBJECT_RE = re.compile(r"^subject0*(\d+)$", re.IGNORECASE)
_MEDIA_RE = re.compile(
    r"^(\d+)_Trial_\d+_(Listening|Speaking)_([A-Za-z]+)\.mp4$", re.IGNORECASE
)
_OPTIONS = "condition (listening|speaking|both), listening_rows (even|odd), channels"
_EXPECTED_EEG = "seg1 or seg, (n_times, 30, n_trials) = (10000, 30, 200)"
_EXPECTED_LABEL = "label, one-hot (10, n_trials) = (10, 200)"


class EavReader(Reader):
    """Read EAV EEG trials (one :class:`Trial` per 20 s interaction).

    Parameters
    ----------
    data_dir : str or Path
        The ``EAV`` folder (holding ``subject1`` ..), or its parent.
    condition : {"listening", "speaking", "both"}, default "listening"
        Which trials to return.
    listening_rows : {"even", "odd"}, optional
        The 0-based ``label`` rows that are listening, for a release without the
        ``Video`` folder (where the folder is present its file names decide, and
        this option must agree with them).
    channels : str or sequence of str, optional
        The 30 channel names in row order (comma-separated in a string); default
        :data:`CHANNELS`, which is assumed.

    Notes
    -----
    Subjects are ``"1"`` .. ``"42"`` (``"subject7"`` is accepted too). Each
    :class:`Trial` has ``eeg`` (30, 10000) µV at 500 Hz (a view into the file's
    array, not a copy), ``video = "t001"`` .. (1-based trial index), ``label`` one
    of :attr:`classes`, ``meta`` with ``trial``, ``condition`` (or ``""`` when
    unknown) and ``channels_assumed``.
    """

    name = "eav"
    description = (
        "EAV: 42 subjects x 200 conversation trials (listen/speak), 30-ch EEG at "
        "500 Hz, 5 classes"
    )
    source = (
        "https://zenodo.org/records/10205702 (request access; Lee et al., "
        "Scientific Data 2024)"
    )
    expected_layout = (
        "EAV/subjectN/EEG/subjectN_eeg.mat (seg1 or seg, (10000, 30, 200)) + "
        "subjectN_eeg_label.mat (label (10, 200)) [+ subjectN/Video/*.mp4]"
    )
    classes: ClassVar[tuple[str, ...]] = CLASSES

    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        condition: str = "listening",
        listening_rows: str | None = None,
        channels: str | Sequence[str] | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_options(self.name, unknown, _OPTIONS)
        cond = str(condition).strip().lower()
        if cond not in CONDITIONS:
            raise ConfigError(
                f"dataset 'eav': condition={condition!r}; choose one of "
                f"{', '.join(CONDITIONS)}"
            )
        rows = None if listening_rows is None else str(listening_rows).strip().lower()
        if rows not in (None, "even", "odd"):
            raise ConfigError(
                f"dataset 'eav': listening_rows={listening_rows!r}; choose even "
                "(0-based label rows 0, 2, .. are listening) or odd"
            )
        names = _channel_list(channels)
        options: dict[str, Any] = {"condition": cond}
        if rows is not None:
            options["listening_rows"] = rows
        if channels is not None:
            options["channels"] = list(names)
        super().__init__(data_dir, **options)
        self.condition = cond
        self.listening_rows = rows
        self.ch_names = names
        #: Whether the channel names are the assumed default (not given).
        self.channels_assumed = channels is None
        self._found: dict[str, Path] | None = None

    # -- discovery ------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The folder holding ``subject1`` .. (``data_dir`` or its ``EAV``)."""
        assert self.data_dir is not None
        if not _subject_dirs(self.data_dir) and (self.data_dir / "EAV").is_dir():
            return self.data_dir / "EAV"
        return self.data_dir

    def _subjects(self) -> dict[str, Path]:
        if self._found is None:
            self._found = _subject_dirs(self.root)
        return self._found

    def subjects(self) -> list[str]:
        """Return the subject numbers found, in number order (``"2"`` before ``"10"``).

        Raises
        ------
        DatasetError
            If ``data_dir`` holds no ``subjectN`` folder.
        """
        found = self._subjects()
        if not found:
            raise DatasetError(
                f"no EAV subject folders in {self.data_dir}: expected "
                f"{self.expected_layout}; get EAV from {self.source}"
            )
        return list(found)

    def _folder(self, subject: str) -> tuple[str, Path]:
        found = self._subjects()
        m = _SUBJECT_RE.match(subject.strip())
        key = str(int(m.group(1))) if m else subject.strip().lstrip("0") or "0"
        if key not in found:
            raise DatasetError(
                f"EAV subject '{subject}' not found in {self.root} (found: "
                f"{', '.join(found) or 'none'}); expected {self.expected_layout}"
            )
        return key, found[key]

    def _eeg_files(self, subject: str) -> tuple[str, Path, Path]:
        key, folder = self._folder(subject)
        eeg_dir = folder / "EEG"
        return (
            key,
            _numbered_file(eeg_dir, key, "_eeg.mat"),
            _numbered_file(eeg_dir, key, "_eeg_label.mat"),
        )

    def files(self, subject: str) -> list[Path]:
        """Return the EEG and label files of ``subject`` (the cache key's files)."""
        _, eeg, label = self._eeg_files(subject)
        return [eeg, label]

    def cache_token(self) -> dict[str, Any]:
        """Reader options plus the ``Video`` file names, which decide the condition."""
        token = super().cache_token()
        token["videos"] = {
            s: sorted(p.name for p in _media(folder / "Video"))
            for s, folder in self._subjects().items()
        }
        return token

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return the channel names (checks that ``subject`` exists)."""
        self._folder(subject)
        return self.ch_names

    # -- reading --------------------------------------------------------------

    def read_subject(self, subject: str) -> list[Trial]:
        """Read the trials of one subject that match ``condition``, in recorded order.

        Raises
        ------
        DatasetError
            For a missing or unreadable file, a variable of the wrong shape, a label
            that is not one-hot, NaN/inf samples, media names that disagree with the
            label, or a condition that cannot be decided (the message says which
            option to set).
        """
        key, eeg_path, label_path = self._eeg_files(subject)
        label = _read_label(label_path)
        rows = np.argmax(label, axis=0)
        n_trials = rows.size
        parity, rule = self._listening_parity(key, rows, label_path)
        if parity is None and self.condition != "both":
            raise DatasetError(
                f"{self._folder(key)[1] / 'Video'}: no media files to tell listening "
                "from speaking trials; set the reader option listening_rows=even or "
                "listening_rows=odd (0-based label rows that are listening), or "
                "condition=both"
            )
        log.info("eav subject %s: condition %s", key, rule)
        if parity is None:
            cond = np.full(n_trials, "", dtype=object)
        else:
            listening = rows % 2 == parity
            cond = np.where(listening, "listening", "speaking").astype(object)
        keep = (
            np.ones(n_trials, bool)
            if self.condition == "both"
            else (cond == self.condition)
        )
        seg, variable = _read_eeg(eeg_path, n_trials, len(self.ch_names))
        trials = []
        for k in np.flatnonzero(keep):
            # (n_times, n_ch) slice of a Fortran-ordered array: its transpose is a
            # C-contiguous view, so no trial is copied.
            eeg = np.asarray(seg[:, :, k]).T
            check_finite(
                eeg, f"{eeg_path.name}: {variable} trial {k + 1}", "finite EEG samples"
            )
            trials.append(
                Trial(
                    subject=key,
                    video=f"t{k + 1:03d}",
                    eeg=eeg,
                    sfreq=SFREQ,
                    ch_names=self.ch_names,
                    label=CLASSES[int(rows[k]) // 2],
                    dataset=self.name,
                    meta={
                        "file": str(eeg_path),
                        "variable": variable,
                        "trial": int(k + 1),
                        "condition": str(cond[k]),
                        "channels_assumed": self.channels_assumed,
                    },
                )
            )
        return trials

    def _listening_parity(
        self, key: str, rows: np.ndarray, label_path: Path
    ) -> tuple[int | None, str]:
        """Return the ``row % 2`` of listening trials and the rule that gave it."""
        video_dir = self._folder(key)[1] / "Video"
        from_option = {"even": 0, "odd": 1}.get(self.listening_rows or "")
        parity: int | None = None
        n_files = 0
        for path in _media(video_dir):
            m = _MEDIA_RE.match(path.name)
            if m is None:
                continue
            trial, cond, emotion = int(m.group(1)), m.group(2).lower(), m.group(3)
            if not 1 <= trial <= rows.size:
                raise DatasetError(
                    f"{path}: trial number {trial} outside 1..{rows.size} of "
                    f"{label_path.name}; expected NNN_Trial_TT_Listening|Speaking_"
                    "Emotion.mp4 with NNN the 1-based trial"
                )
            row = int(rows[trial - 1])
            if CLASSES[row // 2] != emotion.lower():
                raise DatasetError(
                    f"{path}: names {emotion} but {label_path.name} gives trial "
                    f"{trial} {CLASSES[row // 2]} (row {row}); the media names and "
                    "the label disagree"
                )
            p = row % 2 if cond == "listening" else 1 - row % 2
            if parity is not None and p != parity:
                raise DatasetError(
                    f"{path}: {cond} on label row {row} contradicts the other media "
                    "names of this subject (each parity of label rows must be one "
                    "condition)"
                )
            parity = p
            n_files += 1
        if parity is not None:
            if from_option is not None and from_option != parity:
                raise DatasetError(
                    f"{video_dir}: the media names make the "
                    f"{'even' if parity == 0 else 'odd'} label rows listening, but "
                    f"listening_rows={self.listening_rows}; drop the option"
                )
            which = "even" if parity == 0 else "odd"
            return parity, (
                f"from {n_files} Video file names: 0-based label rows "
                f"{which} are listening"
            )
        if from_option is not None:
            return from_option, (
                f"from the option listening_rows={self.listening_rows} (no Video "
                "file names)"
            )
        return None, "unknown (no Video file names, no listening_rows; condition=both)"


# -- helpers -----------------------------------------------------------------


def _channel_list(channels: str | Sequence[str] | None) -> tuple[str, ...]:
    if channels is None:
        return CHANNELS
    items = channels.split(",") if isinstance(channels, str) else list(channels)
    names = tuple(canonical_name(str(c).strip()) for c in items if str(c).strip())
    if len(names) != len(CHANNELS):
        raise ConfigError(
            f"dataset 'eav': channels= lists {len(names)} names; the EAV files have "
            f"{len(CHANNELS)} channels: give {len(CHANNELS)} comma-separated names"
        )
    dups = sorted({c for c in names if names.count(c) > 1})
    if dups:
        raise ConfigError(f"dataset 'eav': channels= repeats {', '.join(dups)}")
    return names


def _subject_dirs(path: Path) -> dict[str, Path]:
    """``subjectN`` folders of ``path``, number -> folder, in number order."""
    found: dict[int, Path] = {}
    try:
        entries = list(path.iterdir()) if path.is_dir() else []
    except OSError:
        entries = []
    for p in entries:
        m = _SUBJECT_RE.match(p.name)
        if m and p.is_dir():
            found.setdefault(int(m.group(1)), p)
    return {str(n): found[n] for n in sorted(found)}


def _numbered_file(folder: Path, number: str, suffix: str) -> Path:
    """``folder/subjectN<suffix>``, padded or not; the unpadded path when absent."""
    want = int(number)
    pattern = re.compile(rf"^subject0*(\d+){re.escape(suffix)}$", re.IGNORECASE)
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            m = pattern.match(p.name)
            if m and int(m.group(1)) == want and p.is_file():
                return p
    return folder / f"subject{want}{suffix}"


def _media(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".mp4")
    except OSError:
        return []


def _is_hdf5(path: Path) -> bool:
    """Whether ``path`` is a MATLAB v7.3 file (HDF5 signature at byte 512)."""
    try:
        with path.open("rb") as f:
            f.seek(512)
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _open_h5(path: Path, expected: str) -> Any:
    try:
        import h5py
    except ImportError:
        raise DatasetError(
            f"{path.name}: MATLAB v7.3 (HDF5) file, which needs h5py: pip install "
            f"'emomon[mat73]' (or h5py); expected {expected}"
        ) from None
    try:
        return h5py.File(path, "r")
    except Exception as exc:  # h5py raises OSError and friends for damaged files
        raise DatasetError(
            f"{path.name}: truncated or corrupt MATLAB v7.3 file ({one_line(exc)}); "
            f"expected {expected}"
        ) from exc


def _read_label(path: Path) -> np.ndarray:
    """``label`` as a (10, n_trials) one-hot array, checked."""
    if _is_hdf5(path):
        with _open_h5(path, _EXPECTED_LABEL) as f:
            if "label" not in f:
                raise DatasetError(
                    f"{path.name}: no variable 'label'; expected {_EXPECTED_LABEL}"
                )
            # HDF5 stores MATLAB's (10, n) transposed.
            lab = np.asarray(f["label"][()]).T
    else:
        mat = load_mat(path, _EXPECTED_LABEL, ("label",))
        if "label" not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise DatasetError(
                f"{path.name}: no variable 'label' (found {found}); expected "
                f"{_EXPECTED_LABEL}"
            )
        lab = np.asarray(mat["label"])
    if (
        lab.dtype.kind not in "iufb"
        or lab.ndim != 2
        or lab.shape[0] != N_ROWS
        or lab.shape[1] == 0
    ):
        raise DatasetError(
            f"{path.name}: label has shape {lab.shape} ({lab.dtype}); expected "
            f"{_EXPECTED_LABEL}"
        )
    lab = lab.astype(np.float64)
    ones = (lab == 1).sum(axis=0)
    if not (np.isin(lab, (0, 1)).all() and (ones == 1).all()):
        bad = int(np.flatnonzero(~np.isin(lab, (0, 1)).all(axis=0) | (ones != 1))[0])
        raise DatasetError(
            f"{path.name}: label column {bad + 1} is not one-hot (one 1, nine 0); "
            f"expected {_EXPECTED_LABEL}"
        )
    return lab


def _read_eeg(path: Path, n_trials: int, n_channels: int) -> tuple[Any, str]:
    """Return the EEG variable as (n_times, n_channels, n_trials) and its name.

    v5 files give one array (Fortran order, as MATLAB wrote it); v7.3 files
    give an array read from HDF5 and transposed back to MATLAB's axis order.
    """
    expected = _EXPECTED_EEG.replace("30", str(n_channels))
    if _is_hdf5(path):
        with _open_h5(path, expected) as f:
            names = [v for v in EEG_VARIABLES if v in f]
            if not names:
                raise DatasetError(
                    f"{path.name}: no variable seg1 or seg (found "
                    f"{sorted(f.keys())[:4]}); expected {expected}"
                )
            ds = f[names[0]]
            if ds.ndim != 3 or ds.dtype.kind not in "iuf":
                raise DatasetError(
                    f"{path.name}: {names[0]} has shape {ds.shape[::-1]} "
                    f"({ds.dtype}); expected {expected}"
                )
            # HDF5 holds (n_trials, n_ch, n_times) C-order = MATLAB's array in
            # Fortran order: read it once, as float64, and view it back.
            arr = np.asarray(ds[()], dtype=np.float64).T
            variable = names[0]
    else:
        # loadmat peaks at one copy of the array (measured: 0.52 GB for the
        # 0.48 GB seg1, compressed or not; benchmarks/bench_eav_memory.py).
        mat = load_mat(path, expected, EEG_VARIABLES)
        names = [v for v in EEG_VARIABLES if v in mat]
        if not names:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise DatasetError(
                f"{path.name}: no variable seg1 or seg (found {found[:4]}); "
                f"expected {expected}"
            )
        variable = names[0]
        arr = mat.pop(variable)
        del mat
        if arr.dtype.kind in "iu" or arr.dtype == np.float32:
            # Converted once; the trials are then views of the float64 array.
            arr = arr.astype(np.float64, order="F")
    if (
        arr.ndim != 3
        or arr.dtype.kind != "f"
        or arr.shape[1] != n_channels
        or arr.shape[2] != n_trials
        or arr.shape[0] == 0
    ):
        raise DatasetError(
            f"{path.name}: {variable} has shape {arr.shape} ({arr.dtype}); the label "
            f"has {n_trials} trials; expected {expected}"
        )
    return arr, variable
