"""SEED readers: ``Preprocessed_EEG/`` (signals) and ``ExtractedFeatures/`` (DE/PSD).

Both folders of the SEED release hold one file per session, named
``<subject>_<date>.mat`` (``1_20131027.mat``; 15 subjects x 3 sessions), plus
``label.mat`` whose ``label`` is ``(1, 15)`` =
``[1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1]`` (positive / neutral /
negative per film, the same for everyone).

- ``Preprocessed_EEG/<subject>_<date>.mat``: variables ``<initials>_eeg1`` ..
  ``<initials>_eeg15``, each (62, n_samples), downsampled to 200 Hz and
  0-75 Hz band-passed. The release does not state the unit; published loaders
  (torcheeg and others) use the values unscaled as microvolts, and so does
  emomon (no conversion).
- ``ExtractedFeatures/<subject>_<date>.mat``: ``de_LDS1..15``,
  ``de_movingAve1..15``, ``psd_LDS1..15``, ``psd_movingAve1..15``, each
  (62, n_windows, 5), 1 s windows, bands delta/theta/alpha/beta/gamma.

Channels are the 62 ESI NeuroScan electrodes of
:data:`~emomon.dsp.layout.SEED_CHANNELS` in 10-20 spelling (``"FP1"`` ->
``"Fp1"``). The standard protocol trains on films 1-9 and tests on 10-15 of each
session.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emomon.datasets._io import load_mat, reject_unknown_options
from emomon.datasets._seedfamily import (
    FILE_RE,
    SessionFilesReader,
    eeg_trials,
    feature_families,
    feature_trials,
    listdir,
    subject_of,
)
from emomon.datasets.base import FeatureTrial, Trial
from emomon.dsp.layout import SEED_CHANNELS, canonical_name
from emomon.errors import DatasetError

__all__ = ["SeedFeaturesReader", "SeedReader", "feature_families", "label_name"]

SFREQ = 200.0
N_CHANNELS = len(SEED_CHANNELS)
CH_NAMES = tuple(canonical_name(n) for n in SEED_CHANNELS)
BANDS = ("delta", "theta", "alpha", "beta", "gamma")
#: Band edges in Hz of the SEED feature files (SEED's release notes; Zheng & Lu,
#: IEEE TAMD 2015, section IV-B).
BAND_EDGES = ((1.0, 3.0), (4.0, 7.0), (8.0, 13.0), (14.0, 30.0), (31.0, 50.0))
#: Feature families of ``ExtractedFeatures``: a kind smoothed over the trial by
#: a linear dynamic system (``LDS``) or a moving average (``movingAve``).
#: ``de``/``psd`` have one row per channel; the asymmetry kinds one per
#: electrode pair (``dasm``/``rasm`` 27, ``asm`` 54, ``dcau`` 23).
FEATURE_KINDS = ("de", "psd", "dasm", "rasm", "asm", "dcau")
FEATURE_KEYS = tuple(f"{k}_{s}" for k in FEATURE_KINDS for s in ("LDS", "movingAve"))
#: What a precomputed SEED reader reads unless told otherwise: the feature most
#: SEED results use.
DEFAULT_FEATURES = ("de_LDS",)
LABEL_NAMES = {1: "positive", 0: "neutral", -1: "negative"}
#: Class names in index order (``--targets class``).
CLASSES = ("negative", "neutral", "positive")
LABEL_FILE = "label.mat"

_EXPECTED_LABEL = "label.mat with 'label' (1, 15) of 1/0/-1"


def label_name(value: float) -> str:
    """SEED's numeric film label (1, 0, -1) as a class name."""
    return LABEL_NAMES[int(value)]


