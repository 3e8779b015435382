"""The ``Trial`` record and the reader interface shared by every dataset reader."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from emomon.errors import DatasetError


@dataclass(frozen=True, eq=False)
class Trial:
    """One stimulus presentation of one subject.

    Attributes
    ----------
    subject : str
        Subject id, stable within a dataset (``"s01"``).
    video : str
        Stimulus id, the same for every subject who saw it (``"v07"``).
    eeg : ndarray, shape (n_channels, n_times)
        EEG in microvolts, float64.
    sfreq : float
        Sampling frequency in Hz.
    ch_names : tuple of str
        10-20 channel names in row order of ``eeg``.
    baseline : ndarray, shape (n_channels, n_baseline_times), optional
        Resting segment recorded just before the trial (µV), same channels.
    ratings : dict of str to float, optional
        Self-assessment on the dataset's scale (keys among valence, arousal,
        dominance, liking, familiarity).
    label : str, optional
        Class name for datasets with categorical targets (SEED).
    dataset : str
        Reader name that produced the trial.
    session : str
        Recording session id where a subject has several (SEED), else ``""``.
    scale : tuple of float
        ``(low, high)`` of the rating scale, e.g. ``(1.0, 9.0)``.
    """

    subject: str
    video: str
    eeg: np.ndarray
    sfreq: float
    ch_names: tuple[str, ...]
    baseline: np.ndarray | None = None
    ratings: dict[str, float] | None = None
    label: str | None = None
    dataset: str = ""
    session: str = ""
    scale: tuple[float, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        eeg = np.asarray(self.eeg, dtype=np.float64)
        where = f"trial {self.subject}/{self.video}"
        if eeg.ndim != 2:
            raise DatasetError(
                f"{where}: eeg must be (n_channels, n_times), got shape {eeg.shape}"
            )
        if eeg.shape[0] != len(self.ch_names):
            raise DatasetError(
                f"{where}: {eeg.shape[0]} channels in eeg but "
                f"{len(self.ch_names)} channel names"
            )
        if not self.sfreq > 0:
            raise DatasetError(f"{where}: sfreq must be > 0, got {self.sfreq}")
        object.__setattr__(self, "eeg", eeg)
        object.__setattr__(self, "ch_names", tuple(self.ch_names))
        object.__setattr__(self, "sfreq", float(self.sfreq))
        if self.baseline is not None:
            bl = np.asarray(self.baseline, dtype=np.float64)
            if bl.ndim != 2 or bl.shape[0] != eeg.shape[0]:
                raise DatasetError(
                    f"trial {self.subject}/{self.video}: baseline must be "
                    f"({eeg.shape[0]}, n_times), got {bl.shape}"
                )
            object.__setattr__(self, "baseline", bl)

    @property
    def n_channels(self) -> int:
        """Number of EEG channels (rows of ``eeg``)."""
        return self.eeg.shape[0]

    @property
    def duration_s(self) -> float:
        """Length of the trial's EEG in seconds (the baseline not counted)."""
        return self.eeg.shape[1] / self.sfreq


@dataclass(frozen=True, eq=False)
class FeatureTrial:
    """Precomputed features of one trial (SEED ``ExtractedFeatures``).

    Attributes
    ----------
    features : dict of str to ndarray, shape (n_channels, n_windows, n_bands)
        One array per feature key (``"de_LDS"``, ``"psd_movingAve"``, ...).
    bands : tuple of str
        Band names along the last axis.
    window_s : float
        Window length of the precomputed features in seconds (windows do not
        overlap: window ``i`` ends at ``(i + 1) * window_s``).
    band_edges : tuple of (float, float)
        ``(lo, hi)`` in Hz of each band, in the order of ``bands``.
    sfreq : float
        Rate of the EEG the features were computed from (Hz), 0 when unknown.
    """

    subject: str
    video: str
    features: dict[str, np.ndarray]
    ch_names: tuple[str, ...]
    bands: tuple[str, ...]
    window_s: float
    label: str | None = None
    dataset: str = ""
    session: str = ""
    band_edges: tuple[tuple[float, float], ...] = ()
    sfreq: float = 0.0


