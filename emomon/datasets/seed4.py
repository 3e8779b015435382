"""SEED-IV readers: ``eeg_raw_data/`` (signals) and ``eeg_feature_smooth/`` (DE/PSD).

SEED-IV (Zheng et al., "EmotionMeter", IEEE Trans. Cybern. 49(3), 2019;
https://bcmi.sjtu.edu.cn/home/seed/seed-iv.html): 15 subjects, 3 sessions on
different days, 24 film clips per session, four emotions. Both folders hold the
session folders ``1``, ``2``, ``3``, each with one file per subject named
``<subject>_<date>.mat``:

- ``eeg_raw_data/<session>/<subject>_<date>.mat``: ``<initials>_eeg1`` ..
  ``<initials>_eeg24`` (the release's page names them ``cz_eeg1`` ..), each
  (62, n_samples) at 200 Hz. The release does not state the unit; TorchEEG's
  ``SEEDIVDataset`` (torcheeg/datasets/module/emotion_recognition/seed_iv.py)
  uses the values unscaled, as for SEED, and so does emomon (µV, no conversion).
- ``eeg_feature_smooth/<session>/<subject>_<date>.mat``: ``de_LDS1..24``,
  ``de_movingAve1..24``, ``psd_LDS1..24``, ``psd_movingAve1..24``, each
  (62, n_windows, 5) over 4 s non-overlapping windows, bands delta 1-4, theta
  4-8, alpha 8-14, beta 14-31, gamma 31-50 Hz (the release's page; not SEED's
  1-3/4-7/8-13/14-30/31-50), from EEG at 200 Hz band-passed 1-75 Hz.

The labels are not in the files: the table :data:`LABELS` (0 neutral, 1 sad,
2 fear, 3 happy, per session, the same for every subject) is the one TorchEEG's
two SEED-IV loaders and LibEER's ``read_seedIV_raw`` carry. The films differ
per session and are the same for every subject, so a stimulus is (session,
trial): video ``"s1t03"``, session ``"1"``.

Channels: the 62 of :data:`~emomon.dsp.layout.SEED_CHANNELS` (the same ESI
NeuroScan cap as SEED); TorchEEG's ``SEED_IV_CHANNEL_LIST``
(torcheeg/datasets/constants/emotion_recognition/seed_iv.py) lists the same
names in the same order.

The customary within-subject protocol trains on trials 1-16 of each session and
tests on trials 17-24 (Zheng et al. 2019; Zhong et al., "EEG-based emotion
recognition using regularized graph neural networks", IEEE Trans. Affect.
Comput. 2020). Those papers describe the test part as holding every emotion;
by the label table above session 1's trials 17-24 hold no sad trial (2 neutral,
2 fear, 4 happy), so a per-class score of that fold is undefined for "sad".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

__all__ = ["LABELS", "SeedIVFeaturesReader", "SeedIVReader", "video_id"]

SFREQ = 200.0
N_TRIALS = 24
N_CHANNELS = len(SEED_CHANNELS)
CH_NAMES = tuple(canonical_name(n) for n in SEED_CHANNELS)
CLASSES = ("neutral", "sad", "fear", "happy")
SESSIONS = ("1", "2", "3")
#: Class index of each trial, per session folder.
LABELS: dict[str, tuple[int, ...]] = {
    "1": (1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3),
    "2": (2, 1, 3, 0, 0, 2, 0, 2, 3, 3, 2, 3, 2, 0, 1, 1, 2, 1, 0, 3, 0, 1, 3, 1),
    "3": (1, 2, 2, 1, 3, 3, 3, 1, 1, 2, 1, 0, 2, 3, 3, 0, 2, 3, 0, 0, 2, 0, 1, 0),
}
BANDS = ("delta", "theta", "alpha", "beta", "gamma")
#: Hz, per band (the SEED-IV page: 1-4, 4-8, 8-14, 14-31, 31-50).
BAND_EDGES = ((1.0, 4.0), (4.0, 8.0), (8.0, 14.0), (14.0, 31.0), (31.0, 50.0))
WINDOW_S = 4.0
FEATURE_KEYS = ("de_LDS", "de_movingAve", "psd_LDS", "psd_movingAve")
DEFAULT_FEATURES = ("de_LDS",)
_SOURCE = "https://bcmi.sjtu.edu.cn/home/seed/seed-iv.html (apply for access)"


def video_id(session: str, trial: int) -> str:
    """Stimulus id of trial ``trial`` of session ``session`` (``"s1t03"``)."""
    return f"s{session}t{trial:02d}"


class _SeedIVBase(SessionFilesReader):
    """Session-folder discovery shared by both SEED-IV readers."""

    family = "SEED-IV"
    source = _SOURCE
    classes = CLASSES
    #: Trials 1-16 train, 17-24 test, per subject and session.
    session_split = (16, N_TRIALS)

    def _is_release_folder(self, path: Path) -> bool:
        return any((path / s).is_dir() for s in SESSIONS)

    def _scan(self, root: Path) -> dict[str, list[tuple[str, Path]]]:
        found: dict[str, list[tuple[str, Path]]] = {}
        for session in SESSIONS:
            for p in listdir(root / session):
                if FILE_RE.match(p.name) and p.is_file():
                    found.setdefault(subject_of(p), []).append((session, p))
        return found

    def sessions(self, subject: str) -> list[tuple[str, Path]]:
        """``(session, path)`` of each session file of ``subject``, sessions 1-3.

        Raises
        ------
        DatasetError
            If ``subject`` has no file, or two files in one session folder.
        """
        out = super().sessions(subject)
        seen: dict[str, Path] = {}
        for session, path in out:
            if session in seen:
                raise DatasetError(
                    f"{path}: second file of subject {subject_of(path)} in session "
                    f"folder {session} (also {seen[session].name}); expected one "
                    f"<subject>_<date>.mat per subject and session; move the other out"
                )
            seen[session] = path
        return out

    def channel_names(self, subject: str) -> tuple[str, ...]:
        """Return SEED-IV's fixed EEG channels (checks that ``subject`` exists)."""
        self.files(subject)
        return CH_NAMES