class _SeedBase(SessionFilesReader):
    """One folder of session files + ``label.mat``, shared by both SEED readers.

    The session is the date in the file name; a subject's sessions come in date
    order.
    """

    family = "SEED"
    source = "https://bcmi.sjtu.edu.cn/home/seed/ (apply for access)"
    classes = CLASSES
    session_split = (9, 15)

    def __init__(self, data_dir: str | Path | None, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self._labels: list[str] | None = None

    def _is_release_folder(self, path: Path) -> bool:
        return any(FILE_RE.match(p.name) for p in listdir(path))

    def _scan(self, root: Path) -> dict[str, list[tuple[str, Path]]]:
        found: dict[str, list[tuple[str, Path]]] = {}
        for p in listdir(root):
            m = FILE_RE.match(p.name)
            if m and p.is_file():
                found.setdefault(subject_of(p), []).append((m.group(2), p))
        return {s: sorted(v) for s, v in found.items()}

    def files(self, subject: str) -> list[Path]:
        return [p for _, p in self.sessions(subject)] + [self.root / LABEL_FILE]

    def labels(self) -> list[str]:
        """Class name of each film, from ``label.mat``."""
        if self._labels is None:
            path = self.root / LABEL_FILE
            if not path.is_file():
                raise DatasetError(
                    f"{path}: file not found; expected {_EXPECTED_LABEL} beside the "
                    f"session files ({self.expected_layout})"
                )
            mat = load_mat(path, _EXPECTED_LABEL, ("label",))
            lab = np.asarray(mat.get("label", np.empty(0)))
            flat = (
                lab.reshape(-1).astype(np.float64) if lab.dtype.kind in "iuf" else None
            )
            if flat is None or flat.size == 0 or not np.isin(flat, (-1, 0, 1)).all():
                raise DatasetError(
                    f"{path.name}: 'label' missing or not 1/0/-1 values (got "
                    f"{lab.dtype} {lab.shape}); expected {_EXPECTED_LABEL}"
                )
            self._labels = [label_name(v) for v in flat]
        return self._labels


class SeedReader(_SeedBase):
    """Read SEED ``Preprocessed_EEG`` signals (one :class:`Trial` per film).

    Parameters
    ----------
    data_dir : str or Path
        The ``Preprocessed_EEG`` folder, or its parent (the SEED root).

    Notes
    -----
    Subjects are ``"1"`` .. ``"15"`` (the number before ``_``); every subject has
    one session per file (``session`` = the date), read in date order. Each
    :class:`Trial` has ``eeg`` (62, n_samples) µV at 200 Hz, ``video = "film01"``
    .. ``"film15"`` and ``label`` positive/neutral/negative.
    """

    name = "seed"
    description = (
        "SEED: 15 subjects x 3 sessions x 15 films, 62-ch EEG at 200 Hz, 3 classes"
    )
    expected_layout = (
        "Preprocessed_EEG/<subject>_<date>.mat (1_20131027.mat ..) + label.mat"
    )
    folder = "Preprocessed_EEG"

    def __init__(self, data_dir: str | Path | None, **unknown: Any) -> None:
        reject_unknown_options(self.name, unknown, "")
        super().__init__(data_dir)

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return SEED's fixed EEG channels (checks that ``subject`` exists)."""
        self.files(subject)
        return CH_NAMES

    def read_subject(self, subject: str) -> list[Trial]:
        """Read every film of every session of one subject (a number, ``"1"``).

        Sessions come in date order, films in order: 62 channels at 200 Hz,
        the film's class from ``label.mat`` as ``label`` and the date as
        ``session``. A missing ``label.mat``, or a session file that lacks a
        film or holds an array of the wrong shape or non-finite samples, raises
        :class:`~emomon.errors.DatasetError`.
        """
        labels = self.labels()
        expected = (
            f"SEED Preprocessed_EEG file with <initials>_eeg1..{len(labels)}, "
            f"each ({N_CHANNELS}, n_samples)"
        )
        trials = []
        for date, path in self.sessions(subject):
            mat = load_mat(path, expected)
            sid = subject_of(path)
            chosen = eeg_trials(mat, path, len(labels), N_CHANNELS, expected)
            for i, (label, (key, eeg)) in enumerate(
                zip(labels, chosen, strict=True), start=1
            ):
                trials.append(
                    Trial(
                        subject=sid,
                        video=f"film{i:02d}",
                        eeg=eeg,
                        sfreq=SFREQ,
                        ch_names=CH_NAMES,
                        label=label,
                        dataset=self.name,
                        session=date,
                        meta={"file": str(path), "variable": key},
                    )
                )
        return trials


class SeedFeaturesReader(_SeedBase):
    """Read SEED ``ExtractedFeatures`` (precomputed DE/PSD per 1 s window).

    Parameters
    ----------
    data_dir : str or Path
        The ``ExtractedFeatures`` folder, or its parent (the SEED root).
    features : str or sequence of str, default ``"de_LDS"``
        Which families to load (a comma list or a sequence) among ``de_LDS``,
        ``de_movingAve``, ``psd_LDS``, ``psd_movingAve`` and the asymmetry
        families ``dasm_*``, ``rasm_*``, ``asm_*``, ``dcau_*``. Only their
        variables are read from the files. Families of one shape only: the
        channel kinds (de, psd) and each asymmetry kind are not mixed.

    Notes
    -----
    :meth:`read_subject` returns :class:`FeatureTrial` records (not
    :class:`Trial`): ``features[key]`` is (62, n_windows, 5) with bands
    delta/theta/alpha/beta/gamma (:data:`BAND_EDGES`), ``window_s = 1.0``,
    ``video = "film01"`` .., ``label`` positive/neutral/negative, ``session`` =
    the date. The asymmetry families have one row per electrode pair; the files
    do not name the pairs, so their rows are named ``dasm01`` ...

    These features are not causal: ``LDS`` smooths over the whole trial and
    ``movingAve`` averages neighbouring windows, so a model trained on them
    cannot run live (its contract says so and ``emomon stream`` refuses it).
    """

    name = "seed-features"
    description = (
        "SEED ExtractedFeatures: precomputed DE/PSD (62 ch x 5 bands, 1 s windows)"
    )
    expected_layout = (
        "ExtractedFeatures/<subject>_<date>.mat (de_LDS1..15, de_movingAve1..15, "
        "psd_LDS1..15, psd_movingAve1..15) + label.mat"
    )
    folder = "ExtractedFeatures"
    precomputed = True

    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        features: str | Sequence[str] = DEFAULT_FEATURES,
        **unknown: Any,
    ) -> None:
        reject_unknown_options(self.name, unknown, "features")
        feats = feature_families(features, valid=FEATURE_KEYS, reader=self.name)
        kinds = {_row_kind(f) for f in feats}
        if len(kinds) > 1:
            raise DatasetError(
                f"{self.name}: option 'features' mixes families of different "
                f"shapes ({', '.join(feats)}); choose de/psd families or one "
                "asymmetry kind (dasm, rasm, asm, dcau)"
            )
        super().__init__(data_dir, features=list(feats))
        self.features = feats

    def read_subject(self, subject: str) -> list[FeatureTrial]:  # type: ignore[override]
        """Read the precomputed features of every film of every session.

        Unlike the other readers, this one returns :class:`FeatureTrial`
        records, sessions in date order and films in order: the chosen
        ``features``, each (62 channels, n_windows, 5 bands) over 1 s windows,
        the film's class as ``label`` and the date as ``session``. A missing
        ``label.mat``, or a session file that lacks a variable or holds one of
        the wrong shape or non-finite values, raises
        :class:`~emomon.errors.DatasetError`.
        """
        labels = self.labels()
        n = len(labels)
        kind = _row_kind(self.features[0])
        rows = N_CHANNELS if kind == "channel" else None
        expected = (
            f"SEED ExtractedFeatures file with {'/'.join(self.features)}1..{n}, each "
            f"({rows or 'n_pairs'}, n_windows, {len(BANDS)})"
        )
        out = []
        for date, path in self.sessions(subject):
            sid = subject_of(path)
            per_film = feature_trials(
                path, self.features, n, (rows, len(BANDS)), expected
            )
            for i, (label, feats) in enumerate(
                zip(labels, per_film, strict=True), start=1
            ):
                n_rows = next(iter(feats.values())).shape[0]
                ch_names = (
                    CH_NAMES
                    if rows is not None
                    else tuple(f"{kind}{r + 1:02d}" for r in range(n_rows))
                )
                out.append(
                    FeatureTrial(
                        subject=sid,
                        video=f"film{i:02d}",
                        features=feats,
                        ch_names=ch_names,
                        bands=BANDS,
                        window_s=1.0,
                        label=label,
                        dataset=self.name,
                        session=date,
                        band_edges=BAND_EDGES,
                        sfreq=SFREQ,
                    )
                )
        return out


def _row_kind(family: str) -> str:
    """``"channel"`` for de/psd families, else the asymmetry kind (``"dasm"``)."""
    kind = family.split("_", 1)[0]
    return "channel" if kind in ("de", "psd") else kind