class Reader(ABC):
    """A dataset on disk, read subject by subject.

    Subclasses set the class attributes and implement :meth:`subjects`,
    :meth:`files` and :meth:`read_subject`. Constructing a reader checks that
    ``data_dir`` exists and raises :class:`~emomon.errors.DatasetError` naming the
    directory and where to get the dataset when it does not.
    """

    #: Registry name (``"deap"``).
    name: ClassVar[str]
    #: One-line description for ``emomon datasets list``.
    description: ClassVar[str]
    #: Where a user gets the data (URL and licence note).
    source: ClassVar[str]
    #: Layout expected under ``data_dir``, shown in errors.
    expected_layout: ClassVar[str]
    #: Whether the reader needs files on disk (False for the synthetic generator).
    needs_data_dir: ClassVar[bool] = True
    #: Whether :meth:`read_subject` gives precomputed features
    #: (:class:`FeatureTrial`) instead of EEG (:class:`Trial`).
    precomputed: ClassVar[bool] = False
    #: Class names, in index order, of ``label`` (``--targets class``); empty
    #: for datasets without class labels.
    classes: ClassVar[tuple[str, ...]] = ()
    #: ``(a, b)``: the dataset's customary split trains on trials 1..a and tests
    #: on a+1..b of each subject and session (``seed-split``; the trial number
    #: is the trailing integer of the video id); None: no such split.
    session_split: ClassVar[tuple[int, int] | None] = None

    def __init__(self, data_dir: str | Path | None, **options: Any) -> None:
        self.options = options
        if self.needs_data_dir:
            if data_dir is None:
                raise DatasetError(
                    f"{{data_dir}} is required for dataset '{self.name}': "
                    f"expected {self.expected_layout}; get it from {self.source}",
                    params=("data_dir",),
                )
            path = Path(data_dir).expanduser()
            if not path.exists():
                raise DatasetError(
                    f"data dir {path} does not exist: expected {self.expected_layout}; "
                    f"get the {self.name.upper()} dataset from {self.source}"
                )
            self.data_dir: Path | None = path
        else:
            self.data_dir = Path(data_dir) if data_dir is not None else None

    @abstractmethod
    def subjects(self) -> list[str]:
        """Subject ids found in ``data_dir``, sorted; raises DatasetError if none."""

    @abstractmethod
    def files(self, subject: str) -> list[Path]:
        """Files that hold ``subject``'s data (for cache keys)."""

    @abstractmethod
    def read_subject(self, subject: str) -> list[Trial]:
        """Read all trials of one subject, in stimulus order.

        Parameters
        ----------
        subject : str
            One of :meth:`subjects`; readers also take the usual shorter
            spellings (``"1"`` for ``"s01"``).

        Returns
        -------
        list of Trial
            EEG in µV, channels named; each reader says what else it fills in.

        Raises
        ------
        DatasetError
            If the subject is not found or its data cannot be read (the message
            names the file and the expected layout).
        """

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return the channels of ``subject``'s recordings, in row order.

        Reads the subject (readers that know their montage without reading
        override this).

        Raises
        ------
        DatasetError
            If the subject cannot be read or has no trials.
        """
        trials = self.read_subject(subject)
        if not trials:
            raise DatasetError(
                f"dataset '{self.name}': subject {subject} has no trials"
            )
        return tuple(trials[0].ch_names)

    def cache_token(self) -> dict[str, Any]:
        """Return what besides the files identifies the data (reader options)."""
        return {"reader": self.name, "options": _jsonable(self.options)}

    def iter_trials(self, subjects: Sequence[str] | None = None) -> Iterator[Trial]:
        """Yield every trial of ``subjects`` (default: all)."""
        for s in subjects if subjects is not None else self.subjects():
            yield from self.read_subject(s)


class FileReader(Reader):
    """A reader with one file (or file set) per subject, found once.

    Subclasses scan ``data_dir`` in :meth:`_scan` and word the two errors; the
    lookup, the cache and the "not found" message live here.
    """

    #: How messages name one entry, e.g. "DEAP subject", "OpenBCI recording".
    unit: ClassVar[str] = "subject"

    @abstractmethod
    def _scan(self) -> dict[str, Path]:
        """Entry id -> file, in subject order."""

    @abstractmethod
    def _none_found(self) -> str:
        """Word the error when ``data_dir`` holds no entry."""

    def _key(self, subject: str) -> str:
        """Return the id ``subject`` stands for (e.g. "1" -> "s01")."""
        return subject

    def _not_found_hint(self) -> str:
        """Return the text appended to the "not found" message."""
        return ""

    def _entries(self, keep: Callable[[Path], bool]) -> list[Path]:
        """``data_dir`` itself when it names a file, else its entries ``keep`` takes."""
        assert self.data_dir is not None
        if self.data_dir.is_file():
            return [self.data_dir]
        return [p for p in self.data_dir.iterdir() if keep(p)]

    def _find_files(self) -> dict[str, Path]:
        files = getattr(self, "_files", None)
        if files is None:
            files = self._files = self._scan()
        return files

    def subjects(self) -> list[str]:
        """Return the entry ids found in ``data_dir``, in subject order.

        Raises
        ------
        DatasetError
            If ``data_dir`` holds none.
        """
        files = self._find_files()
        if not files:
            raise DatasetError(self._none_found())
        return list(files)

    def files(self, subject: str) -> list[Path]:
        """Return the one file of ``subject``.

        Raises
        ------
        DatasetError
            If ``subject`` is not found.
        """
        return [self._path(subject)]

    def _path(self, subject: str) -> Path:
        files = self._find_files()
        key = self._key(subject)
        if key not in files:
            raise DatasetError(
                f"{self.unit} '{subject}' not found in {self.data_dir} "
                f"(found: {', '.join(files) or 'none'}){self._not_found_hint()}"
            )
        return files[key]


class NumberedReader(FileReader):
    """A file reader whose subject ids are a letter and a number (``s01``, ``P01``).

    ``"1"``, ``"s1"`` and ``"S01"`` all stand for ``"s01"``, subjects come in
    number order, and both errors repeat the expected layout (the "none found"
    one also where to get the dataset). Subclasses set :attr:`prefix` and build
    the ids in :meth:`_scan` with :meth:`_numbered` and :meth:`_by_number`.
    """

    #: The letter of the ids, as they are spelled (``"s"``, ``"P"``).
    prefix: ClassVar[str]

    def _numbered(self, number: str) -> str:
        """Return the id of subject ``number`` (``"7"`` -> ``"s07"``)."""
        return f"{self.prefix}{int(number):02d}"

    def _by_number(self, found: dict[str, Path]) -> dict[str, Path]:
        """Return ``found`` (id -> file) in subject number order."""
        n = len(self.prefix)
        return dict(sorted(found.items(), key=lambda kv: int(kv[0][n:])))

    def _key(self, subject: str) -> str:
        n = len(self.prefix)
        digits = subject[n:] if subject[:n].lower() == self.prefix.lower() else subject
        return self._numbered(digits) if digits.isdigit() else subject

    def _none_found(self) -> str:
        return (
            f"no {self.unit} files in {self.data_dir}: expected "
            f"{self.expected_layout}; get {self.name.upper()} from {self.source}"
        )

    def _not_found_hint(self) -> str:
        return f"; expected {self.expected_layout}"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items())}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
