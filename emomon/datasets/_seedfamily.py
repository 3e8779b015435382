"""What the SEED-family releases (SEED, SEED-IV) share: session files and variables.

Both releases store one MATLAB file per subject and session, named
``<subject>_<date>.mat``, holding one variable per trial: the signals as
``<initials>_eeg<N>`` (62, n_samples) and the precomputed features as
``<family><N>`` (``de_LDS3``: 62, n_windows, 5 bands). They differ in where the
session files lie (SEED: one folder, the session is the date; SEED-IV: session
folders ``1``, ``2``, ``3``) and where the labels come from.

Trial variables are chosen by the number that ends their name, never by their
place in the file: loaders that take them in key order (LibEER's SEED-IV reader
slices ``list(mat.keys())[3:]``) give a file re-saved in another order other
labels without any error.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from emomon.datasets._io import float_array, load_mat, sorted_naturally
from emomon.datasets.base import Reader
from emomon.errors import DatasetError

__all__ = [
    "EEG_KEY_RE",
    "FILE_RE",
    "SessionFilesReader",
    "eeg_trials",
    "feature_trials",
    "listdir",
    "feature_families",
    "subject_of",
]

#: ``<subject>_<date>.mat`` (``1_20131027.mat``).
FILE_RE = re.compile(r"^(\d+)_(\d+)\.mat$")
#: ``<initials>_eeg<N>`` (``djc_eeg7``, ``cz_eeg24``).
EEG_KEY_RE = re.compile(r"^(.+)_eeg(\d+)$")


def listdir(path: Path) -> list[Path]:
    """Entries of ``path``, sorted; none when it is not a readable folder."""
    try:
        return sorted(path.iterdir()) if path.is_dir() else []
    except OSError:
        return []


def subject_of(path: Path) -> str:
    """Subject number of a session file (``"07_2015.mat"`` -> ``"7"``)."""
    m = FILE_RE.match(path.name)
    assert m is not None, path
    return str(int(m.group(1)))


class SessionFilesReader(Reader):
    """A reader whose subjects each have a few ``<subject>_<date>.mat`` session files.

    Subclasses say where the session files lie (:meth:`_scan`) and how to tell
    the release folder from its parent (:meth:`_is_release_folder`); subject
    lookup, the cache and both "not found" errors live here. Subjects are the
    numbers before ``_`` (``"1"`` .. ``"15"``), ``"01"`` standing for ``"1"``.
    """

    #: Release sub-folder accepted under ``data_dir`` (``"Preprocessed_EEG"``).
    folder: ClassVar[str] = ""
    #: The dataset's name in messages (``"SEED"``, ``"SEED-IV"``).
    family: ClassVar[str] = ""

    def __init__(self, data_dir: str | Path | None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self._sessions: dict[str, list[tuple[str, Path]]] | None = None

    @abstractmethod
    def _is_release_folder(self, path: Path) -> bool:
        """Whether ``path`` itself holds the release's session files."""

    @abstractmethod
    def _scan(self, root: Path) -> dict[str, list[tuple[str, Path]]]:
        """Subject -> ``(session, path)`` of each of its session files, in order."""

    @property
    def root(self) -> Path:
        """The release folder: ``data_dir``, or its :attr:`folder` sub-folder."""
        assert self.data_dir is not None
        sub = self.data_dir / self.folder
        if not self._is_release_folder(self.data_dir) and sub.is_dir():
            return sub
        return self.data_dir

    def _find(self) -> dict[str, list[tuple[str, Path]]]:
        if self._sessions is None:
            found = self._scan(self.root)
            self._sessions = {s: found[s] for s in sorted_naturally(found)}
        return self._sessions

    def subjects(self) -> list[str]:
        """Return the subject numbers found, in number order.

        Raises
        ------
        DatasetError
            If the folder holds no session file.
        """
        found = self._find()
        if not found:
            raise DatasetError(
                f"no {self.family} session files in {self.data_dir}: expected "
                f"{self.expected_layout}; get {self.family} from {self.source}"
            )
        return list(found)

    def sessions(self, subject: str) -> list[tuple[str, Path]]:
        """``(session, path)`` of each session file of ``subject``, in session order.

        Raises
        ------
        DatasetError
            If ``subject`` has no session file.
        """
        found = self._find()
        key = str(int(subject)) if subject.isdigit() else subject
        if key not in found:
            raise DatasetError(
                f"{self.family} subject '{subject}' not found in {self.root} "
                f"(found: {', '.join(found) or 'none'}); "
                f"expected {self.expected_layout}"
            )
        return found[key]

    def files(self, subject: str) -> list[Path]:
        """Return the session files of ``subject`` (for cache keys)."""
        return [p for _, p in self.sessions(subject)]