class SeedIVReader(_SeedIVBase):
    """Read SEED-IV ``eeg_raw_data`` signals (one :class:`Trial` per film clip).

    Parameters
    ----------
    data_dir : str or Path
        The ``eeg_raw_data`` folder, or its parent (the SEED-IV root).

    Notes
    -----
    Subjects are ``"1"`` .. ``"15"`` (the number before ``_``). Each
    :class:`Trial` has ``eeg`` (62, n_samples) µV at 200 Hz, ``video``
    ``"s1t01"`` .. ``"s3t24"`` (session and trial), ``session`` ``"1"`` ..
    ``"3"``, ``label`` among :data:`CLASSES` and ``meta`` the file, variable
    and recording date.
    """

    name = "seed4"
    description = (
        "SEED-IV: 15 subjects x 3 sessions x 24 films, 62-ch EEG at 200 Hz, "
        "4 classes (neutral/sad/fear/happy)"
    )
    expected_layout = "eeg_raw_data/{1,2,3}/<subject>_<date>.mat (1_20160518.mat ..)"
    folder = "eeg_raw_data"

    def __init__(self, data_dir: str | Path | None, **unknown: Any) -> None:
        reject_unknown_options(self.name, unknown, "")
        super().__init__(data_dir)

    def read_subject(self, subject: str) -> list[Trial]:
        """Read every trial of every session of one subject (a number, ``"1"``).

        Sessions come in order 1-3, trials in order 1-24, each chosen by the
        number that ends its variable's name. A session file that lacks a
        trial, holds one twice or an array of the wrong shape or non-finite
        samples raises :class:`~emomon.errors.DatasetError` naming the file.
        """
        expected = (
            f"SEED-IV eeg_raw_data file with <initials>_eeg1..{N_TRIALS}, "
            f"each ({N_CHANNELS}, n_samples)"
        )
        trials = []
        for session, path in self.sessions(subject):
            mat = load_mat(path, expected)
            sid = subject_of(path)
            date = FILE_RE.match(path.name).group(2)  # type: ignore[union-attr]
            labels = LABELS[session]
            for i, (key, eeg) in enumerate(
                eeg_trials(mat, path, N_TRIALS, N_CHANNELS, expected), start=1
            ):
                trials.append(
                    Trial(
                        subject=sid,
                        video=video_id(session, i),
                        eeg=eeg,
                        sfreq=SFREQ,
                        ch_names=CH_NAMES,
                        label=CLASSES[labels[i - 1]],
                        dataset=self.name,
                        session=session,
                        meta={"file": str(path), "variable": key, "date": date},
                    )
                )
        return trials