def eeg_trials(
    mat: dict[str, Any], path: Path, n_trials: int, n_channels: int, expected: str
) -> list[tuple[str, np.ndarray]]:
    """Return ``(variable, eeg)`` of trials 1..``n_trials``, chosen by name.

    Parameters
    ----------
    mat : dict
        The loaded session file; the trial variables are removed from it.
    path : Path
        The file, for messages.
    n_trials : int
        Trials the file must hold.
    n_channels : int
        Rows of every ``<initials>_eeg<N>``.
    expected : str
        What the file should hold, for messages.

    Returns
    -------
    list of (str, ndarray of shape (n_channels, n_samples))
        Trial ``i`` at index ``i - 1``, float64 as stored (µV in both releases).

    Raises
    ------
    DatasetError
        If a trial's variable is missing or present twice (two prefixes), or
        holds an array of another shape or non-finite samples.
    """
    by_number: dict[int, list[str]] = {}
    for k in mat:
        m = EEG_KEY_RE.match(k)
        if m and not k.startswith("__"):
            by_number.setdefault(int(m.group(2)), []).append(k)
    missing = [i for i in range(1, n_trials + 1) if i not in by_number]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetError(
            f"{path.name}: no variable <initials>_eeg{missing[0]} "
            f"({len(missing)} trial(s) missing; found {found[:4]}"
            f"{' ...' if len(found) > 4 else ''}); expected {expected}"
        )
    twice = [i for i in range(1, n_trials + 1) if len(by_number[i]) > 1]
    if twice:
        keys = sorted(by_number[twice[0]])
        raise DatasetError(
            f"{path.name}: variables {' and '.join(keys)} both hold trial "
            f"{twice[0]}; expected one <initials> prefix ({expected})"
        )
    out = []
    for i in range(1, n_trials + 1):
        key = by_number[i][0]
        # Popped: a session file holds minutes of 62-channel EEG per trial, so
        # each stored array goes as soon as its float64 copy exists and a file
        # is held about once, not twice.
        eeg = float_array(
            mat.pop(key),
            f"{path.name}: {key}",
            (n_channels, None),
            expected,
            finite="finite EEG samples",
        )
        out.append((key, eeg))
    return out


def feature_families(
    value: str | Sequence[str], *, valid: Sequence[str], reader: str
) -> tuple[str, ...]:
    """Parse a ``features`` option: a comma list or a sequence of family names.

    ``value`` is a comma-separated string (as ``--dataset-option`` and TOML
    pass it) or a sequence of names; duplicates are dropped, the order kept.

    Raises
    ------
    DatasetError
        For an empty choice or a name not in ``valid`` (the message lists them).
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    feats = tuple(dict.fromkeys(str(f).strip() for f in items if str(f).strip()))
    bad = [f for f in feats if f not in valid]
    if bad or not feats:
        raise DatasetError(
            f"{reader}: unknown feature(s) {bad or '(none given)'} in option "
            f"'features'; choose among {', '.join(valid)}"
        )
    return feats


def feature_trials(
    path: Path,
    families: Sequence[str],
    n_trials: int,
    shape: tuple[int | None, int],
    expected: str,
) -> list[dict[str, np.ndarray]]:
    """Read the chosen feature families of trials 1..``n_trials`` from one file.

    Only the variables ``<family><N>`` of ``families`` are read from the file
    (the others are never loaded, whatever they hold).

    Parameters
    ----------
    path : Path
        The session file.
    families : sequence of str
        Feature families (``"de_LDS"``, ...).
    n_trials : int
        Trials the file must hold.
    shape : (int or None, int)
        ``(n_rows, n_bands)`` of every variable; ``n_rows`` None takes any
        (SEED's asymmetry families have one row per electrode pair), and
        n_windows is free.
    expected : str
        What the file should hold, for messages.

    Returns
    -------
    list of dict of str to ndarray of shape (n_rows, n_windows, n_bands)
        Trial ``i`` at index ``i - 1``, family -> float64 features.

    Raises
    ------
    DatasetError
        If a variable is missing, has another shape or non-finite values, or
        the families of one trial have different shapes.
    """
    names = [f"{f}{i}" for i in range(1, n_trials + 1) for f in families]
    mat = load_mat(path, expected, names)
    missing = [k for k in names if k not in mat]
    if missing:
        raise DatasetError(
            f"{path.name}: missing variable(s) {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}; expected {expected}"
        )
    n_rows, n_bands = shape
    out = []
    for i in range(1, n_trials + 1):
        feats = {
            f: float_array(
                mat[f"{f}{i}"],
                f"{path.name}: {f}{i}",
                (n_rows, None, n_bands),
                expected,
                finite="finite features",
            )
            for f in families
        }
        shapes = {a.shape for a in feats.values()}
        if len(shapes) > 1:
            raise DatasetError(
                f"{path.name}: trial {i} features have different shapes "
                f"{sorted(shapes)}; expected {expected}"
            )
        out.append(feats)
    return out