class SeedIVFeaturesReader(_SeedIVBase):
    """Read SEED-IV ``eeg_feature_smooth`` (precomputed DE/PSD per 4 s window).

    Parameters
    ----------
    data_dir : str or Path
        The ``eeg_feature_smooth`` folder, or its parent (the SEED-IV root).
    features : str or sequence of str, default "de_LDS"
        Which of ``de_LDS``, ``de_movingAve``, ``psd_LDS``, ``psd_movingAve`` to
        read (a comma-separated string or a list); only their variables are
        loaded from the files.

    Notes
    -----
    :meth:`read_subject` returns :class:`FeatureTrial` records:
    ``features[family]`` is (62, n_windows, 5), bands delta/theta/alpha/beta/
    gamma with :data:`BAND_EDGES`, ``window_s = 4.0``, ``sfreq = 200.0``,
    ``video`` ``"s1t01"`` .., ``session`` ``"1"`` .. ``"3"``.
    """

    name = "seed4-features"
    description = (
        "SEED-IV eeg_feature_smooth: precomputed DE/PSD (62 ch x 5 bands, 4 s "
        "windows), 4 classes"
    )
    expected_layout = (
        "eeg_feature_smooth/{1,2,3}/<subject>_<date>.mat (de_LDS1..24, "
        "de_movingAve1..24, psd_LDS1..24, psd_movingAve1..24)"
    )
    folder = "eeg_feature_smooth"
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
        super().__init__(data_dir, features=",".join(feats))
        self.features = feats

    def read_subject(self, subject: str) -> list[FeatureTrial]:  # type: ignore[override]
        """Read the chosen features of every trial of every session.

        Sessions in order 1-3, trials 1-24: ``features`` (62 channels,
        n_windows, 5 bands) over 4 s windows, the trial's class as ``label``.
        A session file that lacks a chosen variable or holds one of the wrong
        shape or non-finite values raises :class:`~emomon.errors.DatasetError`
        naming the file.
        """
        expected = (
            f"SEED-IV eeg_feature_smooth file with {'/'.join(self.features)}"
            f"1..{N_TRIALS}, each ({N_CHANNELS}, n_windows, {len(BANDS)})"
        )
        out = []
        for session, path in self.sessions(subject):
            sid = subject_of(path)
            labels = LABELS[session]
            per_trial = feature_trials(
                path, self.features, N_TRIALS, (N_CHANNELS, len(BANDS)), expected
            )
            for i, feats in enumerate(per_trial, start=1):
                out.append(
                    FeatureTrial(
                        subject=sid,
                        video=video_id(session, i),
                        features=feats,
                        ch_names=CH_NAMES,
                        bands=BANDS,
                        window_s=WINDOW_S,
                        label=CLASSES[labels[i - 1]],
                        dataset=self.name,
                        session=session,
                        band_edges=BAND_EDGES,
                        sfreq=SFREQ,
                    )
                )
        return out
